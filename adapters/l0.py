"""``l0``: the classical L0 blind kernel estimator (issue 24's calibration method).

Kernel: :func:`glkm_prior.estimation.estimate_kernel_l0` on the luma of the blurry image (Pan
et al.'s L0-gradient recipe with Cho & Lee's edge selection; no learned prior). Image: the same
hyper-Laplacian non-blind deconvolution as ``fast`` (:mod:`glkm_adapters.nonblind`), so two
methods' results differ only by their kernels. ``kernel_branch`` and ``prior`` are accepted for
the harness's calling convention and not used (``prior`` only by the experimental ``refine``).
The kernel returned is ``K`` px or, when the estimate's support needs more room, the smallest odd
size that holds it (at most ``max(K, canvas)``, or ``ceil(canvas_scale * K)`` above the canvas; see
``glkm_prior.estimation.pyramid``).
"""

from __future__ import annotations

import time

import torch

from glkm_prior.branch import check_blurry
from glkm_prior.errors import InvalidInputError
from glkm_prior.estimation import L0_DEFAULTS, estimate_kernel_l0, final_cut
from glkm_prior.estimation.glkm_refine import glkm_refine
from glkm_prior.estimation.pyramid import trim_kernel
from glkm_prior.kernel_estimation import informative_crop
from glkm_prior.physics import fit_kernel
from glkm_prior.plugins import hookimpl
from glkm_prior.prior import to_luma

from .l0_options import l0_options
from .nonblind import nonblind as nonblind_deconv


#: The kernel is estimated on the most textured ``max_side`` x ``max_side`` window of larger
#: images (every image of the Lai uniform set fits; a 12-megapixel photo would take minutes).
MAX_SIDE = 1024

#: Step 2 of issue 24 (experimental): ``refine`` 'none' (classical kernel), 'project' (its
#: projection onto the GLKM prior's manifold), 'glkm' (projection, then Adam on the latent) or
#: 'levels' (every pyramid level but the finest ends with the projection).
REFINE = {"refine": "none", "invert_steps": 300, "refine_steps": 100, "refine_alternations": 1, "refine_lr": 1e-2}

#: ``select="prior"``: the estimator runs once per candidate (each a set of option overrides on
#: top of the call's options) and the GLKM prior picks the kernel closest to its manifold
#: (:mod:`glkm_prior.estimation.selection`). One candidate per ingredient measured on its own in
#: RESULTS.md "Large real kernels": the default, a stronger and a higher-floored image step, and Xu &
#: Jia's usefulness mask.
CANDIDATES = ({}, {"lam_grad": 1e-2}, {"lam_min": 1e-3}, {"rmap_window": 1.0})
SELECT = {"select": "none", "candidates": CANDIDATES, "select_steps": 500}


def run_l0(blurry, *, kernel_size, kernel_branch="glkm", seed=0, iters=None, progress=False, prior=None,
           nonblind=None, callback=None, deconvolve=True, **options):
    """Estimate the kernel (``options`` override :data:`glkm_prior.estimation.L0_DEFAULTS`,
    :data:`REFINE` and :data:`SELECT`) and deblur. Deterministic. Returns ``{"image", "kernel", "info"}``."""
    start = time.perf_counter()
    check_blurry(blurry)
    K = int(kernel_size)
    blurry = blurry.float()
    y = to_luma(blurry)
    if min(y.shape[-2:]) < 2 * K:
        raise InvalidInputError(f"image {tuple(y.shape[-2:])} is too small for a {K} px kernel (need >= {2 * K} px per side)")
    max_side = options.pop("max_side", MAX_SIDE)
    if isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < 2 * K:
        raise InvalidInputError(f"max_side must be an integer >= 2 x the kernel size ({2 * K}), got {max_side!r}")
    top, left, h, w = informative_crop(y, max_side)  # larger photos: the most textured window
    y = y[..., top: top + h, left: left + w]
    refine = {key: options.pop(key) for key in REFINE if key in options}
    refine = {**REFINE, **refine}
    select = {**SELECT, **{key: options.pop(key) for key in SELECT if key in options}}
    if refine["refine"] not in ("none", "project", "glkm", "levels"):
        raise InvalidInputError(f"refine must be 'none', 'project', 'glkm' or 'levels', got {refine['refine']!r}")
    if select["select"] not in ("none", "prior"):
        raise InvalidInputError(f"select must be 'none' or 'prior', got {select['select']!r}")
    if select["select"] == "prior" and refine["refine"] != "none":
        raise InvalidInputError("select='prior' and refine cannot be combined")
    if refine["refine"] != "none" and prior is None:
        from glkm_prior.prior import KernelPrior

        prior = KernelPrior.from_pretrained(kernel_size=31)
    if select["select"] == "prior":
        kernel, info = _selected_kernel(y, K, select, prior, iters=iters, progress=progress, seed=seed, options=options)
    else:
        kernel, info = _refined_kernel(y, K, refine, prior, iters=iters, progress=progress, seed=seed, options=options)
    t_kernel = time.perf_counter() - start
    image = nonblind_deconv(blurry, kernel, **(nonblind or {})) if deconvolve else None
    if callback is not None and image is not None:
        with torch.no_grad():
            callback(len(info["trace"]), image, kernel)
    info = {**info, "estimation_crop": [top, left, h, w], "seconds_kernel": t_kernel,
            "seconds_total": time.perf_counter() - start}
    return {"image": image, "kernel": kernel, "info": info}


