"""Kernel estimation with any kernel branch, coarse to fine (the estimator of the ``fast`` method,
adapters/fast.py; also the SVOLA cells and ``--kernel-size auto``).

Each pyramid level alternates a closed-form sharp-edge image step (L0 gradient prior, FFT
half-quadratic splitting) with Adam steps on the kernel branch's parameters against a quadratic
gradient-domain data term (glkm_prior/kernel_estimation.py). The branch makes ``K_b`` px kernels;
levels run at image scales ``K_b / K`` and below (factors of sqrt(2), down to ``min_kernel``
px), each resampling the branch's kernel to its size; when ``K > K_b`` the finer levels refine
the upsampled kernel in pixel space (Adam on softmax logits, same data term).

Kernel-step objective: ``Q(k) + kernel_l2 ||k||^2`` (the L2 term stands in for the variance term
of a marginal-likelihood kernel update, against drift towards compact "no-blur" kernels).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import GLKMError, InvalidInputError, with_defaults
from ..kernel_estimation import (KernelDataTerm, StackedDataTerms, clean_kernel, l0_image_step, odd, resize_image,
                                 resize_kernel)
from ..prior import KernelPrior, select_prior_folder

#: The estimator's settings (the ``fast`` method's options; :func:`resolve_options`).
DEFAULTS = {
    "iters": 4,             # image/kernel alternations per pyramid level (`--iters 6`: Levin 29.6 -> 30.0
                            # dB but Lai-sized 25.4 -> 24.3 dB)
    "kernel_steps": 50,     # Adam steps on the branch per alternation
    "lam_image": 8e-3,      # L0 weight of the sharp-edge image step, decayed per alternation
    "lam_decay": 0.9,
    "lam_min": 3e-4,
    "min_kernel": 5,        # kernel size at the coarsest level
    "max_side": 800,        # estimation crop (px of the full image)
    "pixel_lr": 1e-2,       # Adam rate of pixel-space kernel logits (levels finer than the branch)
    "kernel_threshold": 0.05,
    "kernel_l2": 1.0,       # ||k||^2 weight against compact (no-blur) kernels; Levin / Lai-sized
                            # mean dB with 0.02: 28.3 / 24.7, 1.0: 29.6 / 25.4, 3.0: 29.4 / 24.1
    "branch_canvas": 31,    # GLKM: the prior canvas used for every kernel size (note below)
    "pixel_refine": True,   # refine kernels larger than the branch in pixel space at the finer levels;
                            # False (the branch's kernel upsampled), --kernel-size auto: Levin 29.56 ->
                            # 29.15 dB, Lai-sized 26.16 -> 26.39 dB; on 10 lai_real photos whose kernel
                            # collapsed or rang: NIQE worse on 8, PIQE on 10 (larger, broken-up kernels)
}
#: The GLKM start (``init``) of this estimator's branch: the paper's ``G.head(E(y))``, from which
#: ``fast``'s and ``--kernel-size auto``'s figures were measured (its coarse-to-fine estimation is the
#: refinement), not the branch's default ``estimate`` (a second, classical estimation first).
BRANCH_INIT = "initializer"
LOOP = "fast"  # the name under which kernel branches give this loop's Adam rate (KernelBranch.loop_lr)
#: Why ``branch_canvas`` is 31: the GLKM branch of the fast method uses the bundle's 31-px prior for every
#: kernel size (option ``branch_canvas``; larger kernels on the image scaled by 31 / K, refined in
#: pixel space), not the 75-px member: with ``--kernel-size auto`` on Levin (true extents 9-25 px,
#: 15 of 32 images estimated at 35-75 px) 29.56 dB vs 28.97 dB with ``branch_canvas=75``;
#: Lai-sized set, auto: 26.16 vs 26.21 dB; given 75 px: 25.49 vs 25.88 dB (RESULTS.md, "The fast
#: method").


def resolve_options(options: dict, iters=None) -> dict:
    """:data:`DEFAULTS` updated with ``options`` (unknown keys raise) and ``iters``."""
    cfg = with_defaults(DEFAULTS, options, "method 'fast'")
    if iters is not None:
        cfg["iters"] = int(iters)
    if cfg["iters"] < 0:
        raise InvalidInputError(f"iters must be >= 0, got {cfg['iters']}")
    if cfg["kernel_steps"] < 1:
        raise InvalidInputError(f"kernel_steps must be >= 1, got {cfg['kernel_steps']}")
    if isinstance(cfg["branch_canvas"], bool) or not isinstance(cfg["branch_canvas"], int) or cfg["branch_canvas"] < 3:
        raise InvalidInputError(f"branch_canvas must be a kernel size >= 3 (31 or 75), got {cfg['branch_canvas']!r}")
    if not isinstance(cfg["pixel_refine"], bool):
        raise InvalidInputError(f"pixel_refine must be true or false, got {cfg['pixel_refine']!r}")
    return cfg


def branch_prior(prior: KernelPrior | None, kernel_size: int, weights=None, canvas: int | None = None) -> KernelPrior:
    """The prior a GLKM branch of this estimator uses: the bundle member for ``min(kernel_size, canvas)``.
    A ``prior`` with a larger canvas that comes from a bundle (e.g. ``weights/k75``) is swapped for
    that bundle's member; any other ``prior`` is used as it is; None loads from ``weights``.
    ``canvas`` defaults to ``DEFAULTS["branch_canvas"]``."""
    canvas = DEFAULTS["branch_canvas"] if canvas is None else int(canvas)
    wanted = min(int(kernel_size), canvas)
    if prior is None:
        return KernelPrior.from_pretrained(weights, kernel_size=wanted, largest_if_too_small=True)
    if prior.size <= canvas or not prior.source or prior.source == "untrained":
        return prior
    bundle = Path(prior.source).parent
    try:
        member = select_prior_folder(bundle, wanted)
    except (GLKMError, OSError):
        return prior  # a stand-alone prior folder: use it as it is
    if member == Path(prior.source):
        return prior
    return KernelPrior.from_pretrained(member)


def branch_levels(kernel_size: int, branch_size: int, min_kernel: int) -> list[tuple[float, int, bool]]:
    """Levels coarse to fine as (image scale, kernel size, uses the branch) for ``kernel_size``
    px kernels from a ``branch_size`` px branch."""
    base = branch_size / kernel_size
    levels = []
    n = 1  # the branch's own size always runs
    while branch_size * 0.5 ** (n / 2) >= min_kernel and n < 12:
        n += 1
    for i in reversed(range(n)):
        levels.append((base * 0.5 ** (i / 2), odd(branch_size * 0.5 ** (i / 2)), True))
    scale = base
    while scale < 1.0:
        scale = min(1.0, scale * 2 ** 0.5)
        levels.append((scale, kernel_size if scale == 1.0 else odd(kernel_size * scale), False))
    return levels


def _data_terms(ys_l, kernels, lam, size):
    """The kernel step's data term for the current ``kernels`` (N, 1, size, size): each image's
    L0 image step; on an image over 4x the kernel a ``size``-px frame is left out (the periodic
    image step is unreliable near the frame)."""
    terms = []
    m = size
    for n, y_l in enumerate(ys_l):
        x = l0_image_step(y_l, kernels[n: n + 1], lam)
        if min(y_l.shape[-2:]) > 4 * size:
            terms.append(KernelDataTerm(x[..., m:-m, m:-m], y_l[..., m:-m, m:-m], size))
        else:
            terms.append(KernelDataTerm(x, y_l, size))
    return StackedDataTerms(terms)


def _alternate(ys_l, size, kernel_of, params, lr, cfg, state, trace, bar=None, project=None, penalty=None):
    """One pyramid level: ``cfg['iters']`` alternations of closed-form image steps and
    ``cfg['kernel_steps']`` Adam steps on ``params``. ``state`` carries ``lam`` and the Adam step
    count across levels (``project(step)`` runs after every Adam step), ``trace`` gets one entry
    per alternation, ``bar`` one update. Returns the level's kernel."""
    opt = torch.optim.Adam(params, lr=lr)
    for _ in range(cfg["iters"]):
        with torch.no_grad():
            current = clean_kernel(kernel_of(), cfg["kernel_threshold"])
        term = _data_terms(ys_l, current, state["lam"], size)
        for _ in range(cfg["kernel_steps"]):
            opt.zero_grad(set_to_none=True)
            k = kernel_of()
            loss = (term(k) + cfg["kernel_l2"] * k.square().sum(dim=(1, 2, 3))).sum()
            if penalty is not None:
                loss = loss + penalty()
            loss.backward()
            opt.step()
            if project is not None:
                project(state["step"])
            state["step"] += 1
        trace.append({"kernel_size": size, "data_term": float(loss.detach()) / len(ys_l)})
        state["lam"] = max(state["lam"] * cfg["lam_decay"], cfg["lam_min"])
        if bar is not None:
            bar.update(1)
    with torch.no_grad():
        return kernel_of().detach()


