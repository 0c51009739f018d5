"""FFT operators shared by the deconvolution solvers (and by :mod:`glkm_prior.kernel_estimation`).

Circular forward differences, their adjoint and their Fourier energy, and the closed-form
circular quadratic solver (the x-step of both solvers). The OTF is
:func:`glkm_prior.physics.kernel_otf`; conventions in :mod:`glkm_prior.deconv`.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import torch

from ..physics import kernel_otf


def gradient_otf_energy(shape: Tuple[int, int], device=None) -> torch.Tensor:
    """``|Dx|^2 + |Dy|^2`` of the circular forward differences on an ``(H, W)`` domain.

    Real-FFT layout: a float32 tensor of shape ``(H, W//2+1)`` (the Fourier diagonal of
    ``D^T D`` for :func:`circular_gradient`).
    """
    H, W = int(shape[0]), int(shape[1])
    fy = torch.arange(H, dtype=torch.float64, device=device)
    fx = torch.arange(W // 2 + 1, dtype=torch.float64, device=device)
    ey = 2.0 - 2.0 * torch.cos(2.0 * math.pi * fy / H)
    ex = 2.0 - 2.0 * torch.cos(2.0 * math.pi * fx / W)
    return (ey[:, None] + ex[None, :]).to(torch.float32)


def circular_gradient(x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Circular forward differences ``(Dx x, Dy x)`` of ``x`` (``(..., H, W)``), same shape.

    ``Dx x = x[i, j+1] - x[i, j]``, ``Dy x = x[i+1, j] - x[i, j]``, wrapping at the far edge.
    """
    return torch.roll(x, -1, dims=-1) - x, torch.roll(x, -1, dims=-2) - x


def circular_gradient_adjoint(wx: torch.Tensor, wy: torch.Tensor) -> torch.Tensor:
    """``Dx^T wx + Dy^T wy``: adjoint of :func:`circular_gradient`; ``(..., H, W)`` in and out."""
    return (torch.roll(wx, 1, dims=-1) - wx) + (torch.roll(wy, 1, dims=-2) - wy)


class _QuadraticSolver:
    """Closed-form solver of the circular quadratic problem on a fixed domain.

    ``solve(weight, rhs)`` returns::

        argmin_x 1/2 ||k * x - y||^2 + weight/2 * ||D x - w||^2

    where ``D`` is the gradient ``(Dx, Dy)`` (``grad_reg=True``) or the identity, and
    ``rhs = D^T w`` (``None`` means ``w = 0``), i.e. the solution of
    ``(K^T K + weight D^T D) x = K^T y + weight rhs``.  Everything that depends on the OTF
    (``K^T y``, ``|K|^2``, ``|D|^2``) is computed once in the constructor.
    """

    def __init__(self, y: torch.Tensor, k: torch.Tensor, grad_reg: bool = True) -> None:
        self._denom: Optional[Tuple[float, torch.Tensor]] = None
        self.shape = tuple(y.shape[-2:])
        otf = kernel_otf(k.to(torch.float32), self.shape)
        self.otf = otf
        self.kty = torch.fft.rfft2(y) * otf
        self.ktk = otf.real.square() + otf.imag.square()
        if grad_reg:
            self.dtd = gradient_otf_energy(self.shape, device=y.device)
        else:
            self.dtd = torch.ones_like(self.ktk)

    def set_data(self, u: torch.Tensor) -> None:
        """Replace the data ``y`` of the data term (used by the masked 'valid' model)."""
        self.kty = torch.fft.rfft2(u) * self.otf

    def denom(self, weight: float) -> torch.Tensor:
        """``|K|^2 + weight |D|^2`` (the last one is cached: reused while beta is unchanged)."""
        weight = float(weight)
        if self._denom is None or self._denom[0] != weight:
            self._denom = (weight, self.ktk + weight * self.dtd)
        return self._denom[1]

    def solve_spectral(self, weight: float, rhs: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Like :meth:`solve` but returns ``rfft2`` of the solution."""
        denom = self.denom(weight)
        num = self.kty
        if rhs is not None:
            num = num + float(weight) * torch.fft.rfft2(rhs)
        return num / denom

    def spatial(self, X: torch.Tensor) -> torch.Tensor:
        return torch.fft.irfft2(X, s=self.shape)

    def blur(self, X: torch.Tensor) -> torch.Tensor:
        """``k * x`` (circular correlation) for ``X = rfft2(x)``."""
        return torch.fft.irfft2(X * self.otf.conj(), s=self.shape)

    def solve(self, weight: float, rhs: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.spatial(self.solve_spectral(weight, rhs))
