"""Numerical primitives that reproduce MATLAB's, shared by the metrics (numpy, float64).

* :func:`matlab_round` -- MATLAB ``round``: halves away from zero (numpy and Python round
  halves to even);
* :func:`gaussian_window` -- MATLAB ``fspecial('gaussian', size, sigma)`` (2-D) or its 1-D
  factor; normalised to sum 1. fspecial's eps-thresholding removes nothing for the windows
  used here (11 / 1.5 for SSIM, 7 / (7/6) for NIQE/BRISQUE).
"""

from __future__ import annotations

import numpy as np


def matlab_round(x):
    """MATLAB ``round``: ``sign(x) * floor(|x| + 0.5)``, elementwise (float64 array or scalar)."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def gaussian_window(size: int, sigma: float, ndim: int = 2, centre: float | None = None) -> np.ndarray:
    """Normalised Gaussian of ``size`` taps (``ndim`` 1) or ``size`` x ``size`` (``ndim`` 2),
    float64, centred at ``centre`` (default ``(size - 1) / 2``, the middle; SelfDeblur's SSIM
    loss uses ``size // 2``, the same for odd sizes). The 2-D window is computed directly, as
    ``exp(-(a^2 + b^2) / (2 sigma^2))``, not as the outer product of the 1-D one (they agree to
    rounding)."""
    if ndim not in (1, 2):
        raise ValueError(f"ndim must be 1 or 2, got {ndim}")
    t = np.arange(size, dtype=np.float64) - ((size - 1) / 2.0 if centre is None else centre)
    if ndim == 1:
        g = np.exp(-(t * t) / (2.0 * sigma * sigma))
    else:
        g = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2.0 * sigma * sigma))
    return g / g.sum()
