"""The two GLKM networks and the DCGAN discriminator used to train the generator.

* :class:`KernelGenerator` G: ``z (B, nz, 1, 1) -> head -> w (B, C0, s0, s0) -> tail -> k``.
  ``head`` is the first layer (ConvTranspose + BatchNorm + ReLU); ``w`` is the latent that
  deblurring loops optimise. ``tail`` is stride-2 transposed convolutions, a centre crop to
  the odd canvas ``size`` and a softmax over all ``size*size`` pixels, so every kernel is
  non-negative, sums to 1 and is a cross-correlation kernel (see :mod:`glkm_prior.physics`).
* :class:`KernelInitializer` E: a ResNet-18 (1-channel input, the blurry image's luma Y in
  [0, 1], any size >= 64 px) mapping a blurry image to G's latent z (B, nz, 1, 1).
* :class:`KernelDiscriminator` D: DCGAN discriminator on (B, 1, size, size) kernels.

Each class takes only JSON-serialisable constructor arguments, stored in ``config.json``.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .errors import InvalidInputError


def dcgan_init(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights N(0, 0.02), BatchNorm weight N(1, 0.02), bias 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class KernelGenerator(nn.Module):
    """DCGAN kernel generator with an odd output canvas ``size``.

    ``channels[0]`` is the width of the latent feature map ``w``; each further entry is one
    x2 transposed-conv block, and a last x2 transposed conv maps to 1 channel. The output
    ``head_size * 2**len(channels)`` must be >= ``size``; it is centre-cropped to ``size``.
    ``logit_gain`` multiplies the last layer's output before the softmax: camera-shake kernels
    are thin curves on an empty canvas, which needs logits spanning ~10 units, far beyond
    what DCGAN-initialised weights (std 0.02) produce.
    """

    def __init__(self, size: int = 31, nz: int = 100, head_size: int = 4, channels=(256, 128, 64), logit_gain: float = 10.0):
        super().__init__()
        channels = [int(c) for c in channels]
        full = head_size * 2 ** len(channels)
        if size % 2 == 0 or size > full or size < full // 2:
            raise InvalidInputError(
                f"generator size {size} must be odd and fit the {full}x{full} output of "
                f"head_size={head_size} with {len(channels)} upsampling layers"
            )
        self.config = dict(size=size, nz=nz, head_size=head_size, channels=channels, logit_gain=float(logit_gain))
        self.size, self.nz, self.logit_gain = size, nz, float(logit_gain)
        self.head = nn.Sequential(
            nn.ConvTranspose2d(nz, channels[0], head_size, 1, 0, bias=False),
            nn.BatchNorm2d(channels[0]),
            nn.ReLU(True),
        )
        layers: list[nn.Module] = []
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        layers.append(nn.ConvTranspose2d(channels[-1], 1, 4, 2, 1, bias=False))
        self.upsample = nn.Sequential(*layers)
        self._crop = (full - size) // 2
        dcgan_init(self)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """Shape (C0, s0, s0) of one latent feature map w."""
        c = self.config
        return (c["channels"][0], c["head_size"], c["head_size"])

    def tail(self, w: torch.Tensor) -> torch.Tensor:
        """w (B, C0, s0, s0) -> kernels (B, 1, size, size), softmax over all pixels."""
        logits = self.upsample(w) * self.logit_gain
        a = self._crop
        logits = logits[..., a : a + self.size, a : a + self.size]
        B = logits.shape[0]
        return torch.softmax(logits.reshape(B, -1), dim=1).reshape(B, 1, self.size, self.size)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, nz) or (B, nz, 1, 1) -> kernels (B, 1, size, size)."""
        return self.tail(self.head(z.reshape(z.shape[0], self.nz, 1, 1)))


class KernelDiscriminator(nn.Module):
    """DCGAN discriminator: kernels (B, 1, size, size) -> logits (B,) (use BCE-with-logits).

    No BatchNorm: real and fake kernels go through one forward pass (simple under DDP), and
    batch statistics over a mixed batch would leak the label."""

    def __init__(self, size: int = 31, channels=(64, 128, 256)):
        super().__init__()
        channels = [int(c) for c in channels]
        self.config = dict(size=size, channels=channels)
        layers: list[nn.Module] = []
        c_in = 1
        for c_out in channels:
            layers.append(nn.Conv2d(c_in, c_out, 4, 2, 1))
            layers.append(nn.LeakyReLU(0.2, True))
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.classify = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, 1))
        dcgan_init(self)

    def forward(self, k: torch.Tensor) -> torch.Tensor:
        # kernels sum to 1 over many pixels: rescale so the network sees O(1) values
        x = k * (k.shape[-1] * k.shape[-2]) ** 0.5
        return self.classify(self.features(x)).squeeze(1)


class _BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class KernelInitializer(nn.Module):
    """ResNet-18 (He et al. 2016, [2, 2, 2, 2] basic blocks) with a 1-channel stem.

    Input: blurry luma Y (B, 1, H, W) in [0, 1], H, W >= 64. Output: z (B, nz, 1, 1).
    The input is centred (Y - 0.5) inside the network.
    """

    MIN_SIZE = 64

    def __init__(self, nz: int = 100, widths=(64, 128, 256, 512)):
        super().__init__()
        widths = [int(c) for c in widths]
        self.config = dict(nz=nz, widths=widths)
        self.nz = nz
        self.stem = nn.Sequential(
            nn.Conv2d(1, widths[0], 7, 2, 3, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        stages = []
        c_in = widths[0]
        for i, c in enumerate(widths):
            stride = 1 if i == 0 else 2
            stages.append(nn.Sequential(_BasicBlock(c_in, c, stride), _BasicBlock(c, c, 1)))
            c_in = c
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, nz)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        # zero-init the last BN of each residual branch (standard ResNet trick for stable training)
        for m in self.modules():
            if isinstance(m, _BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        if y.dim() != 4 or y.shape[1] != 1:
            raise InvalidInputError(f"initializer expects luma images (B, 1, H, W), got {tuple(y.shape)}")
        if min(y.shape[-2:]) < self.MIN_SIZE:
            raise InvalidInputError(f"initializer needs images of at least {self.MIN_SIZE} px, got {tuple(y.shape[-2:])}")
        x = self.stages(self.stem(y - 0.5))
        return self.fc(torch.flatten(self.pool(x), 1)).reshape(-1, self.nz, 1, 1)


MODEL_CLASSES = {cls.__name__: cls for cls in (KernelGenerator, KernelInitializer, KernelDiscriminator)}
