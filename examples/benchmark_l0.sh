#!/bin/bash
# Issue 24, step 1 (calibration): the classical L0 estimator (method `l0`) on Levin's 32 images,
# one thread, and the one-ingredient-at-a-time runs of RESULTS.md's "Classical calibration" table.
# Needs ../shared/data/levin. Outputs go to $OUT (not committed); each run takes ~1-2 min
# (the refine=project|glkm runs ~5 min). Kernel sizes: the dataset's (SelfDeblur's 11-27 px).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/l0}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
run() { name=$1; shift; glkm eval levin --method l0 "$@" --out "$OUT/$name" --no-progress; }

# the method as shipped (31-px estimation canvas, trimmed to the support)
run final
# the published recipe on the dataset's kernel size (no canvas), and one change at a time from it
run base --option canvas=0
run lam5e3 --option canvas=0 --option lam_grad=5e-3
run noprune --option canvas=0 --option prune=false
run noedge --option canvas=0 --option edge_select=false
run nocenter --option canvas=0 --option center=false
run gamma08 --option canvas=0 --option gamma=0.8
run gamma125 --option canvas=0 --option gamma=1.25
run ridge05 --option canvas=0 --option ridge=0.5
run cut002 --option canvas=0 --option rel_cut=0.02
run cg200 --option canvas=0 --option cg_iters=200
run ks25 --option canvas=0 --kernel-size 25
run ks31 --option canvas=0 --kernel-size 31
run ks35 --option canvas=0 --kernel-size 35
run ks31lam5 --option canvas=0 --kernel-size 31 --option lam_grad=5e-3
# one change at a time from the shipped method (canvas 31)
run ks31r05 --kernel-size 31 --option ridge=0.5
run ks31m05 --kernel-size 31 --option margin=0.5
run c31m025 --option margin=0.25
run ks31nb1e3 --kernel-size 31 --option 'nonblind={"lam":1e-3}'
run c31noedge --option edge_select=false
run c31noprune --option prune=false
run c31nocenter --option center=false
run c31gamma08 --option gamma=0.8
run c31nofinal --option final_divisor=0
run c31it6 --iters 6
# step 2 (experimental): the classical kernel projected onto the GLKM prior, and refined through it
run prj31 --option refine=project
run glk31 --option refine=glkm
run glk31a3 --option refine=glkm --option refine_alternations=3
run lev31 --option refine=levels
# references: the true kernels through the same deconvolution, and the blurry input
glkm eval levin --method true-kernel --out "$OUT/true-kernel" --no-progress
glkm eval levin --method identity --kernel-branch native --out "$OUT/identity" --no-progress
