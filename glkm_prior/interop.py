"""Interoperability with deepinv: GLKM kernels as a deepinv-style kernel generator.

deepinv (not a dependency; nothing here imports it) draws blur kernels from *generators* such
as ``deepinv.physics.generator.MotionBlurGenerator``: objects with
``step(batch_size=1, seed=None, **kwargs) -> {"filter": (B, C, h, w)}`` whose dict is passed to
a physics, ``deepinv.physics.Blur(filter=...)`` or ``physics.update(**params)``.
:class:`DeepinvKernelGenerator` is such an object for GLKM's prior.

**Convention.** deepinv's ``Blur`` applies a TRUE convolution (``conv2d`` with the filter
rotated by 180 degrees); this package's :func:`glkm_prior.physics.blur` is a
CROSS-CORRELATION (``F.conv2d``, kernel not flipped). So the filters given here are the
prior's kernels *flipped* (:func:`to_deepinv_filter`); feeding one to a true-convolution
blur gives exactly the image ``blur(x, flip_kernel(filter))`` gives here. Kernels have an odd
side, so the centre pixel ``K // 2`` is the same in both conventions. Going back:
:func:`from_deepinv_filter` (the flip is its own inverse).
"""

from __future__ import annotations

import torch

from .errors import InvalidInputError
from .physics import check_image, check_kernel, flip_kernel
from .prior import KernelPrior, check_kernel_size


def to_deepinv_filter(k: torch.Tensor) -> torch.Tensor:
    """This package's cross-correlation kernels (B, C, h, w) -> deepinv true-convolution filters
    (the 180-degree rotation; same shape, same values)."""
    return flip_kernel(check_kernel(k))


def from_deepinv_filter(f: torch.Tensor) -> torch.Tensor:
    """deepinv true-convolution filters (B, C, h, w) -> cross-correlation kernels for
    :func:`glkm_prior.physics.blur` (the 180-degree rotation)."""
    return flip_kernel(check_kernel(f, "filter"))


class DeepinvKernelGenerator:
    """A deepinv-style generator of GLKM blur kernels.

    ``step(batch_size, seed)`` returns ``{"filter": f}``, ``f`` of shape (B, 1, K, K) on
    ``device`` in ``dtype``, entries >= 0, each kernel summing to 1, in deepinv's TRUE-convolution
    convention: ``f = flip_kernel(prior.kernel(prior.random_latent(B, seed), K))``.
    :meth:`initial` gives the kernel of the initializer's latent for a blurry image in the
    same convention.

    ``kernel_size``: None for the prior's canvas (``prior.size``), else an odd K <= the canvas;
    the canvas is then centre-cropped to K and renormalised (:func:`physics.fit_kernel`).
    ``rng``: a CPU ``torch.Generator`` for the latent draws (default: a new one seeded from
    torch's global RNG). As in deepinv, ``step(seed=s)`` reseeds it with ``s`` first, and
    ``step()`` continues its stream; a given seed always gives the same kernels, and the same
    as ``prior.random_latent(B, seed=s)``. The prior is used where it is (its own device);
    only the outputs are moved to ``device``.
    """

    def __init__(
        self,
        prior: KernelPrior,
        kernel_size: int | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        rng: torch.Generator | None = None,
    ):
        if not isinstance(prior, KernelPrior):
            raise InvalidInputError(f"prior must be a KernelPrior, got {type(prior).__name__}")
        if kernel_size is None:
            kernel_size = prior.size
        check_kernel_size(kernel_size)
        if kernel_size % 2 == 0:
            raise InvalidInputError(
                f"kernel size must be odd (the flip to deepinv's convention keeps the centre only then), got {kernel_size}")
        if kernel_size > prior.size:
            raise InvalidInputError(
                f"kernel size {kernel_size} is larger than the prior's canvas {prior.size}; load a larger prior "
                f"(KernelPrior.from_pretrained(kernel_size={kernel_size}))")
        if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise InvalidInputError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
        if rng is None:
            rng = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (), dtype=torch.int64)))
        elif not isinstance(rng, torch.Generator) or rng.device.type != "cpu":
            raise InvalidInputError(f"rng must be a CPU torch.Generator, got {rng!r}")
        self.prior = prior
        self.kernel_size = kernel_size
        self.device = torch.device(device)
        self.dtype = dtype
        self.rng = rng

    def __repr__(self) -> str:
        return (f"DeepinvKernelGenerator(prior={self.prior.source!r}, canvas={self.prior.size}, "
                f"kernel_size={self.kernel_size}, device={str(self.device)!r}, dtype={self.dtype})")

    def rng_manual_seed(self, seed: int) -> None:
        """Reseed the generator's ``rng`` (as deepinv's generators do)."""
        self.rng.manual_seed(_check_seed(seed))

    def _filter(self, w: torch.Tensor) -> dict:
        with torch.no_grad():
            k = self.prior.kernel(w.detach(), size=self.kernel_size)
        return {"filter": to_deepinv_filter(k).to(device=self.device, dtype=self.dtype)}

    def step(self, batch_size: int = 1, seed: int | None = None, **kwargs) -> dict:
        """``{"filter": (batch_size, 1, K, K)}``: prior samples z ~ N(0, I), as deepinv
        true-convolution filters (>= 0, each summing to 1). ``seed`` reseeds ``rng`` first.
        Other keyword arguments are accepted and ignored (deepinv passes one set of keywords
        to every generator of a sum or mixture)."""
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size!r}")
        if seed is not None:
            self.rng_manual_seed(seed)
        z = torch.randn(batch_size, self.prior.nz, 1, 1, generator=self.rng)
        param = next(self.prior.generator.parameters())
        with torch.no_grad():
            w = self.prior.latent(z.to(param.device))
        return self._filter(w)

    def initial(self, y: torch.Tensor, init: str = "initializer", **kwargs) -> dict:
        """``{"filter": (B, 1, K, K)}``: the kernel of a starting latent for blurry images ``y``
        (B, 1|3, H, W) in [0, 1] (colour is reduced to luma), as deepinv true-convolution
        filters. ``init``: 'initializer' (``G.head(E(y))``, batched, ~1 s) or 'estimate' (the
        start of GLKM's own loops, :meth:`KernelPrior.initial_latent`: the classical estimate on
        the generator's canvas; one image, B = 1). Other keyword arguments are ignored."""
        check_image(y, "blurry image")
        if y.shape[1] not in (1, 3):
            raise InvalidInputError(f"blurry image must have 1 or 3 channels, got {y.shape[1]}")
        return self._filter(self.prior.initial_latent(y, init=init, kernel_size=self.kernel_size))


def _check_seed(seed) -> int:
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise InvalidInputError(f"seed must be a non-negative integer or None, got {seed!r}")
    return seed
