"""``glkm deblur``: estimate the blur kernel of one image and deblur it; writes the image, the
kernel (PNG and .npy), the kernel field (``--nonuniform``) and a JSON report."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from ..api import deblur
from ..context import RunContext
from ..diagnostics import kernel_warnings
from ..errors import InvalidInputError
from ..prior import AUTO_KERNEL_RANGE, MAX_KERNEL_SIZE
from .common import _add_threads_option, _add_weights_options, _kernel_size_arg, parse_options, set_threads

#: ``glkm deblur``'s method: the classical L0 estimator (README, "Status and measured figures":
#: Levin 31.75 dB with the automatic size vs 29.00 for ``fast``; the calibration study is in
#: RESULTS.md, "Classical calibration"); ``--nonuniform``: SVOLA cells seeded by the GLKM latent
#: of a global ``fast`` run.
DEFAULT_METHOD = "l0"
DEFAULT_NONUNIFORM_METHOD = "svola-fast"
#: The kernel PNG is enlarged (nearest neighbour) to at least this many px for viewing.
KERNEL_PNG_MIN_SIDE = 256


def add_parser(sub) -> argparse.ArgumentParser:
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
    return d


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
    """(options for the method factory, the --option dict as given); :func:`glkm_prior.api.deblur`
    checks them against the method's declared options (:func:`glkm_prior.plugins.check_options`)."""
    from ..plugins import takes_option

    method_options = {}
    for name in ("preset", "colour"):
        value = getattr(args, name, None)
        if value is not None:
            if not takes_option(method, name):
                raise InvalidInputError(f"method {method_name!r} has no --{name} setting")
            method_options[name] = value
    extra = parse_options(getattr(args, "option", None))
    own = {"prior", "iters", "kernel_size", "kernel_branch", "seed", "progress", "grid", "callback", "pm", "preset",
           "colour", "checkpoint", "checkpoint_every", "context"}
    taken = sorted(own & set(extra))
    if taken:
        raise InvalidInputError(f"--option cannot set {', '.join(taken)}: use the command's own flags")
    method_options.update(extra)
    if method.spec.progress:  # declared at registration (plugins.MethodSpec)
        method_options["progress"] = True  # a tqdm bar on stderr
    checkpoint = getattr(args, "checkpoint", None)
    if checkpoint is not None:
        if not method.spec.checkpointable:
            raise InvalidInputError(f"method {method_name!r} cannot checkpoint (--checkpoint is for dip, vdip-*, bird and blinddps)")
        if args.checkpoint_every < 1:
            raise InvalidInputError(f"--checkpoint-every must be >= 1, got {args.checkpoint_every}")
        from ..checkpoint import RunCheckpoint

        if RunCheckpoint(checkpoint).exists():
            print(f"glkm: resuming from the checkpoint in {checkpoint}", file=sys.stderr)
        method_options.update(checkpoint=checkpoint, checkpoint_every=args.checkpoint_every)
    if getattr(args, "nonuniform", False):
        from ..svola import parse_grid

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


def _deblur_method_name(name: str | None, nonuniform: bool) -> str:
    """``name``, or its SVOLA variant ``svola-<name>`` for ``--nonuniform``; ``None``: the default
    (:data:`DEFAULT_METHOD`, :data:`DEFAULT_NONUNIFORM_METHOD`)."""
    from .. import plugins

    if name is None:
        return DEFAULT_NONUNIFORM_METHOD if nonuniform else DEFAULT_METHOD
    if not nonuniform or name.startswith("svola-"):
        return name
    offered = plugins.methods()
    if f"svola-{name}" not in offered:
        raise InvalidInputError(f"method {name!r} has no non-uniform (SVOLA) variant; "
                                f"available: {', '.join(m for m in sorted(offered) if m.startswith('svola-'))}")
    return f"svola-{name}"


def _run_method(args, method_name: str, method_options: dict, blurry, warn):
    """:func:`glkm_prior.api.deblur` with the command's settings (the estimated kernel size is
    announced on stderr before the method runs): returns ``(result, kernel_size, size_estimate,
    prior, seconds)`` (seconds include the size estimate and, for a resumed checkpoint, the time
    before the interruption)."""
    def announce(report):
        how = (f"estimated blur extent {report['extent']} px" if report["extent"] is not None
               else "the largest this small image allows")
        print(f"glkm: kernel size {report['kernel_size']} px ({how})", file=sys.stderr)

    context = RunContext(weights=args.weights, revision=args.revision, warn=warn)
    result = deblur(blurry, method_name, kernel_size=args.kernel_size, kernel_branch=args.kernel_branch, seed=args.seed,
                    iters=args.iters, progress=True, on_kernel_size=announce, context=context,
                    **{k: v for k, v in method_options.items() if k != "progress"})
    seconds = result["seconds"]
    if "checkpoint" in method_options:
        from ..checkpoint import seconds_before_resume

        seconds += seconds_before_resume(result)  # time before an interruption counts
    return result, result["kernel_size"], result["kernel_size_estimate"], result["prior"], seconds


def cmd_deblur(args) -> int:
    from .. import imageio, plugins
    from ..prior import check_kernel_size

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
    torch.manual_seed(args.seed)  # the size estimate's draws (api.deblur reseeds before the method)
    notes = []

    def warn(m):
        notes.append(m)
        print(m, file=sys.stderr)

    result, kernel_size, size_estimate, prior, seconds = _run_method(args, method_name, method_options, blurry, warn)

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
        from ..checkpoint import RunCheckpoint

        RunCheckpoint(method_options["checkpoint"]).clear()
    field = f"; kernel field: {paths['field_png']}, {paths['field_npy']}" if nonuniform else ""
    print(f"wrote {paths['image']} (kernel: {paths['kernel_png']}, {paths['kernel_npy']}{field}; report: {paths['json']}) "
          f"in {seconds:.1f} s")
    return 0


def _write_deblur_outputs(paths: dict[str, Path], result: dict, report: dict, nonuniform: bool) -> None:
    """The image, the kernel (enlarged PNG for viewing, exact .npy), the kernel field and the JSON report."""
    from .. import imageio
    from ..atomic import atomic_write
    from ..process_memory import peak_rss_mb

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
