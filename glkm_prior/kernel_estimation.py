"""Building blocks of fast blind kernel estimation (glkm_prior/estimation/branch_pyramid.py, the ``fast`` method).

Conventions (as physics.py): images ``(1, 1, H, W)`` float32, values in [0, 1]; kernels
``(1, 1, K, K)``, K odd, non-negative, summing to 1; blur is **cross-correlation** in 'valid'
geometry: the blurry ``y`` (H, W) is explained by a sharp ``x_full`` of size
``(H + K - 1, W + K - 1)``::

    y[i, j] = sum_{a, b} k[a, b] * x_full[i + a, j + b]

Two alternating sub-problems (Pan et al., "L0-regularized intensity and gradient prior",
CVPR 2014 / Xu et al. 2013 style, with the kernel refined through any kernel branch):

* :func:`l0_image_step` -- the sharp-edge intermediate image
  ``argmin_x ||k * x - y||^2 + lam ||grad x||_0``, by half-quadratic splitting: a per-pixel hard
  threshold on the gradient and a closed-form FFT solve, for ``beta = 2 lam, 2 kappa lam, ...
  < beta_max``. It works on a periodic domain around the frame (mirror padding + edgetaper, as
  glkm_prior.deconv's 'taper' boundary) and returns the ``x_full`` window.
* :class:`KernelDataTerm` -- the kernel's data term in the gradient domain,
  ``Q(k) = sum_{d in (x, y)} ||k * D_d x_full - D_d y||^2 / ||D y||^2``, a quadratic
  ``k^T A k - 2 b^T k + c`` whose pieces are computed once per image step (FFTs of image
  size) so that each evaluation costs two FFTs of a ``~2K x 2K`` grid, independent of the
  image size. ``b`` is exact; ``A`` uses the Toeplitz approximation
  ``A[q, q'] = R(q' - q)`` with ``R`` the autocorrelation of ``D x_full`` over the frame window
  shifted by the kernel centre (exact when ``x_full`` vanishes near its border; otherwise off by
  O(K / H)). ``exact=True`` evaluates the same objective directly (for tests).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .deconv.boundary import mirror_pad_and_taper
from .deconv.operators import circular_gradient, circular_gradient_adjoint, gradient_otf_energy
from .errors import InvalidInputError
from .physics import blur, fast_fft_size, kernel_otf


def _check_pair(y: torch.Tensor, k: torch.Tensor) -> None:
    if y.dim() != 4 or y.shape[:2] != (1, 1):
        raise InvalidInputError(f"expected a (1, 1, H, W) image, got {tuple(y.shape)}")
    if k.dim() != 4 or k.shape[:2] != (1, 1) or k.shape[-1] != k.shape[-2] or k.shape[-1] % 2 == 0:
        raise InvalidInputError(f"expected a (1, 1, K, K) kernel with K odd, got {tuple(k.shape)}")
    if min(y.shape[-2:]) < k.shape[-1]:
        raise InvalidInputError(f"image {tuple(y.shape[-2:])} is smaller than the kernel ({k.shape[-1]} px)")


class CircularImageSolver:
    """Closed-form ``argmin_x ||k (*) x - b||^2 + beta (||Dx x - gx||^2 + ||Dy x - gy||^2)`` on a
    periodic domain (``(*)`` circular correlation with centre ``K // 2``, ``D`` circular forward
    differences, all ``(1, 1, H, W)``); the FFTs of ``b`` and ``k`` are taken once."""

    def __init__(self, b: torch.Tensor, k: torch.Tensor):
        self.shape = b.shape[-2:]
        otf = kernel_otf(k[0, 0].float(), self.shape)
        self.kt_b = torch.fft.rfft2(b.float()) * otf  # adjoint of correlation = convolution
        self.k2 = otf.real.square() + otf.imag.square()
        self.d2 = gradient_otf_energy(self.shape, device=b.device)

    def solve(self, beta: float, gx: torch.Tensor, gy: torch.Tensor) -> torch.Tensor:
        rhs = torch.fft.rfft2(circular_gradient_adjoint(gx, gy))
        return torch.fft.irfft2((self.kt_b + beta * rhs) / (self.k2 + beta * self.d2), s=self.shape)


@torch.no_grad()
def l0_image_step(y: torch.Tensor, k: torch.Tensor, lam: float, *, kappa: float = 2.0,
                  beta_max: float = 1e5) -> torch.Tensor:
    """Sharp-edge image ``x_full`` (1, 1, H+K-1, W+K-1) for blurry ``y`` and kernel ``k``:
    ``argmin ||k * x - y||^2 + lam ||grad x||_0`` (L0 of the gradient magnitude, HQS)."""
    _check_pair(y, k)
    if not lam > 0:
        raise InvalidInputError(f"lam must be > 0, got {lam!r}")
    K = k.shape[-1]
    H, W = y.shape[-2:]
    padded, (top, left) = mirror_pad_and_taper(y.float(), k[0, 0].float())
    solver = CircularImageSolver(padded, k)
    x = padded
    beta = 2.0 * lam
    while beta < beta_max:
        gx, gy = circular_gradient(x)
        keep = (gx.square() + gy.square()) >= lam / beta  # hard threshold: exact L0 HQS g-step
        x = solver.solve(beta, gx * keep, gy * keep)
        beta *= kappa
    c = K // 2
    return x[..., top - c: top - c + H + K - 1, left - c: left - c + W + K - 1].contiguous()


def _diffs(img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward differences along x and y, cropped to the valid part (no wrap-around)."""
    return img[..., :, 1:] - img[..., :, :-1], img[..., 1:, :] - img[..., :-1, :]


