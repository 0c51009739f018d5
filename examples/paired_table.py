"""Per-image paired table of two finished ``glkm eval`` runs of single-pass methods (final PSNR
only; :mod:`examples.compare_runs` is for iterative loops), with the blurry input if given.

Usage: ``python examples/paired_table.py RUN_A RUN_B [--input IDENTITY_RUN] [--labels A B] [-o OUT.md]``.
Rows: the (image, seed) pairs both runs finished; columns: PSNR of each, A - B, error ratios, the
candidate A selected (``info.selected``, when A ran ``select=prior``) and the input's PSNR.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def load(run: str) -> dict:
    return {(r["name"], r["seed"]): r for r in (json.loads(p.read_text()) for p in Path(run, "results").glob("*.json"))}


def table(a: dict, b: dict, inputs: dict, labels) -> str:
    keys = sorted(set(a) & set(b))
    if not keys:
        raise SystemExit("the two runs have no (image, seed) pair in common")
    head = f"| image | seed | {labels[0]} | {labels[1]} | A - B | error ratio A / B | selected | input |"
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for key in keys:
        ra, rb, ri = a[key], b[key], inputs.get(key)
        selected = (ra.get("info") or {}).get("selected", "")
        lines.append(f"| {key[0]} | {key[1]} | {ra['psnr']:.2f} | {rb['psnr']:.2f} | {ra['psnr'] - rb['psnr']:+.2f} | "
                     f"{ra['error_ratio']:.2f} / {rb['error_ratio']:.2f} | {selected} | {'' if ri is None else format(ri['psnr'], '.2f')} |")
    diffs = [a[k]["psnr"] - b[k]["psnr"] for k in keys]
    mean = lambda run: statistics.mean(run[k]["psnr"] for k in keys)  # noqa: E731
    lines += ["", f"{len(keys)} pairs: {labels[0]} {mean(a):.2f} dB, {labels[1]} {mean(b):.2f} dB, A - B {statistics.mean(diffs):+.2f} dB; "
                  f"A higher (> 0.05 dB) on {sum(d > 0.05 for d in diffs)}, lower on {sum(d < -0.05 for d in diffs)}; "
                  f"median error ratio {statistics.median(a[k]['error_ratio'] for k in keys):.2f} / "
                  f"{statistics.median(b[k]['error_ratio'] for k in keys):.2f}; seconds per image "
                  f"{statistics.mean(a[k]['seconds'] for k in keys):.1f} / {statistics.mean(b[k]['seconds'] for k in keys):.1f}"]
    common = [k for k in keys if k in inputs]
    if common:
        lines.append(f"below the blurry input: {labels[0]} {sum(a[k]['psnr'] < inputs[k]['psnr'] for k in common)}, "
                     f"{labels[1]} {sum(b[k]['psnr'] < inputs[k]['psnr'] for k in common)} of {len(common)}; "
                     f"input {statistics.mean(inputs[k]['psnr'] for k in common):.2f} dB")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_a")
    parser.add_argument("run_b")
    parser.add_argument("--input", help="a --method identity run of the same images")
    parser.add_argument("--labels", nargs=2, default=["A", "B"])
    parser.add_argument("-o", "--output")
    args = parser.parse_args()
    text = table(load(args.run_a), load(args.run_b), load(args.input) if args.input else {}, args.labels)
    if args.output:
        Path(args.output).write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
