"""``fast``: blind deblurring in seconds on a CPU (the default ``glkm deblur`` method).

Kernel estimation: :func:`glkm_prior.estimation.branch_pyramid.estimate_kernels` (closed-form
L0 image steps alternating with Adam steps on the kernel branch's parameters, coarse to fine;
GLKM: the latent w of the frozen generator; native: SelfDeblur's MLP), on the luma of the
blurry image, cropped to its most textured ``max_side`` window. Then one hyper-Laplacian
non-blind deconvolution of the full image (every colour channel, one kernel). The options and
their defaults (:data:`DEFAULTS`) and the automatic kernel size live in the core
(glkm_prior/estimation/branch_pyramid.py, kernel_size.py); they are re-exported here.
"""

from __future__ import annotations

import time

import torch

from glkm_prior.branch import check_blurry
from glkm_prior.context import as_context
from glkm_prior.errors import InvalidInputError
from glkm_prior.estimation.branch_pyramid import (BRANCH_INIT, DEFAULTS, LOOP, branch_levels, branch_prior,
                                                  estimate_kernels, resolve_options)
from glkm_prior.estimation.kernel_size import SIZE_MARGIN, SIZE_PROBE, SIZE_RANGE, estimate_kernel_size
from glkm_prior.kernel_estimation import clean_kernel, informative_crop, resize_image, resize_kernel
from glkm_prior.options import options_dataclass, positive
from glkm_prior.plugins import branch_class, branch_uses_prior, hookimpl, make_kernel_branch
from glkm_prior.prior import to_luma

from .glkm_branch import BRANCH_OPTIONS
from .nonblind import nonblind as nonblind_deconv

__all__ = ["DEFAULTS", "FastOptions", "LOOP", "SIZE_MARGIN", "SIZE_PROBE", "SIZE_RANGE", "branch_prior", "clean_kernel",
           "estimate_kernel_size", "estimate_kernels", "resize_kernel", "resolve_options", "run_fast"]


def check_fast_options(self) -> None:
    resolve_options({k: getattr(self, k) for k in DEFAULTS if k != "iters"})  # DEFAULTS' own value checks
    positive(self, "kernel_lr")


#: ``fast``'s options (``glkm_prior.options``): :data:`DEFAULTS` (less ``iters``, the host's own)
#: and the keywords of :func:`run_fast`; the defaults are DEFAULTS'.
FastOptions = options_dataclass(
    "FastOptions", DEFAULTS, exclude=("iters",), check=check_fast_options, module=__name__,
    extra=(("kernel_lr", float | None, None), ("nonblind", dict | None, None), ("deconvolve", bool, True),
           *((name, kind, BRANCH_INIT if name == "init" else default) for name, kind, default in BRANCH_OPTIONS)))


def run_fast(blurry, *, kernel_size, kernel_branch="glkm", seed=0, iters=None, progress=False, context=None,
             prior=None, kernel_lr=None, nonblind=None, callback=None, deconvolve=True, **options):
    """Estimate the kernel and deblur. ``options`` override :data:`DEFAULTS` (unknown keys raise);
    ``nonblind`` overrides :data:`glkm_adapters.nonblind.NONBLIND`; ``kernel_lr`` the branch's Adam rate;
    ``callback(step, image, kernel)`` is called once, with the result. ``deconvolve=False`` skips
    the final deconvolution (``image`` is then None). The result also holds the ``branch`` in
    its final state (e.g. the GLKM latent w, which the SVOLA adapter starts its patches from).
    ``context``: the run's :class:`~glkm_prior.context.RunContext` (plugin manager; the prior's
    ``weights`` when ``prior`` is None)."""
    start = time.perf_counter()
    check_blurry(blurry)
    K = int(kernel_size)
    ctx = as_context(context)
    pm = ctx.plugin_manager()
    branch_opts = {k: options.pop(k) for k in ("init", "init_latent") if k in options}
    cfg = resolve_options(options, iters)
    blurry = blurry.float()
    y_full = to_luma(blurry)
    if min(y_full.shape[-2:]) < 2 * K:
        raise InvalidInputError(f"image {tuple(y_full.shape[-2:])} is too small for a {K} px kernel (need >= {2 * K} px per side)")
    top, left, h, w = informative_crop(y_full, cfg["max_side"])
    y = y_full[..., top: top + h, left: left + w]

    uses_prior = branch_uses_prior(kernel_branch, pm)
    if uses_prior:
        prior = branch_prior(prior, K, ctx.weights, cfg["branch_canvas"])
    capacity = branch_class(kernel_branch, pm).capacity(prior)
    K_b = K if capacity is None else min(K, capacity)
    y_branch = resize_image(y, K_b / K)
    if uses_prior:
        branch_opts.setdefault("init", BRANCH_INIT)
    branch = make_kernel_branch(kernel_branch, y_branch, K_b, pm=pm, seed=seed, prior=prior, **branch_opts)
    lr = kernel_lr if kernel_lr is not None else branch.lr_in(LOOP)
    t_init = time.perf_counter() - start

    kernel, trace, steps = estimate_kernels([y], K, branch, K_b, cfg, lr=lr, progress=progress)
    t_kernel = time.perf_counter() - start

    image = nonblind_deconv(blurry, kernel, **(nonblind or {})) if deconvolve else None
    if callback is not None and image is not None:
        with torch.no_grad():
            callback(steps, image, kernel)
    return {
        "image": image,
        "kernel": kernel,
        "branch": branch,
        "info": {
            "seconds_init": t_init, "seconds_kernel": t_kernel, "seconds_total": time.perf_counter() - start,
            "iters": cfg["iters"], "kernel_steps": steps, "levels": len(branch_levels(K, K_b, cfg["min_kernel"])),
            "branch_kernel_size": K_b, "estimation_crop": [top, left, h, w],
            "prior": getattr(prior, "source", None) if uses_prior else None,
            "final_data_term": trace[-1]["data_term"] if trace else None, "trace": trace,
        },
    }


@hookimpl
def glkm_methods(register):
    register("fast", run_fast, "coarse-to-fine kernel estimation (L0 image step in closed form + kernel-branch steps) "
                               "+ hyper-Laplacian deconvolution; seconds per image on a CPU", progress=True, options=FastOptions)
