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
from .errors import GLKMError, InvalidInputError, WeightsError

DEFAULT_METHOD = "initializer"
AUTO_KERNEL_SIZE = 31


def _kernel_size_arg(text: str):
    if text == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"kernel size must be 'auto' or an integer, got {text!r}") from None


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
    d.add_argument("--method", default=DEFAULT_METHOD, help=f"deblurring method, see `glkm plugins` (default: {DEFAULT_METHOD})")
    d.add_argument("--kernel-branch", default="glkm", help="kernel branch the method uses: glkm (default) or native")
    d.add_argument("--kernel-size", type=_kernel_size_arg, default="auto", help=f"kernel side in px, or auto (= {AUTO_KERNEL_SIZE})")
    d.add_argument("--iters", type=int, default=None, help="iterations of iterative methods (default: the method's own)")
    d.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    d.add_argument("--weights", default=None, help="prior folder or Hub repo id (default: the bundled weights/)")
    d.add_argument("--revision", default=None, help="Hub revision (commit hash) when --weights is a repo id")
    d.add_argument("--force", action="store_true", help="overwrite existing output files")
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
    e.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate of E (default 1e-4, cosine decay)")
    e.add_argument("--inner-steps", type=int, default=20, help="GAN-inversion steps per batch giving z* (default 20)")
    e.add_argument("--inner-lr", type=float, default=0.01, help="learning rate of the inner inversion (default 0.01)")
    e.add_argument("--lam", type=float, default=0.1, help="weight of ||E(y) - z*||^2 (default 0.1)")
    e.add_argument("--noise-max", type=float, default=0.02, help="largest noise sigma on [0, 1] images (default 0.02)")
    e.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    e.add_argument("--eval-every", type=int, default=500, help="steps between validation checks (default 500)")
    e.add_argument("--checkpoint-minutes", type=float, default=5.0, help="minutes between checkpoints (default 5)")
    e.add_argument("--init-from", default=None, help="prior folder whose initializer starts the run")
    e.set_defaults(func=cmd_train)
    return parser


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
    print("Plugins (entry-point group 'glkm_prior'):")
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


# ---------------------------------------------------------------------------- deblur
def load_prior(weights, kernel_size: int, revision=None, warn=print):
    """The trained prior; if none is bundled yet, an untrained one with a loud warning."""
    from .prior import KernelPrior

    try:
        return KernelPrior.from_pretrained(weights, kernel_size=kernel_size, revision=revision)
    except WeightsError as exc:
        if weights is not None or "no trained prior" not in str(exc):
            raise
        warn(f"glkm: warning: {exc}; running with an UNTRAINED (random) prior: the kernel estimate is meaningless")
        return KernelPrior.untrained(max(kernel_size, 31))


def output_paths(input_path: Path, output: str | None) -> dict[str, Path]:
    image = Path(output) if output else Path.cwd() / f"{input_path.stem}_deblurred.png"
    stem = image.with_suffix("")
    return {
        "image": image,
        "kernel_png": stem.with_name(stem.name + "_kernel.png"),
        "kernel_npy": stem.with_name(stem.name + "_kernel.npy"),
        "json": stem.with_name(stem.name + ".json"),
    }


def cmd_deblur(args) -> int:
    from . import imageio, plugins
    from .atomic import atomic_write

    input_path = Path(args.input)
    paths = output_paths(input_path, args.output)
    if paths["image"].suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"):
        raise InvalidInputError(f"output image must end in .png, .jpg, .bmp or .tif: {paths['image']}")
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not args.force:
        raise InvalidInputError(f"output exists (use --force to overwrite): {', '.join(existing)}")
    if args.iters is not None and args.iters < 0:
        raise InvalidInputError(f"--iters must be >= 0, got {args.iters}")
    kernel_size = AUTO_KERNEL_SIZE if args.kernel_size == "auto" else args.kernel_size
    from .prior import check_kernel_size

    check_kernel_size(kernel_size)
    method = plugins.get_method(args.method)

    array = imageio.read_image(input_path)
    blurry = imageio.to_tensor(array)
    torch.manual_seed(args.seed)
    notes = []
    prior = None
    if args.kernel_branch == "glkm":
        prior = load_prior(args.weights, kernel_size, args.revision, warn=lambda m: (notes.append(m), print(m, file=sys.stderr)))
    options = {"prior": prior} if prior is not None else {}
    if args.iters is not None:
        options["iters"] = args.iters
    start = time.perf_counter()
    result = method.factory(blurry, kernel_size=kernel_size, kernel_branch=args.kernel_branch, seed=args.seed, **options)
    seconds = time.perf_counter() - start

    kernel = result["kernel"].detach().cpu().reshape(result["kernel"].shape[-2:]).numpy().astype(np.float32)
    imageio.write_image(paths["image"], imageio.to_array(result["image"].clamp(0, 1)))
    imageio.write_image(paths["kernel_png"], imageio.kernel_to_image(kernel))
    atomic_write(paths["kernel_npy"], lambda fh: np.save(fh, kernel, allow_pickle=False), "kernel file")
    report = {
        "input": str(input_path),
        "outputs": {k: str(v) for k, v in paths.items()},
        "method": args.method,
        "kernel_branch": args.kernel_branch,
        "kernel_size": kernel_size,
        "seed": args.seed,
        "iters": args.iters,
        "prior": getattr(prior, "source", None),
        "image_shape": list(array.shape),
        "seconds": round(seconds, 3),
        "info": {k: v for k, v in result.get("info", {}).items() if isinstance(v, (int, float, str, bool, type(None)))},
        "notes": notes,
    }
    atomic_write(paths["json"], lambda fh: fh.write((json.dumps(report, indent=2) + "\n").encode()), "report")
    print(f"wrote {paths['image']} (kernel: {paths['kernel_png']}, {paths['kernel_npy']}; report: {paths['json']}) in {seconds:.1f} s")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
