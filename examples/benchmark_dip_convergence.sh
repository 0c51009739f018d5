#!/bin/bash
# Issue 5's convergence study: SelfDeblur's loop (`dip`) with the GLKM vs the native kernel
# branch, 1000 iterations, on 8 Levin images (im1_kernel1..8: one per kernel) x seeds 0, 1, 2.
# Cost on this 2-core CPU: ~1.6 s/iteration on one thread, i.e. ~27 min per (image, seed) and
# ~21 h of one core for the 48 runs. The order interleaves the two branches image by image
# (seed 0 first), so a partial run already compares them; every `glkm eval` call resumes, so
# rerun this script (any number of sessions) until it prints the final summaries.
# Results are committed in benchmarks/dip_convergence/ (per-run JSON + images, small);
# comparison.md (+ .json) is the paired table GLKM vs native, refreshed after every image.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/dip_convergence}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
# REVERSE=1 takes the seeds in the other order (2, 1, 0; images and branches as above): run one
# plain and one REVERSE=1 copy side by side to use both cores; they meet in seed 1 (a pair that
# one has finished is skipped by the other; --limit n also covers images 1..n-1, done by then).
compare() {
  python examples/compare_runs.py "$OUT/levin8_glkm" "$OUT/levin8_native" --labels GLKM native \
      -o "$OUT/comparison.md" > /dev/null
}
seeds="0 1 2"
[ "${REVERSE:-0}" = 1 ] && seeds="2 1 0"
for seed in $seeds; do
  for n in 1 2 3 4 5 6 7 8; do
    for branch in glkm native; do
      glkm eval levin --method dip --kernel-branch "$branch" --iters 1000 --seeds "$seed" --limit "$n" \
          --out "$OUT/levin8_$branch" --no-progress
    done
    compare   # the paired table over the pairs finished so far
  done
done
for branch in glkm native; do   # final summaries over all three seeds
  glkm eval levin --method dip --kernel-branch "$branch" --iters 1000 --seeds 0,1,2 --limit 8 \
      --out "$OUT/levin8_$branch" --no-progress
done
glkm eval plot "$OUT/levin8_glkm" "$OUT/levin8_native" -o "$OUT/convergence.png"
compare && cat "$OUT/comparison.md"
