#!/bin/bash
# Figures of issue 7 / the table in RESULTS.md, "Non-uniform blur" (2-core CPU; about 15 min in all).
# Needs ../shared (BSDS500 test photos). Outputs go to eval_runs/ (not committed); every
# `glkm eval` run resumes if interrupted (rerun this script).
set -euo pipefail
cd "$(dirname "$0")/.."
# the figures were measured with 2 threads per process (the default is 1 since issue 23: RESULTS.md, "Threads")
THREADS=${THREADS:-2}
OUT=${OUT:-eval_runs}
SET="$OUT/nonuniform12"

# 12 BSDS500 test photos (481x321 RGB, upscaled x1.5), dense camera-motion blur (roll 1.5-3 deg
# peak to peak, translation 8-20 px, depth ramp; scaled down to fit), 31-px kernel canvas, 1% noise
[ -d "$SET" ] || glkm eval make-synthetic ../shared/data/bsds500/test "$SET" --motion camera --n 12 --noise 0.01 --upscale 1.5
glkm eval "$SET" --method identity --kernel-branch native --out "${SET}_identity" --no-progress --threads "$THREADS"
glkm eval "$SET" --method fast --out "${SET}_fast_glkm" --no-progress --threads "$THREADS"
glkm eval "$SET" --method fast --kernel-branch native --out "${SET}_fast_native" --no-progress --threads "$THREADS"
glkm eval "$SET" --method svola-fast --out "${SET}_svola-fast_glkm" --no-progress --threads "$THREADS"
glkm eval "$SET" --method svola-fast --kernel-branch native --out "${SET}_svola-fast_native" --no-progress --threads "$THREADS"

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
python examples/nonuniform_ceiling.py "$SET"
