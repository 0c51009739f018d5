"""``l0``: the classical L0 blind kernel estimator (issue 24's calibration method).

Kernel: :func:`glkm_prior.estimation.estimate_kernel_l0` on the luma of the blurry image (Pan
et al.'s L0-gradient recipe with Cho & Lee's edge selection; no learned prior). Image: the same
hyper-Laplacian non-blind deconvolution as ``fast`` (:mod:`glkm_adapters.nonblind`), so two
methods' results differ only by their kernels. ``kernel_branch`` and ``prior`` are accepted for
the harness's calling convention and not used.
"""

from __future__ import annotations

import time

import torch

from glkm_prior.branch import check_blurry
from glkm_prior.errors import InvalidInputError
from glkm_prior.estimation import estimate_kernel_l0
from glkm_prior.plugins import hookimpl
from glkm_prior.prior import to_luma

from .nonblind import nonblind as nonblind_deconv


def run_l0(blurry, *, kernel_size, kernel_branch="glkm", seed=0, iters=None, progress=False, prior=None,
           nonblind=None, callback=None, deconvolve=True, **options):
    """Estimate the kernel (``options`` override :data:`glkm_prior.estimation.L0_DEFAULTS`) and
    deblur. Deterministic (``seed`` is accepted and unused). Returns ``{"image", "kernel", "info"}``."""
    start = time.perf_counter()
    check_blurry(blurry)
    K = int(kernel_size)
    blurry = blurry.float()
    y = to_luma(blurry)
    if min(y.shape[-2:]) < 2 * K:
        raise InvalidInputError(f"image {tuple(y.shape[-2:])} is too small for a {K} px kernel (need >= {2 * K} px per side)")
    estimate = estimate_kernel_l0(y, K, iters=iters, progress=progress, **options)
    kernel = estimate["kernel"]
    t_kernel = time.perf_counter() - start
    image = nonblind_deconv(blurry, kernel, **(nonblind or {})) if deconvolve else None
    if callback is not None and image is not None:
        with torch.no_grad():
            callback(len(estimate["info"]["trace"]), image, kernel)
    info = {**estimate["info"], "seconds_kernel": t_kernel, "seconds_total": time.perf_counter() - start}
    return {"image": image, "kernel": kernel, "info": info}


@hookimpl
def glkm_methods(register):
    register("l0", run_l0, "classical L0 blind kernel estimation (Pan et al.'s recipe: edge selection, least-squares "
                           "kernel, pruning; no learned prior) + hyper-Laplacian deconvolution")
