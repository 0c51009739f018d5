"""Non-uniform blind deblurring on an SVOLA patch grid, global to local (methods ``svola-fast``
and ``svola-dip``; ``glkm deblur --nonuniform``).

Forward model: :mod:`glkm_prior.svola` (P x Q Bartlett windows on the sharp image, applied
before each cell's blur, cells summed). The adapter follows the GLKM paper:

1. **Global.** A short uniform run of the image prior (``fast`` or ``dip``) with the requested
   kernel branch gives one kernel for the whole image (and, for GLKM, its latent w).
2. **Local.** One kernel branch per grid cell, built through the ``glkm_kernel_branches`` hook
   (:class:`PatchKernels`). GLKM: every cell's latent starts at the global w (the global
   kernel); any other branch (native) starts from its own random initialisation (seed + 1 +
   cell index), as a baseline whose cells know nothing of each other. All cells are then
   optimised together with the image prior:

   * ``fast``: on the finest pyramid level(s), a few alternations of each cell's L0 image step
     on its own estimation window (``window_scale`` cell spacings around its centre) and Adam
     steps on all cells' parameters, the data terms evaluated in one batched FFT
     (:func:`glkm_prior.estimation.branch_pyramid.estimate_kernels`); GLKM latents are pulled
     towards the global latent (``anchor``). Then :func:`svola_deconvolve`: each cell's window support is deconvolved with its kernel
     (hyper-Laplacian, as ``fast``) and the results are blended with the same windows (they sum
     to one, so there is no seam by construction);
   * ``dip``: SelfDeblur's loop with the SVOLA forward model in place of the uniform blur; the
     image network starts from the global stage's weights.

The result holds ``kernel`` (the global kernel, 1 x 1 x K x K), ``kernels`` (P*Q, 1, K, K),
row-major over the grid, and ``grid`` (P, Q).
"""

from __future__ import annotations

import time

import torch

from glkm_prior.branch import KernelBranch, check_blurry
from glkm_prior.errors import InvalidInputError
from glkm_prior.estimation.branch_pyramid import LOOP as FAST_LOOP
from glkm_prior.estimation.branch_pyramid import branch_prior, estimate_kernels, resolve_options
from glkm_prior.kernel_estimation import informative_crop, resize_image
from glkm_prior.context import as_context
from glkm_prior.options import options_dataclass
from glkm_prior.plugins import branch_uses_prior, hookimpl, make_kernel_branch
from glkm_prior.prior import KernelPrior, to_luma
from glkm_prior.svola import parse_grid, svola_blur, svola_windows, window_centres, window_profiles

from .glkm_branch import GLKMKernelBranch
from .dip import DIPConfig, SelfDeblur, config_options, make_config
from .fast import FastOptions, check_fast_options, run_fast
from .nonblind import noise_adapted_lam
from .nonblind import nonblind as nonblind_deconv

DEFAULT_GRID = (3, 3)
# Cell-stage settings, chosen on the first 6 images of the non-uniform benchmark (mean PSNR of
# `svola-fast` with GLKM; uniform `fast` there: 26.73 dB): window 1.5 / levels 1 / iters 4 / no
# anchor 26.23; 2 finest levels 26.03; the full pyramid per cell 24.84; anchor 1.0 26.72;
# window 2.0 26.89; window 2.0 + anchor 1.0 26.84 (16.1 s); the same with 2 alternations 26.79
# (13.9 s, the defaults). More freedom per cell drifts further from the truth.
#: Side of a cell's estimation window, in cell spacings (1 = the cell alone; 2 = its whole window support).
WINDOW_SCALE = 2.0
#: Finest pyramid levels the cells refine (from the global kernel) and their alternations there.
CELL_LEVELS = 1
CELL_ITERS = 2
#: GLKM cells: weight of the pull of each cell's latent towards the global one,
#: ``anchor * mean((w_p - w_global)^2)`` summed over cells (0: independent cells).
ANCHOR = 1.0


