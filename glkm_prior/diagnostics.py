"""Ground-truth-free checks of a blind-deblurring result, for the user: warnings when the
estimated kernel is (nearly) a point, so the output is (nearly) the input, or when the blur
may be larger than the kernel the run allowed. Each warning says what to do."""

from __future__ import annotations

import torch

from .physics import kernel_extent
from .prior import auto_kernel_side

#: A kernel whose 97 % mass window is at most this many px wide is "nearly a point".
TRIVIAL_EXTENT = 3
#: A kernel whose 97 % mass window spans at least this fraction of its canvas "fills" it.
FILL_FRACTION = 0.9


def kernel_warnings(kernel: torch.Tensor, *, largest_size: int, size_estimate: dict | None = None) -> list[str]:
    """Warnings (plain sentences, no prefix) about ``kernel`` (1, 1, K, K), the kernel a run
    estimated. ``largest_size``: the largest kernel the run could have used (75 px, or less on a
    small image); ``size_estimate``: the report of ``--kernel-size auto``, if it ran."""
    K = int(kernel.shape[-1])
    extent = kernel_extent(kernel.detach().float().reshape(1, 1, K, K))
    warnings = []
    if extent <= TRIVIAL_EXTENT:
        warnings.append(
            f"the estimated kernel is nearly a point (97 % of its mass within {extent}x{extent} px), so the result is "
            f"close to the input; if the photo looks blurred, set the kernel size yourself (--kernel-size, e.g. "
            f"{min(25, largest_size) | 1}) or try another method (--method dip)")
    estimated = None if size_estimate is None else size_estimate.get("extent")
    clipped = estimated is not None and auto_kernel_side(estimated) > largest_size
    if extent >= FILL_FRACTION * K or clipped:
        if K >= largest_size or clipped:
            warnings.append(
                f"the blur may be larger than the largest kernel allowed here ({largest_size} px): downscale the photo "
                f"(e.g. to half its size) and deblur it again")
        else:
            warnings.append(
                f"the estimated kernel fills its {K} px canvas, so the blur may be larger: try --kernel-size "
                f"{min(largest_size, int(1.5 * K)) | 1}")
    return warnings