def estimate_kernels(ys, kernel_size, branch, branch_size, cfg, *, lr, progress=False,
                     desc="fast kernel estimation", finest_levels=None, penalty=None):
    """Coarse-to-fine kernel estimation of N images at once, each with its own kernel.

    ``ys``: N luma images (1, 1, h_n, w_n); ``branch()`` -> (N, 1, branch_size, branch_size), its
    ``parameters()`` are optimised (the N problems are independent: their losses add up and
    Adam is element-wise); ``branch.project_(step)`` runs after every Adam step; ``finest_levels`` runs only that many of the
    finest pyramid levels (a refinement of a kernel that is already close); ``penalty()``, if
    given, is added to the branch levels' loss (e.g. a pull towards a reference latent). Returns
    ``(kernels (N, 1, K, K), trace, steps)``.
    """
    K = int(kernel_size)
    levels = branch_levels(K, branch_size, cfg["min_kernel"])
    if not cfg["pixel_refine"]:
        levels = [level for level in levels if level[2]]
    if finest_levels is not None:
        levels = levels[-int(finest_levels):]
    params = list(branch.parameters())
    state = {"lam": cfg["lam_image"], "step": 0}
    trace = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(levels) * cfg["iters"], desc=desc, leave=False)

    kernel = None
    for scale, size, uses_branch in levels:
        ys_l = [resize_image(y, scale) for y in ys]
        if min(min(y_l.shape[-2:]) for y_l in ys_l) < 2 * size:
            continue
        if uses_branch:
            def branch_kernel(size=size):
                return resize_kernel(branch(), size)

            kernel = _alternate(ys_l, size, branch_kernel, params, lr, cfg, state, trace, bar,
                                project=branch.project_, penalty=penalty)
        else:  # pixel space: softmax over free logits, started at the upsampled kernels
            if kernel is None:  # every branch level was too small for its image
                with torch.no_grad():
                    kernel = branch()
            logits = torch.nn.Parameter(resize_kernel(kernel, size).clamp_min(1e-6).log())

            def pixel_kernel(logits=logits):
                return torch.softmax(logits.flatten(1), 1).reshape(logits.shape)

            kernel = _alternate(ys_l, size, pixel_kernel, [logits], cfg["pixel_lr"], cfg, state, trace, bar)
    if bar is not None:
        bar.close()
    if kernel is None or kernel.shape[-1] != K:  # no level ran at full size (iters=0 or tiny image)
        with torch.no_grad():
            kernel = resize_kernel(branch() if kernel is None else kernel, K)
    return clean_kernel(kernel.detach(), cfg["kernel_threshold"]), trace, state["step"]
