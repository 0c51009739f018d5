"""Levin's ``comp_upto_shift.m``: sub-pixel alignment of an estimate to the ground truth before
scoring (:func:`align_upto_shift`), and the errors read from aligned crops (:func:`error_ratio`,
:func:`seam_errors`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidInputError
from .quality import SSIM_WIN, _as_array, _check_peak, _same_shape, psnr, rgb_to_y, ssim


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
