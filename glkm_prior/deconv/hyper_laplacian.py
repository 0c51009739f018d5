"""Krishnan & Fergus (2009) hyper-Laplacian deconvolution: the per-pixel w-step and the
half-quadratic splitting loop (objective and schedule in :mod:`glkm_prior.deconv`)."""

from __future__ import annotations

import math
from typing import List, Optional

import torch

from ..errors import InvalidInputError
from .boundary import _Domain
from .operators import _QuadraticSolver, circular_gradient, circular_gradient_adjoint
from .tiling import TileArg, _run
from .validation import _check_boundary, _check_int, _check_positive

#: Newton iterations of the hyper-Laplacian w-step (float32-exact after 3-4 for alpha <= 0.8).
_NEWTON_ITERS = 4


def _hl_threshold(beta: float, alpha: float) -> float:
    """Smallest ``|v|`` for which ``argmin_w |w|^alpha + beta/2 (w-v)^2`` is non-zero.

    Generalised soft-thresholding threshold (Zuo et al., ICCV 2013) with ``lambda = 1/beta``.
    """
    if alpha >= 1.0:
        return 1.0 / beta
    lam = 1.0 / beta
    a = 2.0 * lam * (1.0 - alpha)
    return a ** (1.0 / (2.0 - alpha)) + lam * alpha * a ** ((alpha - 1.0) / (2.0 - alpha))


def _hl_wstep(v: torch.Tensor, beta: float, alpha: float,
              newton_iters: int = _NEWTON_ITERS) -> torch.Tensor:
    """Per-element ``argmin_w |w|^alpha + beta/2 (w - v)^2`` for ``0 < alpha <= 1``.

    Below the threshold (:func:`_hl_threshold`) the minimiser is 0; above it, it is the larger
    root of ``g(w) = alpha w^(alpha-1) + beta (w - |v|)`` on ``(0, |v|)`` (with the sign of
    ``v``).  ``g`` is convex and increasing there and ``g(|v|) > 0``, so Newton started at
    ``|v|`` decreases monotonically to that root.
    """
    beta = float(beta)
    alpha = float(alpha)
    if alpha >= 1.0:
        return torch.sign(v) * torch.clamp(v.abs() - 1.0 / beta, min=0.0)
    tau = _hl_threshold(beta, alpha)
    mask = v.abs() > tau
    w = torch.zeros_like(v)
    vm = v[mask]
    if vm.numel() == 0:
        return w
    u = vm.abs()
    z = u.clone()
    am1 = alpha - 1.0
    c2 = alpha * am1
    for _ in range(newton_iters):
        # Newton step z -= g / g' computed as (z g) / (z g') (no negative powers of z needed
        # beyond z^(alpha-1)), in place to keep the number of passes over memory low.
        zp = z.pow(am1)
        t = z - u
        t.mul_(beta).add_(zp, alpha=alpha).mul_(z)        # z * g(z)
        zp.mul_(c2).add_(z, alpha=beta)                  # z * g'(z)  (> 0 right of the root)
        z.sub_(t.div_(zp)).clamp_(min=1e-30)
    w.masked_scatter_(mask, torch.copysign(z, vm))
    return w


def _hl_solve(dom: _Domain, k: torch.Tensor, lam: float, alpha: float, betas: List[float],
              iters_per_beta: int) -> torch.Tensor:
    """Half-quadratic splitting on the (already padded) circular domain.

    For the masked 'valid' model the data of the x-step is refreshed after every x-step with
    ``u = y`` on the observed frame and ``u = k * x`` outside it: a majorise-minimise step for
    ``1/2 ||M (k * x - y)||^2`` (it costs one extra rfft2/irfft2 pair per iteration).
    """
    solver = _QuadraticSolver(dom.y, k, grad_reg=True)
    x = dom.y
    n_total = len(betas) * iters_per_beta
    n = 0
    for beta in betas:
        for _ in range(iters_per_beta):
            n += 1
            vx, vy = circular_gradient(x)
            wx = _hl_wstep(vx, beta, alpha)
            del vx
            wy = _hl_wstep(vy, beta, alpha)
            del vy
            X = solver.solve_spectral(lam * beta, circular_gradient_adjoint(wx, wy))
            del wx, wy
            x = solver.spatial(X)
            if dom.masked and n < n_total:
                solver.set_data(dom.fill(solver.blur(X)))
    return x


