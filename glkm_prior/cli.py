"""The ``glkm`` command line: ``glkm plugins``, ``glkm deblur`` (more subcommands land with
later features). Errors print one line ``glkm: error: ...`` and exit with status 2."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .diagnostics import kernel_warnings
from .errors import GLKMError, InvalidInputError
from .api import estimate_kernel_size, load_prior
from .prior import AUTO_KERNEL_RANGE, MAX_KERNEL_SIZE

#: ``glkm deblur``'s method: the classical L0 estimator (README, "Classical calibration": Levin
#: 31.75 dB with the automatic size vs 29.00 for ``fast``); ``--nonuniform``: SVOLA cells
#: seeded by the GLKM latent of a global ``fast`` run.
DEFAULT_METHOD = "l0"
DEFAULT_NONUNIFORM_METHOD = "svola-fast"
#: The kernel PNG is enlarged (nearest neighbour) to at least this many px for viewing.
KERNEL_PNG_MIN_SIDE = 256
#: Default intra-op threads: one. Most of a kernel estimate is many small FFTs and Adam steps,
#: which gain little from a second thread, and with two threads on two cores one busy process
#: elsewhere slows a run 10x (the threads spin-wait for each other); see README, "Threads".
DEFAULT_THREADS = 1


def _kernel_size_arg(text: str):
    if text == "auto":
        return "auto"
    try:
        size = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"kernel size must be 'auto' or an odd integer, got {text!r}") from None
    if size % 2 == 0:
        raise argparse.ArgumentTypeError(f"kernel size must be odd (the kernel has a centre pixel), got {size}")
    return size


def _threads_arg(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"threads must be an integer >= 1, got {text!r}")
    return n


def set_threads(n: int | None) -> None:
    """Intra-op threads of torch for this process (``None``: :data:`DEFAULT_THREADS`)."""
    torch.set_num_threads(DEFAULT_THREADS if n is None else int(n))


def _add_threads_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=_threads_arg, default=None,
                        help=f"intra-op CPU threads (default {DEFAULT_THREADS}: robust when other programs share the "
                        "CPU; 2 is faster for dip and vdip-* on an otherwise idle machine)")


def _add_weights_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", default=None, help="prior or bundle folder, or Hub repo id (default: the bundled weights/)")
    parser.add_argument("--revision", default=None, help="Hub revision (commit hash) when --weights is a repo id")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="glkm",
        description="GLKM: a learned blur-kernel prior for blind motion deblurring.",
    )
    parser.add_argument("--version", action="version", version=f"glkm_prior {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("plugins", help="list registered plugins, their hooks, kernel branches and methods")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON instead of a table")
    p.set_defaults(func=cmd_plugins)

    d = sub.add_parser(
        "deblur",
        help="blind-deblur one image",
        description="Estimate the blur kernel of INPUT and deblur it. Writes the image, the kernel "
        "(PNG scaled for viewing and exact .npy) and a JSON of settings and timings.",
    )
    d.add_argument("input", help="blurry image file (PNG, JPEG, ...; grey or colour)")
    d.add_argument("-o", "--output", help="output image path (default: <input stem>_deblurred.png in the current folder)")
    d.add_argument("--method", default=None, help=f"deblurring method, see `glkm plugins` (default: {DEFAULT_METHOD}; "
                   f"with --nonuniform {DEFAULT_NONUNIFORM_METHOD})")
    d.add_argument("--kernel-branch", default="glkm", help="kernel branch the method uses: glkm (default) or native")
    d.add_argument("--kernel-size", type=_kernel_size_arg, default="auto",
                   help=f"kernel side in px: auto (default) estimates it from the image by a coarse run of the fast "
                   f"method and picks an odd size in {AUTO_KERNEL_RANGE[0]}..{AUTO_KERNEL_RANGE[1]}; or give an odd "
                   f"integer in 3..101 (even sizes are refused)")
    d.add_argument("--iters", type=int, default=None, help="iterations of iterative methods (default: the method's own)")
    d.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    _add_weights_options(d)
    d.add_argument("--preset", choices=("default", "paper"), default=None,
                   help="settings of iterative methods (dip, vdip-*): paper = the authors' iterations, learning rates and "
                   "schedules; default = the method's own (for dip and vdip-* the same as paper)")
    d.add_argument("--colour", choices=("ycbcr", "rgb"), default=None,
                   help="colour images, for methods that support it: ycbcr = deblur the luma Y and keep the original "
                   "chroma (SelfDeblur's colour script; default of dip), rgb = one kernel shared by R, G and B "
                   "(default of vdip-*, as VDIP)")
    d.add_argument("--nonuniform", action="store_true",
                   help="spatially varying blur: run the method's SVOLA variant (svola-<method>: a global kernel, then one "
                   "kernel per cell of a --grid patch grid); also writes <output>_kernel_field.png/.npy")
    d.add_argument("--grid", default=None, help="SVOLA grid PxQ for --nonuniform (default 3x3)")
    d.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a method option, repeatable (e.g. lr_kernel=5e-3 for dip); VALUE is read as JSON when it "
                   "parses (numbers, true/false), else as text")
    d.add_argument("--checkpoint", default=None, metavar="DIR",
                   help="iterative loops (dip, vdip-*, bird, blinddps): keep a resumable checkpoint in DIR; rerunning the same command "
                   "resumes from it (its checkpoint files are removed once the result is written)")
    d.add_argument("--checkpoint-every", type=int, default=100, help="iterations between checkpoints (default 100)")
    d.add_argument("--force", action="store_true", help="overwrite existing output files (never the input image)")
    _add_threads_option(d)
    d.set_defaults(func=cmd_deblur)

    t = sub.add_parser("train", help="train the kernel prior (generator, then initializer)",
                       description="Train one stage of the prior. Works unchanged under torchrun --nproc_per_node=N.")
    tsub = t.add_subparsers(dest="stage", metavar="STAGE")
    tsub.required = True
    g = tsub.add_parser("generator", help="DCGAN kernel generator on synthesized kernels")
    g.add_argument("--out", required=True, help="output folder (from_pretrained layout; checkpoint/ inside is resumed)")
    g.add_argument("--size", type=int, default=31, help="generator canvas: 31 (kernels <= 31 px) or 75 (default 31)")
    g.add_argument("--family", default=None, help="kernel family: levin, lai or mixed (default: levin for 31, lai for 75)")
    g.add_argument("--steps", type=int, default=20000, help="total optimisation steps (default 20000)")
    g.add_argument("--batch", type=int, default=64, help="kernels per step and per process (default 64)")
    g.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate (default 2e-4, betas 0.5/0.999)")
    g.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    g.add_argument("--eval-every", type=int, default=1000, help="steps between held-out inversion checks (default 1000)")
    g.add_argument("--checkpoint-minutes", type=float, default=5.0, help="minutes between checkpoints (default 5)")
    g.add_argument("--init-from", default=None, help="prior folder whose generator starts the run (e.g. weights/k31)")
    g.add_argument("--adv-weight", type=float, default=0.05, help="weight of the adversarial BCE loss of G (default 0.05)")
    g.add_argument("--rec-weight", type=float, default=1.0, help="VAE reconstruction weight; 0 trains a plain DCGAN (default 1)")
    g.add_argument("--kl-weight", type=float, default=0.005, help="VAE KL weight (default 0.005)")
    g.set_defaults(func=cmd_train)
    e = tsub.add_parser("initializer", help="ResNet-18 initializer by collaborative learning (generator frozen)")
    e.add_argument("--out", required=True, help="output folder (from_pretrained layout)")
    e.add_argument("--generator", required=True, help="prior folder holding the trained generator/")
    e.add_argument("--data", nargs="+", required=True, help="folders of sharp training images (e.g. bsds500/train bsds500/val)")
    e.add_argument("--val-data", nargs="*", default=None, help="folders of validation images (e.g. bsds500/test)")
    e.add_argument("--family", default=None, help="kernel family (default: levin for 31, lai for 75)")
    e.add_argument("--steps", type=int, default=5000, help="total steps (default 5000)")
    e.add_argument("--batch", type=int, default=16, help="images per step and per process (default 16)")
    e.add_argument("--crop", type=int, default=128, help="blurry crop side in px (default 128)")
    e.add_argument("--lr", type=float, default=3e-4, help="Adam learning rate of E (default 3e-4, cosine decay)")
    e.add_argument("--inner-steps", type=int, default=10, help="GAN-inversion steps per batch giving z* (default 10)")
    e.add_argument("--inner-lr", type=float, default=0.01, help="learning rate of the inner inversion (default 0.01)")
    e.add_argument("--lam", type=float, default=0.1, help="weight of ||E(y) - z*||^2 (default 0.1)")
    e.add_argument("--noise-max", type=float, default=0.02, help="largest noise sigma on [0, 1] images (default 0.02)")
    e.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    e.add_argument("--eval-every", type=int, default=500, help="steps between validation checks (default 500)")
    e.add_argument("--checkpoint-minutes", type=float, default=5.0, help="minutes between checkpoints (default 5)")
    e.add_argument("--init-from", default=None, help="prior folder whose initializer starts the run")
    e.set_defaults(func=cmd_train)
    x = tsub.add_parser("export", help="copy a training run's generator/ and initializer/ into a shippable prior folder")
    x.add_argument("run", help="training output folder (holds generator/ and initializer/)")
    x.add_argument("dest", help="destination prior folder, e.g. weights/k31")
    x.add_argument("--initializer-dtype", choices=("float32", "float16"), default="float16",
                   help="storage dtype of the initializer (default float16: half the size, loads as float32)")
    x.set_defaults(func=cmd_export)

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
    return parser


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


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except GLKMError as exc:
        print(f"glkm: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("glkm: interrupted", file=sys.stderr)
        return 130


# ---------------------------------------------------------------------------- plugins
def cmd_plugins(args) -> int:
    from . import plugins

    rows = plugins.describe()
    branches = plugins.kernel_branches()
    methods = plugins.methods()
    if args.json:
        print(json.dumps({
            "plugins": rows,
            "kernel_branches": {n: {"plugin": r.plugin, "description": r.description} for n, r in branches.items()},
            "methods": {n: {"plugin": r.plugin, "description": r.description} for n, r in methods.items()},
        }, indent=2))
        return 0
    print("Plugins (built-in, then entry-point group 'glkm_prior'):")
    for row in rows:
        dist = f"  [{row['distribution']}]" if row["distribution"] else ""
        print(f"  {row['name']}{dist}: {', '.join(row['hooks']) or '(no hooks)'}")
    print("Kernel branches:")
    for name, reg in sorted(branches.items()):
        print(f"  {name:12s} {reg.description}  (from {reg.plugin})")
    print("Methods:")
    for name, reg in sorted(methods.items()):
        print(f"  {name:12s} {reg.description}  (from {reg.plugin})")
    return 0


# ---------------------------------------------------------------------------- train
def cmd_train(args) -> int:
    from . import training

    family = args.family or ("levin" if getattr(args, "size", 31) <= 31 else "lai")
    if args.steps < 1:
        raise InvalidInputError(f"--steps must be >= 1, got {args.steps}")
    if args.stage == "generator":
        cfg = training.GeneratorConfig(
            out=args.out, size=args.size, family=family, steps=args.steps, batch=args.batch, lr=args.lr,
            seed=args.seed, eval_every=args.eval_every, checkpoint_minutes=args.checkpoint_minutes, init_from=args.init_from,
            adv_weight=args.adv_weight, rec_weight=args.rec_weight, kl_weight=args.kl_weight,
        )
        out = training.train_generator(cfg)
    else:
        from .hub import read_config

        size = read_config(Path(args.generator) / "generator")["config"]["size"]
        cfg = training.InitializerConfig(
            out=args.out, generator=args.generator, data=args.data, val_data=args.val_data,
            family=args.family or ("levin" if size <= 31 else "lai"), steps=args.steps, batch=args.batch,
            crop=args.crop, lr=args.lr, inner_steps=args.inner_steps, inner_lr=args.inner_lr, lam=args.lam,
            noise_max=args.noise_max, seed=args.seed, eval_every=args.eval_every,
            checkpoint_minutes=args.checkpoint_minutes, init_from=args.init_from,
        )
        out = training.train_initializer(cfg)
    print(f"wrote {out}")
    return 0


def cmd_export(args) -> int:
    from . import hub

    run, dest = Path(args.run), Path(args.dest)
    for name, dtype in (("generator", "float32"), ("initializer", args.initializer_dtype)):
        source = run / name
        config = hub.read_config(source)
        extra = {k: v for k, v in config.items() if k not in ("model_type", "config", "format_version", "dtype")}
        hub.save_component(hub.load_component(source), dest / name, dtype=dtype, extra=extra)
    print(f"wrote {dest}/generator and {dest}/initializer")
    return 0


# ---------------------------------------------------------------------------- eval prior
def _parts(text: str) -> tuple[str, ...]:
    from .evaluate_prior import PARTS

    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = sorted(set(parts) - set(PARTS))
    if unknown or not parts:
        raise InvalidInputError(f"--parts takes {', '.join(PARTS)}; got {text!r}")
    return parts


def cmd_eval_prior(args) -> int:
    from .atomic import atomic_write
    from .evaluate_prior import evaluate_prior, format_report
    from .prior import KernelPrior

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


# ---------------------------------------------------------------------------- eval dispatch
def cmd_eval(args) -> int:
    """``glkm eval TARGET ...``: dispatch to the form named by TARGET (see EVAL_DESCRIPTION)."""
    parsers = {"prior": _eval_prior_parser, "plot": _eval_plot_parser, "make-synthetic": _eval_synthetic_parser}
    if args.target in parsers:
        sub_args = parsers[args.target]().parse_args(args.rest)
    else:
        sub_args = _eval_dataset_parser().parse_args([args.target, *args.rest])
    return sub_args.func(sub_args)


def _int_option(text, name: str, minimum: int | None = None):
    if text is None:
        return None
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be an integer, got {text!r}") from None
    if minimum is not None and value < minimum:
        raise InvalidInputError(f"{name} must be >= {minimum}, got {value}")
    return value


def _float_option(text, name: str, minimum: float | None = None, strict: bool = False):
    if text is None:
        return None
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number, got {text!r}") from None
    if not np.isfinite(value) or (minimum is not None and (value <= minimum if strict else value < minimum)):
        raise InvalidInputError(f"{name} must be a finite number {'>' if strict else '>='} {minimum}, got {text!r}")
    return value


def parse_options(items) -> dict:
    """``--option KEY=VALUE`` flags -> dict; VALUE is read as JSON when it parses, else as text."""
    options = {}
    for item in items or ():
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(f"--option must be KEY=VALUE, got {item!r}")
        try:
            options[key.strip()] = json.loads(text)
        except ValueError:
            options[key.strip()] = text
    return options


# ---------------------------------------------------------------------------- eval DATASET
def cmd_eval_dataset(args) -> int:
    from .bench import BenchConfig, parse_seeds, run_benchmark

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
    from .report import plot_convergence

    if not args.output.lower().endswith(".png"):
        raise InvalidInputError(f"-o must name a .png file, got {args.output}")
    path = plot_convergence(args.runs, args.output, title=args.title)
    print(f"wrote {path}")
    return 0


def _range_option(text, name: str):
    """'LO,HI' -> (LO, HI) floats, or None."""
    if text is None:
        return None
    parts = str(text).split(",")
    if len(parts) != 2:
        raise InvalidInputError(f"{name} must be LO,HI (two numbers), got {text!r}")
    return tuple(_float_option(v, name) for v in parts)


def cmd_eval_make_synthetic(args) -> int:
    from .synthetic_set import build_synthetic_set

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


# ---------------------------------------------------------------------------- deblur
def _json_scalar(v) -> bool:
    return isinstance(v, (int, float, str, bool, type(None)))


def output_paths(input_path: Path, output: str | None, nonuniform: bool = False) -> dict[str, Path]:
    image = Path(output) if output else Path.cwd() / f"{input_path.stem}_deblurred.png"
    stem = image.with_suffix("")
    paths = {
        "image": image,
        "kernel_png": stem.with_name(stem.name + "_kernel.png"),
        "kernel_npy": stem.with_name(stem.name + "_kernel.npy"),
        "json": stem.with_name(stem.name + ".json"),
    }
    if nonuniform:
        paths["field_png"] = stem.with_name(stem.name + "_kernel_field.png")
        paths["field_npy"] = stem.with_name(stem.name + "_kernel_field.npy")
    return paths


def _refuse_overwriting_input(input_path: Path, paths: dict[str, Path]) -> None:
    """No output may be the input image (even with --force): that would lose the photo."""
    source = input_path.resolve()
    for path in paths.values():
        same = path.resolve() == source or (path.exists() and input_path.exists() and path.samefile(input_path))
        if same:
            raise InvalidInputError(f"output {path} is the input image: refusing to overwrite it (choose another -o)")


def _deblur_method_options(args, method_name: str, method) -> tuple[dict, dict]:
    """(options for the method factory, the --option dict as given), checked against the method."""
    from .plugins import accepts_keyword, refuse_unaccepted_options

    method_options = {}
    for name in ("preset", "colour"):
        value = getattr(args, name, None)
        if value is not None:
            if not accepts_keyword(method.factory, name, explicit_only=True):
                raise InvalidInputError(f"method {method_name!r} has no --{name} setting")
            method_options[name] = value
    extra = parse_options(getattr(args, "option", None))
    own = {"prior", "iters", "kernel_size", "kernel_branch", "seed", "progress", "grid", "callback", "pm", "preset",
           "colour", "checkpoint", "checkpoint_every"}
    taken = sorted(own & set(extra))
    if taken:
        raise InvalidInputError(f"--option cannot set {', '.join(taken)}: use the command's own flags")
    refuse_unaccepted_options(method_name, method.factory, extra)
    method_options.update(extra)
    if accepts_keyword(method.factory, "progress", explicit_only=True):
        method_options["progress"] = True  # a tqdm bar on stderr
    checkpoint = getattr(args, "checkpoint", None)
    if checkpoint is not None:
        if not accepts_keyword(method.factory, "checkpoint", explicit_only=True):
            raise InvalidInputError(f"method {method_name!r} cannot checkpoint (--checkpoint is for dip, vdip-*, bird and blinddps)")
        if args.checkpoint_every < 1:
            raise InvalidInputError(f"--checkpoint-every must be >= 1, got {args.checkpoint_every}")
        from .checkpoint import RunCheckpoint

        if RunCheckpoint(checkpoint).exists():
            print(f"glkm: resuming from the checkpoint in {checkpoint}", file=sys.stderr)
        method_options.update(checkpoint=checkpoint, checkpoint_every=args.checkpoint_every)
    if getattr(args, "nonuniform", False):
        from .svola import parse_grid

        method_options["grid"] = parse_grid(args.grid or "3x3")
    return method_options, extra


def _check_image_size(shape, kernel_size) -> None:
    """One clear error when the image is too small for the kernel size (or for any, with auto)."""
    smallest = AUTO_KERNEL_RANGE[0] if kernel_size == "auto" else int(kernel_size)
    if min(shape) < 2 * smallest:
        what = f"the smallest automatic kernel size ({smallest} px)" if kernel_size == "auto" else f"a {smallest} px kernel"
        raise InvalidInputError(f"the image is {shape[0]}x{shape[1]} px: too small for {what}; deblurring needs at least "
                                f"{2 * smallest} px per side")


def _result_warnings(kernel, kernel_size: int, size_estimate: dict | None, shape) -> list[str]:
    """:func:`kernel_warnings` of a run, printed as ``glkm: warning: ...`` lines."""
    if size_estimate is not None:
        largest = size_estimate["max_size"]
    else:  # the largest kernel this image takes (2K px per side) within the supported range
        largest = min(MAX_KERNEL_SIZE, (min(shape) // 2) - 1 | 1)
    warnings = kernel_warnings(kernel, largest_size=max(largest, kernel_size), size_estimate=size_estimate)
    for message in warnings:
        print(f"glkm: warning: {message}", file=sys.stderr)
    return warnings


def _checked_output_paths(input_path: Path, output, nonuniform: bool, force: bool) -> dict[str, Path]:
    """The output paths, refused when one is the input or exists (without ``force``)."""
    paths = output_paths(input_path, output, nonuniform)
    if paths["image"].suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"):
        raise InvalidInputError(f"output image must end in .png, .jpg, .bmp or .tif: {paths['image']}")
    _refuse_overwriting_input(input_path, paths)
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not force:
        raise InvalidInputError(f"output exists (use --force to overwrite): {', '.join(existing)}")
    return paths


def _auto_kernel_size(args, blurry, warn) -> dict:
    """``--kernel-size auto``: the estimate's report, announced on stderr."""
    report = estimate_kernel_size(blurry, args.kernel_branch, args.weights, args.revision, args.seed, warn, progress=True)
    how = (f"estimated blur extent {report['extent']} px" if report["extent"] is not None
           else "the largest this small image allows")
    print(f"glkm: kernel size {report['kernel_size']} px ({how})", file=sys.stderr)
    return report


