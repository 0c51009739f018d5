"""What a non-uniform synthetic set allows: PSNR of the blurry input and of deconvolutions with
the *exact* kernels at the kernel field's cell centres (``kernel_fields/`` of a set built with
``glkm eval make-synthetic ... --motion camera``): the centre kernel used uniformly, and the
whole P x Q field through the SVOLA deconvolution. No estimation: an upper reference for
``fast`` (uniform) and ``svola-fast`` on that set.

    python examples/nonuniform_ceiling.py eval_runs/nonuniform12
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from glkm_adapters.nonblind import nonblind
from glkm_adapters.svola import svola_deconvolve
from glkm_prior.scoring import quantise, score_image
from glkm_prior.imageio import read_image, to_array, to_tensor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("set", type=Path, help="a set folder with blurry/, sharp/ and kernel_fields/")
    root = parser.parse_args().set
    fields = sorted((root / "kernel_fields").glob("*.npy"))
    if not fields:
        raise SystemExit(f"no kernel_fields/*.npy in {root}: build the set with --motion camera")
    rows = []
    for f in fields:
        blurry, sharp = to_tensor(read_image(root / "blurry" / f"{f.stem}.png")), read_image(root / "sharp" / f"{f.stem}.png")
        field = torch.from_numpy(np.load(f, allow_pickle=False))
        P, Q, K, _ = field.shape
        kernels = field.reshape(P * Q, 1, K, K)
        start = time.perf_counter()
        svola = svola_deconvolve(blurry, kernels, (P, Q))
        seconds = time.perf_counter() - start
        uniform = nonblind(blurry, kernels[(P * Q) // 2: (P * Q) // 2 + 1])

        def score(image):
            return score_image(quantise(to_array(image.clamp(0, 1))), sharp).psnr

        rows.append((score(blurry), score(uniform), score(svola), seconds))
        print(f"{f.stem}: blurry {rows[-1][0]:.2f} dB, exact centre kernel (uniform) {rows[-1][1]:.2f} dB, "
              f"exact {P}x{Q} field (SVOLA) {rows[-1][2]:.2f} dB", flush=True)
    b, u, s, t = np.mean(rows, axis=0)
    print(f"mean over {len(rows)} images: blurry {b:.2f} dB, exact centre kernel {u:.2f} dB, exact field (SVOLA) "
          f"{s:.2f} dB (SVOLA deconvolution {t:.1f} s/image)")


if __name__ == "__main__":
    main()
