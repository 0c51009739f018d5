"""Image-restoration metrics of the blind-deblurring benchmarks (pure numpy).

This module reproduces the evaluation protocol of the Levin et al. (2009) and Lai et al. (2016)
benchmarks as distributed with their MATLAB scripts (Levin's ``comp_upto_shift.m``, Wang's
``ssim.m``, MATLAB's ``rgb2ycbcr``), so that numbers computed here can be compared with the
numbers in the literature. Everything is computed in float64 with numpy only.

Conventions shared by all functions
-----------------------------------
* Images are ``(H, W)`` (grayscale) or ``(H, W, C)`` arrays of real numbers. Integer inputs are
  converted to float64 unchanged (no rescaling): pass ``peak=255`` for data on the 8-bit scale.
* ``peak`` is the maximum possible pixel value (the "L" / "data range" of PSNR and SSIM):
  ``1.0`` (default) for images in ``[0, 1]``, ``255`` for images in ``[0, 255]``.
  The benchmark scripts compute PSNR/SSIM on ``255 * img`` with peak 255, which is identical to
  peak 1 on ``[0, 1]`` data.
* Shift convention (images and kernels): a shift ``(dy, dx)`` means
  ``aligned[y, x] = estimate[y + dy, x + dx]``, i.e. the estimate's content sits ``dy`` pixels
  *below* and ``dx`` pixels *to the right of* where it is in the reference; a positive shift
  therefore moves the estimate's content **up/left** to align it. (If
  ``estimate[y, x] = reference[y - 2, x + 1]``, the found shift is ``(2, -1)``.)
* Every problem with an input (wrong ndim, shape mismatch, NaN/Inf, empty array, non-positive
  peak, ...) raises :class:`glkm_prior.errors.InvalidInputError` naming the argument.

Modules: ``quality`` (PSNR, ``rgb_to_y``, SSIM and the input checks), ``alignment``
(``comp_upto_shift``, error ratio, seam errors), ``kernel`` (kernel error), ``lpips_check``.
"""

from __future__ import annotations

from .alignment import AlignResult, align_upto_shift, center_crop_to, error_ratio, seam_errors
from .kernel import KernelErrorResult, kernel_error
from .lpips_check import lpips_available
from .quality import SSIM_K1, SSIM_K2, SSIM_SIGMA, SSIM_WIN, psnr, rgb_to_y, ssim, ssim_downsample_factor, ssim_map

__all__ = [
    "AlignResult",
    "KernelErrorResult",
    "align_upto_shift",
    "center_crop_to",
    "error_ratio",
    "kernel_error",
    "lpips_available",
    "psnr",
    "rgb_to_y",
    "seam_errors",
    "ssim",
    "ssim_map",
]
