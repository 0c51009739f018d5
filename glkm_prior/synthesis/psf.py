"""Rendering trajectories into PSFs (step 4 of :mod:`glkm_prior.synthesis`): scaling to the drawn
extent, re-sampling to >= 2 samples per pixel, centring on the centroid, bilinear splatting."""

from __future__ import annotations

import numpy as np

from .families import KernelFamily
from .trajectory import simulate_paths

__all__ = ["render_chunk"]

#: Largest distance, in pixels, between consecutive splatted samples (>= 2 per px).
_MAX_SAMPLE_SPACING = 0.5
#: Upper bound of the re-sampling factor (a safety net; typical factors are 1-3).
_MAX_UPSAMPLE = 64


def _splat(xs: np.ndarray, ys: np.ndarray, kid: np.ndarray, n_samp: np.ndarray, b: int, k: int,
           total: int) -> np.ndarray:
    """Bilinear splat of the whole chunk with one bincount: the ``total`` samples ``(xs, ys)``
    (pixel units, inside the 1-px outer ring) of kernel ``kid``, each of weight
    ``1 / n_samp[kid]``; returns the ``(b, k, k)`` kernels normalised to sum 1."""
    ix = xs.astype(np.int64)  # == floor, xs >= 1
    iy = ys.astype(np.int64)
    fx = xs - ix
    fy = ys - iy
    w = (1.0 / n_samp)[kid]
    base = kid * (k * k) + iy * k + ix
    idx = (base[:, None] + np.array([0, 1, k, k + 1], dtype=np.int64)).ravel()
    wy0 = (1.0 - fy) * w
    wy1 = fy * w
    vals = np.empty((total, 4), dtype=np.float64)
    vals[:, 0] = wy0 * (1.0 - fx)
    vals[:, 1] = wy0 * fx
    vals[:, 2] = wy1 * (1.0 - fx)
    vals[:, 3] = wy1 * fx
    acc = np.bincount(idx, weights=vals.ravel(), minlength=b * k * k).reshape(b, k, k)
    acc /= acc.sum(axis=(1, 2), keepdims=True)
    return acc.astype(np.float32)


def render_chunk(rng: np.random.Generator, fam: KernelFamily, b: int, k: int) -> np.ndarray:
    """``b`` kernels of side ``k`` of family ``fam``: a ``(b, k, k)`` float32 array (module doc)."""
    pos, n_rec = simulate_paths(rng, fam, b)
    n = fam.n_steps
    rec = np.arange(n + 1)[None, :] <= n_rec[:, None]  # (b, n+1) recorded positions

    # Extent drawn per kernel; the continuous bounding box side is extent - 1.
    hi_e = min(fam.max_extent, k - 2)
    lo_e = min(fam.min_extent, hi_e)
    extent = lo_e + (hi_e - lo_e) * rng.random(b)

    xr, yi = pos.real, pos.imag
    width = np.where(rec, xr, -np.inf).max(1) - np.where(rec, xr, np.inf).min(1)
    height = np.where(rec, yi, -np.inf).max(1) - np.where(rec, yi, np.inf).min(1)
    scale = (extent - 1.0) / np.maximum(np.maximum(width, height), 1e-12)

    # Pixel-unit positions relative to the start.
    px = ((xr - xr[:, :1]) * scale[:, None]).astype(np.float32)
    py = ((yi - yi[:, :1]) * scale[:, None]).astype(np.float32)

    # Per-kernel re-sampling factor so that consecutive samples (uniform in time) are at
    # most _MAX_SAMPLE_SPACING px apart: m - 1 points are interpolated in every step.
    seg = np.hypot(np.diff(px, axis=1), np.diff(py, axis=1))
    seg = np.where(rec[:, 1:], seg, 0.0)
    m = np.ceil(seg.max(1) / _MAX_SAMPLE_SPACING).astype(np.int64)
    np.clip(m, 1, _MAX_UPSAMPLE, out=m)

    # Flat, ragged list of the recorded samples of all kernels of the chunk.
    n_samp = n_rec * m + 1
    starts = np.zeros(b, dtype=np.int64)
    np.cumsum(n_samp[:-1], out=starts[1:])
    total = int(starts[-1] + n_samp[-1])
    kid = np.repeat(np.arange(b, dtype=np.int64), n_samp)
    j = np.arange(total, dtype=np.int64) - starts[kid]
    mk = m[kid]
    t = j // mk
    frac = ((j - t * mk) / mk).astype(np.float32)
    g = kid * (n + 1) + t
    g1 = np.minimum(g + 1, b * (n + 1) - 1)  # frac == 0 wherever g + 1 leaves the row
    pxf, pyf = px.ravel(), py.ravel()
    x0 = pxf[g]
    y0 = pyf[g]
    xs = x0 + frac * (pxf[g1] - x0)
    ys = y0 + frac * (pyf[g1] - y0)

    # Centre on the weighted centroid (exact: bilinear splatting preserves it), then
    # shrink about it if needed so the 1-px outer ring stays empty.
    cx = np.add.reduceat(xs, starts, dtype=np.float64) / n_samp
    cy = np.add.reduceat(ys, starts, dtype=np.float64) / n_samp
    xs -= cx.astype(np.float32)[kid]
    ys -= cy.astype(np.float32)[kid]
    off = np.maximum(
        np.maximum.reduceat(np.abs(xs), starts), np.maximum.reduceat(np.abs(ys), starts)
    )
    limit = (k // 2 - 1) - 1e-3
    shrink = np.minimum(1.0, limit / np.maximum(off, 1e-12)).astype(np.float32)
    c = np.float32(k // 2)
    sk = shrink[kid]
    xs *= sk
    ys *= sk
    xs += c
    ys += c
    np.clip(xs, 1.0, k - 2.0 - 1e-3, out=xs)  # no-op up to rounding; guards indices
    np.clip(ys, 1.0, k - 2.0 - 1e-3, out=ys)

    return _splat(xs, ys, kid, n_samp, b, k, total)
