"""Boundary handling of the deconvolution solvers: mirror padding, :func:`edgetaper` and the
working domain of the 'valid' / 'taper' / 'periodic' models (see :mod:`glkm_prior.deconv`)."""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from ..errors import KernelSizeError
from ..physics import fast_fft_size, kernel_otf
from .validation import _check_image, _check_kernel


def _reflect_index(n: int, before: int, after: int, device=None) -> torch.Tensor:
    """Indices of a mirror ('reflect', edge not repeated) padding of any size, for length ``n``."""
    idx = torch.arange(-before, n + after, device=device)
    if n == 1:
        return torch.zeros_like(idx)
    period = 2 * (n - 1)
    idx = idx.remainder(period)
    return torch.where(idx >= n, period - idx, idx)


def _taper_weights_1d(p: torch.Tensor, n: int) -> torch.Tensor:
    """MATLAB edgetaper weights along one axis: 1 - normalised autocorrelation of ``p``."""
    m = n - 1
    P = torch.fft.rfft(p.to(torch.float64), n=m)
    ac = torch.fft.irfft(P.real.square() + P.imag.square(), n=m)
    ac = ac / ac.max()
    ac = torch.cat([ac, ac[:1]])
    return (1.0 - ac).clamp(0.0, 1.0).to(torch.float32)


def _edgetaper_2d(img: torch.Tensor, k: torch.Tensor, otf: Optional[torch.Tensor] = None) -> torch.Tensor:
    """edgetaper of ``img`` (``(..., H, W)``) with kernel ``k`` (``(Kh, Kw)``); no validation."""
    H, W = img.shape[-2:]
    wy = _taper_weights_1d(k.sum(dim=1), H).to(img.device)
    wx = _taper_weights_1d(k.sum(dim=0), W).to(img.device)
    alpha = wy[:, None] * wx[None, :]
    if otf is None:
        otf = kernel_otf(k.to(torch.float32), (H, W))
    blurred = torch.fft.irfft2(torch.fft.rfft2(img) * otf.conj(), s=(H, W))
    return alpha * img + (1.0 - alpha) * blurred


def mirror_pad_and_taper(img: torch.Tensor, k: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
    """Mirror-pad ``img`` by >= the kernel size per side, to a 2-3-5 FFT size, and edgetaper it.

    ``img`` is ``(..., H, W)``, ``k`` is ``(Kh, Kw)``. Returns the padded, tapered image
    ``(..., Hp, Wp)`` and the ``(top, left)`` offset of the original frame inside it.
    """
    H, W = img.shape[-2:]
    Kh, Kw = k.shape[-2:]
    Hp = fast_fft_size(H + 2 * Kh)
    Wp = fast_fft_size(W + 2 * Kw)
    top = (Hp - H) // 2
    left = (Wp - W) // 2
    ih = _reflect_index(H, top, Hp - H - top, device=img.device)
    iw = _reflect_index(W, left, Wp - W - left, device=img.device)
    padded = img.index_select(-2, ih).index_select(-1, iw)
    padded = _edgetaper_2d(padded, k)
    return padded, (top, left)


class _Domain:
    """Working (FFT) domain of one image chunk ``(1, c, H, W)`` for a boundary mode.

    ``y`` is the image the circular solvers start from (the mirror-padded, edge-tapered image
    for 'valid'/'taper', the image itself for 'periodic'); ``crop`` cuts the frame back out;
    for 'valid', ``fill(ax)`` returns ``ax`` with the observed frame replaced by the data and
    ``mask`` is 1 on the frame, 0 elsewhere.
    """

    def __init__(self, img: torch.Tensor, k: torch.Tensor, boundary: str, saturation: Optional[float] = None) -> None:
        self.H, self.W = img.shape[-2:]
        self.masked = boundary == "valid"
        if boundary == "periodic":
            self.y, self.top, self.left = img, 0, 0
        else:
            self.y, (self.top, self.left) = mirror_pad_and_taper(img, k)
        self.obs = img if self.masked else None
        # clipped pixels (and their 8 neighbours) are not observations of k * x: treat them
        # like the unobserved border (the majorise-minimise refresh fills them with k * x)
        self.valid = None
        if self.masked and saturation is not None:
            self.valid = F.max_pool2d(img, 3, stride=1, padding=1) < saturation

    def _frame(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., self.top:self.top + self.H, self.left:self.left + self.W]

    def crop(self, x: torch.Tensor) -> torch.Tensor:
        return self._frame(x)

    def fill(self, ax: torch.Tensor) -> torch.Tensor:
        frame = self._frame(ax)
        frame.copy_(self.obs if self.valid is None else torch.where(self.valid, self.obs, frame))
        return ax

    def mask(self) -> torch.Tensor:
        m = torch.zeros(self.y.shape[-2:], dtype=self.y.dtype, device=self.y.device)
        if self.valid is None:
            self._frame(m).fill_(1.0)
            return m
        m = m.expand(*self.y.shape).clone()
        self._frame(m).copy_(self.valid.to(m.dtype))
        return m


def edgetaper(y: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """MATLAB-style ``edgetaper``: blend ``y`` with its circular blur near the image borders.

    ``J = a * y + (1 - a) * (k * y)_circular`` with ``a = (1 - r_y) (1 - r_x)^T``, ``r`` the
    normalised autocorrelations of the kernel's row/column projections; ``a`` is 0 on the frame
    and reaches 1 about one kernel size inside, which makes the periodic extension of ``J`` look
    like a circularly blurred image (no discontinuity at the wrap-around).

    ``y``: ``(B, C, H, W)``; ``k``: ``(Kh, Kw)`` or ``(B, 1, Kh, Kw)`` with ``Kh < H``, ``Kw < W``.
    """
    y = _check_image(y)
    B, C, H, W = y.shape
    kb = _check_kernel(k, B, H, W, y.device)
    Kh, Kw = kb.shape[-2:]
    if Kh >= H or Kw >= W:
        raise KernelSizeError(f"edgetaper needs a kernel smaller than the image: {Kh}x{Kw} vs {H}x{W}")
    with torch.no_grad():
        return torch.cat([_edgetaper_2d(y[b:b + 1], kb[b, 0]) for b in range(B)], dim=0)
