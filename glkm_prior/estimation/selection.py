"""Choosing among candidate kernels with the GLKM prior (issue 24, steps 2 and 4).

A classical estimate that went wrong on a large real kernel is rarely a clean motion path: it
carries ghost branches from periodic image structure, scattered dots, or two traces of one
path. The kernel generator G was trained on motion paths, so how far a kernel lies from G's
manifold says how plausible it is. :func:`prior_residuals` projects every candidate onto the
manifold (:meth:`KernelPrior.invert`, one batch) and returns the L1 distance between each
normalised candidate and its projection on the prior's canvas (the inversion's own loss);
:func:`select_by_prior` picks the candidate with the smallest. No ground truth is used.
"""

from __future__ import annotations

import torch

from glkm_prior.errors import InvalidInputError
from glkm_prior.physics import fit_kernel


def prior_residuals(kernels: list[torch.Tensor], prior, *, steps: int = 500, seed: int = 0) -> list[float]:
    """L1 distance of each kernel (1, 1, k, k), normalised to sum 1 and centre-cropped or padded
    to the prior's canvas, to its projection onto the generator's manifold (module doc)."""
    if not kernels:
        raise InvalidInputError("no candidate kernels to compare")
    batch = []
    for k in kernels:
        k = k.detach().float().clamp_min(0)
        total = float(k.sum())
        if not total > 0:
            raise InvalidInputError("a candidate kernel has no positive entry")
        batch.append(fit_kernel(k / total, prior.size))
    batch = torch.cat(batch)
    w = prior.invert(batch, steps=steps, seed=seed)
    with torch.no_grad():
        projected = prior.kernel(w)
    return (projected - batch).abs().flatten(1).sum(1).tolist()


def select_by_prior(kernels: list[torch.Tensor], prior, *, steps: int = 500, seed: int = 0) -> tuple[int, list[float]]:
    """``(index, residuals)``: the candidate closest to the prior's manifold and every residual."""
    residuals = prior_residuals(kernels, prior, steps=steps, seed=seed)
    return min(range(len(residuals)), key=residuals.__getitem__), residuals
