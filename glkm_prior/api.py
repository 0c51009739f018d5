"""The small programmatic API, shared by the CLI and the benchmark runner: loading the prior with
a clear fallback (:func:`load_prior`), the automatic kernel size (:func:`estimate_kernel_size`)
and one call that deblurs an image with any registered method (:func:`deblur`)."""

from __future__ import annotations

from .context import RunContext, as_context
from .errors import InvalidInputError, WeightsError


def load_prior(weights, kernel_size: int, revision=None, warn=print, local_files_only=None):
    """The trained prior; if none is bundled yet, an untrained one with a loud warning."""
    from .prior import KernelPrior

    hub = {} if local_files_only is None else {"local_files_only": local_files_only}
    try:  # a kernel larger than every canvas gets the largest prior; methods check .size
        return KernelPrior.from_pretrained(weights, kernel_size=kernel_size, revision=revision, largest_if_too_small=True,
                                           **hub)
    except WeightsError as exc:
        if weights is not None or "no trained prior" not in str(exc):
            raise
        warn(f"glkm: warning: {exc}; running with an UNTRAINED (random) prior: the kernel estimate is meaningless")
        return KernelPrior.untrained(max(kernel_size, 31))


def context_prior(context: RunContext | None, kernel_size: int):
    """:func:`load_prior` from the run context's ``weights``, ``revision``, ``local_files_only``
    and ``warn``."""
    ctx = as_context(context)
    return load_prior(ctx.weights, kernel_size, warn=ctx.warn, **ctx.prior_source())


def estimate_kernel_size(blurry, kernel_branch: str = "glkm", seed: int = 0, progress: bool = False, *,
                         context: RunContext | None = None) -> dict:
    """``--kernel-size auto``: the blur size of ``blurry`` (1, C, H, W) estimated by a coarse run of
    the fast method's estimator with ``kernel_branch`` (:mod:`glkm_prior.estimation.kernel_size`); returns
    its report (``kernel_size``, ``extent``, ``max_size``, ``seconds``). The prior (for a branch
    that uses one) and the plugin manager come from ``context``."""
    from .estimation.kernel_size import SIZE_PROBE, estimate_kernel_size as estimate

    from .plugins import branch_uses_prior

    ctx = as_context(context)
    pm = ctx.plugin_manager()
    prior = context_prior(ctx, SIZE_PROBE) if branch_uses_prior(kernel_branch, pm) else None
    return estimate(blurry, kernel_branch=kernel_branch, prior=prior, seed=seed, pm=pm, progress=progress)


def deblur(blurry, method: str = "l0", *, kernel_size="auto", kernel_branch: str = "glkm", seed: int = 0,
           iters=None, progress: bool = False, on_kernel_size=None, context: RunContext | None = None,
           **options) -> dict:
    """Blind-deblur ``blurry`` ((1, 1|3, H, W) tensor in [0, 1]) with the registered ``method``
    (``glkm plugins``; ``glkm deblur`` runs this). ``kernel_size``: an odd size, or ``"auto"``
    (:func:`estimate_kernel_size`; ``on_kernel_size(report)`` is called with its report before
    the method runs). The GLKM prior is loaded when the branch's class asks for one
    (``uses_prior``: glkm); ``options`` go to the method (unknown ones raise); ``progress``:
    tqdm bars on stderr (size estimate, method). ``context``: a :class:`~glkm_prior.context.RunContext`
    (plugin manager, prior weights and revision, where warnings go; None: the defaults), passed
    on to a method whose run function names ``context``.
    Returns the method's ``{"image", "kernel", "info", ...}`` plus
    ``kernel_size``, ``kernel_size_estimate`` (None unless auto), ``prior`` and ``seconds`` (the
    size estimate included)."""
    import time

    import torch

    from . import plugins
    from .branch import check_blurry
    from .prior import check_kernel_size

    check_blurry(blurry)
    if blurry.shape[0] != 1:
        raise InvalidInputError(f"deblur takes one image (1, C, H, W), got a batch of {blurry.shape[0]}")
    if kernel_size != "auto":
        check_kernel_size(kernel_size)
    ctx = as_context(context)
    pm = ctx.plugin_manager()
    registration = plugins.get_method(method, pm)
    options = plugins.check_options(registration, options)  # declared options dataclass (plugins.MethodSpec)
    plugins.check_method_branch(registration, kernel_branch)
    estimate = None
    if kernel_size == "auto":
        estimate = estimate_kernel_size(blurry, kernel_branch, seed, progress, context=ctx)
        kernel_size = estimate["kernel_size"]
        if on_kernel_size is not None:
            on_kernel_size(estimate)
    prior = context_prior(ctx, kernel_size) if plugins.branch_uses_prior(kernel_branch, pm) else None
    call = {"prior": prior} if prior is not None else {}
    if plugins.takes_context(registration):
        call["context"] = ctx
    if iters is not None:
        call["iters"] = iters
    if progress and registration.spec.progress:  # declared at registration (plugins.MethodSpec)
        call["progress"] = True
    call.update(options)
    torch.manual_seed(seed)
    start = time.perf_counter()
    result = registration.factory(blurry, kernel_size=kernel_size, kernel_branch=kernel_branch, seed=seed, **call)
    seconds = time.perf_counter() - start + (estimate["seconds"] if estimate else 0.0)
    return {**result, "kernel_size": kernel_size, "kernel_size_estimate": estimate, "prior": prior, "seconds": seconds}