def _refined_kernel(y, K, refine, prior, *, iters, progress, seed, options):
    """``(kernel, info)``: the classical estimate, through the GLKM prior as ``refine`` says (:data:`REFINE`)."""
    hook = None
    if refine["refine"] == "levels":
        def hook(k, level, n_levels):
            if level == n_levels - 1 or k.shape[-1] > prior.size:
                return k
            w = prior.invert(fit_kernel(k, prior.size), steps=refine["invert_steps"], seed=seed)
            with torch.no_grad():
                return final_cut(fit_kernel(prior.kernel(w), k.shape[-1]), 0)
    estimate = estimate_kernel_l0(y, K, iters=iters, progress=progress, level_hook=hook, **options)
    kernel, info = estimate["kernel"], estimate["info"]
    if refine["refine"] in ("project", "glkm"):
        start = estimate["canvas_kernel"]
        if start.shape[-1] > prior.size:  # a large kernel's canvas (1.5 K): its centre, the prior's canvas
            start = fit_kernel(trim_kernel(start, K), prior.size)
        result = glkm_refine(estimate["estimation_image"], start, prior, lam=info["final_lam"],
                             threshold=info["final_threshold"], invert_steps=refine["invert_steps"],
                             steps=refine["refine_steps"] if refine["refine"] == "glkm" else 0,
                             alternations=refine["refine_alternations"], lr=refine["refine_lr"], seed=seed)
        kernel = trim_kernel(final_cut(result["kernel"], L0_DEFAULTS["final_divisor"]), K)
    return kernel, info


def _selected_kernel(y, K, select, prior, *, iters, progress, seed, options):
    """``(kernel, info)`` of ``select="prior"``: one estimate per candidate, the GLKM prior picks
    one (:data:`CANDIDATES`)."""
    from glkm_prior.estimation.selection import select_by_prior
    from glkm_prior.prior import KernelPrior

    candidates = select["candidates"]
    if isinstance(candidates, (str, bytes, dict)) or not candidates or not all(isinstance(c, dict) for c in candidates):
        raise InvalidInputError(f"candidates must be a non-empty list of option dicts, got {candidates!r}")
    candidates = [dict(c) for c in candidates]
    if prior is None or prior.size < K:
        prior = KernelPrior.from_pretrained(kernel_size=K, largest_if_too_small=True)
    estimates = [estimate_kernel_l0(y, K, iters=iters, progress=progress, **{**options, **c}) for c in candidates]
    chosen, residuals = select_by_prior([e["kernel"] for e in estimates], prior, steps=int(select["select_steps"]),
                                        seed=seed)
    info = {**estimates[chosen]["info"], "selected": chosen, "candidates": candidates, "prior_residuals": residuals,
            "selection_prior": prior.size}
    return estimates[chosen]["kernel"], info


#: ``l0``'s options (glkm_prior.options), built from L0_DEFAULTS, MAX_SIDE, REFINE and SELECT.
L0Options = l0_options(MAX_SIDE, REFINE, SELECT)


@hookimpl
def glkm_methods(register):
    register("l0", run_l0, "classical L0 blind kernel estimation (Pan et al.'s recipe: edge selection, least-squares "
                           "kernel, pruning; no learned prior) + hyper-Laplacian deconvolution", progress=True,
             options=L0Options)
