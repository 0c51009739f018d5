"""SelfDeblur's image network ``skip`` (upstream ``networks/skip.py``, ``networks/common.py``,
``networks/non_local_dot_product.py``; the facts are listed in :mod:`glkm_adapters.dip`): an
encoder-decoder of 3x3 convolutions with reflection padding, BatchNorm, LeakyReLU(0.2), 1x1 skip
connections, bilinear upsampling, a dot-product non-local block at the deeper scales and a
final sigmoid. Input and output are (B, C, H, W) tensors; the output is in (0, 1)."""

from __future__ import annotations

import torch
import torch.nn as nn


def _conv(in_ch: int, out_ch: int, size: int, stride: int = 1, pad: str = "reflection") -> list[nn.Module]:
    """Convolution 'same'-padded as upstream ``conv()``: reflection pad then an unpadded conv,
    or zero padding inside the conv."""
    p = (size - 1) // 2
    layers: list[nn.Module] = []
    if pad == "reflection" and p:
        layers.append(nn.ReflectionPad2d(p))
        p = 0
    layers.append(nn.Conv2d(in_ch, out_ch, size, stride, padding=p, bias=True))
    return layers


class ConvBNAct(nn.Sequential):
    """Padded convolution, BatchNorm, LeakyReLU(0.2)."""

    def __init__(self, in_ch: int, out_ch: int, size: int, stride: int = 1, pad: str = "reflection"):
        super().__init__(*_conv(in_ch, out_ch, size, stride, pad), nn.BatchNorm2d(out_ch), nn.LeakyReLU(0.2, inplace=True))


class NonLocalBlock(nn.Module):
    """Embedded dot-product non-local block (2-D, sub-sampled, with BatchNorm on W).

    ``z = x + W(y)``, ``y_i = (1/M) sum_j <theta(x)_i, phi(x)_j> g(x)_j`` over the M positions
    of the 2x2 max-pooled ``phi`` and ``g`` maps; ``inter = channels // 2``; W's BatchNorm is
    initialised to zero, so the block starts as the identity. Computed as
    ``theta @ (phi^T @ g) / M`` (associativity; no softmax in the dot-product form).
    """

    def __init__(self, channels: int):
        super().__init__()
        inter = max(1, channels // 2)
        self.inter = inter
        # created in upstream's order (g, W, theta, phi): same seed, same initial weights
        self.g = nn.Sequential(nn.Conv2d(channels, inter, 1), nn.MaxPool2d(2))
        self.W = nn.Sequential(nn.Conv2d(inter, channels, 1), nn.BatchNorm2d(channels))
        nn.init.zeros_(self.W[1].weight)
        nn.init.zeros_(self.W[1].bias)
        self.theta = nn.Conv2d(channels, inter, 1)
        self.phi = nn.Sequential(nn.Conv2d(channels, inter, 1), nn.MaxPool2d(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, _, H, W = x.shape
        theta = self.theta(x).flatten(2)             # (B, c, N)
        phi = self.phi(x).flatten(2)                 # (B, c, M)
        g = self.g(x).flatten(2)                     # (B, c, M)
        pg = torch.bmm(phi, g.transpose(1, 2))       # (B, c, c) = phi g^T
        y = torch.bmm(pg.transpose(1, 2), theta)     # (B, c, N) = (theta^T phi g^T)^T
        y = y.div_(phi.shape[-1]).reshape(B, self.inter, H, W)
        return x + self.W(y)


def _centre_crop(t: torch.Tensor, h: int, w: int) -> torch.Tensor:
    dh, dw = (t.shape[-2] - h) // 2, (t.shape[-1] - w) // 2
    return t[..., dh : dh + h, dw : dw + w]


class SkipScale(nn.Module):
    """One scale of the skip network: ``BN(cat(skip(x), up(deeper(down(x)))))`` then a 3x3 and
    a 1x1 conv block. ``inner_ch`` is the output width of the next scale (None at the deepest);
    the next scale is attached with :meth:`attach` after this one is built, so the modules are
    created in upstream's order (outer scale first) and a seed gives upstream's initial weights."""

    def __init__(self, in_ch, down, up, skip, inner_ch: int | None, nonlocal_block: bool,
                 upsample_mode: str = "bilinear", pad: str = "reflection"):
        super().__init__()
        self.skip = ConvBNAct(in_ch, skip, 1, pad=pad) if skip else None
        deeper: list[nn.Module] = [ConvBNAct(in_ch, down, 3, stride=2, pad=pad)]
        if nonlocal_block:
            deeper.append(NonLocalBlock(down))
        deeper.append(ConvBNAct(down, down, 3, pad=pad))
        self._inner_index = None
        if inner_ch is not None:
            self._inner_index = len(deeper)
            deeper.append(nn.Identity())  # replaced by the next scale (attach)
        align = False if upsample_mode in ("bilinear", "bicubic") else None
        deeper.append(nn.Upsample(scale_factor=2, mode=upsample_mode, align_corners=align))
        self.deeper = nn.Sequential(*deeper)
        cat_ch = skip + (inner_ch if inner_ch is not None else down)
        self.bn = nn.BatchNorm2d(cat_ch)
        self.up = nn.Sequential(ConvBNAct(cat_ch, up, 3, pad=pad), ConvBNAct(up, up, 1, pad=pad))

    def attach(self, inner: nn.Module) -> None:
        if self._inner_index is None:
            raise ValueError("the deepest scale has no inner scale")
        self.deeper[self._inner_index] = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.deeper(x)
        if self.skip is not None:
            s = self.skip(x)
            h, w = min(s.shape[-2], d.shape[-2]), min(s.shape[-1], d.shape[-1])
            d = torch.cat([_centre_crop(s, h, w), _centre_crop(d, h, w)], dim=1)
        return self.up(self.bn(d))


class SkipNet(nn.Module):
    """The DIP encoder-decoder with skip connections (upstream ``skip()``), SelfDeblur setting
    by default: 5 scales x 128 channels, 16-channel skips, non-local blocks from scale 3,
    bilinear upsampling, reflection padding, sigmoid output. Output size = input size.
    Parameters are created in upstream's order: after ``torch.manual_seed(s)`` the initial
    weights equal those of upstream's ``skip(...)`` built after the same seed."""

    def __init__(self, in_channels: int = 8, out_channels: int = 1, down=(128,) * 5, up=(128,) * 5, skip=(16,) * 5,
                 nonlocal_from: int | None = 2, upsample_mode: str = "bilinear", pad: str = "reflection",
                 sigmoid: bool = True):
        super().__init__()
        if not len(down) == len(up) == len(skip):
            raise ValueError("down, up and skip need one entry per scale")
        n = len(down)
        scales = []
        for i in range(n):
            in_ch = in_channels if i == 0 else down[i - 1]
            inner_ch = up[i + 1] if i < n - 1 else None
            nl = nonlocal_from is not None and i >= nonlocal_from
            scales.append(SkipScale(in_ch, down[i], up[i], skip[i], inner_ch, nl, upsample_mode, pad))
        for outer, inner in zip(scales[:-1], scales[1:]):
            outer.attach(inner)
        self.body = scales[0]
        self.head = nn.Sequential(*_conv(up[0], out_channels, 1, pad=pad), *([nn.Sigmoid()] if sigmoid else []))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))