class PatchKernels(KernelBranch):
    """N kernel branches side by side, one per grid cell: ``forward()`` -> (N, 1, K, K);
    ``parameters()`` are all of theirs (each cell's kernel depends on its own branch only)."""

    def __init__(self, branches: list[KernelBranch]):
        if not branches:
            raise InvalidInputError("PatchKernels needs at least one branch")
        super().__init__(branches[0].kernel_size)
        self.branches = torch.nn.ModuleList(branches)
        self.name = f"{getattr(branches[0], 'name', 'branch')}x{len(branches)}"
        self.default_lr = branches[0].default_lr
        self.loop_lr = branches[0].loop_lr
        self.uses_prior = branches[0].uses_prior

    def forward(self) -> torch.Tensor:
        first = self.branches[0]
        prior = getattr(first, "prior", None)
        if isinstance(first, GLKMKernelBranch) and all(type(b) is type(first) and b.prior is prior for b in self.branches):
            # one batched generator pass for all cells (same kernels as one pass per cell)
            return prior.kernel(torch.cat([b.w for b in self.branches]), self.kernel_size)
        return torch.cat([b().reshape(1, 1, self.kernel_size, self.kernel_size) for b in self.branches])

    @torch.no_grad()
    def project_(self, step: int) -> None:
        """Every cell's own per-step projection."""
        for b in self.branches:
            b.project_(step)


def make_patch_kernels(kernel_branch: str, blurry, kernel_size: int, cells: int, *, context=None, seed=0,
                       global_branch=None, **options) -> PatchKernels:
    """One branch per cell through the hook. For a branch with a learned prior (``uses_prior``:
    GLKM) the ``global_branch`` hands its latent w to every cell (global-to-local); other
    branches start from their own seeds (seed + 1 + n)."""
    pm = as_context(context).plugin_manager()
    w = getattr(global_branch, "w", None) if branch_uses_prior(kernel_branch, pm) else None
    branches = []
    for n in range(cells):
        opts = dict(options)
        if w is not None:
            opts["init_latent"] = w.detach()
        branches.append(make_kernel_branch(kernel_branch, blurry, kernel_size, pm=pm, seed=seed + 1 + n, **opts))
    return PatchKernels(branches)


def estimation_windows(height: int, width: int, grid, scale: float = WINDOW_SCALE) -> list[tuple[int, int, int, int]]:
    """Per cell (row-major), the (top, left, h, w) window its kernel is estimated on: ``scale``
    cell spacings around the cell's centre, clipped to the image."""
    P, Q = grid
    sp_r = (height - 1) / (P - 1) if P > 1 else height
    sp_c = (width - 1) / (Q - 1) if Q > 1 else width
    boxes = []
    for cr in window_centres(height, P):
        for cc in window_centres(width, Q):
            t, b = max(0, round(cr - scale * sp_r / 2)), min(height, round(cr + scale * sp_r / 2) + 1)
            l, r = max(0, round(cc - scale * sp_c / 2)), min(width, round(cc + scale * sp_c / 2) + 1)
            boxes.append((t, l, b - t, r - l))
    return boxes


