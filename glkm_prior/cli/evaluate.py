"""``glkm eval``: benchmark a method on a dataset, evaluate the prior, plot runs, build a synthetic set.

argparse cannot mix sub-commands with a free positional, so ``glkm eval`` reads the first word
(TARGET) and :func:`cmd_eval` hands the rest to the parser of that form."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import InvalidInputError
from .common import (_add_threads_option, _add_weights_options, _float_option, _int_option, _kernel_size_arg,
                     _range_option, parse_options, set_threads)

EVAL_FORMS = ("prior", "plot", "make-synthetic")
EVAL_DESCRIPTION = """\
Four forms (each has its own --help, e.g. `glkm eval levin --help`, `glkm eval prior --help`):

  glkm eval DATASET --method M [--kernel-branch glkm|native] [--seeds 0,1,2] [--iters N]
                    [--limit n] [--images NAMES] [--out DIR] [--weights W]
      Benchmark a deblurring method with the Levin/Lai protocol. DATASET is a folder (Levin,
      Lai uniform, or blurry/ + sharp/ [+ kernels/ + manifest.json], detected) or `levin`
      (= ../shared/data/levin). Writes per-image results (resumable), results.csv/json,
      summary.md/json, grid.png and convergence.png to DIR. Runs data-parallel under
      torchrun --nproc_per_node=N.
  glkm eval prior [--weights W] [--levin DIR] ...
      Generator coverage, initializer accuracy and init sensitivity of a prior.
  glkm eval plot RUN_DIR [RUN_DIR ...] -o PNG
      Overlay the convergence curves (PSNR and kernel error vs iteration) of finished runs.
  glkm eval make-synthetic SHARP_FOLDER OUT [--family levin|lai] [--kernel-size K] ...
      Blur a folder of sharp photos with synthesized kernels into a benchmark set.

