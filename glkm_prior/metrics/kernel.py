"""Blur-kernel error up to an integer shift (:func:`kernel_error`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidInputError
from .quality import _as_array


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