def hyper_laplacian_deconv(y: torch.Tensor, k: torch.Tensor, *, lam: float = 1e-3,
                           alpha: float = 2.0 / 3.0, beta0: float = 1.0,
                           beta_rate: float = 2.0 * math.sqrt(2.0), beta_max: float = 256.0,
                           iters_per_beta: int = 1, boundary: str = "valid",
                           tile: TileArg = "auto", overlap: Optional[int] = None,
                           clip: bool = True, saturation: Optional[float] = None) -> torch.Tensor:
    """Krishnan & Fergus (2009) hyper-Laplacian deconvolution.

    Minimises ``1/2 ||k * x - y||^2 + lam * sum(|Dx x|^alpha + |Dy x|^alpha)`` by half-quadratic
    splitting with ``beta = beta0 * beta_rate**i <= beta_max`` (``iters_per_beta`` alternations of
    exact w-step and closed-form FFT x-step per value).  ``lam = 1 / lambda`` of Krishnan's code.

    Args:
        y: blurry image(s), ``(B, C, H, W)`` float in [0, 1].
        k: kernel ``(Kh, Kw)`` or ``(B, 1, Kh, Kw)`` (cross-correlation convention).
        lam: prior weight (> 0); the default 1e-3 suits ~1 % noise.
        alpha: exponent in (0, 1]; 2/3 (default), 1/2 or 0.8 are typical.
        beta0, beta_rate, beta_max: continuation schedule (defaults as in Krishnan's code).
        iters_per_beta: alternations per beta value (>= 1).
        boundary: ``'valid'`` (default: masked data term, majorise-minimise refresh of the
            unobserved data after each x-step), ``'taper'`` (mirror pad + edgetaper only) or
            ``'periodic'``.
        tile: ``'auto'`` (tile above 2048x2048 pixels), None (never) or a tile size.
        overlap: tile overlap in pixels (default ``max(4 K, 64)``; must be >= 2 K).
        clip: clamp the result to [0, 1].
        saturation: with ``'valid'``: pixels of a channel at or above this value, and their 8
            neighbours, are clipped highlights, not observations of ``k * x``; they are left out
            of the data term (filled by the majorise-minimise refresh like the unobserved
            border), so they do not ring. None (default): every pixel is data.

    Returns:
        float32 tensor of the shape of ``y``.

    Raises:
        InvalidInputError: as :func:`wiener_deconv`, plus bad schedule parameters.
    """
    lam = _check_positive("lam", lam)
    if saturation is not None and not (0.0 < float(saturation) <= 1.0):
        raise InvalidInputError(f"saturation must be in (0, 1] or None, got {saturation!r}")
    alpha = _check_positive("alpha", alpha)
    if alpha > 1.0:
        raise InvalidInputError(f"alpha must be in (0, 1], got {alpha!r}")
    beta0 = _check_positive("beta0", beta0)
    beta_rate = _check_positive("beta_rate", beta_rate)
    if beta_rate <= 1.0:
        raise InvalidInputError(f"beta_rate must be > 1, got {beta_rate!r}")
    beta_max = _check_positive("beta_max", beta_max)
    if beta_max < beta0:
        raise InvalidInputError(f"beta_max ({beta_max}) must be >= beta0 ({beta0})")
    iters_per_beta = _check_int("iters_per_beta", iters_per_beta, 1)
    boundary = _check_boundary(boundary)
    betas = []
    b = beta0
    while b <= beta_max * (1.0 + 1e-9):
        betas.append(b)
        b *= beta_rate

    def fn(img: torch.Tensor, kk: torch.Tensor) -> torch.Tensor:
        dom = _Domain(img, kk, boundary, saturation)
        return dom.crop(_hl_solve(dom, kk, lam, alpha, betas, iters_per_beta))

    return _run(y, k, fn, tile=tile, overlap=overlap, clip=clip)
