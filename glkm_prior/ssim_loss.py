"""Differentiable SSIM as the deep-prior baselines use it (SelfDeblur's and VDIP's ``SSIM.py``).

Definition (Wang et al. 2004 with the constants of those scripts): an 11 x 11 Gaussian window
(sigma 1.5, normalised to sum 1), **zero padding** of 5 pixels (``F.conv2d(..., padding=5)``,
so the output has the input's size), each channel filtered on its own, ``C1 = 0.01**2``,
``C2 = 0.03**2`` (images in [0, 1]), and the SSIM map averaged over everything (batch,
channels, pixels). The loss the loops minimise is ``1 - ssim``.

Two implementation choices that do not change the value (up to float rounding):

* the 2-D Gaussian is separable, so each of the five local statistics (mu_x, mu_y, E[x^2],
  E[y^2], E[xy]) is computed as an 11-tap column pass then an 11-tap row pass on the
  zero-padded image (22 instead of 121 multiply-adds per pixel), all five in one grouped
  convolution per pass;
* :class:`SSIMToReference` precomputes the statistics of a fixed reference image (the blurry
  observation, which never changes during a deblurring run), so a step filters 3 maps, not 5.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import InvalidInputError
from .matlab import gaussian_window as _gaussian

WINDOW_SIZE = 11
SIGMA = 1.5
C1 = 0.01**2
C2 = 0.03**2


def gaussian_window(size: int = WINDOW_SIZE, sigma: float = SIGMA, dtype=torch.float32) -> torch.Tensor:
    """1-D Gaussian of ``size`` taps centred at ``size // 2`` (SSIM.py's), summing to 1
    (:func:`glkm_prior.matlab.gaussian_window`, computed in float64)."""
    return torch.from_numpy(_gaussian(size, sigma, ndim=1, centre=size // 2)).to(dtype)


def gaussian_window_2d(size: int = WINDOW_SIZE, sigma: float = SIGMA, dtype=torch.float32) -> torch.Tensor:
    """The 2-D window (size, size): outer product of :func:`gaussian_window` with itself."""
    g = gaussian_window(size, sigma, torch.float64)
    return torch.outer(g, g).to(dtype)


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.dim() != 4 or y.dim() != 4:
        raise InvalidInputError(f"SSIM needs (B, C, H, W) tensors, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[1:] != y.shape[1:] or y.shape[0] not in (1, x.shape[0]):
        raise InvalidInputError(f"SSIM needs images of the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")


class _GaussianFilter(nn.Module):
    """Zero-padded separable Gaussian filter of every channel of a (B, G, H, W) stack."""

    def __init__(self, size: int = WINDOW_SIZE, sigma: float = SIGMA):
        super().__init__()
        self.size = int(size)
        self.sigma = float(sigma)
        self.register_buffer("window", gaussian_window(self.size, self.sigma), persistent=False)
        self._weights: dict = {}

    def _apply(self, fn, recurse=True):
        self._weights = {}  # cached expanded weights follow the buffer's dtype/device
        return super()._apply(fn, recurse)

    def _pass_weights(self, groups: int, dtype, device):
        key = (groups, dtype, device)
        w = self._weights.get(key)
        if w is None:
            base = self.window.to(device=device, dtype=dtype)
            w = (base.reshape(1, 1, self.size, 1).expand(groups, 1, self.size, 1).contiguous(),
                 base.reshape(1, 1, 1, self.size).expand(groups, 1, 1, self.size).contiguous())
            self._weights[key] = w
        return w

    def forward(self, stack: torch.Tensor) -> torch.Tensor:
        groups = stack.shape[1]
        col, row = self._pass_weights(groups, stack.dtype, stack.device)
        p = self.size // 2
        out = F.conv2d(F.pad(stack, (p, p, p, p)), col, groups=groups)
        return F.conv2d(out, row, groups=groups)


def _ssim_map(mu1, mu2, e11, e22, e12) -> torch.Tensor:
    mu1_sq, mu2_sq, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    sigma1_sq = e11 - mu1_sq
    sigma2_sq = e22 - mu2_sq
    sigma12 = e12 - mu12
    return ((2 * mu12 + C1) * (2 * sigma12 + C2)) / ((mu1_sq + mu2_sq + C1) * (sigma1_sq + sigma2_sq + C2))


class SSIM(nn.Module):
    """``SSIM()(x, y)``: mean SSIM of two (B, C, H, W) images (differentiable in both)."""

    def __init__(self, window_size: int = WINDOW_SIZE, sigma: float = SIGMA):
        super().__init__()
        self.filter = _GaussianFilter(window_size, sigma)

    def forward(self, img1: torch.Tensor, img2: torch.Tensor) -> torch.Tensor:
        _check_pair(img1, img2)
        img2 = img2.expand_as(img1)
        C = img1.shape[1]
        stats = self.filter(torch.cat([img1, img2, img1 * img1, img2 * img2, img1 * img2], dim=1))
        mu1, mu2, e11, e22, e12 = stats.split(C, dim=1)
        return _ssim_map(mu1, mu2, e11, e22, e12).mean()


class SSIMToReference(nn.Module):
    """SSIM against a fixed ``reference`` (B, C, H, W), whose local statistics are computed once.

    ``SSIMToReference(y)(x)`` equals ``SSIM()(x, y)``; ``.loss(x)`` is ``1 - ssim``.
    """

    def __init__(self, reference: torch.Tensor, window_size: int = WINDOW_SIZE, sigma: float = SIGMA):
        super().__init__()
        if reference.dim() != 4:
            raise InvalidInputError(f"SSIM reference must be (B, C, H, W), got {tuple(reference.shape)}")
        self.filter = _GaussianFilter(window_size, sigma)
        ref = reference.detach()
        with torch.no_grad():
            mu2, e22 = self.filter(torch.cat([ref, ref * ref], dim=1)).split(ref.shape[1], dim=1)
        self.register_buffer("reference", ref, persistent=False)
        self.register_buffer("mu2", mu2, persistent=False)
        self.register_buffer("e22", e22, persistent=False)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        _check_pair(img, self.reference)
        ref = self.reference
        C = img.shape[1]
        mu1, e11, e12 = self.filter(torch.cat([img, img * img, img * ref], dim=1)).split(C, dim=1)
        return _ssim_map(mu1, self.mu2, e11, self.e22, e12).mean()

    def loss(self, img: torch.Tensor) -> torch.Tensor:
        return 1 - self.forward(img)


def ssim(img1: torch.Tensor, img2: torch.Tensor, window_size: int = WINDOW_SIZE, sigma: float = SIGMA) -> torch.Tensor:
    """Functional form of :class:`SSIM` (builds the window on each call)."""
    return SSIM(window_size, sigma).to(img1.device)(img1, img2)


def ssim_loss(img1: torch.Tensor, img2: torch.Tensor) -> torch.Tensor:
    """``1 - ssim(img1, img2)``: the loss SelfDeblur and VDIP minimise after their MSE phase."""
    return 1 - ssim(img1, img2)


__all__ = ["SSIM", "SSIMToReference", "gaussian_window", "gaussian_window_2d", "ssim", "ssim_loss", "C1", "C2",
           "WINDOW_SIZE", "SIGMA"]
