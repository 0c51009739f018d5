"""Study (issue 24): how were the Lai et al. 2016 uniform images made? Re-blur every sharp image
with its true kernel under candidate forward models and compare with the blurred image given.

Usage: ``python examples/study_lai_forward_model.py [DATASET]`` (default
``../shared/data/lai_uniform``). Models: convolution (the kernel flipped, as ``conv2``) or
correlation, in the sRGB values or in linear light (``x ** 2.2``, result ``** (1 / 2.2)``), zero
padding ('same'); RMSE on [0, 1] over the interior (40 px border left out). 8-bit rounding alone
gives about 0.0011 (``1 / (255 sqrt(12))``); 1 % Gaussian noise would give 0.01.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import torch

from glkm_prior.imageio import read_image
from glkm_prior.physics import blur

MODELS = {"convolution, sRGB": (True, 1.0), "correlation, sRGB": (False, 1.0),
          "convolution, linear light": (True, 2.2)}


def reblur(sharp: torch.Tensor, kernel: torch.Tensor, flip: bool, gamma: float) -> torch.Tensor:
    k = (kernel.flip(-2, -1) if flip else kernel)[None, None]
    channels = [blur(sharp[:, c: c + 1] ** gamma, k, boundary="same") for c in range(sharp.shape[1])]
    return torch.cat(channels, 1).clamp(0, 1) ** (1 / gamma)


def as_tensor(path: Path) -> torch.Tensor:
    """An image file as a float64 (1, C, H, W) tensor in [0, 1]."""
    a = torch.from_numpy(read_image(path)).double()
    return a[None, None] if a.dim() == 2 else a.permute(2, 0, 1)[None]


def main(dataset: str) -> None:
    root = Path(dataset)
    errors = {name: [] for name in MODELS}
    for path in sorted((root / "blurred").glob("*.png")):
        scene, kernel_name = path.stem.split("_kernel_")
        y, x = as_tensor(path), as_tensor(root / "sharp" / f"{scene}.png")
        k = as_tensor(root / "kernels" / f"kernel_{kernel_name}.png").mean(dim=1)[0]
        k = k / k.sum()
        h, w = min(x.shape[-2], y.shape[-2]), min(x.shape[-1], y.shape[-1])
        for name, (flip, gamma) in MODELS.items():
            e = reblur(x, k, flip, gamma)[..., 40: h - 40, 40: w - 40] - y[..., 40: h - 40, 40: w - 40]
            errors[name].append(float(e.square().mean().sqrt()))
    for name, values in errors.items():
        print(f"{name:28s} RMSE median {statistics.median(values):.4f}, max {max(values):.4f} ({len(values)} images)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/lai_uniform")
