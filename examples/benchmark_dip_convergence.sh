#!/bin/bash
# Issue 5's convergence study: SelfDeblur's loop (`dip`) with the GLKM vs the native kernel
# branch, 1000 iterations, on 8 Levin images (im1_kernel1..8: one per kernel) x seeds 0, 1, 2,
# plus a third arm: GLKM with latent rate 5e-3 instead of the reference 5e-4 (with 5e-4 the
# GLKM kernel barely moves from the initializer's within 1000 iterations).
# Cost on this 2-core CPU: 24-45 min per (image, seed, arm) on one thread, 30-50 core-hours for
# the 72 runs. Seed by seed, all arms image by image, so a partial study already compares them.
# Use both cores: run one plain copy (images in order) and one REVERSE=1 copy (reversed) side by
# side; a pair another live copy is computing is skipped (claims in $CLAIMS), and every `glkm eval`
# call resumes (a pair killed mid-way continues from its checkpoint in ARM/checkpoints/, saved
# every 100 iterations), so rerun the script (any number of sessions) until it prints the final
# tables. The copy that finishes first waits for the other's last pairs before the final step.
# The GLKM arms pin the paper's start G.head(E(y)) (branch_options init=initializer), the branch's
# default when they ran; the default is now init=estimate (examples/benchmark_dip_estimate_start.sh).
# Other studies with the same arms: ITERS, SEEDS, IMAGES (kernel numbers of im1_kernelN), OUT and
# PREFIX (arm folders are OUT/PREFIX{glkm,native,glkm_lr5e-3}), e.g. the paper's 5000 iterations:
#   ITERS=5000 SEEDS=0 IMAGES="2 7" PREFIX=levin2_ OUT=benchmarks/dip_5000 bash examples/benchmark_dip_convergence.sh
# Results are committed in OUT (per-run JSON + images, small); comparison.md (+ .json) is the
# paired table GLKM vs native, comparison_lr5e-3.md the third arm vs native,
# comparison_lr5e-3_vs_5e-4.md the two GLKM rates, all refreshed after every image over the pairs
# finished so far. An arm's summary.md / convergence.png describe the images of its last
# `glkm eval` call (one pair while the study runs); the final step rewrites them over all.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/dip_convergence}
ITERS=${ITERS:-1000}
SEEDS=${SEEDS:-0 1 2}
IMAGES=${IMAGES:-1 2 3 4 5 6 7 8}
PREFIX=${PREFIX:-levin8_}
CLAIMS=${CLAIMS:-${TMPDIR:-/tmp}/glkm_dip_convergence_claims}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p "$CLAIMS"
GLKM=$OUT/${PREFIX}glkm NATIVE=$OUT/${PREFIX}native FAST=$OUT/${PREFIX}glkm_lr5e-3

claim_of() { echo "$CLAIMS/${1//\//_}__$2__s$3"; }  # claim_of ARM_FOLDER NAME SEED
claimed_elsewhere() {  # claimed_elsewhere CLAIM: another live copy of this script is computing that pair
  local owner
  owner=$(cat "$1" 2>/dev/null || true)
  [ -n "$owner" ] && [ "$owner" != $$ ] && kill -0 "$owner" 2>/dev/null
}
run() {  # run ARM_FOLDER SEED N [glkm eval options...]: one (image, seed) pair of one arm
  local arm=$1 seed=$2 name=im1_kernel$3 claim; shift 3
  [ -f "$arm/results/${name}__s$seed.json" ] && return 0
  claim=$(claim_of "$arm" "$name" "$seed")
  claimed_elsewhere "$claim" && return 0
  echo $$ > "$claim"
  glkm eval levin --method dip --iters "$ITERS" --seeds "$seed" --images "$name" --out "$arm" --no-progress "$@"
}
wait_for_others() {  # until no other live copy is computing a pair of this study
  local arm seed n busy=1
  while [ $busy = 1 ]; do
    busy=0
    for arm in "$GLKM" "$NATIVE" "$FAST"; do for seed in $SEEDS; do for n in $IMAGES; do
      [ -f "$arm/results/im1_kernel${n}__s$seed.json" ] && continue
      if claimed_elsewhere "$(claim_of "$arm" "im1_kernel$n" "$seed")"; then busy=1; fi
    done; done; done
    if [ $busy = 1 ]; then sleep 60; fi
  done
}
compare() {
  python examples/compare_runs.py "$GLKM" "$NATIVE" --labels GLKM native -o "$OUT/comparison.md" > /dev/null
  python examples/compare_runs.py "$FAST" "$NATIVE" --labels "GLKM lr 5e-3" native \
      -o "$OUT/comparison_lr5e-3.md" > /dev/null
  python examples/compare_runs.py "$FAST" "$GLKM" --labels "GLKM lr 5e-3" "GLKM lr 5e-4" \
      -o "$OUT/comparison_lr5e-3_vs_5e-4.md" > /dev/null
}

images=$IMAGES
[ "${REVERSE:-0}" = 1 ] && images=$(echo $IMAGES | tr ' ' '\n' | tac | tr '\n' ' ')
for seed in $SEEDS; do
  for n in $images; do
    run "$GLKM" "$seed" "$n" --kernel-branch glkm --option 'branch_options={"init":"initializer"}'
    run "$NATIVE" "$seed" "$n" --kernel-branch native
    run "$FAST" "$seed" "$n" --kernel-branch glkm --option lr_kernel=5e-3 --option 'branch_options={"init":"initializer"}'
    compare   # the paired tables over the pairs finished so far
  done
done
# final summaries over all pairs (anything still missing is computed here) and the plot
wait_for_others
all_seeds=$(echo $SEEDS | tr ' ' ',')
all_images=$(for n in $IMAGES; do printf 'im1_kernel%s,' "$n"; done); all_images=${all_images%,}
every=(--iters "$ITERS" --seeds "$all_seeds" --images "$all_images" --no-progress)
glkm eval levin --method dip --kernel-branch glkm --option 'branch_options={"init":"initializer"}' "${every[@]}" --out "$GLKM"
glkm eval levin --method dip --kernel-branch native "${every[@]}" --out "$NATIVE"
glkm eval levin --method dip --kernel-branch glkm --option lr_kernel=5e-3 --option 'branch_options={"init":"initializer"}' "${every[@]}" --out "$FAST"
glkm eval plot "$GLKM" "$NATIVE" "$FAST" -o "$OUT/convergence.png"
compare && cat "$OUT/comparison.md" "$OUT/comparison_lr5e-3.md" "$OUT/comparison_lr5e-3_vs_5e-4.md"
