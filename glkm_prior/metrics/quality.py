"""Full-reference image quality: PSNR, MATLAB's ``rgb2ycbcr`` luma and Wang et al.'s SSIM
(``ssim.m``), with the input checks shared by all metrics (conventions in :mod:`glkm_prior.metrics`)."""

from __future__ import annotations

import math

import numpy as np

from ..colour import luma, studio_y
from ..errors import InvalidInputError
from ..matlab import gaussian_window, matlab_round

# Constants of Wang et al.'s reference implementation (ssim_index.m / ssim.m).
SSIM_K1 = 0.01
SSIM_K2 = 0.03
SSIM_WIN = 11
SSIM_SIGMA = 1.5


# ----------------------------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------------------------


def _as_array(x, name: str, ndims=(2, 3)) -> np.ndarray:
    """Return ``x`` as a finite float64 array with an allowed ndim, or raise InvalidInputError."""
    try:
        arr = np.asarray(x)
    except Exception as exc:  # pragma: no cover - exotic objects
        raise InvalidInputError(f"{name}: cannot be converted to an array ({exc})") from exc
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.integer)
        or np.issubdtype(arr.dtype, np.floating)
        or arr.dtype == np.bool_
    ):
        raise InvalidInputError(f"{name}: expected a real numeric array, got dtype {arr.dtype}")
    if arr.ndim not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise InvalidInputError(f"{name}: expected a {want} array, got shape {arr.shape}")
    if arr.size == 0:
        raise InvalidInputError(f"{name}: array is empty (shape {arr.shape})")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        n_nan = int(np.isnan(arr).sum())
        n_inf = int(np.isinf(arr).sum())
        raise InvalidInputError(f"{name}: contains non-finite values ({n_nan} NaN, {n_inf} Inf)")
    return arr


def _check_peak(peak) -> float:
    try:
        p = float(peak)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"peak: expected a positive number, got {peak!r}") from exc
    if not math.isfinite(p) or p <= 0:
        raise InvalidInputError(f"peak: expected a finite positive number, got {peak!r}")
    return p


def _same_shape(a: np.ndarray, b: np.ndarray, na: str, nb: str) -> None:
    if a.shape != b.shape:
        raise InvalidInputError(f"shape mismatch: {na} has shape {a.shape}, {nb} has {b.shape}")


def _as_gray(arr: np.ndarray, name: str) -> np.ndarray:
    """Accept (H, W) or (H, W, 1); colour raises (SSIM is defined on grayscale / Y here)."""
    if arr.ndim == 3:
        if arr.shape[2] != 1:
            raise InvalidInputError(
                f"{name}: SSIM is computed on grayscale images only, got shape {arr.shape}; "
                "convert colour images with rgb_to_y() first (the benchmarks evaluate on Y)"
            )
        arr = arr[:, :, 0]
    return arr


# ----------------------------------------------------------------------------------------------
# PSNR, colour conversion
# ----------------------------------------------------------------------------------------------