def svola_deconvolve(blurry: torch.Tensor, kernels: torch.Tensor, grid, **nonblind) -> torch.Tensor:
    """Non-blind SVOLA deconvolution: each cell's window support (plus a K px margin) is
    deconvolved with its kernel (every channel, :func:`glkm_adapters.nonblind.nonblind`), and
    the results are blended with the windows on the blurry grid (a partition of unity).
    ``blurry`` (1, C, H, W), ``kernels`` (P*Q, 1, K, K) -> (1, C, H, W)."""
    P, Q = grid
    H, W = blurry.shape[-2:]
    K = kernels.shape[-1]
    # the windows of svola_windows, built one crop at a time from their row and column profiles
    row_profiles, col_profiles = window_profiles(H, P), window_profiles(W, Q)
    if nonblind.get("lam") is None:  # one noise level for the whole image, not one per crop
        nonblind = {**nonblind, "lam": noise_adapted_lam(blurry)}
    out = torch.zeros_like(blurry, dtype=torch.float32)
    for n in range(P * Q):
        row, col = row_profiles[n // Q], col_profiles[n % Q]
        rows, cols = torch.nonzero(row > 0).flatten(), torch.nonzero(col > 0).flatten()
        t, b = max(0, int(rows[0]) - K), min(H, int(rows[-1]) + 1 + K)
        l, r = max(0, int(cols[0]) - K), min(W, int(cols[-1]) + 1 + K)
        part = nonblind_deconv(blurry[..., t:b, l:r].float(), kernels[n: n + 1], **nonblind)
        out[..., t:b, l:r] += row[t:b, None] * col[None, l:r] * part
    return out


def _result(image, global_kernel, kernels, grid, info):
    return {"image": image, "kernel": global_kernel, "kernels": kernels, "grid": tuple(grid),
            "info": {**info, "grid": f"{grid[0]}x{grid[1]}"}}


def run_svola_fast(blurry, *, kernel_size, kernel_branch="glkm", seed=0, iters=None, progress=False, context=None,
                   prior=None, kernel_lr=None, nonblind=None, callback=None, grid=DEFAULT_GRID,
                   window_scale=WINDOW_SCALE, cell_levels=CELL_LEVELS, cell_iters=CELL_ITERS, anchor=ANCHOR, **options):
    """Method ``svola-fast`` (module docstring). ``options`` are the ``fast`` method's options,
    used by both stages (the cells run ``min(cell_iters, iters)`` alternations on the
    ``cell_levels`` finest levels); ``grid`` is (P, Q) or 'PxQ'."""
    start = time.perf_counter()
    check_blurry(blurry)
    grid = parse_grid(grid)
    K = int(kernel_size)
    ctx = as_context(context)
    branch_opts = {k: options.pop(k) for k in ("init",) if k in options}
    cfg = resolve_options(dict(options), iters)
    blurry = blurry.float()
    if branch_uses_prior(kernel_branch, ctx.plugin_manager()):  # the fast method's prior (global run and cells share it)
        prior = branch_prior(prior, K, ctx.weights, cfg["branch_canvas"])

    glob = run_fast(blurry, kernel_size=K, kernel_branch=kernel_branch, seed=seed, iters=iters, progress=progress,
                    context=ctx, prior=prior, kernel_lr=kernel_lr, deconvolve=False, **branch_opts, **options)
    t_global = time.perf_counter() - start
    K_b = glob["info"]["branch_kernel_size"]

    y_full = to_luma(blurry)
    H, W = y_full.shape[-2:]
    ys = []
    for t, l, h, w in estimation_windows(H, W, grid, window_scale):
        cell = y_full[..., t: t + h, l: l + w]
        if min(h, w) < 2 * K:
            raise InvalidInputError(f"a {grid[0]}x{grid[1]} grid leaves {h}x{w} px cells on this {H}x{W} image, too small "
                                    f"for a {K} px kernel: use a coarser --grid")
        ct, cl, ch, cw = informative_crop(cell, cfg["max_side"])
        ys.append(cell[..., ct: ct + ch, cl: cl + cw])
    patches = make_patch_kernels(kernel_branch, resize_image(ys[0], K_b / K), K_b, len(ys), context=ctx, seed=seed,
                                 global_branch=glob["branch"], prior=prior, **branch_opts)
    lr = kernel_lr if kernel_lr is not None else patches.lr_in(FAST_LOOP)
    cell_cfg = {**cfg, "iters": min(int(cell_iters), cfg["iters"]) if cell_iters is not None else cfg["iters"]}
    penalty = None
    w_global = getattr(glob["branch"], "w", None)
    if anchor and patches.uses_prior and w_global is not None:
        w_global = w_global.detach()

        def penalty():
            return anchor * sum((b.w - w_global).square().mean() for b in patches.branches)

    kernels, trace, steps = estimate_kernels(ys, K, patches, K_b, cell_cfg, lr=lr, progress=progress,
                                             desc="svola cell kernels", finest_levels=cell_levels, penalty=penalty)
    t_kernel = time.perf_counter() - start
    image = svola_deconvolve(blurry, kernels, grid, **(nonblind or {}))
    if callback is not None:
        with torch.no_grad():
            callback(glob["info"]["kernel_steps"] + steps, image, glob["kernel"])
    info = {
        "seconds_global": t_global, "seconds_kernel": t_kernel, "seconds_total": time.perf_counter() - start,
        "iters": cfg["iters"], "kernel_steps_global": glob["info"]["kernel_steps"], "kernel_steps_cells": steps,
        "branch_kernel_size": K_b, "window_scale": window_scale,
        "final_data_term": trace[-1]["data_term"] if trace else None,
    }
    return _result(image, glob["kernel"], kernels, grid, info)


def run_svola_dip(blurry, *, kernel_size, kernel_branch="glkm", seed=0, iters=None, progress=True, context=None,
                  prior=None, callback=None, grid=DEFAULT_GRID, global_iters=None, preset="default", colour="ycbcr",
                  trace_every=None, **options):
    """Method ``svola-dip``: SelfDeblur globally for ``global_iters`` (default a fifth of
    ``iters``), then the SVOLA loop for ``iters`` with per-cell kernel branches."""
    check_blurry(blurry)
    grid = parse_grid(grid)
    cfg = make_config(DIPConfig, preset=preset, iters=iters, colour=colour, **options)
    g_iters = int(global_iters) if global_iters is not None else max(1, cfg.iters // 5)
    ctx = as_context(context)
    if prior is None and branch_uses_prior(kernel_branch, ctx.plugin_manager()):
        prior = KernelPrior.from_pretrained(ctx.weights, kernel_size=int(kernel_size))
    start = time.perf_counter()
    g_cfg = make_config(DIPConfig, preset=preset, iters=g_iters, colour=colour, **options)
    glob_loop = SelfDeblur(blurry, kernel_size, config=g_cfg, kernel_branch=kernel_branch, seed=seed, prior=prior,
                           context=ctx)
    glob = glob_loop.run(progress=progress)
    t_global = time.perf_counter() - start

    opts = {"prior": prior} if prior is not None else {}
    patches = make_patch_kernels(kernel_branch, glob_loop.y, int(kernel_size), grid[0] * grid[1], context=ctx, seed=seed,
                                 global_branch=glob_loop.branch, **opts)
    loop = SVOLASelfDeblur(blurry, kernel_size, grid=grid, config=cfg, kernel_branch=patches, seed=seed, context=ctx)
    loop.net.load_state_dict(glob_loop.net.state_dict())  # the image network goes on from the global stage
    out = loop.run(progress=progress, callback=callback, trace_every=trace_every)
    info = {**out["info"], "global_iters": g_iters, "seconds_global": t_global,
            "seconds_total": time.perf_counter() - start}
    return _result(out["image"], glob["kernel"], out["kernel"], grid, info)


class SVOLASelfDeblur(SelfDeblur):
    """SelfDeblur with the SVOLA forward model; ``kernel_branch`` is a :class:`PatchKernels`."""

    name = "svola-dip"

    def __init__(self, blurry, kernel_size, *, grid, kernel_branch: PatchKernels, **kwargs):
        if not isinstance(kernel_branch, PatchKernels):
            raise InvalidInputError("SVOLASelfDeblur needs a PatchKernels branch (make_patch_kernels)")
        super().__init__(blurry, kernel_size, kernel_branch=kernel_branch, **kwargs)
        self.windows = svola_windows(self.H + self.pad, self.W + self.pad, grid)

    def kernel(self) -> torch.Tensor:
        return self.branch()

    def forward_model(self, out_x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return svola_blur(out_x, k, self.windows)


#: ``grid``: (P, Q) or 'PxQ' (:func:`glkm_prior.svola.parse_grid`).
GRID_OPTION = ("grid", tuple | str, DEFAULT_GRID)
#: ``svola-fast``'s options: ``fast``'s (both stages use them) and the cell stage's settings above.
SVOLAFastOptions = options_dataclass(
    "SVOLAFastOptions", FastOptions, exclude=("deconvolve", "init_latent"), check=check_fast_options, module=__name__,
    extra=(GRID_OPTION, ("window_scale", float, WINDOW_SCALE), ("cell_levels", int, CELL_LEVELS),
           ("cell_iters", int | None, CELL_ITERS), ("anchor", float, ANCHOR)))
#: ``svola-dip``'s options: :class:`DIPConfig`'s fields, the grid and the global stage's iterations.
SVOLADIPOptions = config_options("SVOLADIPOptions", DIPConfig, extra=(
    GRID_OPTION, ("global_iters", int | None, None), ("trace_every", int | None, None)))


@hookimpl
def glkm_methods(register):
    register("svola-fast", run_svola_fast, "non-uniform: global fast run, then one kernel branch per cell of a PxQ SVOLA "
             "grid (GLKM cells start at the global latent), patch-wise deconvolution blended by the windows", progress=True,
             options=SVOLAFastOptions)
    register("svola-dip", run_svola_dip, "non-uniform: global SelfDeblur, then SelfDeblur with the SVOLA forward model "
             "and one kernel branch per grid cell", iterative=True, progress=True, options=SVOLADIPOptions)
