"""glkm_prior: Generative Latent Kernel Modeling, a learned blur-kernel prior for blind deblurring.

Core objects:

* :class:`KernelPrior` -- frozen kernel generator G + initializer E; adapters optimise the
  first-layer latent ``w = G.head(E(y))`` and read kernels ``G.tail(w)``.
* :func:`blur` -- the forward model (cross-correlation as ``F.conv2d``; 'valid', 'same',
  'circular'; FFT for large kernels).
* :class:`DeepinvKernelGenerator` -- prior samples / initial kernels as deepinv-style
  ``step() -> {"filter": ...}`` in deepinv's TRUE-convolution convention (flipped kernels).
* :data:`hookimpl` -- decorator for plugins (adapters); see :mod:`glkm_prior.hookspecs`.
"""

from .errors import GLKMError, ImageReadError, InvalidInputError, KernelSizeError, PluginError, WeightsError
from .physics import blur, blur_adjoint, center_kernel, fit_kernel, flip_kernel, normalize_kernel
from .interop import DeepinvKernelGenerator, from_deepinv_filter, to_deepinv_filter
from .plugins import hookimpl
from .prior import KernelPrior

__version__ = "0.1.0"

__all__ = [
    "KernelPrior",
    "DeepinvKernelGenerator",
    "from_deepinv_filter",
    "to_deepinv_filter",
    "blur",
    "blur_adjoint",
    "center_kernel",
    "fit_kernel",
    "flip_kernel",
    "normalize_kernel",
    "hookimpl",
    "GLKMError",
    "ImageReadError",
    "InvalidInputError",
    "KernelSizeError",
    "PluginError",
    "WeightsError",
]