def _deblur_method_name(name: str | None, nonuniform: bool) -> str:
    """``name``, or its SVOLA variant ``svola-<name>`` for ``--nonuniform``; ``None``: the default
    (:data:`DEFAULT_METHOD`, :data:`DEFAULT_NONUNIFORM_METHOD`)."""
    from . import plugins

    if name is None:
        return DEFAULT_NONUNIFORM_METHOD if nonuniform else DEFAULT_METHOD
    if not nonuniform or name.startswith("svola-"):
        return name
    offered = plugins.methods()
    if f"svola-{name}" not in offered:
        raise InvalidInputError(f"method {name!r} has no non-uniform (SVOLA) variant; "
                                f"available: {', '.join(m for m in sorted(offered) if m.startswith('svola-'))}")
    return f"svola-{name}"


def cmd_deblur(args) -> int:
    from . import imageio, plugins
    from .prior import check_kernel_size

    input_path = Path(args.input)
    nonuniform = bool(getattr(args, "nonuniform", False))
    if getattr(args, "grid", None) is not None and not nonuniform:
        raise InvalidInputError("--grid needs --nonuniform")
    paths = _checked_output_paths(input_path, args.output, nonuniform, args.force)
    if args.iters is not None and args.iters < 0:
        raise InvalidInputError(f"--iters must be >= 0, got {args.iters}")
    if args.kernel_size != "auto":
        check_kernel_size(args.kernel_size)
    set_threads(args.threads)
    method_name = _deblur_method_name(args.method, nonuniform)
    method = plugins.get_method(method_name)
    method_options, extra = _deblur_method_options(args, method_name, method)

    array = imageio.read_image(input_path)
    _check_image_size(array.shape[:2], args.kernel_size)
    blurry = imageio.to_tensor(array)
    torch.manual_seed(args.seed)
    notes = []

    def warn(m):
        notes.append(m)
        print(m, file=sys.stderr)

    kernel_size, size_estimate = args.kernel_size, None
    if kernel_size == "auto":
        size_estimate = _auto_kernel_size(args, blurry, warn)
        kernel_size = size_estimate["kernel_size"]
    prior = load_prior(args.weights, kernel_size, args.revision, warn=warn) if args.kernel_branch == "glkm" else None
    options = {"prior": prior} if prior is not None else {}
    if args.iters is not None:
        options["iters"] = args.iters
    options.update(method_options)
    start = time.perf_counter()
    result = method.factory(blurry, kernel_size=kernel_size, kernel_branch=args.kernel_branch, seed=args.seed, **options)
    seconds = time.perf_counter() - start
    if "checkpoint" in method_options:
        from .checkpoint import seconds_before_resume

        seconds += seconds_before_resume(result)  # time before an interruption counts
    if size_estimate is not None:
        seconds += size_estimate["seconds"]

    warnings = _result_warnings(result["kernel"], kernel_size, size_estimate, array.shape[:2])
    report = {
        "input": str(input_path),
        "outputs": {k: str(v) for k, v in paths.items()},
        "method": method_name,
        "kernel_branch": args.kernel_branch,
        "grid": "x".join(map(str, result["grid"])) if nonuniform else None,
        "kernel_size": kernel_size,
        "kernel_shape": list(result["kernel"].shape[-2:]),
        "kernel_size_estimate": size_estimate,
        "seed": args.seed,
        "iters": args.iters,
        "threads": torch.get_num_threads(),
        "preset": getattr(args, "preset", None),
        "colour": getattr(args, "colour", None),
        "options": extra,
        "prior": getattr(prior, "source", None),
        "image_shape": list(array.shape),
        "seconds": round(seconds, 3),
        "info": {k: v for k, v in result.get("info", {}).items() if _json_scalar(v)
                 or (isinstance(v, (list, tuple)) and all(_json_scalar(e) for e in v))},
        "warnings": warnings,
        "notes": notes,
    }
    _write_deblur_outputs(paths, result, report, nonuniform)
    if "checkpoint" in method_options:
        from .checkpoint import RunCheckpoint

        RunCheckpoint(method_options["checkpoint"]).clear()
    field = f"; kernel field: {paths['field_png']}, {paths['field_npy']}" if nonuniform else ""
    print(f"wrote {paths['image']} (kernel: {paths['kernel_png']}, {paths['kernel_npy']}{field}; report: {paths['json']}) "
          f"in {seconds:.1f} s")
    return 0


