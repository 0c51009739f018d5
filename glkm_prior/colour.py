"""Colour conventions of the package: ITU-R BT.601 luma, plain and as MATLAB computes it.

The one place of the coefficients. Channels ``r, g, b`` are numpy arrays or torch tensors of any
(equal) shape with values in ``[0, peak]``; the functions are plain weighted sums, so they run on
either and compute in the input's dtype.

* plain BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` (what the deblurring loops estimate kernels
  on, :func:`glkm_prior.prior.to_luma`, and what colour files are read as in grey mode);
* MATLAB ``rgb2ycbcr`` "studio swing" Y for double input, ``(16 + 65.481 R + 128.553 G +
  24.966 B) / 255`` for ``peak = 1`` (the Lai et al. / SelfDeblur evaluation scripts);
* MATLAB ``rgb2gray`` weights (rounded inverse of the NTSC matrix; the original NIQE release).
"""

from __future__ import annotations

BT601_LUMA = (0.299, 0.587, 0.114)
#: MATLAB rgb2ycbcr: R G B in [0, 1] -> Y - 16 on the 0-255 scale, range [0, 219]
BT601_STUDIO_Y = (65.481, 128.553, 24.966)
#: MATLAB rgb2gray
MATLAB_RGB2GRAY = (0.298936021293775, 0.587043074451121, 0.114020904255103)


def luma(r, g, b):
    """Plain BT.601 luma ``0.299 r + 0.587 g + 0.114 b``, on the input's scale."""
    wr, wg, wb = BT601_LUMA
    return wr * r + wg * g + wb * b


def studio_y(r, g, b, peak: float = 1.0):
    """MATLAB ``rgb2ycbcr`` Y for double input on the input's scale ``[0, peak]``:
    ``(16 peak + 65.481 r + 128.553 g + 24.966 b) / 255``, in ``[16/255, 235/255] * peak``."""
    wr, wg, wb = BT601_STUDIO_Y
    return (wr / 255.0) * r + (wg / 255.0) * g + (wb / 255.0) * b + (16.0 / 255.0) * peak
