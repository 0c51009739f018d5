"""Kernel clean-up after every least-squares kernel solve (Pan et al.'s L0 estimators).

* :func:`prune_kernel`: entries below ``rel_cut`` (5 %) of the maximum set to 0, renormalise;
  then every 8-connected component of the support holding less than ``min_mass`` (0.1) of the
  mass is removed; clamp at 0 and renormalise.
* :func:`final_cut`: the last kernel's entries below ``max / divisor`` (20) set to 0.
"""

from __future__ import annotations

import numpy as np
import torch

from glkm_prior.errors import InvalidInputError


def connected_components(support: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected labelling of a boolean 2-D array: ``(labels, count)``, labels 1..count on the
    support and 0 elsewhere (components numbered in raster order of their first pixel)."""
    support = np.asarray(support, dtype=bool)
    if support.ndim != 2:
        raise InvalidInputError(f"expected a 2-D support, got shape {support.shape}")
    labels = np.zeros(support.shape, dtype=np.int64)
    h, w = support.shape
    count = 0
    for r0, c0 in zip(*np.nonzero(support)):
        if labels[r0, c0]:
            continue
        count += 1
        labels[r0, c0] = count
        stack = [(r0, c0)]
        while stack:
            r, c = stack.pop()
            for rr in range(max(r - 1, 0), min(r + 2, h)):
                for cc in range(max(c - 1, 0), min(c + 2, w)):
                    if support[rr, cc] and not labels[rr, cc]:
                        labels[rr, cc] = count
                        stack.append((rr, cc))
    return labels, count


def _normalised(k: torch.Tensor) -> torch.Tensor:
    total = k.sum()
    if not total > 0:
        raise InvalidInputError("the kernel lost all its mass in pruning")
    return k / total


def prune_kernel(k: torch.Tensor, rel_cut: float = 0.05, min_mass: float = 0.1) -> torch.Tensor:
    """Prune a least-squares kernel estimate (1, 1, K, K) as the module doc says; returns a
    non-negative kernel summing to 1 (the strongest component always survives)."""
    k = k.detach().clone()
    plane = k[0, 0]
    plane[plane < rel_cut * plane.max()] = 0
    plane.clamp_(min=0)
    plane.copy_(_normalised(plane))
    labels, count = connected_components((plane > 0).cpu().numpy())
    if count > 1:
        labels_t = torch.from_numpy(labels).to(plane.device)
        masses = torch.zeros(count + 1, dtype=torch.float64).index_add_(0, labels_t.flatten(), plane.flatten().double())
        keep = masses >= min_mass
        keep[0] = False
        if not keep[1:].any():  # every component is small: keep the heaviest
            keep[int(masses[1:].argmax()) + 1] = True
        plane[~keep[labels_t]] = 0
    return _normalised(k.clamp_min(0))


def final_cut(k: torch.Tensor, divisor: float = 20.0) -> torch.Tensor:
    """Entries below ``max / divisor`` set to 0 (``divisor`` <= 0: only negatives), renormalised."""
    k = k.clamp_min(0)
    if divisor > 0:
        k = torch.where(k < k.amax(dim=(-2, -1), keepdim=True) / divisor, torch.zeros_like(k), k)
    return _normalised(k)
