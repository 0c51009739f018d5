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


#: The kernel-branch options a method passes on to its branch, as ``(name, type, default)`` rows of
#: its options dataclass (:func:`glkm_prior.options.options_dataclass`): ``init`` (the GLKM start,
#: :func:`make_glkm_branch`) and ``init_latent`` (a given w); other branches ignore them.
BRANCH_OPTIONS = (("init", str, "estimate"), ("init_latent", Any, None))


def make_glkm_branch(blurry, kernel_size, *, prior=None, weights=None, init="estimate", seed=None,
                     init_latent=None, **_):
    """Factory: ``init`` is 'estimate' (default: the classical kernel estimate projected onto the
    prior, :meth:`KernelPrior.estimated_latent`), 'initializer' (E(y), the GLKM paper's start) or
    'random' (z ~ N(0, I)); an explicit ``init_latent`` w (e.g. ``prior.invert(kernel)``) overrides them."""
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
    elif init in ("estimate", "initializer"):
        w = prior.initial_latent(blurry[:1], init=init, kernel_size=kernel_size, seed=0 if seed is None else int(seed))
    elif init == "random":
        w = prior.random_latent(1, seed=seed)
    else:
        raise InvalidInputError(f"init must be 'estimate', 'initializer' or 'random', got {init!r}")
    return GLKMKernelBranch(prior, w, kernel_size)


@hookimpl
def glkm_kernel_branches(register):
    register("glkm", make_glkm_branch, "GLKM: latent w of the frozen kernel generator, started from the classical estimate projected "
             "onto it (init=estimate) or E(y) (init=initializer)",
             branch_class=GLKMKernelBranch)
