#!/bin/bash
# Issue 25, step 3: SelfDeblur's loop (`dip`, 1000 iterations) with the GLKM branch started from
# `init=estimate` (the classical L0 kernel projected onto the prior, README "Where the GLKM latent
# starts") instead of the paper's G.head(E(y)), paired against the native arm that
# examples/benchmark_dip_convergence.sh committed (same images, seeds and settings).
# Cost: about 100 min per (image, seed) on one core (10 min per 100 iterations, measured alone;
# issue 5's study quoted 24-45 min for the same loop); every `glkm eval` call resumes from its
# checkpoint (OUT/checkpoints/, every 100 iterations), so rerun until the table is printed.
# IMAGES: kernel numbers of im1_kernelN (default: kernels 4 and 6, where the E(y) start lost most).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/dip_convergence}
ITERS=${ITERS:-1000}
SEEDS=${SEEDS:-0}
IMAGES=${IMAGES:-4 6}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
ARM=$OUT/levin8_glkm_estimate
for seed in $SEEDS; do
  for n in $IMAGES; do
    glkm eval levin --method dip --iters "$ITERS" --seeds "$seed" --images "im1_kernel$n" --out "$ARM" \
        --no-progress --kernel-branch glkm --option 'branch_options={"init":"estimate"}'
  done
done
python examples/compare_runs.py "$ARM" "$OUT/levin8_native" --labels "GLKM (estimate start)" native \
    --seeds "$(echo $SEEDS | tr ' ' ',')" -o "$OUT/comparison_estimate_start.md"
