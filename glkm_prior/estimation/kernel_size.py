"""The automatic kernel size (``--kernel-size auto``): a coarse run of the branch-pyramid kernel
estimator (:mod:`.branch_pyramid`) at ``SIZE_PROBE`` px for the largest allowed size."""

from __future__ import annotations

import time

import torch

from ..branch import check_blurry
from ..kernel_estimation import informative_crop, odd, resize_image
from ..physics import kernel_extent
from ..plugins import branch_uses_prior, make_kernel_branch
from ..prior import AUTO_KERNEL_MARGIN, AUTO_KERNEL_RANGE, KernelPrior, auto_kernel_side, to_luma
from .branch_pyramid import BRANCH_INIT, DEFAULTS, LOOP, estimate_kernels

#: Kernel-size estimation (``--kernel-size auto``): a coarse run at ``SIZE_PROBE`` px for the
#: largest size, the result's extent (97 % of the mass) times ``SIZE_MARGIN`` plus 2 px.
SIZE_PROBE, SIZE_MARGIN, SIZE_RANGE = 31, AUTO_KERNEL_MARGIN, AUTO_KERNEL_RANGE


def estimate_kernel_size(blurry: torch.Tensor, *, kernel_branch="glkm", prior=None, pm=None, seed=0,
                         max_size: int | None = None, progress: bool = False) -> dict:
    """Blur size for an image of unknown blur: kernel estimation at a coarse scale where the
    largest allowed kernel (``max_size``, default 75, at most half the image's shorter side) is
    ``SIZE_PROBE`` px, then ``K = odd(SIZE_MARGIN * extent + 2)`` in ``SIZE_RANGE``. Returns
    ``{"kernel_size", "extent", "max_size", "seconds"}`` (extent in full-resolution px; None when
    the image is too small for a coarse view). ``progress``: a tqdm bar on stderr."""
    start = time.perf_counter()
    check_blurry(blurry)
    y = to_luma(blurry.float())
    top, left, h, w = informative_crop(y, DEFAULTS["max_side"])
    y = y[..., top: top + h, left: left + w]
    lo, hi = SIZE_RANGE
    largest = odd(min(hi if max_size is None else int(max_size), min(y.shape[-2:]) // 2 - 1))
    if largest <= SIZE_PROBE:  # a small image: no room for a coarse view
        return {"kernel_size": max(lo, largest), "extent": None, "max_size": largest, "seconds": time.perf_counter() - start}
    scale = SIZE_PROBE / largest
    y_probe = resize_image(y, scale)
    if prior is None and branch_uses_prior(kernel_branch, pm):
        prior = KernelPrior.from_pretrained(kernel_size=SIZE_PROBE)
    branch_start = {"init": BRANCH_INIT} if prior is not None else {}  # fast's start, as calibrated
    branch = make_kernel_branch(kernel_branch, y_probe, SIZE_PROBE, pm=pm, seed=seed, prior=prior, **branch_start)
    lr = branch.lr_in(LOOP)
    kernel, _, _ = estimate_kernels([y_probe], SIZE_PROBE, branch, SIZE_PROBE, dict(DEFAULTS), lr=lr,
                                    progress=progress, desc="kernel-size estimate")
    extent = kernel_extent(kernel) / scale
    size = odd(min(max(auto_kernel_side(extent), lo), largest))
    return {"kernel_size": size, "extent": round(extent, 1), "max_size": largest, "seconds": time.perf_counter() - start}
