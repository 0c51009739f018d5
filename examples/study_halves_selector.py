"""Issue 24 study: does the agreement between two half-image kernel estimates pick the right L0 setting?

A uniform blur is the same kernel everywhere, so a kernel that the left and right halves of the
image both reproduce is more likely to be the true one than a kernel that only one half (or
neither) supports. For every finished full-image ``glkm eval --method l0`` run given (one per
setting, e.g. the four ``select=prior`` candidates), this script estimates the kernel on the left
and right halves of each blurry image with that run's options, scores the run's full-image kernel
by its mean distance to the two half kernels (``kernel_error``'s shift-aligned relative L2), picks
the setting with the smallest score per image, and writes a per-image table: every setting's
PSNR and score, the pick, and the per-image oracle.

Usage::

    python examples/study_halves_selector.py DATA RUN [RUN ...] [--cache DIR] [-o OUT.md]

``DATA``: the dataset folder the runs evaluated (``blurred/`` and the kernel size from the runs);
``RUN``: ``glkm eval`` output folders of the same images, the first one the baseline. Half-image
kernels are cached in ``--cache`` (default ``runs/l0_halves_cache``, gitignored), so an
interrupted study resumes. Cost: about one full-image estimation per setting and image.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from glkm_prior.estimation import estimate_kernel_l0
from glkm_prior.imageio import read_image
from glkm_prior.metrics.kernel import kernel_error
from glkm_prior.prior import to_luma


def load_run(folder: Path) -> tuple[dict, dict]:
    """(options of the run's method, {image name: result row}) of a finished ``glkm eval`` run."""
    config = json.loads((folder / "results.json").read_text()).get("config", {})
    rows = {r["name"]: r for r in (json.loads(p.read_text()) for p in (folder / "results").glob("*.json"))}
    return dict(config.get("options") or {}), rows


def half_kernels(y: torch.Tensor, size: int, options: dict) -> tuple[np.ndarray, np.ndarray]:
    """L0 kernel estimates (size x size) of the left and right halves of the luma ``y`` (1, 1, H, W)."""
    width = y.shape[-1]
    halves = (y[..., : width // 2], y[..., width // 2:])
    return tuple(estimate_kernel_l0(h, size, **options)["kernel"][0, 0].double().numpy() for h in halves)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--cache", type=Path, default=Path("runs/l0_halves_cache"))
    parser.add_argument("-o", "--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    runs = {folder.name: (folder, *load_run(folder)) for folder in args.runs}
    if len(runs) != len(args.runs):
        raise SystemExit("give runs with distinct folder names (they label the table and the cache)")
    names = sorted(set.intersection(*(set(rows) for _, _, rows in runs.values())))
    args.cache.mkdir(parents=True, exist_ok=True)
    lines = ["| image | " + " | ".join(f"{r} PSNR / score" for r in runs) + " | pick | picked PSNR | oracle |",
             "|---|" + "---:|" * (len(runs) + 3)]
    base, picked, oracle = [], [], []
    for name in names:
        y = to_luma(torch.from_numpy(np.ascontiguousarray(read_image(args.data / "blurred" / f"{name}.png")))
                    .permute(2, 0, 1)[None].float())
        scores, psnrs = {}, {}
        for run, (folder, options, rows) in runs.items():
            row = rows[name]
            cached = args.cache / f"{name}__{run}.npz"
            if not cached.exists():
                start = time.perf_counter()
                left, right = half_kernels(y, int(row["kernel_size"]), options)
                np.savez(cached, left=left, right=right)
                print(f"{name} {run}: halves in {time.perf_counter() - start:.1f} s", flush=True)
            halves = np.load(cached)
            full = np.load(folder / row["kernel"]).squeeze().astype(np.float64)
            scores[run] = statistics.mean(kernel_error(full, halves[side]).rel_l2 for side in ("left", "right"))
            psnrs[run] = float(row["psnr"])
        pick = min(scores, key=scores.get)
        base.append(psnrs[next(iter(runs))])
        picked.append(psnrs[pick])
        oracle.append(max(psnrs.values()))
        lines.append(f"| {name} | " + " | ".join(f"{psnrs[r]:.2f} / {scores[r]:.2f}" for r in runs)
                     + f" | {pick} | {psnrs[pick]:.2f} | {oracle[-1]:.2f} |")
    lines += ["", f"{len(names)} images: baseline ({next(iter(runs))}) {statistics.mean(base):.2f} dB, "
                  f"halves-selected {statistics.mean(picked):.2f} dB, per-image oracle {statistics.mean(oracle):.2f} dB; "
                  f"selected higher than the baseline on {sum(p > b + 0.05 for p, b in zip(picked, base))}, "
                  f"lower on {sum(p < b - 0.05 for p, b in zip(picked, base))}"]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
