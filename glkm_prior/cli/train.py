"""``glkm train generator|initializer|export``: train the prior's two stages, export a run."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InvalidInputError


def add_parser(sub) -> argparse.ArgumentParser:
    t = sub.add_parser("train", help="train the kernel prior (generator, then initializer)",
                       description="Train one stage of the prior. Works unchanged under torchrun --nproc_per_node=N.")
    tsub = t.add_subparsers(dest="stage", metavar="STAGE")
    tsub.required = True
    _add_generator_parser(tsub)
    _add_initializer_parser(tsub)
    _add_export_parser(tsub)
    return t


def _add_generator_parser(tsub) -> None:
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


def _add_initializer_parser(tsub) -> None:
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


def _add_export_parser(tsub) -> None:
    x = tsub.add_parser("export", help="copy a training run's generator/ and initializer/ into a shippable prior folder")
    x.add_argument("run", help="training output folder (holds generator/ and initializer/)")
    x.add_argument("dest", help="destination prior folder, e.g. weights/k31")
    x.add_argument("--initializer-dtype", choices=("float32", "float16"), default="float16",
                   help="storage dtype of the initializer (default float16: half the size, loads as float32)")
    x.set_defaults(func=cmd_export)


def cmd_train(args) -> int:
    from .. import training

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
        from ..hub import read_config

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
    from .. import hub

    run, dest = Path(args.run), Path(args.dest)
    for name, dtype in (("generator", "float32"), ("initializer", args.initializer_dtype)):
        source = run / name
        config = hub.read_config(source)
        extra = {k: v for k, v in config.items() if k not in ("model_type", "config", "format_version", "dtype")}
        hub.save_component(hub.load_component(source), dest / name, dtype=dtype, extra=extra)
    print(f"wrote {dest}/generator and {dest}/initializer")
    return 0