def _write_deblur_outputs(paths: dict[str, Path], result: dict, report: dict, nonuniform: bool) -> None:
    """The image, the kernel (enlarged PNG for viewing, exact .npy), the kernel field and the JSON report."""
    from . import imageio
    from .atomic import atomic_write
    from .bench import peak_rss_mb

    kernel = result["kernel"].detach().cpu().reshape(result["kernel"].shape[-2:]).numpy().astype(np.float32)
    imageio.write_image(paths["image"], imageio.to_array(result["image"].clamp(0, 1)))
    imageio.write_image(paths["kernel_png"], imageio.kernel_to_image(kernel, min_side=KERNEL_PNG_MIN_SIDE))
    atomic_write(paths["kernel_npy"], lambda fh: np.save(fh, kernel, allow_pickle=False), "kernel file")
    if nonuniform:
        P, Q = result["grid"]
        field = result["kernels"].detach().cpu().float().reshape(P, Q, *result["kernels"].shape[-2:]).numpy()
        imageio.write_image(paths["field_png"], imageio.kernel_field_to_image(field))
        atomic_write(paths["field_npy"], lambda fh: np.save(fh, field, allow_pickle=False), "kernel field file")
    report["peak_rss_mb"] = peak_rss_mb()
    atomic_write(paths["json"], lambda fh: fh.write((json.dumps(report, indent=2) + "\n").encode()), "report")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
