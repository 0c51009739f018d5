"""Study (issue 24, step 4): can a Gaussian spectral marginal likelihood tell, without ground
truth, which of several kernel estimates of the same image deblurs it best?

Model: the sharp image's gradients are white with variance ``s``; the blurry gradients then have
the power spectrum ``s |K(w)|^2 + n |D(w)|^2`` (``D``: the difference filter, ``n``: noise), so
``-log p(y | k) = mean_w [P(w) / v(w) + log v(w)]`` over Welch-averaged periodograms ``P`` of the
x and y gradients, minimised over ``s`` and ``n`` on a grid. Only ``|K|`` enters (a kernel and its
180-degree rotation score alike). The delta kernel stands for "do nothing".

Usage, on finished ``glkm eval`` runs of the same images, ``LABEL=RUN_FOLDER`` each (label
``identity``: a ``--method identity`` run, scored with the delta kernel; ``truek``: a run whose
rows give the dataset's true kernel and its PSNR, e.g. ``--method true-kernel``, never picked;
any other label: the run's own kernels):

    python examples/study_spectral_check.py levin l0=RUN fast=RUN identity=RUN truek=RUN
    python examples/study_spectral_check.py lai l0=RUN fast=RUN identity=RUN truek=RUN

Prints, per image, each candidate's PSNR / score and the pick, then the means of every
candidate, of the picks and of the per-image best (oracle).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

from glkm_prior.imageio import read_image
from glkm_prior.metrics import rgb_to_y

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def welch_periodogram(g: np.ndarray, tile: int) -> np.ndarray:
    """Mean periodogram of Hann-windowed, half-overlapping ``tile`` x ``tile`` tiles of ``g``."""
    win = np.outer(np.hanning(tile), np.hanning(tile))
    acc, n = np.zeros((tile, tile)), 0
    for r in range(0, g.shape[0] - tile + 1, tile // 2):
        for c in range(0, g.shape[1] - tile + 1, tile // 2):
            t = g[r: r + tile, c: c + tile]
            acc += np.abs(np.fft.fft2((t - t.mean()) * win)) ** 2
            n += 1
    return acc / max(n, 1) / (win ** 2).sum()


def spectral_nll(y: np.ndarray, k: np.ndarray, tile: int) -> float:
    """Negative log-likelihood per frequency of the gradients of ``y`` under kernel ``k`` (module doc)."""
    gx, gy = np.diff(y, axis=1)[:-1], np.diff(y, axis=0)[:, :-1]
    px, py = welch_periodogram(gx, tile), welch_periodogram(gy, tile)
    k2 = np.abs(np.fft.fft2(k / k.sum(), (tile, tile))) ** 2
    w = np.fft.fftfreq(tile) * 2 * np.pi
    dx = np.tile(np.abs(1 - np.exp(-1j * w)) ** 2, (tile, 1))
    best = np.inf
    for log_s in np.linspace(-6, 0, 31):
        for log_n in np.linspace(-9, -2, 29):
            vx, vy = 10 ** log_s * k2 + 10 ** log_n * dx, 10 ** log_s * k2 + 10 ** log_n * dx.T
            best = min(best, float((px / vx + np.log(vx) + py / vy + np.log(vy)).mean()))
    return best


def true_kernel(dataset: str, name: str, row: dict) -> np.ndarray:
    if dataset == "levin":
        k = read_image(SHARED / "levin" / "gt" / f"kernel{name.split('kernel')[1]}.png", mode="gray")
    else:
        k = read_image(SHARED / "lai_uniform" / "kernels" / f"kernel_{name.split('_kernel_')[1]}.png", mode="gray")
    return k[::-1, ::-1] if row.get("true_kernel_rotated") == "True" else k


def main(argv: list[str]) -> None:
    dataset, runs = argv[0], dict(a.split("=", 1) for a in argv[1:])
    rows = {m: {r["name"]: r for r in csv.DictReader(open(Path(d) / "results.csv"))} for m, d in runs.items()}
    reference = next(iter(rows.values()))
    picks, table = [], {m: [] for m in runs}
    for name in reference:
        if dataset == "levin":
            y, tile = read_image(SHARED / "levin" / f"{name}_img.png", mode="gray"), 128
        else:
            y, tile = rgb_to_y(read_image(SHARED / "lai_uniform" / "blurred" / f"{name}.png")), 256
        scores, psnrs = {}, {}
        for m in runs:
            row = rows[m][name]
            if m == "identity":
                k = np.ones((1, 1))
            elif m == "truek":
                k = true_kernel(dataset, name, row)
            else:
                k = np.load(Path(runs[m]) / row["kernel"]).squeeze()
            scores[m] = spectral_nll(y, k, tile)
            psnrs[m] = float(row["psnr"])
            table[m].append(psnrs[m])
        pick = min((m for m in runs if m not in ("truek",)), key=scores.get)
        picks.append((psnrs[pick], max(v for m, v in psnrs.items() if m != "truek")))
        print(name, "pick", pick, " ".join(f"{m}:{psnrs[m]:.2f}/{scores[m]:.4f}" for m in runs), flush=True)
    print("means", {m: round(float(np.mean(v)), 3) for m, v in table.items()},
          "picked", round(float(np.mean([p for p, _ in picks])), 3), "oracle", round(float(np.mean([o for _, o in picks])), 3))


if __name__ == "__main__":
    main(sys.argv[1:])
