"""Methods that need no iterative kernel estimation (hook ``glkm_methods``).

* ``initializer`` -- the kernel branch's *initial* kernel (for GLKM: G(E(y)), one forward
  pass) followed by hyper-Laplacian non-blind deconvolution. No optimisation at all: it
  measures how good the initializer is on its own.
* ``true-kernel`` -- the same non-blind step with a given kernel (``true_kernel=``): the
  upper bound of any blind method using this deconvolution.
* ``identity`` -- no deblurring at all (the blurry input): the baseline row of a table.
"""

from __future__ import annotations

import time

import torch

from glkm_prior.context import as_context
from glkm_prior.deconv import estimate_noise, hyper_laplacian_deconv
from glkm_prior.errors import InvalidInputError
from glkm_prior.options import options_dataclass, positive
from glkm_prior.plugins import hookimpl, make_kernel_branch

from .glkm_branch import BRANCH_OPTIONS

#: Hyper-Laplacian (Krishnan & Fergus) settings, with deconv.py's 'valid' boundary model. Chosen
#: on Levin's 32 images with the true kernels (`glkm eval levin --method true-kernel`): 34.4 dB
#: vs 31.7 dB with deconv.py's defaults (lam 1e-3, alpha 2/3, one alternation per beta, which
#: suit ~1 % noise); 6 alternations per beta let the masked boundary converge.
NONBLIND = {"lam": 2e-4, "alpha": 0.8, "beta_max": 1024.0, "iters_per_beta": 6,
            "saturation": 0.98}  # clipped highlights are left out of the data term (no ringing halos)
#: Noisy inputs need a stronger prior: the weight is ``max(NONBLIND['lam'], NOISE_GAIN * sigma^2)``
#: with sigma :func:`glkm_prior.deconv.estimate_noise` of the blurry image (Levin's images read
#: 0.0016-0.0021, so they keep 2e-4; 1 % noise on RGB reads ~0.0058, giving 1e-3). Chosen with
#: the true kernels: Lai-sized set (1 % noise) 36.1-37.6 dB at 1e-3 vs 29.6-37.3 at 2e-4 on 4 images,
#: the non-uniform set 26.4-26.5 vs 25.3-25.5 (3x3 true field).
NOISE_GAIN = 30.0
#: Above this many pixels per channel, 2 alternations per beta (time grows with each one).
LARGE_PIXELS = 2_000_000


def noise_adapted_lam(blurry: torch.Tensor) -> float:
    """The prior weight for this image's noise level (see :data:`NOISE_GAIN`)."""
    return max(NONBLIND["lam"], NOISE_GAIN * estimate_noise(blurry) ** 2)


def nonblind(blurry: torch.Tensor, kernel: torch.Tensor, **overrides) -> torch.Tensor:
    """Deconvolve every channel of ``blurry`` (1, C, H, W) with the one ``kernel`` (1, 1, K, K);
    ``overrides`` replace :data:`NONBLIND` entries (None keeps the default; without ``lam`` the
    weight adapts to the image's noise, :func:`noise_adapted_lam`)."""
    settings = dict(NONBLIND)
    if blurry.shape[-2] * blurry.shape[-1] > LARGE_PIXELS:
        settings["iters_per_beta"] = 2
    if overrides.get("lam") is None:
        settings["lam"] = noise_adapted_lam(blurry)
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return hyper_laplacian_deconv(blurry, kernel.detach(), **settings)


def run_initializer(blurry, *, kernel_size, kernel_branch="glkm", seed=0, lam=None, context=None, **options):
    start = time.perf_counter()
    branch = make_kernel_branch(kernel_branch, blurry, kernel_size, pm=as_context(context).plugin_manager(), seed=seed,
                                **options)
    with torch.no_grad():
        kernel = branch()
    t_kernel = time.perf_counter() - start
    image = nonblind(blurry, kernel, lam=lam)
    return {
        "image": image,
        "kernel": kernel.detach(),
        "info": {"seconds_kernel": t_kernel, "seconds_total": time.perf_counter() - start, "iters": 0},
    }


def run_true_kernel(blurry, *, kernel_size=None, true_kernel=None, lam=None, **_):
    if true_kernel is None:
        raise InvalidInputError("method 'true-kernel' needs the ground-truth kernel (true_kernel=...)")
    start = time.perf_counter()
    kernel = true_kernel.reshape(1, 1, *true_kernel.shape[-2:]).float()
    image = nonblind(blurry, kernel, lam=lam)
    return {"image": image, "kernel": kernel, "info": {"seconds_total": time.perf_counter() - start, "iters": 0}}


def run_identity(blurry, *, kernel_size, **_):
    """The blurry input itself, with a delta kernel: the baseline row of every table."""
    from glkm_prior.physics import delta_kernel

    return {"image": blurry.clone(), "kernel": delta_kernel(int(kernel_size)), "info": {"iters": 0}}


def _check_lam(self) -> None:
    positive(self, "lam")


#: Options (``glkm_prior.options``): ``lam`` (None: :func:`noise_adapted_lam`) and, for the
#: initializer, the kernel branch's start (``init``, ``init_latent``); ``identity`` has none.
TrueKernelOptions = options_dataclass("TrueKernelOptions", extra=(("lam", float | None, None),), check=_check_lam,
                                      module=__name__)
InitializerOptions = options_dataclass("InitializerOptions", TrueKernelOptions, extra=BRANCH_OPTIONS, check=_check_lam,
                                       module=__name__)
IdentityOptions = options_dataclass("IdentityOptions", module=__name__)


@hookimpl
def glkm_methods(register):
    register("initializer", run_initializer, "kernel from the branch's initial state (GLKM: its default start init=estimate; "
             "init=initializer for G(E(y))) + hyper-Laplacian deconvolution", options=InitializerOptions)
    register("identity", run_identity, "no deblurring: the blurry input (baseline)", options=IdentityOptions)
    register("true-kernel", run_true_kernel, "hyper-Laplacian deconvolution with the ground-truth kernel (upper bound)",
             needs_true_kernel=True, options=TrueKernelOptions)
