"""The GLKM kernel branch: w = G.head(E(y)) optimised, kernel = G.tail(w), G and E frozen."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from glkm_prior.branch import KernelBranch, check_blurry
from glkm_prior.errors import InvalidInputError, KernelSizeError
from glkm_prior.plugins import hookimpl
from glkm_prior.prior import KernelPrior


class GLKMKernelBranch(KernelBranch):
    """Only ``w`` is a parameter; the prior is held outside the module tree so that
    ``parameters()`` yields w alone, yet ``.to()/.type()/.double()`` still move it."""

    name = "glkm"
    default_lr = 5e-4  # GKPILE/GLKM reference learning rate for w
    #: bird: its short loop (100 steps); blinddps: the rate at sqrt(alpha_bar) = 1
    loop_lr = {"fast": 1e-2, "bird": 2e-2, "blinddps": 5e-3}
    uses_prior = True

    def __init__(self, prior: KernelPrior, w: torch.Tensor, kernel_size: int):
        super().__init__(kernel_size)
        self.w = nn.Parameter(w.detach().clone())
        object.__setattr__(self, "prior", prior)

    @classmethod
    def capacity(cls, prior=None) -> int | None:
        """The prior's canvas."""
        return None if prior is None else prior.size

    def forward(self) -> torch.Tensor:
        return self.prior.kernel(self.w, self.kernel_size)

    def _apply(self, fn, recurse=True):
        self.prior._apply(fn)
        return super()._apply(fn, recurse)


#: GAN-inversion steps of the ``init="estimate"`` start (the classical kernel put on the prior).
ESTIMATE_INVERT_STEPS = 300


def estimated_latent(prior: KernelPrior, blurry: torch.Tensor, kernel_size: int, seed: int | None = None) -> torch.Tensor:
    """The ``init="estimate"`` start: the classical L0 estimate of the kernel (no learned prior,
    :func:`glkm_prior.estimation.estimate_kernel_l0`) projected onto the prior by GAN inversion."""
    from glkm_prior.estimation import estimate_kernel_l0
    from glkm_prior.prior import to_luma

    kernel = estimate_kernel_l0(to_luma(blurry[:1].float()), int(kernel_size))["kernel"]
    return prior.invert(kernel, steps=ESTIMATE_INVERT_STEPS, seed=0 if seed is None else int(seed))


#: The kernel-branch options a method passes on to its branch, as ``(name, type, default)`` rows of
#: its options dataclass (:func:`glkm_prior.options.options_dataclass`): ``init`` (the GLKM start,
#: :func:`make_glkm_branch`) and ``init_latent`` (a given w); other branches ignore them.
BRANCH_OPTIONS = (("init", str, "initializer"), ("init_latent", Any, None))


def make_glkm_branch(blurry, kernel_size, *, prior=None, weights=None, init="initializer", seed=None,
                     init_latent=None, **_):
    """Factory: ``init`` is 'initializer' (E(y), the GLKM paper's start), 'estimate' (the
    classical kernel estimate projected onto the prior: :func:`estimated_latent`) or 'random'
    (z ~ N(0, I)); an explicit ``init_latent`` w (e.g. ``prior.invert(kernel)``) overrides them."""
    check_blurry(blurry)
    if prior is None:
        prior = KernelPrior.from_pretrained(weights, kernel_size=kernel_size)
    if kernel_size > prior.size:
        raise KernelSizeError(f"the GLKM prior's canvas is {prior.size} px, too small for {kernel_size} px kernels: load a "
                              f"prior with a larger canvas, or use the 'fast' method (it estimates large kernels at a "
                              f"reduced scale)")
    if init_latent is not None:
        expected = (1, *prior.generator.latent_shape)
        if tuple(init_latent.shape) != expected:
            raise InvalidInputError(f"init_latent must have shape {expected}, got {tuple(init_latent.shape)}")
        w = init_latent.detach().to(prior._device(), torch.float32)
    elif init == "initializer":
        w = prior.initial_latent(blurry[:1])
    elif init == "estimate":
        w = estimated_latent(prior, blurry, kernel_size, seed)
    elif init == "random":
        w = prior.random_latent(1, seed=seed)
    else:
        raise InvalidInputError(f"init must be 'initializer', 'estimate' or 'random', got {init!r}")
    return GLKMKernelBranch(prior, w, kernel_size)


@hookimpl
def glkm_kernel_branches(register):
    register("glkm", make_glkm_branch, "GLKM: latent w of the frozen kernel generator, initialised by E(y)",
             branch_class=GLKMKernelBranch)
