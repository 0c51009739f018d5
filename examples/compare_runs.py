"""Paired comparison of two `glkm eval` run folders over the (image, seed) pairs both have
finished: PSNR at a few iterations and at the end, where B passes A, where A reaches B's final
PSNR, mean gain and spread across seeds (:func:`glkm_prior.report.compare_runs`). Works on a
study still in progress (issue 5's convergence study):

    python examples/compare_runs.py benchmarks/dip_convergence/levin8_glkm \
        benchmarks/dip_convergence/levin8_native --labels GLKM native \
        -o benchmarks/dip_convergence/comparison.md
"""

import argparse
import json
import sys
from pathlib import Path

from glkm_prior.atomic import atomic_write
from glkm_prior.bench_config import parse_seeds
from glkm_prior.errors import GLKMError
from glkm_prior.report import compare_runs, comparison_markdown


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_a")
    parser.add_argument("run_b")
    parser.add_argument("--labels", nargs=2, default=("A", "B"), metavar=("LABEL_A", "LABEL_B"))
    parser.add_argument("--at", default="250,500", help="iterations shown besides the final one (default 250,500)")
    parser.add_argument("--seeds", default=None, help="only these seeds, comma-separated (default: all)")
    parser.add_argument("-o", "--output", help="also write the table here (.md; a .json beside it)")
    args = parser.parse_args()
    try:
        seeds = None if args.seeds is None else parse_seeds(args.seeds)
        cmp = compare_runs(args.run_a, args.run_b, at=[int(s) for s in args.at.split(",")], seeds=seeds)
    except (GLKMError, ValueError) as exc:
        print(f"compare_runs: {exc}", file=sys.stderr)
        return 2
    text = comparison_markdown(cmp, *args.labels)
    print(text, end="")
    if args.output:
        atomic_write(args.output, lambda fh: fh.write(text.encode()), "table")
        json_path = Path(args.output).with_suffix(".json")
        atomic_write(json_path, lambda fh: fh.write(json.dumps(cmp, indent=1).encode()), "comparison")
    return 0


if __name__ == "__main__":
    sys.exit(main())
