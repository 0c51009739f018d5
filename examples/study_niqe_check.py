"""Study (issue 24, step 4): does NIQE/PIQE of the result against the blurry input flag the
images a blind method made worse, without ground truth?

Usage: ``python examples/study_niqe_check.py RUN IDENTITY_RUN`` on two finished ``glkm eval``
runs of the same images (a method, and ``--method identity``). Prints per image the PSNR gain
over the blurry input next to NIQE and PIQE (lower is better) of input -> result, then how many
images get a worse NIQE than their input and how many of those the method really made worse.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from glkm_prior import noref
from glkm_prior.imageio import read_image


def main(run: str, identity: str) -> None:
    rows = list(csv.DictReader(open(Path(run) / "results.csv")))
    inputs = {r["name"]: r for r in csv.DictReader(open(Path(identity) / "results.csv"))}
    flagged = worse = 0
    for r in rows:
        blurry = inputs[r["name"]]
        gain = float(r["psnr"]) - float(blurry["psnr"])
        x, y = read_image(Path(run) / r["image"]), read_image(Path(identity) / blurry["image"])
        niqe_in, niqe_out = noref.niqe(y), noref.niqe(x)
        flagged += niqe_out > niqe_in
        worse += (niqe_out > niqe_in) and gain < 0
        print(f"{r['name']:24s} gain {gain:+6.2f} dB  NIQE {niqe_in:5.2f} -> {niqe_out:5.2f}  "
              f"PIQE {noref.piqe(y):5.1f} -> {noref.piqe(x):5.1f}", flush=True)
    print(f"{len(rows)} images; NIQE worse than the input on {flagged}, of which {worse} lost PSNR")


if __name__ == "__main__":
    main(*sys.argv[1:3])
