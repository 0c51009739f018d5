"""No-reference image-quality metrics: NIQE and PIQE (pure numpy). Lower is better for both.

Input convention (all public metrics)
-------------------------------------
* ``img`` is a float array, ``(H, W)`` grey or ``(H, W, 3)`` RGB (``(H, W, 1)`` counts as grey),
  values in ``[0, 1]``: what :func:`glkm_prior.imageio.read_image` returns. Values slightly
  outside ``[0, 1]`` (deconvolution overshoot) are clipped to it, as saving to 8 bits would;
  values outside ``[-1, 2]`` are rejected as probably 8-bit data. Integer arrays are rejected
  (divide 8-bit data by 255). NaN/Inf, a wrong ndim or an image too small for the metric
  raise :class:`glkm_prior.errors.InvalidInputError`.
* Both metrics work on one grey channel on the 0-255 scale, rounded to integers (halves away
  from zero, as MATLAB's ``round``), since the reference implementations see 8-bit images:

  - NIQE, default ``convert_to="y"`` (BasicSR ``calculate_niqe(..., convert_to='y')``): BT.601
    studio-swing luma as MATLAB ``rgb2ycbcr``, ``Y = 16 + 65.481 R + 128.553 G + 24.966 B``
    for R, G, B in [0, 1], so Y lies in [16, 235]. ``convert_to="gray"`` uses MATLAB
    ``rgb2gray`` (what the original MATLAB ``niqe`` release does). A grey input is ``255 * img``
    either way.
  - PIQE (MATLAB ``piqe``): ``round(255 * rgb2gray(img))`` with MATLAB's ``rgb2gray`` weights
    ``0.298936021293775 R + 0.587043074451121 G + 0.114020904255103 B``.

MSCN coefficients (both metrics)
--------------------------------
``(I - mu) / (sigma + C)`` with ``C = 1``, ``mu = w * I``, ``sigma = sqrt(|w * I^2 - mu^2|)``,
``w`` the normalised 7x7 Gaussian window of standard deviation 7/6 (MATLAB
``fspecial('gaussian', 7, 7/6)``), applied as a correlation with replicated borders (MATLAB
``imfilter(..., 'replicate')`` / ``imgaussfilt(..., 'Padding', 'replicate')``).

NIQE (Mittal, Soundararajan & Bovik, IEEE SPL 2013; MATLAB ``niqe_release``; BasicSR)
-------------------------------------------------------------------------------------
Constants: block 96x96 (no overlap), 2 scales, the second the MATLAB ``imresize(I, 0.5)``
bicubic downscale (cubic a = -0.5, antialiased: kernel stretched by 1/scale, symmetric
borders) with 48x48 blocks over the same image regions. The image is first cropped by
``crop_border`` on every side, then to a multiple of 96 (top-left kept). Per block and scale
18 features: the AGGD fit (alpha, mean of beta_l and beta_r) of the MSCN coefficients, and
(alpha, mean, beta_l, beta_r) of the AGGD fits of their products with the circularly shifted
block ((0, 1), (1, 0), (1, 1), (1, -1): horizontal, vertical, two diagonals). AGGD shape
search grid: alpha in 0.2:0.001:10 (moment matching, as the reference). The image's features
are fitted by a multivariate Gaussian (``nanmean`` of the block features; covariance of the
blocks without NaN, normalised by n - 1), and
``NIQE = sqrt((mu_p - mu)^T pinv((cov_p + cov) / 2) (mu_p - mu))`` against the pristine model
``glkm_prior/data/niqe_pris_params.npz`` (BasicSR, Apache-2.0; see ``NOTICE-niqe.txt``).
At least 96 px per side and two NaN-free 96x96 blocks are needed (a covariance needs two
samples), i.e. at least 96x192 after cropping.

PIQE (Venkatanath N et al., NCC 2015; MATLAB ``piqe``)
------------------------------------------------------
Constants: the grey image is padded (replicate, bottom/right) to a multiple of 16, MSCN as
above, 16x16 non-overlapping blocks. A block is *spatially active* if the (n - 1 normalised)
variance of its MSCN coefficients exceeds 0.1. For an active block:

* *noticeable distortion*: each of the 4 block borders (top, bottom rows, left, right
  columns) is split into its 11 overlapping segments of 6 pixels; the block is impaired if
  any segment has a standard deviation (n - 1) below 0.1. It then scores ``1 - variance``.
* *noise*: ``sigma`` = block standard deviation, ``r`` = std of the two centre columns
  (8 and 9, 1-based) divided by the std of the surround, ``beta = |sigma - r| / max(sigma, r)``
  (``r = 0`` if it is 0/0); the block is noisy if ``sigma > 2 beta``. It then scores
  ``variance``. As in MATLAB's code, the "surround" is the block without columns 8 and 10
  (MATLAB deletes column 8, then column 9 of the narrowed block).

``PIQE = (sum of block scores + C1) / (C1 + number of active blocks) * 100`` with ``C1 = 1``;
an image without active blocks (e.g. uniform) scores 100. The score is nominally in [0, 100];
a block can score ``variance > 1`` when noisy, so values slightly above 100 are possible.

BRISQUE is not offered: it needs a trained SVR model that is not bundled (and cannot be
downloaded here), and no number is ever made up without it.

Modules: :mod:`.inputs`, :mod:`.filters` (MSCN, bicubic resize), :mod:`.aggd`,
:mod:`.niqe_metric`, :mod:`.piqe_metric`.
"""

from __future__ import annotations

from .aggd import aggd_fit
from .filters import imresize_bicubic, mscn
from .inputs import MetricUnavailableError, to_gray255
from .niqe_metric import NIQEParams, load_niqe_params, niqe, niqe_features
from .piqe_metric import PIQEResult, piqe, piqe_details

__all__ = [
    "MetricUnavailableError",
    "NIQEParams",
    "PIQEResult",
    "aggd_fit",
    "available_metrics",
    "imresize_bicubic",
    "load_niqe_params",
    "mscn",
    "niqe",
    "niqe_features",
    "piqe",
    "piqe_details",
    "to_gray255",
]


def available_metrics() -> dict[str, bool]:
    """Which no-reference metrics can be computed here: ``{"niqe": ..., "piqe": True}`` (NIQE
    needs its bundled parameter file; BRISQUE is not offered, module doc)."""
    try:
        load_niqe_params()
        niqe_ok = True
    except MetricUnavailableError:
        niqe_ok = False
    return {"niqe": niqe_ok, "piqe": True}