def psnr(x, ref, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB: ``10 * log10(peak**2 / mean((x - ref)**2))``.

    ``x`` and ``ref`` must have the same shape ((H, W) or (H, W, C); the mean runs over all
    pixels and channels). ``peak`` is the maximum possible value: 1.0 for images in [0, 1]
    (default), 255 for images in [0, 255]. Returns ``inf`` for identical images.
    """
    p = _check_peak(peak)
    a = _as_array(x, "x")
    b = _as_array(ref, "ref")
    _same_shape(a, b, "x", "ref")
    mse = float(np.mean((a - b) ** 2))
    if mse == 0.0:
        return math.inf
    return float(10.0 * np.log10(p * p / mse))


def rgb_to_y(img, matlab: bool = True, peak: float = 1.0) -> np.ndarray:
    """Luma (Y) of an RGB image ``(H, W, 3)`` with values in ``[0, peak]``; returns ``(H, W)``.

    ``matlab=True`` (default, what the Lai et al. / SelfDeblur scripts use): ITU-R BT.601
    "studio swing" Y exactly as MATLAB ``rgb2ycbcr`` returns it for double input, rescaled to the
    input's peak::

        Y = (16 * peak + 65.481 * R + 128.553 * G + 24.966 * B) / 255

    so for ``peak=1`` the result lies in ``[16/255, 235/255]`` (not [0, 1]). No rounding is done
    (MATLAB rounds only for integer-typed inputs).

    ``matlab=False``: plain BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` in ``[0, peak]``.
    """
    p = _check_peak(peak)
    a = _as_array(img, "img", ndims=(3,))
    if a.shape[2] != 3:
        raise InvalidInputError(f"img: expected an (H, W, 3) RGB image, got shape {a.shape}")
    r, g, b = a[:, :, 0], a[:, :, 1], a[:, :, 2]
    # the coefficients: glkm_prior.colour
    return studio_y(r, g, b, p) if matlab else luma(r, g, b)


# ----------------------------------------------------------------------------------------------
# SSIM (Wang et al., ssim.m with automatic downsampling)
# ----------------------------------------------------------------------------------------------


def _filter_valid_sep(img: np.ndarray, g: np.ndarray) -> np.ndarray:
    """MATLAB ``filter2(outer(g, g), img, 'valid')`` (correlation, no padding), separably."""
    n = g.size
    h, w = img.shape
    tmp = np.zeros((h, w - n + 1))
    for k in range(n):
        tmp += g[k] * img[:, k : k + w - n + 1]
    out = np.zeros((h - n + 1, w - n + 1))
    for k in range(n):
        out += g[k] * tmp[k : k + h - n + 1, :]
    return out


def ssim_downsample_factor(shape) -> int:
    """The reference ``ssim.m`` factor ``f = max(1, round(min(H, W) / 256))``."""
    return max(1, int(matlab_round(min(shape[0], shape[1]) / 256.0)))


def _box_downsample(img: np.ndarray, f: int) -> np.ndarray:
    """``imfilter(img, ones(f)/f^2, 'symmetric', 'same')`` then ``img(1:f:end, 1:f:end)``.

    imfilter correlates with the kernel centre at ``floor((f + 1) / 2)`` (1-based), i.e. each
    output pixel averages ``(f-1)//2`` neighbours before and ``f//2`` after it along each axis;
    'symmetric' padding mirrors the border including the edge pixel (numpy mode 'symmetric').
    """
    before, after = (f - 1) // 2, f // 2
    padded = np.pad(img, ((before, after), (before, after)), mode="symmetric")
    h, w = img.shape
    w_lpf = 1.0 / (f * f)
    acc = np.zeros((h, w))
    for i in range(f):
        for j in range(f):
            acc += w_lpf * padded[i : i + h, j : j + w]
    return acc[::f, ::f]


def _ssim_map_core(a: np.ndarray, b: np.ndarray, peak: float) -> np.ndarray:
    """SSIM map of two same-shape grayscale float64 images, no downsampling, 'valid' window."""
    if a.shape[0] < SSIM_WIN or a.shape[1] < SSIM_WIN:
        raise InvalidInputError(
            f"SSIM needs images of at least {SSIM_WIN}x{SSIM_WIN} pixels (after the automatic "
            f"downsampling), got {a.shape[0]}x{a.shape[1]}"
        )
    g = gaussian_window(SSIM_WIN, SSIM_SIGMA, ndim=1)  # outer(g, g) is fspecial('gaussian', 11, 1.5)
    c1 = (SSIM_K1 * peak) ** 2
    c2 = (SSIM_K2 * peak) ** 2
    mu1 = _filter_valid_sep(a, g)
    mu2 = _filter_valid_sep(b, g)
    mu1_sq = mu1 * mu1
    mu2_sq = mu2 * mu2
    mu1_mu2 = mu1 * mu2
    sigma1_sq = _filter_valid_sep(a * a, g) - mu1_sq
    sigma2_sq = _filter_valid_sep(b * b, g) - mu2_sq
    sigma12 = _filter_valid_sep(a * b, g) - mu1_mu2
    return ((2 * mu1_mu2 + c1) * (2 * sigma12 + c2)) / (
        (mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2)
    )


def ssim_map(x, ref, peak: float = 1.0) -> np.ndarray:
    """SSIM index map exactly as Wang et al.'s reference ``ssim.m`` (2009) computes it.

    * grayscale only: ``(H, W)`` or ``(H, W, 1)``; colour raises (use :func:`rgb_to_y`);
      values in ``[0, peak]`` (peak 1.0 default, 255 for 8-bit scale);
    * automatic downsampling: ``f = max(1, round(min(H, W) / 256))`` (MATLAB rounding, halves
      up); if ``f > 1`` both images are averaged with an ``f x f`` box filter
      (``imfilter(..., 'symmetric', 'same')``) and every f-th pixel starting at index 0 is kept;
    * Gaussian window 11x11, sigma 1.5, normalised; K1 = 0.01, K2 = 0.03, L = peak;
    * 'valid' filtering (no padding): the map has shape ``(H' - 10, W' - 10)`` where ``H', W'``
      is the (downsampled) size.
    """
    p = _check_peak(peak)
    a = _as_gray(_as_array(x, "x"), "x")
    b = _as_gray(_as_array(ref, "ref"), "ref")
    _same_shape(a, b, "x", "ref")
    f = ssim_downsample_factor(a.shape)
    if f > 1:
        a = _box_downsample(a, f)
        b = _box_downsample(b, f)
    return _ssim_map_core(a, b, p)


def ssim(x, ref, peak: float = 1.0) -> float:
    """Mean SSIM (``mean2(ssim_map)``) as Wang et al.'s ``ssim.m``; see :func:`ssim_map`.

    Grayscale ``(H, W)`` images with values in ``[0, peak]``; equals 1.0 for identical images.
    For images smaller than 384 px on the short side no downsampling happens and the result is
    the same as the older ``ssim_index.m``.
    """
    return float(np.mean(ssim_map(x, ref, peak=peak)))
