"""Issue 24: can the bundled GLKM generators represent Lai et al.'s four real kernels (31-75 px)?

GAN inversion (``KernelPrior.invert``, 1000 steps, seed 0) of each ``kernels/kernel_0N.png`` of a
Lai-layout dataset onto the smallest bundled prior whose canvas holds it, scored by
``kernel_error``'s shift-aligned relative L2. Usage:
``python examples/study_prior_coverage_lai.py [DATA]`` (default ``../shared/data/lai_uniform``).
Measured (one thread, about 1 min): 31 px 0.029 (31-px prior); 51 / 55 / 75 px 0.112 / 0.164 /
0.167 (75-px prior).
"""

import sys
from pathlib import Path

import numpy as np
import torch

from glkm_prior import KernelPrior
from glkm_prior.kernel_io import load_kernel
from glkm_prior.metrics.kernel import kernel_error

data = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/lai_uniform")
torch.set_num_threads(1)
for path in sorted((data / "kernels").glob("kernel_*.png")):
    true = np.asarray(load_kernel(path), dtype=np.float64)
    K = true.shape[-1]
    prior = KernelPrior.from_pretrained(kernel_size=K, largest_if_too_small=True)
    w = prior.invert(torch.from_numpy(true).float()[None, None], steps=1000, seed=0)
    projected = prior.kernel(w, K).detach()[0, 0].double().numpy()
    print(f"{path.name}: {K} px, prior canvas {prior.size} px, rel. L2 of the projection "
          f"{kernel_error(projected, true).rel_l2:.3f}")
