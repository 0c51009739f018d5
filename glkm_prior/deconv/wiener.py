"""Tikhonov / Wiener deconvolution (closed form, or preconditioned CG for the 'valid' model)."""

from __future__ import annotations

from typing import Optional, Tuple

import torch

from .boundary import _Domain
from .operators import _QuadraticSolver
from .tiling import TileArg, _run
from .validation import _check_boundary, _check_int, _check_positive


def _rfft_weights(shape: Tuple[int, int], device=None) -> torch.Tensor:
    """Column weights that make sums over an rfft2 half-spectrum equal full-spectrum sums."""
    W = int(shape[1])
    w = torch.full((W // 2 + 1,), 2.0, dtype=torch.float32, device=device)
    w[0] = 1.0
    if W % 2 == 0:
        w[-1] = 1.0
    return w


def _masked_quadratic_pcg(solver: _QuadraticSolver, dom: _Domain, weight: float,
                          max_iter: int = 50, tol: float = 1e-3) -> torch.Tensor:
    """Exact 'valid'-model quadratic solve by preconditioned CG, in the Fourier domain.

    Solves ``(K^T M K + weight D^T D) x = K^T M y`` (``M`` = observed frame) with the circulant
    preconditioner ``(K^T K + weight D^T D)^-1`` (the closed-form solve), started from the
    closed-form solution on the tapered image.  Each iteration costs one rfft2/irfft2 pair.
    """
    shape = solver.shape
    otf = solver.otf
    otf_c = otf.conj()
    den = solver.denom(weight)
    m = dom.mask()
    cw = _rfft_weights(shape, device=otf.device)

    def dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return ((a.real * b.real + a.imag * b.imag) * cw).sum(dim=(-2, -1), keepdim=True)

    def op(P: torch.Tensor) -> torch.Tensor:
        ax = torch.fft.irfft2(P * otf_c, s=shape) * m
        return otf * torch.fft.rfft2(ax) + float(weight) * solver.dtd * P

    y0 = torch.zeros_like(dom.y)
    b = otf * torch.fft.rfft2(dom.fill(y0))
    X = solver.solve_spectral(weight)          # closed form on the tapered image: warm start
    R = b - op(X)
    Z = R / den
    P = Z
    rz = dot(R, Z)
    rz0 = rz.clamp(min=1e-30)
    for _ in range(max_iter):
        if bool((rz <= (tol * tol) * rz0).all()):
            break
        Q = op(P)
        pq = dot(P, Q)
        a = torch.where(pq > 0, rz / pq.clamp(min=1e-30), torch.zeros_like(pq))
        X = X + a * P
        R = R - a * Q
        Z = R / den
        rz_new = dot(R, Z)
        P = Z + (rz_new / rz.clamp(min=1e-30)) * P
        rz = rz_new
    return solver.spatial(X)


def wiener_deconv(y: torch.Tensor, k: torch.Tensor, *, reg: float = 1e-2, grad_reg: bool = True,
                  boundary: str = "valid", tile: TileArg = "auto", overlap: Optional[int] = None,
                  clip: bool = True, cg_iters: int = 20, cg_tol: float = 1e-3) -> torch.Tensor:
    """Tikhonov / Wiener deconvolution with a gradient (or identity) regulariser.

    Solves ``argmin_x ||k * x - y||^2 + reg * (||Dx x||^2 + ||Dy x||^2)`` (``grad_reg=True``)
    or ``... + reg * ||x||^2`` (``grad_reg=False``).  With ``boundary='taper'`` (or
    ``'periodic'``) this is one FFT division on the padded image; with the default
    ``boundary='valid'`` the data term covers only the observed frame and the closed-form
    solution is refined by <= ``cg_iters`` preconditioned CG iterations (see the module
    docstring for conventions, boundary handling and tiling).

    Args:
        y: blurry image(s), ``(B, C, H, W)`` float in [0, 1].
        k: kernel ``(Kh, Kw)`` or ``(B, 1, Kh, Kw)`` (cross-correlation convention).
        reg: regularisation weight (> 0); the default 1e-2 suits ~1 % noise with the gradient
            regulariser.
        grad_reg: gradient (first-difference) regulariser if True, identity if False.
        boundary: ``'valid'`` (default), ``'taper'`` (mirror pad + edgetaper, closed form) or
            ``'periodic'``.
        tile: ``'auto'`` (tile above 2048x2048 pixels), None (never) or a tile size.
        overlap: tile overlap in pixels (default ``max(4 K, 64)``; must be >= 2 K).
        clip: clamp the result to [0, 1].
        cg_iters: maximum CG iterations for ``boundary='valid'`` (0: closed form only).
        cg_tol: CG stops when the preconditioned residual norm fell by this factor.

    Returns:
        float32 tensor of the shape of ``y``.

    Raises:
        InvalidInputError: non-4-D or non-float ``y``, NaN/Inf, bad kernel, kernel larger than
        the image (:class:`KernelSizeError`), bad parameters.
    """
    reg = _check_positive("reg", reg)
    boundary = _check_boundary(boundary)
    grad_reg = bool(grad_reg)
    cg_iters = _check_int("cg_iters", cg_iters, 0)
    cg_tol = _check_positive("cg_tol", cg_tol, strict=False)

    def fn(img: torch.Tensor, kk: torch.Tensor) -> torch.Tensor:
        dom = _Domain(img, kk, boundary)
        solver = _QuadraticSolver(dom.y, kk, grad_reg=grad_reg)
        if dom.masked:
            return dom.crop(_masked_quadratic_pcg(solver, dom, reg, max_iter=cg_iters, tol=cg_tol))
        return dom.crop(solver.solve(reg))

    return _run(y, k, fn, tile=tile, overlap=overlap, clip=clip)
