"""Coarse-to-fine driver of the classical L0 blind kernel estimator (Pan et al. 2014/2016 recipe).

Pyramid: kernel sizes ``ceil(K * r^i)`` made odd and image scales ``r^i`` for ``r = sqrt(1/2)``,
``i = n, ..., 0`` with ``n = max(floor(log(min_kernel / K) / log r), 0)`` (so the coarsest kernel
is about ``min_kernel`` = 5 px). At the coarsest level the kernel starts as a two-pixel
horizontal segment at the centre and the edge-selection threshold is set on the blurry image
(edges.py); each finer level starts from the previous kernel upsampled by ``1 / r``.

At every level, ``iters`` (5) alternations of

1. the sharp-edge image ``x = argmin ||k * x - y||^2 + lam ||grad x||_0`` by half-quadratic
   splitting, restarted from the blurry image each time (:func:`l0_image_step`);
2. edge selection on ``grad x`` (threshold divided by 1.1 per call, carried across levels);
3. the least-squares kernel in the gradient domain with a ridge (kernel_solve.py);
4. pruning: 5 % cut, 8-connected components below 0.1 of the mass removed (pruning.py);
5. ``lam <- max(lam / 1.1, lam_min)`` (carried across levels);

then the kernel is re-centred on its centroid (whole pixels). The final kernel loses entries
below ``max / 20``. Optional ``gamma``: the estimation sees ``y ** gamma``.

Kernel size: the estimation runs on a ``max(K, canvas)`` px grid (``canvas`` 31 by default; Pan et
al. estimate Levin's 13-27 px kernels on 25-31 px grids) and returns the smallest odd square
about the centre that holds the estimate's support, at least K px (:func:`trim_kernel`): a
tight K lets no room for a kernel whose centroid is off its geometric centre. Kernels larger
than ``canvas`` get a ``ceil(canvas_scale * K)`` px grid (1.5 by default; :func:`canvas_size`):
the re-centring on the centroid moves a real kernel's support off a K px grid (Lai et al.'s
51 and 55 px kernels need 55 and 59 px about their centroids) and the estimate collapses.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F

from glkm_prior.errors import InvalidInputError, with_defaults
from glkm_prior.kernel_estimation import l0_image_step, resize_image
from glkm_prior.physics import center_kernel, fit_kernel

from .edges import initial_threshold, select_edges, usefulness, valid_gradients
from .kernel_solve import solve_kernel
from .pruning import final_cut, prune_kernel

L0_DEFAULTS = {
    "iters": 5,             # alternations per pyramid level
    "lam_grad": 4e-3,       # L0 gradient weight of the image step at the coarsest level
    "lam_decay": 1.1,       # lam /= lam_decay after every alternation ...
    "lam_min": 1e-4,        # ... down to lam_min (carried across levels)
    "ratio": math.sqrt(0.5),
    "min_kernel": 5,        # kernel size at the coarsest level (about)
    "edge_select": True,    # fit the kernel on the selected strong edges only
    "edge_per_bin": 20.0,   # first threshold keeps >= edge_per_bin * K pixels per orientation bin
    "edge_decay": 1.1,      # threshold /= edge_decay after every selection
    "ridge": 2.0,           # ||k||^2 weight of the kernel step (unnormalised data)
    "cg_iters": 20,
    "cg_tol": 1e-5,
    "prune": True,          # per-iteration 5 % cut and small-component removal
    "rel_cut": 0.05,
    "min_mass": 0.1,
    "center": True,         # re-centre the kernel on its centroid after every level
    "final_divisor": 20.0,  # final cut at max / final_divisor (0: none)
    "gamma": 1.0,           # the estimation sees y ** gamma
    "margin": 0.0,          # the kernel fit leaves out round(margin * K) px of y along each side
    "canvas": 31,           # estimate on a max(K, canvas) px canvas (capped by the image), then trim_kernel:
                            # Levin (SelfDeblur sizes 11-27 px) 30.78 dB with 0 (the given size), 32.17 with 31
    "max_scale": 1.0,       # the finest image scale estimated at (finer levels skipped, the kernel magnified
                            # to the canvas): Lai's 51-75 px dev images 21.30 dB with 1, 20.76 with 0.71, 19.91 with 0.5
    "rmap_window": 0.0,     # > 0: Xu & Jia's usefulness mask (edges.py) over windows of rmap_window x the level's
                            # kernel size; edges with r <= rmap_tau take no part in the selection (0: no mask).
                            # Lai dev. subset: 22.56 dB without, 20.52 (window 1, tau 0.3), 16.38 (2, 0.3),
                            # 21.90 (0.3, 0.3), 22.19 (1, 0.1); it helps manmade_02 (31 px: 20.9 -> 21.5-27.3 dB)
    "rmap_tau": 0.3,
    "canvas_scale": 1.5,    # K > canvas > 0: a ceil(canvas_scale * K) px canvas (K <= 31, e.g. Levin: unchanged);
                            # Lai dev. subset (12 images, 31-75 px): 19.72 dB with 1.0, 21.07 with 1.5
}


def pyramid_levels(kernel_size: int, ratio: float, min_kernel: int) -> list[tuple[float, int]]:
    """``[(image scale, kernel size)]`` coarse to fine (module doc)."""
    K = int(kernel_size)
    n = max(int(math.floor(math.log(min_kernel / K) / math.log(ratio))), 0) if K > min_kernel else 0
    levels = []
    for i in reversed(range(n + 1)):
        size = int(math.ceil(K * ratio ** i))
        size += 1 - size % 2
        levels.append((ratio ** i, min(size, K)))
    return levels


def canvas_size(kernel_size: int, canvas: int, canvas_scale: float, image_shape) -> int:
    """Side (odd) of the grid the kernel is estimated on: ``max(K, canvas)``, or ``ceil(canvas_scale
    * K)`` for ``K > canvas > 0`` (``canvas`` 0: K itself); at most about half the
    image's shorter side, never below K."""
    K, canvas = int(kernel_size), int(canvas)
    want = canvas
    if canvas > 0 and K > canvas:
        want = int(math.ceil(float(canvas_scale) * K))
    want = min(want // 2 * 2 + 1, (min(image_shape[-2:]) // 2 - 1) // 2 * 2 + 1)
    return max(K, want)


def initial_kernel(size: int) -> torch.Tensor:
    """Two horizontal pixels of weight 1/2 at the centre row (centre and its right neighbour)."""
    k = torch.zeros(1, 1, size, size)
    c = size // 2
    k[0, 0, c, c: min(c + 2, size)] = 1.0
    return k / k.sum()


def upscale_kernel(k: torch.Tensor, factor: float, size: int) -> torch.Tensor:
    """Kernel (1, 1, k, k) magnified by ``factor`` about its centre, sampled bilinearly on a
    (size, size) grid (centre on centre, zeros outside), clamped and renormalised."""
    old = k.shape[-1]
    idx = torch.arange(size, dtype=torch.float64)
    src = (old // 2) + (idx - size // 2) / factor  # source pixel coordinates
    g = (2 * src / (old - 1) - 1) if old > 1 else torch.zeros_like(src)
    grid = torch.stack(torch.meshgrid(g, g, indexing="ij")[::-1], dim=-1)[None].to(k.dtype)
    out = F.grid_sample(k, grid, mode="bilinear", padding_mode="zeros", align_corners=True).clamp_min(0)
    total = out.sum()
    return out / total if total > 0 else initial_kernel(size).to(k.dtype)


def trim_kernel(k: torch.Tensor, size: int) -> torch.Tensor:
    """The kernel (1, 1, n, n) cut to the smallest odd square about its centre index that holds
    all its non-zero entries, but at least ``size`` px (nothing is lost: only zeros go)."""
    n = k.shape[-1]
    rows, cols = torch.nonzero(k[0, 0], as_tuple=True)
    c = n // 2
    reach = int(max((rows - c).abs().max(), (cols - c).abs().max())) if rows.numel() else 0
    side = min(n, max(int(size), 2 * reach + 1))
    return fit_kernel(k, side) if side != n else k


def usefulness_mask(ys: torch.Tensor, K: int, cfg: dict, pad: int = 0):
    """Xu & Jia's usefulness mask (edges.py) of the blurry level image on the valid-gradient grid of
    ``ys`` extended by ``pad`` px on each side (replicated), or None when ``rmap_window`` is 0."""
    if not cfg["rmap_window"] > 0:
        return None
    if pad:
        ys = F.pad(ys, (pad, pad, pad, pad), mode="replicate")
    return (usefulness(ys, int(round(cfg["rmap_window"] * K))) > cfg["rmap_tau"]).to(ys.dtype)


def _level(ys, k, state, cfg, trace, bar):
    """The ``iters`` alternations of one pyramid level; returns the level's kernel."""
    K = k.shape[-1]
    m = int(round(cfg["margin"] * K)) if min(ys.shape[-2:]) > 4 * K else 0
    bx, by = valid_gradients(ys[..., m: ys.shape[-2] - m, m: ys.shape[-1] - m])
    mask = usefulness_mask(ys, K, cfg, pad=K // 2)  # on the grid of the gradients of x_full
    if mask is not None:
        mask = mask[..., m: mask.shape[-2] - m, m: mask.shape[-1] - m]
    for _ in range(cfg["iters"]):
        x = l0_image_step(ys, k, state["lam"])
        x = x[..., m: x.shape[-2] - m, m: x.shape[-1] - m]
        if cfg["edge_select"]:
            px, py, used = select_edges(x, state["threshold"], mask)
            state["threshold"] = used / cfg["edge_decay"]
        else:
            px, py = valid_gradients(x)
        solved = solve_kernel([px, py], [bx, by], K, ridge=cfg["ridge"], iters=cfg["cg_iters"], tol=cfg["cg_tol"]).float()
        if float(solved.max()) > 0:  # else (no positive entry: nothing to fit) the kernel stays
            k = prune_kernel(solved, cfg["rel_cut"], cfg["min_mass"]) if cfg["prune"] else final_cut(solved, 0)
        trace.append({"kernel_size": K, "lam": state["lam"], "edge_threshold": state["threshold"]})
        state["lam"] = max(state["lam"] / cfg["lam_decay"], cfg["lam_min"])
        if bar is not None:
            bar.update(1)
    return center_kernel(k) if cfg["center"] else k


def resolve_l0_options(options: dict, iters=None) -> dict:
    """:data:`L0_DEFAULTS` updated with ``options`` (unknown keys raise) and ``iters``."""
    cfg = with_defaults(L0_DEFAULTS, options, "the L0 estimator")
    if iters is not None:
        cfg["iters"] = int(iters)
    if cfg["iters"] < 0 or not cfg["lam_grad"] > 0 or not 0 < cfg["ratio"] < 1 or cfg["gamma"] <= 0 \
            or not cfg["canvas_scale"] >= 1 or not 0 < cfg["max_scale"] <= 1:
        raise InvalidInputError(f"invalid L0 estimator settings: iters {cfg['iters']}, lam_grad {cfg['lam_grad']}, "
                                f"ratio {cfg['ratio']}, gamma {cfg['gamma']}, canvas_scale {cfg['canvas_scale']}, "
                                f"max_scale {cfg['max_scale']}")
    return cfg


def estimate_kernel_l0(y: torch.Tensor, kernel_size: int, *, iters=None, progress=False, level_hook=None,
                       **options) -> dict:
    """Blind kernel estimate (1, 1, K, K) of a luma image ``y`` (1, 1, H, W) in [0, 1] (module doc).
    ``options`` override :data:`L0_DEFAULTS`; ``level_hook(kernel, level, n_levels)``, if given, maps
    the kernel at the end of every level (e.g. a projection onto a learned prior). Returns ``{"kernel", "canvas_kernel", "estimation_image",
    "info"}`` (the kernel before the crop to ``kernel_size`` and the image the estimation saw)."""
    start = time.perf_counter()
    cfg = resolve_l0_options(options, iters)
    K = int(kernel_size)
    if y.dim() != 4 or y.shape[:2] != (1, 1):
        raise InvalidInputError(f"expected a (1, 1, H, W) luma image, got {tuple(y.shape)}")
    if K < 3 or K % 2 == 0 or min(y.shape[-2:]) < 2 * K:
        raise InvalidInputError(f"kernel size must be odd, >= 3 and at most half the image side; got {K} "
                                f"for an image {tuple(y.shape[-2:])}")
    y = y.float().clamp(0, 1) ** cfg["gamma"]
    K_out, K = K, canvas_size(K, cfg["canvas"], cfg["canvas_scale"], y.shape)
    levels = [(s, k) for s, k in pyramid_levels(K, cfg["ratio"], cfg["min_kernel"])
              if min(round(y.shape[-2] * s), round(y.shape[-1] * s)) >= 2 * k and s <= cfg["max_scale"] + 1e-9]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(levels) * cfg["iters"], desc="l0 kernel estimation", leave=False)
    state = {"lam": cfg["lam_grad"], "threshold": 0.0}
    trace: list[dict] = []
    info_levels: list[int] = []
    k = None
    for scale, size in levels:
        ys = resize_image(y, scale)
        if k is None:
            k = initial_kernel(size)
            state["threshold"] = initial_threshold(ys, size, cfg["edge_per_bin"], usefulness_mask(ys, size, cfg))
        else:
            k = upscale_kernel(k, 1 / cfg["ratio"], size)
        k = _level(ys, k, state, cfg, trace, bar)
        if level_hook is not None:
            k = level_hook(k, len(info_levels), len(levels))
        info_levels.append(size)
    if bar is not None:
        bar.close()
    if k is None or k.shape[-1] != K:
        k = initial_kernel(K) if k is None else upscale_kernel(k, 1 / levels[-1][0], K)
    canvas_kernel = final_cut(k, cfg["final_divisor"])
    kernel = trim_kernel(canvas_kernel, K_out)
    info = {"levels": [size for _, size in levels], "canvas": K, "iters": cfg["iters"], "trace": trace,
            "final_lam": state["lam"], "final_threshold": state["threshold"],
            "seconds_kernel": time.perf_counter() - start}
    return {"kernel": kernel, "canvas_kernel": canvas_kernel, "estimation_image": y, "info": info}
