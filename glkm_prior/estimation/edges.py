"""Edge selection for the kernel step (Cho & Lee 2009, as used by Pan et al.'s L0 estimators).

The kernel is fitted only on the strong gradients of the intermediate sharp image. Gradients
are forward differences in 'valid' geometry on a common ``(h - 1, w - 1)`` grid::

    px[i, j] = x[i, j + 1] - x[i, j],   py[i, j] = x[i + 1, j] - x[i, j]

and the selection threshold applies to the squared magnitude ``px^2 + py^2``. The first
threshold is chosen on the coarsest blurry image so that each of four orientation bins of
``atan(py / px)`` -- [0, pi/4), [pi/4, pi/2), [-pi/4, 0), [-pi/2, -pi/4) -- keeps at least
``per_bin * K`` pixels (``per_bin`` 20, at least 10 pixels); every later selection divides the
threshold by ``decay`` (1.1), so more and more edges take part as the estimate sharpens.

Optional usefulness mask (Xu & Jia 2010's r-map): on the blurry image's gradients ``g``,
``r = |sum_N g| / (sum_N |g| + eps |N|)`` over an ``h`` x ``h`` window ``N``. Structures narrower
than the blur give gradients of both signs within a window as wide as the kernel (``r`` near 0);
a step edge wider than the blur keeps one sign (``r`` near 1). Edges with ``r <= tau`` take no
part in the selection (:func:`usefulness`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def valid_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward differences of ``x`` (..., h, w), both cropped to (..., h - 1, w - 1)."""
    base = x[..., :-1, :-1]
    return x[..., :-1, 1:] - base, x[..., 1:, :-1] - base


def _box_sum(a: torch.Tensor, h: int) -> torch.Tensor:
    """Sums of ``a`` (..., m, n) over the ``h`` x ``h`` window centred on each pixel (zeros outside)."""
    r = h // 2
    c = F.pad(a, (r + 1, r, r + 1, r)).cumsum(-1).cumsum(-2)
    return c[..., h:, h:] - c[..., :-h, h:] - c[..., h:, :-h] + c[..., :-h, :-h]


def usefulness(y: torch.Tensor, window: int, eps: float = 2e-3) -> torch.Tensor:
    """Xu & Jia's ``r`` (module doc) of the blurry ``y`` (..., h, w) on the valid-gradient grid
    (..., h - 1, w - 1), in [0, 1]; ``window`` odd, ``eps`` per pixel in the units of ``y``."""
    gx, gy = valid_gradients(y.double())
    h = max(int(window) // 2 * 2 + 1, 3)
    coherent = torch.sqrt(_box_sum(gx, h).square() + _box_sum(gy, h).square())
    total = _box_sum(torch.sqrt(gx.square() + gy.square()), h) + eps * h * h
    return (coherent / total).to(y.dtype)


def initial_threshold(y: torch.Tensor, kernel_size: int, per_bin: float = 20.0, mask=None) -> float:
    """Largest squared-gradient threshold that keeps ``max(per_bin * kernel_size, 10)`` pixels
    in every orientation bin of ``y`` (module doc); 0.0 (keep all) when a bin has fewer.
    ``mask`` (valid-gradient grid), if given, zeroes the gradients it excludes first."""
    px, py = valid_gradients(y.double())
    if mask is not None:
        px, py = px * mask, py * mask
    magnitude = (px.square() + py.square()).flatten()
    with torch.no_grad():
        angle = torch.atan(py / px).flatten()  # NaN where px = py = 0: in no bin
    quarter = math.pi / 4
    bins = [(0.0, quarter), (quarter, 2 * quarter), (-quarter, 0.0), (-2 * quarter, -quarter)]
    needed = max(int(math.ceil(per_bin * kernel_size)), 10)
    threshold = math.inf
    for lo, hi in bins:
        values = magnitude[(angle >= lo) & (angle < hi)]
        if values.numel() < needed:
            return 0.0
        threshold = min(threshold, float(torch.topk(values, needed).values[-1]))
    return threshold


def select_edges(x: torch.Tensor, threshold: float, mask=None) -> tuple[torch.Tensor, torch.Tensor, float]:
    """``(px, py, used)``: the gradients of ``x`` with every pixel whose squared magnitude is
    below the threshold set to zero. When no pixel would survive, the threshold is lowered by
    factors of 0.81 until one does; ``used`` is the threshold applied. ``mask`` (same grid as
    the gradients), if given, zeroes the gradients it excludes first."""
    px, py = valid_gradients(x)
    if mask is not None:
        px, py = px * mask, py * mask
    magnitude = px.square() + py.square()
    peak = float(magnitude.max())
    used = float(threshold)
    if peak <= 0:
        return px, py, used
    while used > peak:
        used *= 0.81
    keep = magnitude >= used
    return px * keep, py * keep, used
