"""Methods that need no iterative kernel estimation (hook ``glkm_methods``).

* ``initializer`` -- the kernel branch's *initial* kernel (for GLKM: G(E(y)), one forward
  pass) followed by hyper-Laplacian non-blind deconvolution. No optimisation at all: it
  measures how good the initializer is on its own.
* ``true-kernel`` -- the same non-blind step with a given kernel (``true_kernel=``): the
  upper bound of any blind method using this deconvolution.
"""

from __future__ import annotations

import time

import torch

from glkm_prior.deconv import hyper_laplacian_deconv
from glkm_prior.errors import InvalidInputError
from glkm_prior.plugins import hookimpl, make_kernel_branch

NONBLIND_LAM = 1e-3  # hyper-Laplacian prior weight (images in [0, 1], ~1% noise; tuned in tests/test_deconv.py)


def nonblind(blurry: torch.Tensor, kernel: torch.Tensor, lam: float = NONBLIND_LAM) -> torch.Tensor:
    """Deconvolve every channel of ``blurry`` (1, C, H, W) with the one ``kernel`` (1, 1, K, K)."""
    return hyper_laplacian_deconv(blurry, kernel.detach(), lam=lam)


def run_initializer(blurry, *, kernel_size, kernel_branch="glkm", seed=0, lam=NONBLIND_LAM, pm=None, **options):
    start = time.perf_counter()
    branch = make_kernel_branch(kernel_branch, blurry, kernel_size, pm=pm, seed=seed, **options)
    with torch.no_grad():
        kernel = branch()
    t_kernel = time.perf_counter() - start
    image = nonblind(blurry, kernel, lam)
    return {
        "image": image,
        "kernel": kernel.detach(),
        "info": {"seconds_kernel": t_kernel, "seconds_total": time.perf_counter() - start, "iters": 0},
    }


def run_true_kernel(blurry, *, kernel_size=None, true_kernel=None, lam=NONBLIND_LAM, **_):
    if true_kernel is None:
        raise InvalidInputError("method 'true-kernel' needs the ground-truth kernel (true_kernel=...)")
    start = time.perf_counter()
    kernel = true_kernel.reshape(1, 1, *true_kernel.shape[-2:]).float()
    image = nonblind(blurry, kernel, lam)
    return {"image": image, "kernel": kernel, "info": {"seconds_total": time.perf_counter() - start, "iters": 0}}


@hookimpl
def glkm_methods(register):
    register("initializer", run_initializer, "kernel from the branch's initial state (GLKM: G(E(y))) + hyper-Laplacian deconvolution")
    register("true-kernel", run_true_kernel, "hyper-Laplacian deconvolution with the ground-truth kernel (upper bound)")
