"""A small programmatic API shared by the CLI and the benchmark runner: loading the prior with
a clear fallback, and the automatic kernel size."""

from __future__ import annotations

from .errors import WeightsError


def load_prior(weights, kernel_size: int, revision=None, warn=print):
    """The trained prior; if none is bundled yet, an untrained one with a loud warning."""
    from .prior import KernelPrior

    try:  # a kernel larger than every canvas gets the largest prior; methods check .size
        return KernelPrior.from_pretrained(weights, kernel_size=kernel_size, revision=revision, largest_if_too_small=True)
    except WeightsError as exc:
        if weights is not None or "no trained prior" not in str(exc):
            raise
        warn(f"glkm: warning: {exc}; running with an UNTRAINED (random) prior: the kernel estimate is meaningless")
        return KernelPrior.untrained(max(kernel_size, 31))


def estimate_kernel_size(blurry, kernel_branch: str = "glkm", weights=None, revision=None, seed: int = 0,
                         warn=print, pm=None, progress: bool = False) -> dict:
    """``--kernel-size auto``: the blur size of ``blurry`` (1, C, H, W) estimated by a coarse run of
    the fast method with ``kernel_branch`` (``glkm_adapters.fast.estimate_kernel_size``); returns
    its report (``kernel_size``, ``extent``, ``max_size``, ``seconds``)."""
    from glkm_adapters.fast import SIZE_PROBE, estimate_kernel_size as estimate

    prior = load_prior(weights, SIZE_PROBE, revision, warn=warn) if kernel_branch == "glkm" else None
    return estimate(blurry, kernel_branch=kernel_branch, prior=prior, seed=seed, pm=pm, progress=progress)
