#!/bin/bash
# Figures of issue 7 / the README's non-uniform table (2-core CPU; about 15 min in all).
# Needs ../shared (BSDS500 test photos). Outputs go to eval_runs/ (not committed); every
# `glkm eval` run resumes if interrupted (rerun this script).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-eval_runs}
SET="$OUT/nonuniform12"

# 12 BSDS500 test photos (481x321 RGB), dense camera-motion blur (roll 1-2 deg peak to peak,
# translation 6-16 px, depth ramp), 31-px kernel canvas, 1% noise
[ -d "$SET" ] || glkm eval make-synthetic ../shared/data/bsds500/test "$SET" --motion camera --n 12 --noise 0.01
glkm eval "$SET" --method identity --kernel-branch native --out "${SET}_identity" --no-progress
glkm eval "$SET" --method fast --out "${SET}_fast_glkm" --no-progress
glkm eval "$SET" --method fast --kernel-branch native --out "${SET}_fast_native" --no-progress
glkm eval "$SET" --method svola-fast --out "${SET}_svola-fast_glkm" --no-progress
glkm eval "$SET" --method svola-fast --kernel-branch native --out "${SET}_svola-fast_native" --no-progress

# paired timing on an otherwise idle machine: fast then svola-fast on the same image, same process
python - "$SET" <<'PY'
import sys, time
from pathlib import Path
import numpy as np
from glkm_prior.imageio import read_image, to_tensor
from glkm_prior.prior import KernelPrior
from glkm_adapters.fast import run_fast
from glkm_adapters.svola import run_svola_fast
prior = KernelPrior.from_pretrained(kernel_size=31)
ratios = []
for path in sorted((Path(sys.argv[1]) / "blurry").glob("*.png"))[:6]:
    blurry = to_tensor(read_image(path))
    t0 = time.perf_counter(); run_fast(blurry, kernel_size=31, prior=prior)
    t1 = time.perf_counter(); run_svola_fast(blurry, kernel_size=31, prior=prior)
    t2 = time.perf_counter()
    ratios.append((t1 - t0, t2 - t1))
u, s = np.mean(ratios, axis=0)
print(f"paired timing, {len(ratios)} images: fast {u:.1f} s, svola-fast {s:.1f} s per image ({s / u:.2f}x)")
PY

# references with the exact kernels at the 3x3 cell centres: uniform (centre kernel) and SVOLA deconvolution
python - "$SET" <<'PY'
import sys, time
from pathlib import Path
import numpy as np, torch
from glkm_prior.bench import quantise, score_image
from glkm_prior.imageio import read_image, to_array, to_tensor
from glkm_adapters.nonblind import nonblind
from glkm_adapters.svola import svola_deconvolve
root = Path(sys.argv[1])
rows = []
for f in sorted((root / "kernel_fields").glob("*.npy")):
    blurry, sharp = to_tensor(read_image(root / "blurry" / f"{f.stem}.png")), read_image(root / "sharp" / f"{f.stem}.png")
    field = torch.from_numpy(np.load(f))
    P, Q, K, _ = field.shape
    kernels = field.reshape(P * Q, 1, K, K)
    t = time.perf_counter(); svola = svola_deconvolve(blurry, kernels, (P, Q)); t = time.perf_counter() - t
    uniform = nonblind(blurry, kernels[(P * Q) // 2: (P * Q) // 2 + 1])
    score = lambda im: score_image(quantise(to_array(im.clamp(0, 1))), sharp).psnr
    rows.append((score(uniform), score(svola), t))
u, s, t = np.mean(rows, axis=0)
print(f"true kernels, {len(rows)} images: uniform (centre kernel) {u:.2f} dB, SVOLA 3x3 field {s:.2f} dB "
      f"(SVOLA deconvolution {t:.1f} s/image)")
PY
