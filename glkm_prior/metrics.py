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
"""

from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from glkm_prior.colour import luma, studio_y
from glkm_prior.errors import InvalidInputError
from glkm_prior.matlab import gaussian_window, matlab_round

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


# ----------------------------------------------------------------------------------------------
# sub-pixel alignment (Levin's comp_upto_shift.m)
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlignResult:
    """Result of :func:`align_upto_shift`.

    aligned:   the estimate resampled at the best shift, over the ground truth's crop window
               (shape ``(H - 2*border, W - 2*border[, C])``).
    reference: the ground truth cropped by ``border`` px on every side (same shape).
    shift:     ``(dy, dx)`` with ``aligned[i, j] = estimate[border + i + dy, border + j + dx]``
               (bilinear); positive = the estimate's content sits lower/right of the truth.
    psnr:      PSNR(aligned, reference) in dB with the given peak.
    ssim:      SSIM(aligned, reference) (ssim.m); for 3-channel images on their MATLAB Y.
    ssd:       sum of squared differences between aligned and reference (Levin's ``ssde``).
    """

    aligned: np.ndarray
    reference: np.ndarray
    shift: tuple[float, float]
    psnr: float
    ssim: float
    ssd: float


def center_crop_to(img, shape) -> np.ndarray:
    """Crop ``img`` (``(H, W)`` or ``(H, W, C)``) to ``shape = (h, w)`` around its centre.

    The window starts at ``top = (H - h) // 2``, ``left = (W - w) // 2`` (0-based): when the
    size difference is odd the extra pixel is removed at the bottom/right. For an even
    difference this is MATLAB's ``img(d/2+1:end-d/2, ...)``. Use it when a ground truth is
    larger than the estimate (e.g. a Levin ground truth is ``kernel_size - 1`` px larger than
    the blurry image). Raises InvalidInputError if ``shape`` is larger than the image.
    Returns a copy.
    """
    a = _as_array(img, "img")
    try:
        h, w = (int(shape[0]), int(shape[1]))
    except (TypeError, ValueError, IndexError) as exc:
        raise InvalidInputError(f"shape: expected (h, w), got {shape!r}") from exc
    if h <= 0 or w <= 0:
        raise InvalidInputError(f"shape: expected positive (h, w), got {shape!r}")
    H, W = a.shape[:2]
    if h > H or w > W:
        raise InvalidInputError(f"shape: cannot crop an image of size {H}x{W} to {h}x{w}")
    top, left = (H - h) // 2, (W - w) // 2
    return a[top : top + h, left : left + w].copy()


def _shift_grid(maxshift: float, step: float) -> np.ndarray:
    """MATLAB ``-maxshift:step:maxshift``."""
    n = int(math.floor(2.0 * maxshift / step + 1e-10))
    return -maxshift + step * np.arange(n + 1, dtype=np.float64)


def _align_params(estimate, ground_truth, maxshift, step, border, peak):
    p = _check_peak(peak)
    est = _as_array(estimate, "estimate")
    gt = _as_array(ground_truth, "ground_truth")
    if est.shape != gt.shape:
        raise InvalidInputError(
            f"shape mismatch: estimate has shape {est.shape}, ground_truth has {gt.shape} "
            "(comp_upto_shift needs equal sizes; crop the larger one with center_crop_to())"
        )
    if est.ndim == 3 and est.shape[2] not in (1, 3):
        raise InvalidInputError(
            f"estimate: expected 1 or 3 channels, got shape {est.shape}"
        )
    try:
        ms, st = float(maxshift), float(step)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"maxshift/step: expected numbers, got {maxshift!r}, {step!r}") from exc
    if not math.isfinite(ms) or ms < 0:
        raise InvalidInputError(f"maxshift: expected a finite number >= 0, got {maxshift!r}")
    if not math.isfinite(st) or st <= 0:
        raise InvalidInputError(f"step: expected a finite number > 0, got {step!r}")
    try:
        border_ok = not isinstance(border, bool) and int(border) == border and border >= 0
    except (TypeError, ValueError, OverflowError):
        border_ok = False
    if not border_ok:
        raise InvalidInputError(f"border: expected an integer >= 0, got {border!r}")
    border = int(border)
    if ms > border:
        raise InvalidInputError(
            f"maxshift={maxshift} exceeds border={border}: shifted samples would fall outside "
            "the estimate"
        )
    H, W = gt.shape[:2]
    hc, wc = H - 2 * border, W - 2 * border
    if hc < SSIM_WIN or wc < SSIM_WIN:
        raise InvalidInputError(
            f"image of size {H}x{W} with border={border} leaves a {hc}x{wc} window; "
            f"at least {SSIM_WIN}x{SSIM_WIN} is needed"
        )
    return est, gt, ms, st, border, p


def _window_sums(img: np.ndarray, r0: np.ndarray, c0: np.ndarray, h: int, w: int) -> np.ndarray:
    """``out[a, b] = img[r0[a]: r0[a] + h, c0[b]: c0[b] + w].sum()`` (summed over channels too),
    from one integral image (float64)."""
    if img.ndim == 3:
        img = img.sum(axis=2)
    integral = np.zeros((img.shape[0] + 1, img.shape[1] + 1))
    integral[1:, 1:] = img.cumsum(0).cumsum(1)
    R, C = r0[:, None], c0[None, :]
    return integral[R + h, C + w] - integral[R, C + w] - integral[R + h, C] + integral[R, C]


def _cross_sums(e: np.ndarray, ref: np.ndarray, r0: np.ndarray, c0: np.ndarray) -> np.ndarray:
    """``out[a, b] = sum(e[r0[a]: r0[a] + hc, c0[b]: c0[b] + wc] * ref)`` for every pair, by one
    real FFT correlation per channel (float64; ``r0``, ``c0`` consecutive integers)."""
    hc, wc = ref.shape[:2]
    shape = (e.shape[0], e.shape[1])
    e3 = e if e.ndim == 3 else e[..., None]
    r3 = ref if ref.ndim == 3 else ref[..., None]
    spectrum = np.zeros((shape[0], shape[1] // 2 + 1), dtype=np.complex128)
    for ch in range(e3.shape[2]):
        spectrum += np.fft.rfft2(e3[..., ch], shape) * np.conj(np.fft.rfft2(r3[..., ch], shape))
    corr = np.fft.irfft2(spectrum, shape)  # corr[r, c] = sum_ij e[r + i, c + j] ref[i, j] (no wrap used)
    return corr[r0[0]: r0[-1] + 1, c0[0]: c0[-1] + 1]


def _ssd_grid(est: np.ndarray, gt_crop: np.ndarray, shifts: np.ndarray, border: int):
    """SSD for every (dy, dx) in shifts x shifts; returns (ssd[iy, ix], resample function).

    For a shift s with integer part n = floor(s) and fraction t = s - n, the sample at crop
    index i is ``(1 - t) * e[border + i + n] + t * e[border + i + n + 1]`` along each axis,
    first along x (columns) then along y (rows): MATLAB interp2 'linear' on the integer grid.

    The grid is not resampled shift by shift: with ``E[p, q]`` the whole-pixel crop of the
    estimate at offset ``(p, q)`` and weights ``w0 = 1 - t``, ``w1 = t``, the aligned image is
    ``sum_ab wy_a wx_b E[ny + a, nx + b]``, so ``SSD = sum (aligned)^2 - 2 sum aligned * ref +
    sum ref^2`` expands into window sums of ``e * e`` shifted by one pixel (integral images) and
    the correlation of ``e`` with ``ref`` (one FFT): exact algebra, float64 rounding of about
    ``1e-12`` of ``sum e^2 + sum ref^2`` (tested against shift-by-shift resampling).
    """
    hc, wc = gt_crop.shape[:2]
    ints = np.floor(shifts).astype(np.int64)
    fracs = shifts - ints
    # two extra edge-replicated rows/columns each side: only ever used with weight 0 (t = 0)
    pad = ((1, 2), (1, 2)) + (((0, 0),) if est.ndim == 3 else ())
    e = np.pad(est.astype(np.float64), pad, mode="edge")
    offsets = np.arange(int(ints.min()), int(ints.max()) + 2)  # every n and n + 1
    origin = border + 1 + offsets  # row/column of E[p] in the padded estimate
    cross = _cross_sums(e, gt_crop, origin, origin)
    ssd = np.full((shifts.size, shifts.size), float(np.sum(gt_crop.astype(np.float64) ** 2)))
    w = (1.0 - fracs, fracs)  # bilinear weights of n and n + 1 (both axes share the grid)
    iy0 = ints - offsets[0]  # index of n in ``offsets``
    for a in (0, 1):
        for b in (0, 1):
            ssd -= 2 * np.outer(w[a], w[b]) * cross[np.ix_(iy0 + a, iy0 + b)]
    H, W = e.shape[:2]
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            # products e[r, c] * e[r + dy, c + dx], window sums at every offset pair
            prod = np.zeros_like(e)
            rs, cs = slice(max(0, -dy), H - max(0, dy)), slice(max(0, -dx), W - max(0, dx))
            rd, cd = slice(max(0, dy), H - max(0, -dy)), slice(max(0, dx), W - max(0, -dx))
            prod[rs, cs] = e[rs, cs] * e[rd, cd]
            sums = _window_sums(prod, origin, origin, hc, wc)
            for a in (0, 1):
                if not 0 <= a + dy <= 1:
                    continue
                for b in (0, 1):
                    if not 0 <= b + dx <= 1:
                        continue
                    weight = np.outer(w[a] * w[a + dy], w[b] * w[b + dx])
                    ssd += weight * sums[np.ix_(iy0 + a, iy0 + b)]

    def resample(iy: int, ix: int) -> np.ndarray:
        ny, ty, nx, tx = int(ints[iy]), float(fracs[iy]), int(ints[ix]), float(fracs[ix])
        c0, r0 = border + 1 + nx, border + 1 + ny
        xi = (1.0 - tx) * e[:, c0: c0 + wc] + tx * e[:, c0 + 1: c0 + 1 + wc]
        return (1.0 - ty) * xi[r0: r0 + hc] + ty * xi[r0 + 1: r0 + 1 + hc]

    return ssd, resample


def _best_grid_shift(ssd: np.ndarray, resample, ref: np.ndarray, scale: float) -> tuple[int, int]:
    """Index of the smallest SSD, ties to the smallest dy then dx (MATLAB ``find`` order): the
    shifts within the grid's rounding (``1e-10 * scale``) of the minimum are resampled and
    compared exactly."""
    near = np.argwhere(ssd <= ssd.min() + 1e-10 * scale)
    if len(near) == 1:
        return int(near[0][0]), int(near[0][1])
    exact = [float(np.sum((resample(int(i), int(j)) - ref) ** 2)) for i, j in near]
    i, j = near[int(np.argmin(exact))]  # argwhere is row-major: the first minimum wins ties
    return int(i), int(j)


def align_upto_shift(
    estimate,
    ground_truth,
    maxshift: float = 5,
    step: float = 0.25,
    border: int = 15,
    peak: float = 1.0,
) -> AlignResult:
    """Python port of Levin's ``comp_upto_shift.m`` (as used by the Levin/Lai/SelfDeblur scripts).

    * ``estimate`` and ``ground_truth`` must have the same shape ((H, W) or (H, W, C) with
      C in {1, 3}), values in ``[0, peak]``. The reference code requires equal sizes too; when
      the ground truth is larger (Levin's data set) crop it first with :func:`center_crop_to`.
    * The ground truth is cropped by ``border`` px on each side (MATLAB ``I2(16:end-15, ...)``
      for border=15).
    * Every shift ``(dy, dx)`` in the grid ``-maxshift:step:maxshift`` (41 x 41 = 1681 shifts
      by default) is tried: the estimate is resampled with bilinear interpolation (MATLAB
      ``interp2`` 'linear' on the pixel grid) at ``(border + i + dy, border + j + dx)`` for every
      pixel ``(i, j)`` of the crop, so ``aligned`` covers the same window as ``reference``.
      ``maxshift <= border`` is required so that every sample lies inside the estimate (the
      reference crops the estimate by ``border - maxshift``, which is equivalent).
    * The shift minimising the sum of squared differences over the whole grid (exhaustive, no
      coarse-to-fine approximation; evaluated in closed form, :func:`_ssd_grid`) is returned; ties go to the smallest dy, then the smallest
      dx (MATLAB ``find`` order). For colour the SSD sums over channels.
    * ``psnr``/``ssim`` are computed on ``aligned`` vs ``reference`` with ``peak`` (the
      scripts' ``psnr(255*tI1, 255*I2)``/``ssim(...)`` equal peak=1 on [0, 1] data); for
      3-channel images SSIM is computed on the MATLAB Y (:func:`rgb_to_y`) of both crops.

    Shift sign: positive dy/dx means the estimate's content is displaced down/right relative
    to the ground truth (``aligned[i, j] = estimate[border + i + dy, border + j + dx]``).
    """
    est, gt, ms, st, border, p = _align_params(estimate, ground_truth, maxshift, step, border, peak)
    H, W = gt.shape[:2]
    ref = gt[border : H - border, border : W - border].copy()
    shifts = _shift_grid(ms, st)
    ssd, resample = _ssd_grid(est, ref, shifts, border)
    iy, ix = _best_grid_shift(ssd, resample, ref, float(np.sum(est ** 2) + np.sum(ref ** 2)))
    aligned = resample(iy, ix)
    ssd_val = float(np.sum((aligned - ref) ** 2))
    if aligned.ndim == 3 and aligned.shape[2] == 3:
        s = ssim(rgb_to_y(aligned, peak=p), rgb_to_y(ref, peak=p), peak=p)
    else:
        s = ssim(aligned, ref, peak=p)
    return AlignResult(
        aligned=aligned,
        reference=ref,
        shift=(float(shifts[iy]), float(shifts[ix])),
        psnr=psnr(aligned, ref, peak=p),
        ssim=s,
        ssd=ssd_val,
    )


def seam_errors(aligned, reference, grid, image_shape, border: int, band: int = 4) -> tuple[float, float]:
    """RMS error ``(along cell boundaries, inside cells)`` of a P x Q SVOLA grid.

    ``aligned`` / ``reference`` are :class:`AlignResult` crops, i.e. the window
    ``[border : H - border, border : W - border]`` of an ``image_shape = (H, W)`` image. The
    cells' boundaries are the lines midway between neighbouring window centres (centres at
    ``i (H - 1) / (P - 1)``, as :func:`glkm_prior.svola.svola_windows`); "along" means within
    ``band`` px of one, "inside" everything else.
    """
    a = _as_array(aligned, "aligned")
    r = _as_array(reference, "reference")
    _same_shape(a, r, "aligned", "reference")
    P, Q = (int(g) for g in grid)
    H, W = (int(v) for v in image_shape)
    if P < 1 or Q < 1 or a.shape[0] != H - 2 * border or a.shape[1] != W - 2 * border:
        raise InvalidInputError(f"seam_errors: grid {grid!r} / image {image_shape!r} / border {border} do not match "
                                f"crops of shape {a.shape}")
    err = (a - r) ** 2
    if err.ndim == 3:
        err = err.mean(axis=2)
    near = np.zeros(err.shape, dtype=bool)
    rows = np.arange(H)[border: H - border]
    cols = np.arange(W)[border: W - border]
    for i in range(P - 1):
        line = (i + 0.5) * (H - 1) / (P - 1)
        near |= (np.abs(rows - line) <= band)[:, None]
    for j in range(Q - 1):
        line = (j + 0.5) * (W - 1) / (Q - 1)
        near |= (np.abs(cols - line) <= band)[None, :]
    if not near.any() or near.all():
        raise InvalidInputError(f"seam_errors: no boundary or no interior pixels for grid {P}x{Q} on {H}x{W}")
    return float(np.sqrt(err[near].mean())), float(np.sqrt(err[~near].mean()))


def error_ratio(
    deblurred_with_estimate,
    deblurred_with_true,
    ground_truth,
    squared: bool = True,
    **align_kwargs,
) -> float:
    """Levin et al.'s error ratio.

    ``SSD(align(deblurred_with_estimate)) / SSD(align(deblurred_with_true))`` where both SSDs
    are :func:`align_upto_shift` results against ``ground_truth`` (``align_kwargs``: maxshift,
    step, border, peak), i.e. ``comp_upto_shift(xEst, x) / comp_upto_shift(x0Est, x)``.

    ``squared=False`` returns the square root of that ratio, i.e. the ratio of L2 norms that
    SelfDeblur's ``statistic_levin.m`` reports (``norm(tI - gt) / norm(tI_groundk - gt)``).
    If both SSDs are 0 the ratio is 1.0; if only the denominator is 0 it is ``inf``.
    """
    a = align_upto_shift(deblurred_with_estimate, ground_truth, **align_kwargs)
    b = align_upto_shift(deblurred_with_true, ground_truth, **align_kwargs)
    if b.ssd == 0.0:
        return 1.0 if a.ssd == 0.0 else math.inf
    r = a.ssd / b.ssd
    return float(r if squared else math.sqrt(r))


# ----------------------------------------------------------------------------------------------
# kernel metrics
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KernelErrorResult:
    """Result of :func:`kernel_error`.

    rel_l2:  ``||k_est_aligned - k_true||_2 / ||k_true||_2`` at the best integer shift.
    psnr:    kernel PSNR in dB, peak = max of the (normalised) true kernel, MSE = residual
             energy / number of pixels of the common canvas.
    shift:   ``(dy, dx)`` integer shift on the common canvas,
             ``aligned[y, x] = estimate_padded[y + dy, x + dx]``.
    flipped: True if the 180-degree rotated estimate was used (only with allow_flip=True).
    """

    rel_l2: float
    psnr: float
    shift: tuple[int, int]
    flipped: bool


def _pad_center(k: np.ndarray, shape) -> np.ndarray:
    H, W = shape
    h, w = k.shape
    out = np.zeros((H, W))
    top, left = (H - h) // 2, (W - w) // 2
    out[top : top + h, left : left + w] = k
    return out


def _shift_residual(e: np.ndarray, t: np.ndarray, dy: int, dx: int) -> float:
    """``||S(e) - t||^2`` over the infinite plane, ``S(e)[y, x] = e[y + dy, x + dx]`` (zeros
    outside), for same-shape canvases e and t (|dy| < H, |dx| < W). Computed directly on a
    3H x 3W canvas, so an exact shifted copy gives exactly 0."""
    H, W = t.shape
    big_t = np.zeros((3 * H, 3 * W))
    big_e = np.zeros((3 * H, 3 * W))
    big_t[H : 2 * H, W : 2 * W] = t
    big_e[H - dy : 2 * H - dy, W - dx : 2 * W - dx] = e
    d = big_e - big_t
    return float(np.sum(d * d))


def _best_shift(e: np.ndarray, t: np.ndarray):
    """Exhaustive search over all integer shifts with overlap; returns (residual, (dy, dx))."""
    H, W = t.shape
    fh, fw = 2 * H - 1, 2 * W - 1
    # corr[dy, dx] = sum_y t[y] e[y + dy]  (circular indices, no aliasing at this size)
    corr = np.fft.irfft2(np.conj(np.fft.rfft2(t, (fh, fw))) * np.fft.rfft2(e, (fh, fw)), (fh, fw))
    energy = float(np.sum(e * e) + np.sum(t * t))
    approx = energy - 2.0 * corr
    tol = 1e-9 * energy + 1e-300
    cand = np.argwhere(approx <= approx.min() + tol)
    best = None
    for cy, cx in cand:
        dy = int(cy) if cy < H else int(cy) - fh
        dx = int(cx) if cx < W else int(cx) - fw
        res = _shift_residual(e, t, dy, dx)
        key = (res, abs(dy) + abs(dx), dy, dx)
        if best is None or key < best[0]:
            best = (key, res, (dy, dx))
    return best[1], best[2]


def kernel_error(estimate, true, allow_flip: bool = False) -> KernelErrorResult:
    """Compare an estimated blur kernel with the true one, up to an integer shift.

    * Both kernels must be 2-D, finite, with a positive sum; both are normalised to sum 1
      (a no-op for a true kernel that already sums to 1) and zero-padded, centred, to a common
      canvas ``(max(h_e, h_t), max(w_e, w_t))`` (the window starts at ``(H - h) // 2``,
      ``(W - w) // 2``).
    * Every integer shift of the estimate with some overlap is tried; the residual is counted on
      the infinite plane (mass shifted off the canvas counts as error). The shift minimising
      ``||S(k_est) - k_true||_2`` is kept (ties: smallest ``|dy| + |dx|``, then dy, dx).
    * ``rel_l2 = ||S(k_est) - k_true||_2 / ||k_true||_2``;
      ``psnr = 10 log10(max(k_true)^2 / (residual^2 / (H * W)))`` on the common canvas (inf if
      the residual is 0).
    * ``allow_flip=True`` also tries the 180-degree rotated estimate (``k[::-1, ::-1]``) and
      keeps it if its rel_l2 is strictly smaller; ``flipped`` reports which was used.
    """
    e = _as_array(estimate, "estimate", ndims=(2,))
    t = _as_array(true, "true", ndims=(2,))
    se, st = float(e.sum()), float(t.sum())
    if not se > 0:
        raise InvalidInputError(f"estimate: kernel sum must be positive to normalise, got {se}")
    if not st > 0:
        raise InvalidInputError(f"true: kernel sum must be positive to normalise, got {st}")
    e = e / se
    t = t / st
    shape = (max(e.shape[0], t.shape[0]), max(e.shape[1], t.shape[1]))
    tp = _pad_center(t, shape)
    t_norm = float(np.sqrt(np.sum(tp * tp)))
    candidates = [(False, e)]
    if allow_flip:
        candidates.append((True, e[::-1, ::-1]))
    best = None
    for flipped, k in candidates:
        res, shift = _best_shift(_pad_center(k, shape), tp)
        rel = math.sqrt(res) / t_norm
        if best is None or rel < best[0]:
            best = (rel, res, shift, flipped)
    rel, res, shift, flipped = best
    mse = res / (shape[0] * shape[1])
    peak = float(tp.max())
    kpsnr = math.inf if mse == 0.0 else float(10.0 * np.log10(peak * peak / mse))
    return KernelErrorResult(rel_l2=float(rel), psnr=kpsnr, shift=shift, flipped=flipped)


# ----------------------------------------------------------------------------------------------
# LPIPS availability (no network access, never fake values)
# ----------------------------------------------------------------------------------------------

_LPIPS_BACKBONES = {
    "alex": "alexnet-*.pth",
    "vgg": "vgg16-*.pth",
    "squeeze": "squeezenet1_1-*.pth",
}


def _torch_hub_dir() -> Path:
    try:
        import torch.hub

        return Path(torch.hub.get_dir())
    except Exception:  # pragma: no cover - torch is a dependency, but be defensive
        home = os.environ.get("TORCH_HOME") or os.path.join(
            os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch"
        )
        return Path(home) / "hub"


def lpips_available(net: str = "alex") -> tuple[bool, str]:
    """Whether LPIPS can be computed offline: ``(ok, one-line reason)``.

    True only if the ``lpips`` and ``torchvision`` packages are installed, the package's
    linear-layer weights ``lpips/weights/v0.1/<net>.pth`` exist and the ImageNet backbone
    weights are already in the torch hub cache (``<torch hub dir>/checkpoints``). Nothing is
    imported from lpips and nothing is downloaded. This module never returns made-up LPIPS
    values.
    """
    if net not in _LPIPS_BACKBONES:
        return False, f"unknown LPIPS network {net!r} (expected one of {sorted(_LPIPS_BACKBONES)})"
    try:
        spec = importlib.util.find_spec("lpips")
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None:
        return False, "the 'lpips' package is not installed"
    try:
        tv = importlib.util.find_spec("torchvision")
    except (ImportError, ValueError):
        tv = None
    if tv is None:
        return False, "the 'torchvision' package (needed by lpips) is not installed"
    lin = Path(spec.origin).parent / "weights" / "v0.1" / f"{net}.pth"
    if not lin.is_file():
        return False, f"lpips linear-layer weights not found at {lin}"
    ckpt_dir = _torch_hub_dir() / "checkpoints"
    hits = sorted(ckpt_dir.glob(_LPIPS_BACKBONES[net])) if ckpt_dir.is_dir() else []
    if not hits:
        return False, (
            f"{net} backbone weights ({_LPIPS_BACKBONES[net]}) not in {ckpt_dir}; "
            "they would have to be downloaded"
        )
    return True, f"lpips ({net}) and its backbone weights {hits[0].name} are available locally"
