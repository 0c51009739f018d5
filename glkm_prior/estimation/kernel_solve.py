"""Least-squares kernel step in the gradient domain (Cho & Lee 2009; Pan et al. 2014/2016).

For gradient images ``p_d`` of the sharp estimate (``d`` in x, y; size ``(h + K - 1, w + K - 1)``,
usually after edge selection) and gradients ``b_d`` of the blurry image (``(h, w)``), the kernel
minimises, in the project's 'valid' cross-correlation geometry (physics.py)::

    E(k) = sum_d || corr_valid(p_d, k) - b_d ||^2 + ridge * ||k||^2

with unnormalised data (images in [0, 1]; Pan et al.'s ridge weight is 2). The normal equations
``(A + ridge I) k = c`` are solved by conjugate gradients started from the uniform kernel,
``iters`` (20) iterations or until ``||residual|| < tol`` (1e-5), as the published code does;
``A`` is applied exactly (no circular wrap-around) with FFTs whose spectra of ``p_d`` are
computed once. Negative entries are left to the pruning step (pruning.py).
"""

from __future__ import annotations

import torch

from glkm_prior.errors import InvalidInputError
from glkm_prior.physics import fast_fft_size


class ValidGram:
    """``k -> A k`` and ``c`` of the module's normal equations for fixed ``p_d`` and ``b_d``."""

    def __init__(self, ps: list[torch.Tensor], bs: list[torch.Tensor], kernel_size: int):
        K = int(kernel_size)
        if len(ps) != len(bs) or not ps:
            raise InvalidInputError("need as many gradient images of the sharp estimate as of the blurry image")
        for p, b in zip(ps, bs):
            if p.shape[-2:] != (b.shape[-2] + K - 1, b.shape[-1] + K - 1):
                raise InvalidInputError(f"sharp gradients {tuple(p.shape[-2:])} must be blurry gradients "
                                        f"{tuple(b.shape[-2:])} + K - 1 (K={K})")
        self.K = K
        self.out = tuple(bs[0].shape[-2:])
        self.shape = (fast_fft_size(ps[0].shape[-2]), fast_fft_size(ps[0].shape[-1]))
        self.spectra = [torch.fft.rfft2(p.reshape(p.shape[-2:]), s=self.shape) for p in ps]
        self.rhs = sum(self._adjoint(P, b.reshape(b.shape[-2:])) for P, b in zip(self.spectra, bs))

    def _forward(self, P: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """corr_valid(p, k) (h, w): correlation with the kernel at the origin has no wrap-around
        on the valid window, so zero padding to ``shape`` is exact."""
        full = torch.fft.irfft2(P * torch.fft.rfft2(k, s=self.shape).conj(), s=self.shape)
        return full[: self.out[0], : self.out[1]]

    def _adjoint(self, P: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """corr_valid(p, r) (K, K): the adjoint of :meth:`_forward` in ``k``."""
        full = torch.fft.irfft2(P * torch.fft.rfft2(r, s=self.shape).conj(), s=self.shape)
        return full[: self.K, : self.K]

    def apply(self, k: torch.Tensor) -> torch.Tensor:
        """``A k`` for a (K, K) kernel."""
        return sum(self._adjoint(P, self._forward(P, k)) for P in self.spectra)


def conjugate_gradient(apply, rhs: torch.Tensor, x0: torch.Tensor, iters: int, tol: float) -> torch.Tensor:
    """Plain CG for a symmetric positive definite operator ``apply``; stops after ``iters``
    iterations or when the residual norm drops below ``tol``."""
    x = x0.clone()
    r = rhs - apply(x)
    p = r.clone()
    rs_old = float((r * r).sum())
    for _ in range(int(iters)):
        if rs_old ** 0.5 < tol:
            break
        Ap = apply(p)
        curvature = float((p * Ap).sum())
        if not curvature > 0:
            break
        alpha = rs_old / curvature
        x = x + alpha * p
        r = r - alpha * Ap
        rs_new = float((r * r).sum())
        p = r + (rs_new / rs_old) * p
        rs_old = rs_new
    return x


def solve_kernel(ps: list[torch.Tensor], bs: list[torch.Tensor], kernel_size: int, *, ridge: float = 2.0,
                 iters: int = 20, tol: float = 1e-5, init: torch.Tensor | None = None) -> torch.Tensor:
    """Least-squares kernel (1, 1, K, K) of the module doc (not clamped or normalised).
    ``ps``/``bs``: lists of (h + K - 1, w + K - 1) / (h, w) tensors (any leading singleton dims);
    ``init`` defaults to the uniform kernel. Works in the dtype of ``ps``."""
    if ridge < 0:
        raise InvalidInputError(f"ridge must be >= 0, got {ridge!r}")
    gram = ValidGram(ps, bs, kernel_size)
    K = gram.K
    dtype = gram.rhs.dtype
    x0 = torch.full((K, K), 1.0 / (K * K), dtype=dtype) if init is None else init.reshape(K, K).to(dtype)
    k = conjugate_gradient(lambda v: gram.apply(v) + ridge * v, gram.rhs, x0, iters, tol)
    return k[None, None]