A dataset folder literally named prior, plot or make-synthetic can be given as ./prior."""


def add_parser(sub) -> argparse.ArgumentParser:
    v = sub.add_parser(
        "eval",
        help="benchmark a method on a dataset (Levin/Lai protocol), or evaluate the prior",
        usage="glkm eval DATASET --method M [options]\n"
              "       glkm eval prior [options]\n"
              "       glkm eval plot RUN_DIR [RUN_DIR ...] -o PNG\n"
              "       glkm eval make-synthetic SHARP_FOLDER OUT [options]",
        description=EVAL_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # argparse cannot mix sub-commands with a free positional: the first word is read here and
    # the rest is parsed by the parser of that form (see cmd_eval).
    v.add_argument("target", metavar="TARGET", help="a dataset (folder or 'levin'), or one of: " + ", ".join(EVAL_FORMS))
    v.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS).required = False
    v.set_defaults(func=cmd_eval)
    return v


def _eval_prior_parser() -> argparse.ArgumentParser:
    pr = argparse.ArgumentParser(
        prog="glkm eval prior",
        description="Generator coverage, initializer accuracy and init sensitivity of a prior. "
        "Prints markdown tables (the model card's figures) and writes a JSON report.")
    _add_weights_options(pr)
    pr.add_argument("--kernel-size", type=int, default=None, help="pick the bundle member for this kernel size")
    pr.add_argument("--family", default=None, help="kernel family of the held-out kernels (default: levin for 31, lai for 75)")
    pr.add_argument("--levin", default=None, help="Levin benchmark folder (e.g. ../shared/data/levin)")
    pr.add_argument("--test-images", default=None, help="held-out sharp photos (e.g. ../shared/data/bsds500/test)")
    pr.add_argument("--coverage-kernels", type=int, default=500, help="held-out kernels to invert (default 500)")
    pr.add_argument("--synthetic", type=int, default=100, help="held-out blurred crops for the initializer (default 100)")
    pr.add_argument("--parts", default="coverage,initializer,sensitivity",
                    help="comma-separated parts to run: coverage, initializer, sensitivity (default: all)")
    pr.add_argument("--out", default=None, help="write the JSON report here")
    pr.set_defaults(func=cmd_eval_prior)
    return pr


def _eval_dataset_parser() -> argparse.ArgumentParser:
    d = argparse.ArgumentParser(
        prog="glkm eval",
        usage="glkm eval DATASET --method M [options]",
        description="Benchmark a deblurring method on a dataset with the Levin/Lai protocol: PSNR/SSIM "
        "after comp_upto_shift alignment (colour on MATLAB Y), kernel error, Levin's error ratio, seconds "
        "and peak memory per (image, seed); mean and std across seeds per category and overall. "
        "Per-pair results are written as they finish, so rerunning with the same --out resumes. Under "
        "torchrun --nproc_per_node=N the pairs are sharded over the processes (gloo, CPU).",
        epilog="Outputs in OUT: results/ (one JSON per image and seed), images/, kernels/, reference/, "
        "results.csv, results.json, summary.md, summary.json, grid.png (blurry | result | ground truth | "
        "estimated kernel | true kernel, first 16 images), convergence.png (PSNR and kernel error vs "
        "iteration). See glkm_prior/bench.py for the exact protocol.")
    d.add_argument("dataset", metavar="DATASET",
                   help="dataset folder (Levin, Lai uniform, or blurry/ + sharp/ [+ kernels/]; detected) or 'levin'")
    d.add_argument("--method", required=True, help="method to run, see `glkm plugins` (e.g. initializer, true-kernel)")
    d.add_argument("--kernel-branch", default="glkm", help="kernel branch the method uses: glkm (default) or native")
    d.add_argument("--seeds", default="0", help="comma-separated seeds, e.g. 0,1,2 (default 0)")
    d.add_argument("--iters", default=None, help="iterations of iterative methods (default: the method's own)")
    d.add_argument("--limit", default=None, help="only the first n images of the dataset")
    d.add_argument("--images", default=None, metavar="NAMES",
                   help="only these images, comma-separated names as in results/ (e.g. im1_kernel4,im1_kernel5)")
    d.add_argument("--kernel-size", type=_kernel_size_arg, default=None,
                   help="kernel size the method is told: K, auto (estimated per image, as `glkm deblur`), or by "
                   "default the dataset's (its kernels' size; 31 for photos without kernels)")
    d.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a method option, repeatable (e.g. branch_canvas=75 for fast); VALUE is read as JSON when it "
                   "parses (numbers, true/false), else as text")
    d.add_argument("--out", default=None, help="output folder (default: eval_runs/<dataset>_<method>_<branch>)")
    _add_weights_options(d)
    d.add_argument("--grid-rows", default="16", help="images shown in grid.png (default 16)")
    d.add_argument("--trace-every", default="1", help="record every n-th convergence callback (default 1)")
    d.add_argument("--checkpoint-every", default="100",
                   help="iterative loops (dip, vdip-*, bird, blinddps): save a resumable checkpoint of the running pair every n "
                   "iterations in OUT/checkpoints/ (default 100; 0: off); a rerun resumes from it")
    d.add_argument("--true-kernel-orientation", choices=("stored", "auto"), default="auto",
                   help="ground-truth kernel: auto (default) = the stored kernel or its 180-degree rotation, whichever "
                   "explains the blurry image (Levin kernels 4 and 8 need the rotation); stored = as the files are")
    d.add_argument("--summary-only", action="store_true",
                   help="compute nothing: rewrite the summary files over the results already in --out for the "
                   "selected images and seeds (an error lists any selected pair without a result)")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_threads_option(d)
    d.set_defaults(func=cmd_eval_dataset)
    return d


def _eval_plot_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="glkm eval plot",
        description="Overlay the convergence curves (mean PSNR and kernel error vs iteration) of finished "
        "`glkm eval DATASET` runs, one line per run (method / kernel branch).")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="--out folders of finished runs")
    p.add_argument("-o", "--output", required=True, help="PNG file to write")
    p.add_argument("--title", default=None, help="figure title")
    p.set_defaults(func=cmd_eval_plot)
    return p


def _eval_synthetic_parser() -> argparse.ArgumentParser:
    s = argparse.ArgumentParser(
        prog="glkm eval make-synthetic",
        description="Build a benchmark set from a folder of sharp images: each image is blurred ('valid', "
        "cross-correlation) with a synthesized camera-shake kernel, Gaussian noise is added and the result "
        "quantised to 8 bit. Writes OUT/blurry/, OUT/sharp/ (central part aligned with the blurry image), "
        "OUT/kernels/ (.npy exact, .png for viewing) and OUT/manifest.json. Same seed, same bytes.")
    s.add_argument("sharp_folder", metavar="SHARP_FOLDER", help="folder of sharp images (sorted by name)")
    s.add_argument("out", metavar="OUT", help="output folder")
    s.add_argument("--family", default="levin", help="kernel family: levin (11-27 px), lai (31-75 px) or mixed (default levin)")
    s.add_argument("--kernel-size", default=None, help="kernel canvas, odd 11..75 (default 31 for levin, 75 for lai)")
    s.add_argument("--noise", default="0.01", help="Gaussian noise sigma on [0, 1] images (default 0.01)")
    s.add_argument("--n", default=None, help="only the first n images")
    s.add_argument("--seed", default="0", help="random seed (default 0)")
    s.add_argument("--upscale", default="1.0", help="resize the sharp images by this factor first (default 1)")
    s.add_argument("--max-side", default=None, help="shrink images whose longer side exceeds this (after --upscale)")
    s.add_argument("--grey", action="store_true", help="grey images (default: keep colour)")
    s.add_argument("--motion", choices=("uniform", "camera"), default="uniform",
                   help="uniform: one kernel per image (default); camera: dense spatially varying blur of a simulated "
                   "exposure with camera roll and a depth ramp (writes kernel_fields/ instead of kernels/)")
    s.add_argument("--rotation", default=None, metavar="LO,HI",
                   help="--motion camera: camera roll range, degrees peak to peak (default 1.5,3)")
    s.set_defaults(func=cmd_eval_make_synthetic)
    return s


# ---------------------------------------------------------------------------- eval dispatch
def cmd_eval(args) -> int:
    """``glkm eval TARGET ...``: dispatch to the form named by TARGET (see EVAL_DESCRIPTION)."""
    parsers = {"prior": _eval_prior_parser, "plot": _eval_plot_parser, "make-synthetic": _eval_synthetic_parser}
    if args.target in parsers:
        sub_args = parsers[args.target]().parse_args(args.rest)
    else:
        sub_args = _eval_dataset_parser().parse_args([args.target, *args.rest])
    return sub_args.func(sub_args)


# ---------------------------------------------------------------------------- eval prior
def _parts(text: str) -> tuple[str, ...]:
    from ..evaluate_prior import PARTS

    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = sorted(set(parts) - set(PARTS))
    if unknown or not parts:
        raise InvalidInputError(f"--parts takes {', '.join(PARTS)}; got {text!r}")
    return parts


def cmd_eval_prior(args) -> int:
    from ..atomic import atomic_write
    from ..evaluate_prior import evaluate_prior, format_report
    from ..prior import KernelPrior

    prior = KernelPrior.from_pretrained(args.weights, kernel_size=args.kernel_size, revision=args.revision)
    family = args.family or ("levin" if prior.size <= 31 else "lai")
    report = evaluate_prior(prior, family=family, levin_root=args.levin, test_folder=args.test_images,
                            n_coverage=args.coverage_kernels, n_synthetic=args.synthetic,
                            parts=_parts(args.parts), log=lambda m: print(m, file=sys.stderr))
    text = format_report(report)
    print(text)
    if args.out:
        atomic_write(args.out, lambda fh: fh.write((json.dumps(report, indent=2) + "\n").encode()), "report")
    return 0


# ---------------------------------------------------------------------------- eval DATASET
def cmd_eval_dataset(args) -> int:
    from ..bench import run_benchmark
    from ..bench_config import BenchConfig, parse_seeds

    set_threads(args.threads)  # per process: N torchrun workers use N x threads
    limit = _int_option(args.limit, "--limit", 1)
    iters = _int_option(args.iters, "--iters", 0)
    seeds = parse_seeds(args.seeds)
    grid_rows = _int_option(args.grid_rows, "--grid-rows", 1)
    trace_every = _int_option(args.trace_every, "--trace-every", 1)
    checkpoint_every = _int_option(args.checkpoint_every, "--checkpoint-every", 0)
    options = parse_options(args.option)
    out = args.out
    if out is None:
        name = Path(args.dataset).name or "dataset"
        out = str(Path("eval_runs") / f"{name}_{args.method}_{args.kernel_branch}")
    cfg = BenchConfig(dataset=args.dataset, method=args.method, out=out, kernel_branch=args.kernel_branch,
                      seeds=seeds, iters=iters, limit=limit, images=args.images, weights=args.weights, revision=args.revision,
                      grid_rows=grid_rows, trace_every=trace_every, checkpoint_every=checkpoint_every,
                      true_kernel_orientation=args.true_kernel_orientation, kernel_size=args.kernel_size,
                      options=options)
    result = run_benchmark(cfg, progress=not args.no_progress, compute=not args.summary_only)
    if "markdown" in result:  # rank 0
        print(result["markdown"], end="")
        run = result["run"]
        print(f"wrote {out}/ (results.csv, results.json, summary.md, summary.json, grid.png, convergence.png, gallery.html, contact_sheet.png): "
              f"{run['computed']} pairs computed, {run['skipped']} resumed, {run['wall_seconds']:.1f} s",
              file=sys.stderr)
    return 0


def cmd_eval_plot(args) -> int:
    from ..report import plot_convergence

    if not args.output.lower().endswith(".png"):
        raise InvalidInputError(f"-o must name a .png file, got {args.output}")
    path = plot_convergence(args.runs, args.output, title=args.title)
    print(f"wrote {path}")
    return 0


def cmd_eval_make_synthetic(args) -> int:
    from ..synthetic_set import build_synthetic_set

    manifest = build_synthetic_set(
        args.sharp_folder, args.out, family=args.family, kernel_size=_int_option(args.kernel_size, "--kernel-size"),
        noise=_float_option(args.noise, "--noise", 0.0), n=_int_option(args.n, "--n", 1),
        seed=_int_option(args.seed, "--seed", 0), colour=not args.grey,
        max_side=_int_option(args.max_side, "--max-side", 16),
        upscale=_float_option(args.upscale, "--upscale", 0.0, strict=True), motion=args.motion,
        rotation_deg=_range_option(args.rotation, "--rotation"),
        log=lambda m: print(f"glkm: {m}", file=sys.stderr),
    )
    kernels = "kernels/" if args.motion == "uniform" else "kernel_fields/"
    print(f"wrote {len(manifest['items'])} images to {args.out} (blurry/, sharp/, {kernels}, manifest.json)"
          + (f"; skipped {len(manifest['skipped'])}" if manifest["skipped"] else ""))
    return 0
