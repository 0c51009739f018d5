"""Issue 24 diagnosis: at which pyramid level does the L0 kernel estimate of a Lai image go wrong?

Runs the L0 estimator on one image of a dataset laid out like ``lai_uniform`` (``blurred/NAME.png``,
``kernels/kernel_NN.png`` for ``NAME = ..._kernel_NN``) and, after every pyramid level, compares the
level's kernel with the true kernel resized to that level (antialiased bilinear resize to
``round(K * level_size / canvas)`` px), by ``kernel_error``'s shift-aligned relative L2 (the 180-degree
flip allowed: Lai's kernels are stored for convolution). Prints one line of (level size, rel L2).

Usage: ``python examples/study_l0_levels.py DATA NAME ['{"ridge": 20}']``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from glkm_prior.estimation import estimate_kernel_l0
from glkm_prior.estimation.pyramid import canvas_size, resolve_l0_options
from glkm_prior.imageio import read_image
from glkm_prior.kernel_io import load_kernel
from glkm_prior.metrics.kernel import kernel_error
from glkm_prior.prior import to_luma


def resized(kernel: torch.Tensor, size: int) -> np.ndarray:
    """``kernel`` (1, 1, K, K) resized to an odd ``size`` px with an antialiased bilinear filter, sum 1."""
    size = max(1, size) + (max(1, size) % 2 == 0)
    small = F.interpolate(kernel, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return (small / small.sum())[0, 0].numpy()


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    data, name = Path(argv[0]), argv[1]
    options = json.loads(argv[2]) if len(argv) > 2 else {}
    torch.set_num_threads(1)
    image = np.ascontiguousarray(read_image(data / "blurred" / f"{name}.png"))
    y = to_luma(torch.from_numpy(image).permute(2, 0, 1)[None].float())
    true = np.asarray(load_kernel(data / "kernels" / f"kernel_{name.rsplit('_kernel_', 1)[1]}.png"), dtype=np.float64)
    true_t = torch.from_numpy(true)[None, None]
    K = true.shape[-1]
    canvas = canvas_size(K, resolve_l0_options(options, None)["canvas"],
                         resolve_l0_options(options, None)["canvas_scale"], y.shape)
    levels = []

    def hook(k, level, n_levels):
        target = resized(true_t, round(K * k.shape[-1] / canvas))
        levels.append((k.shape[-1], round(kernel_error(k[0, 0].double().numpy(), target, allow_flip=True).rel_l2, 2)))
        return k

    result = estimate_kernel_l0(y, K, level_hook=hook, **options)
    final = kernel_error(result["kernel"][0, 0].double().numpy(), true, allow_flip=True).rel_l2
    print(f"{name} {options} K={K} canvas={canvas} levels (size, rel L2): {levels} final {final:.2f}")


if __name__ == "__main__":
    main()
