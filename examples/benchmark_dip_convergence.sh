#!/bin/bash
# Issue 5's convergence study: SelfDeblur's loop (`dip`) with the GLKM vs the native kernel
# branch, 1000 iterations, on 8 Levin images (im1_kernel1..8: one per kernel) x seeds 0, 1, 2,
# plus a third arm: GLKM with latent rate 5e-3 instead of the reference 5e-4 (with 5e-4 the
# GLKM kernel barely moves from the initializer's within 1000 iterations).
# Cost on this 2-core CPU: ~1.5 s/iteration on one thread, i.e. ~25 min per (image, seed, arm)
# and ~30 h of one core for the 72 runs. Seed by seed, all arms image by image, so a partial
# study already compares them. Use both cores: run one plain copy (images 1..8) and one
# REVERSE=1 copy (images 8..1) side by side; a pair another live copy is computing is skipped
# (claims in $CLAIMS), and every `glkm eval` call resumes (a pair killed mid-way continues from
# its checkpoint in ARM/checkpoints/, saved every 100 iterations), so rerun the script (any number
# of sessions) until it prints the final tables.
# Results are committed in benchmarks/dip_convergence/ (per-run JSON + images, small);
# comparison.md (+ .json) is the paired table GLKM vs native, comparison_lr5e-3.md the third arm
# vs native, comparison_lr5e-3_vs_5e-4.md the two GLKM rates, all refreshed after every image
# over the pairs finished so far. An arm's summary.md / convergence.png describe the images of its
# last `glkm eval` call (one pair while the study runs); the final step rewrites them over all.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/dip_convergence}
CLAIMS=${CLAIMS:-${TMPDIR:-/tmp}/glkm_dip_convergence_claims}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p "$CLAIMS"

run() {  # run ARM_FOLDER SEED N [glkm eval options...]: one (image, seed) pair of one arm
  local arm=$1 seed=$2 name=im1_kernel$3; shift 3
  [ -f "$OUT/$arm/results/${name}__s$seed.json" ] && return 0
  local claim="$CLAIMS/${arm}__${name}__s$seed" owner
  owner=$(cat "$claim" 2>/dev/null || true)
  if [ -n "$owner" ] && [ "$owner" != $$ ] && kill -0 "$owner" 2>/dev/null; then return 0; fi
  echo $$ > "$claim"
  glkm eval levin --method dip --iters 1000 --seeds "$seed" --images "$name" --out "$OUT/$arm" --no-progress "$@"
}
compare() {
  python examples/compare_runs.py "$OUT/levin8_glkm" "$OUT/levin8_native" --labels GLKM native \
      -o "$OUT/comparison.md" > /dev/null
  python examples/compare_runs.py "$OUT/levin8_glkm_lr5e-3" "$OUT/levin8_native" --labels "GLKM lr 5e-3" native \
      -o "$OUT/comparison_lr5e-3.md" > /dev/null
  python examples/compare_runs.py "$OUT/levin8_glkm_lr5e-3" "$OUT/levin8_glkm" --labels "GLKM lr 5e-3" "GLKM lr 5e-4" \
      -o "$OUT/comparison_lr5e-3_vs_5e-4.md" > /dev/null
}

images="1 2 3 4 5 6 7 8"
[ "${REVERSE:-0}" = 1 ] && images="8 7 6 5 4 3 2 1"
for seed in 0 1 2; do
  for n in $images; do
    run levin8_glkm "$seed" "$n" --kernel-branch glkm
    run levin8_native "$seed" "$n" --kernel-branch native
    run levin8_glkm_lr5e-3 "$seed" "$n" --kernel-branch glkm --option lr_kernel=5e-3
    compare   # the paired tables over the pairs finished so far
  done
done
# final summaries (anything still missing is computed here) and the plot
for branch in glkm native; do
  glkm eval levin --method dip --kernel-branch "$branch" --iters 1000 --seeds 0,1,2 --limit 8 \
      --out "$OUT/levin8_$branch" --no-progress
done
glkm eval levin --method dip --kernel-branch glkm --option lr_kernel=5e-3 --iters 1000 --seeds 0,1,2 --limit 8 \
    --out "$OUT/levin8_glkm_lr5e-3" --no-progress
glkm eval plot "$OUT/levin8_glkm" "$OUT/levin8_native" "$OUT/levin8_glkm_lr5e-3" -o "$OUT/convergence.png"
compare && cat "$OUT/comparison.md" "$OUT/comparison_lr5e-3.md" "$OUT/comparison_lr5e-3_vs_5e-4.md"
