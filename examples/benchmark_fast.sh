#!/bin/bash
# Figures of RESULTS.md's "The fast method" table (2-core CPU; about 1 h in all).
# Needs ../shared (Levin benchmark, BSDS500 test photos). Outputs go to eval_runs/ (not committed);
# every `glkm eval` run resumes if interrupted (rerun this script).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-eval_runs}
# the figures were measured with 2 threads (the default is 1 since issue 23: RESULTS.md, "Threads")
THREADS=${THREADS:-2}

# Levin et al. 2009: 32 images, kernels 13-27 px (sizes as SelfDeblur's scripts)
glkm eval levin --method identity --kernel-branch native --out "$OUT/levin_identity" --no-progress --threads "$THREADS"
glkm eval levin --method true-kernel --out "$OUT/levin_true-kernel" --no-progress --threads "$THREADS"
glkm eval levin --method fast --out "$OUT/levin_fast_glkm" --no-progress --threads "$THREADS"
glkm eval levin --method fast --kernel-branch native --seeds 0,1,2 --out "$OUT/levin_fast_native" --no-progress --threads "$THREADS"

# Lai-sized: 12 BSDS500 test photos upscaled 2.2x (~980x630 RGB), lai-family kernels 31-75 px, 1% noise
[ -d "$OUT/lai_size12" ] || glkm eval make-synthetic ../shared/data/bsds500/test "$OUT/lai_size12" \
    --family lai --kernel-size 75 --n 12 --upscale 2.2 --noise 0.01
glkm eval "$OUT/lai_size12" --method identity --kernel-branch native --out "$OUT/lai_size12_identity" --no-progress --threads "$THREADS"
glkm eval "$OUT/lai_size12" --method true-kernel --kernel-branch native --out "$OUT/lai_size12_true-kernel" --no-progress --threads "$THREADS"
glkm eval "$OUT/lai_size12" --method fast --out "$OUT/lai_size12_fast_glkm" --no-progress --threads "$THREADS"
glkm eval "$OUT/lai_size12" --method fast --kernel-branch native --out "$OUT/lai_size12_fast_native" --no-progress --threads "$THREADS"

# a 12.5-megapixel photo (BSDS500 100007 upscaled 9x, 4329x2889 RGB, 31-px kernel): time and peak memory
[ -d "$OUT/mp12" ] || glkm eval make-synthetic ../shared/data/bsds500/test "$OUT/mp12" \
    --family levin --kernel-size 31 --n 1 --upscale 9 --noise 0.01
glkm deblur "$OUT"/mp12/blurry/*.png --method fast -o "$OUT/mp12_deblurred.png" --kernel-size 31 --force --threads "$THREADS"
python -c "import json; r = json.load(open('$OUT/mp12_deblurred.json')); print('12 MP:', r['image_shape'], r['seconds'], 's', r['peak_rss_mb'], 'MB peak RSS')"

# unknown blur size (--kernel-size auto, the default of glkm deblur), and the fast method through the 75-px member
glkm eval levin --method fast --kernel-size auto --out "$OUT/levin_fast_glkm_auto" --no-progress --threads "$THREADS"
glkm eval levin --method fast --kernel-size auto --option branch_canvas=75 --out "$OUT/levin_fast_glkm_auto_k75" --no-progress --threads "$THREADS"
glkm eval "$OUT/lai_size12" --method fast --kernel-size auto --out "$OUT/lai_size12_fast_glkm_auto" --no-progress --threads "$THREADS"
glkm eval "$OUT/lai_size12" --method fast --kernel-size auto --kernel-branch native --out "$OUT/lai_size12_fast_native_auto" --no-progress --threads "$THREADS"
glkm eval "$OUT/lai_size12" --method fast --option branch_canvas=75 --out "$OUT/lai_size12_fast_glkm_k75" --no-progress --threads "$THREADS"
glkm eval "$OUT/lai_size12" --method fast --kernel-size auto --option branch_canvas=75 --out "$OUT/lai_size12_fast_glkm_auto_k75" --no-progress --threads "$THREADS"
