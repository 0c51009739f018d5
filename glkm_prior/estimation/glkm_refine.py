"""The classical kernel through the GLKM prior (issue 24, step 2): projection and refinement.

:func:`glkm_refine` takes a kernel estimated by the classical pipeline (pyramid.py) on a canvas
that fits the prior (e.g. 31 px), finds the prior's latent ``w`` whose kernel matches it
(:meth:`KernelPrior.invert`, the projection onto the generator's manifold), then optionally
refines ``w`` by Adam on the same data term the classical kernel step minimises, at the finest
scale: a fresh L0 image step with the final ``lam``, edge selection with the final threshold and
``E(k) = sum_d ||corr_valid(p_d, k) - b_d||^2 + ridge ||k||^2`` normalised by ``sum_d ||b_d||^2``.
"""

from __future__ import annotations

import torch

from glkm_prior.errors import InvalidInputError
from glkm_prior.kernel_estimation import l0_image_step

from .edges import select_edges, valid_gradients
from .kernel_solve import ValidGram


def _data_term(y: torch.Tensor, kernel: torch.Tensor, lam: float, threshold: float):
    """``(gram, energy)`` of the kernel data term for the sharp-edge image of ``kernel``."""
    K = kernel.shape[-1]
    x = l0_image_step(y, kernel, lam)
    px, py, _ = select_edges(x, threshold)
    bx, by = valid_gradients(y)
    gram = ValidGram([px, py], [bx, by], K)
    return gram, float(bx.square().sum() + by.square().sum())


def glkm_refine(y: torch.Tensor, kernel: torch.Tensor, prior, *, lam: float, threshold: float, invert_steps: int = 300,
                steps: int = 0, alternations: int = 1, lr: float = 1e-2, ridge: float = 2.0, seed: int = 0) -> dict:
    """``{"kernel", "projected", "w"}``: the prior's projection of ``kernel`` (1, 1, K, K), K <=
    the prior's canvas, refined by ``alternations`` x ``steps`` Adam steps on ``w`` (module doc;
    ``steps`` 0: projection only)."""
    K = kernel.shape[-1]
    if K > prior.size:
        raise InvalidInputError(f"a {K} px kernel does not fit the prior's {prior.size} px canvas")
    w = prior.invert(kernel.float(), steps=invert_steps, seed=seed)
    with torch.no_grad():
        projected = prior.kernel(w, K).detach()
    current = projected
    for _ in range(alternations if steps > 0 else 0):
        gram, energy = _data_term(y, current, lam, threshold)
        opt = torch.optim.Adam([w], lr=lr)
        for _ in range(int(steps)):
            opt.zero_grad(set_to_none=True)
            k = prior.kernel(w, K)[0, 0]
            loss = ((k * gram.apply(k)).sum() - 2 * (gram.rhs.float() * k).sum() + ridge * k.square().sum()) / energy
            loss.backward()
            opt.step()
        with torch.no_grad():
            current = prior.kernel(w, K).detach()
    return {"kernel": current, "projected": projected, "w": w.detach()}