class KernelDataTerm:
    """Gradient-domain kernel data term ``Q(k)`` for a fixed ``x_full`` and ``y`` (module doc).

    ``Q`` is normalised by ``||D y||^2`` (so it is 1 for ``k * x = 0`` and 0 for a perfect fit).
    Call it with a kernel (1, 1, K, K); it is differentiable in the kernel.
    """

    def __init__(self, x_full: torch.Tensor, y: torch.Tensor, kernel_size: int):
        K = int(kernel_size)
        if x_full.shape[-2:] != (y.shape[-2] + K - 1, y.shape[-1] + K - 1):
            raise InvalidInputError(f"x_full {tuple(x_full.shape[-2:])} must be y {tuple(y.shape[-2:])} + K - 1 (K={K})")
        self.kernel_size = K
        self.x_full, self.y = x_full.detach().float(), y.detach().float()
        self.M = fast_fft_size(2 * K - 1)
        c = K // 2
        R = torch.zeros(2 * K - 1, 2 * K - 1, dtype=torch.float64)
        b = torch.zeros(K, K, dtype=torch.float64)
        energy = 0.0
        for xd, yd in zip(_diffs(self.x_full[0, 0]), _diffs(self.y[0, 0])):
            xd, yd = xd.double(), yd.double()
            b += blur(xd[None, None], yd[None, None], "valid", method="fft")[0, 0]  # exact
            energy += float(yd.square().sum())
            # R(s) = sum_{u in window} xd[u] xd[u + s], window = frame shifted by the kernel centre
            window = torch.zeros_like(xd)
            window[c: c + yd.shape[0], c: c + yd.shape[1]] = xd[c: c + yd.shape[0], c: c + yd.shape[1]]
            shape = (fast_fft_size(xd.shape[0] + K), fast_fft_size(xd.shape[1] + K))
            corr = torch.fft.irfft2(torch.fft.rfft2(xd, s=shape) * torch.fft.rfft2(window, s=shape).conj(), s=shape)
            lags = torch.arange(-(K - 1), K)
            R += corr[lags.remainder(shape[0])][:, lags.remainder(shape[1])]
        self.energy = max(energy, 1e-12)
        R = 0.5 * (R + R.flip(0, 1))  # the Gram matrix is symmetric
        grid = torch.zeros(self.M, self.M, dtype=torch.float64)
        lags = torch.arange(-(K - 1), K).remainder(self.M)
        grid[lags[:, None], lags[None, :]] = R
        self.R_hat = torch.fft.rfft2(grid).real.float() / self.energy  # real: R is symmetric
        # Parseval on the half spectrum: every column but the first (and the Nyquist one) stands for two
        self.weights = torch.full((self.M // 2 + 1,), 2.0)
        self.weights[0] = 1.0
        if self.M % 2 == 0:
            self.weights[-1] = 1.0
        self.b = (b / self.energy).float()[None, None]

    def __call__(self, k: torch.Tensor, exact: bool = False) -> torch.Tensor:
        if k.shape[-1] != self.kernel_size:
            raise InvalidInputError(f"kernel is {k.shape[-1]} px, the data term was built for {self.kernel_size}")
        if exact:
            total = 0.0
            for xd, yd in zip(_diffs(self.x_full), _diffs(self.y)):
                total = total + (F.conv2d(xd, k) - yd).square().sum()
            return total / self.energy
        return _quadratic(k, self.R_hat, self.b, self.weights, self.M)[0]


def _quadratic(k: torch.Tensor, R_hat: torch.Tensor, b: torch.Tensor, weights: torch.Tensor, M: int) -> torch.Tensor:
    """``k^T A k - 2 b^T k + 1`` per kernel of ``k`` (N, 1, K, K) -> (N,), with ``A`` given by the
    half spectrum ``R_hat`` ((M, M//2+1) or one per kernel) and Parseval column ``weights``."""
    spec = torch.fft.rfft2(k[:, 0], s=(M, M))
    quad = ((spec.real.square() + spec.imag.square()) * R_hat * weights).sum(dim=(-2, -1)) / (M * M)
    return quad - 2.0 * (b * k).sum(dim=(1, 2, 3)) + 1.0


class StackedDataTerms:
    """N :class:`KernelDataTerm` s of the same kernel size evaluated together (one batched FFT):
    call with kernels (N, 1, K, K) -> (N,) values, ``[Q_n(k_n)]``."""

    def __init__(self, terms: list[KernelDataTerm]):
        if not terms or len({t.kernel_size for t in terms}) != 1:
            raise InvalidInputError("StackedDataTerms needs at least one term, all of the same kernel size")
        self.kernel_size, self.M, self.weights = terms[0].kernel_size, terms[0].M, terms[0].weights
        self.R_hat = torch.stack([t.R_hat for t in terms])
        self.b = torch.cat([t.b for t in terms])

    def __call__(self, k: torch.Tensor) -> torch.Tensor:
        if k.shape[0] != self.R_hat.shape[0] or k.shape[-1] != self.kernel_size:
            raise InvalidInputError(f"expected ({self.R_hat.shape[0]}, 1, {self.kernel_size}, {self.kernel_size}) kernels, "
                                    f"got {tuple(k.shape)}")
        return _quadratic(k, self.R_hat, self.b, self.weights, self.M)


def clean_kernel(k: torch.Tensor, rel_threshold: float = 0.05) -> torch.Tensor:
    """Zero entries below ``rel_threshold`` x max (and negatives), renormalise to sum 1."""
    k = k.clamp_min(0)
    k = torch.where(k >= rel_threshold * k.amax(dim=(-2, -1), keepdim=True), k, torch.zeros_like(k))
    return k / k.sum(dim=(-2, -1), keepdim=True).clamp_min(1e-12)


def resize_kernel(k: torch.Tensor, size: int) -> torch.Tensor:
    """Resample a kernel (1, 1, K, K) to (1, 1, size, size), centre kept, antialiased, sum 1.
    Differentiable (used to view one kernel at every pyramid scale)."""
    if k.shape[-1] == size:
        return k
    out = F.interpolate(k, size=(size, size), mode="bilinear", align_corners=False, antialias=size < k.shape[-1])
    out = out.clamp_min(0)
    return out / out.sum(dim=(-2, -1), keepdim=True).clamp_min(1e-12)


def resize_image(y: torch.Tensor, scale: float) -> torch.Tensor:
    """Antialiased bilinear resize of (1, C, H, W) by ``scale`` (<= 1 shrinks)."""
    if scale == 1.0:
        return y
    H, W = y.shape[-2:]
    size = (max(1, round(H * scale)), max(1, round(W * scale)))
    return F.interpolate(y, size=size, mode="bilinear", align_corners=False, antialias=scale < 1)


def odd(n: float) -> int:
    """Nearest odd integer >= 1."""
    m = int(math.floor(n))
    return max(1, m if m % 2 == 1 else m + 1)


def informative_crop(y: torch.Tensor, max_side: int) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the ``max_side`` window with the most gradient energy."""
    H, W = y.shape[-2:]
    h, w = min(H, max_side), min(W, max_side)
    if (h, w) == (H, W):
        return 0, 0, H, W
    gx = F.pad((y[..., :, 1:] - y[..., :, :-1]).abs(), (0, 1))
    gy = F.pad((y[..., 1:, :] - y[..., :-1, :]).abs(), (0, 0, 0, 1))
    stride = max(1, min(h, w) // 8)
    energy = F.avg_pool2d(gx + gy, (h, w), stride=stride)
    idx = int(energy.flatten().argmax())
    top, left = (idx // energy.shape[-1]) * stride, (idx % energy.shape[-1]) * stride
    return top, left, h, w
