"""Issue 24 diagnosis: are the L0 kernel's streaks caused by too few edges in the weak orientations?

Runs ``examples/study_l0_levels.py`` (per-level kernel error against the resized true kernel) with
the edge selection capped per orientation bin: after the usual threshold, every one of the four
bins keeps at most ``balance`` x the count of the weakest non-empty bin (its strongest pixels), so
the kernel is fitted on orientation-balanced edges. The library's selection is patched for this
process only (``glkm_prior.estimation.pyramid.select_edges``).

Usage: ``python examples/study_edge_balance.py BALANCE DATA NAME ['{"option": value}']``.
Measured on people_02_kernel_02 (51 px; streaks along the brick wall's horizontal mortar lines):
final rel. L2 0.81 / 0.77 / 0.81 with balance 1 / 2 / 4, against 0.81 without -- not the cause.
"""

from __future__ import annotations

import math
import sys

import torch

import glkm_prior.estimation.pyramid as pyramid
from glkm_prior.estimation.edges import select_edges

BINS = [(0.0, math.pi / 4), (math.pi / 4, math.pi / 2), (-math.pi / 4, 0.0), (-math.pi / 2, -math.pi / 4)]


def balanced_selection(balance: float):
    """``select_edges`` followed by the per-bin cap (module doc)."""
    def select(x, threshold, mask=None):
        px, py, used = select_edges(x, threshold, mask)
        magnitude = px.square() + py.square()
        kept = magnitude > 0
        with torch.no_grad():
            angle = torch.atan(py / px)
        bins = [kept & (angle >= lo) & (angle < hi) for lo, hi in BINS]
        counts = [int(b.sum()) for b in bins]
        if not any(counts):
            return px, py, used
        cap = int(math.ceil(balance * min(c for c in counts if c > 0)))
        for members, count in zip(bins, counts):
            if count > cap:
                weakest_kept = torch.topk(magnitude[members], cap).values[-1]
                kept &= ~(members & (magnitude < weakest_kept))
        return px * kept, py * kept, used
    return select


if __name__ == "__main__":
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    import study_l0_levels

    pyramid.select_edges = balanced_selection(float(sys.argv[1]))
    study_l0_levels.main(sys.argv[2:])
