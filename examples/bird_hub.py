"""BIRD with GLKM's kernel branch on a pretrained diffusion model from the Hugging Face Hub.

    pip install 'glkm-prior[diffusion]'                 # diffusers (optional extra)
    python examples/bird_hub.py --input face256.png     # a 256 x 256 face photo (CelebA-HQ model)
    python examples/bird_hub.py --kernel-branch native  # BIRD's own kernel MLP instead of GLKM
    python examples/bird_hub.py --iters 5 --ddim-steps 3   # a quick check of the pipeline

Loads ``google/ddpm-celebahq-256`` (the DDPM CelebA-HQ 256 model that BIRD's prior corresponds
to; ~455 MB, downloaded once into the Hugging Face cache, or read from the cache offline), or
``--model`` (another Hub id or a local diffusers folder; ``--revision`` pins a commit). The input
(default: the bundled example, which is not a face, so only the mechanics are meaningful) is
resized to the model's size. Writes ``<out>/bird_x.png`` and ``bird_k.png``.

When the model cannot be had (diffusers not installed, Hub unreachable and the model not
cached) the script prints one line saying so and exits with status 2, without a traceback.
Cost on a CPU: about 1000 network evaluations per image (100 iterations x 10 DDIM steps);
see the timings in RESULTS.md, "Diffusion image priors".
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default=str(HERE / "data" / "blurry.png"), help="blurry image (default: bundled example)")
    parser.add_argument("--model", default="google/ddpm-celebahq-256", help="Hub repo id or local diffusers folder")
    parser.add_argument("--revision", default=None, help="Hub revision (commit hash) of the model")
    parser.add_argument("--offline", action="store_true", help="use the local Hugging Face cache only")
    parser.add_argument("--kernel-branch", default="glkm", choices=["glkm", "native"])
    parser.add_argument("--kernel-size", type=int, default=19)
    parser.add_argument("--iters", type=int, default=100, help="BIRD optimisation steps (default 100, as BIRD)")
    parser.add_argument("--ddim-steps", type=int, default=10, help="DDIM steps per image (default 10, as BIRD)")
    parser.add_argument("--weights", default=None, help="GLKM prior folder or Hub id (default: the bundled weights)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="out/bird_hub")
    args = parser.parse_args(argv)

    import torch
    import torch.nn.functional as F

    from glkm_prior.diffusion import load_diffusers_unet
    from glkm_prior.errors import GLKMError

    try:
        denoiser = load_diffusers_unet(args.model, revision=args.revision, local_files_only=True if args.offline else None)
    except GLKMError as exc:
        print(f"bird_hub: the diffusion model is not available, nothing was run: {exc}", file=sys.stderr)
        return 2

    from glkm_adapters.bird import run_bird
    from glkm_prior.api import load_prior
    from glkm_prior.imageio import kernel_to_image, read_image, to_array, to_tensor, write_image
    from glkm_prior.plugins import branch_uses_prior

    try:
        blurry = to_tensor(read_image(args.input, mode="rgb"))
        size = denoiser.image_size or max(blurry.shape[-2:])
        if tuple(blurry.shape[-2:]) != (size, size):
            blurry = F.interpolate(blurry, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
        prior = None
        if branch_uses_prior(args.kernel_branch):
            prior = load_prior(args.weights, args.kernel_size, None, warn=lambda m: print(m, file=sys.stderr))
        print(f"bird_hub: {denoiser}", file=sys.stderr)
        start = time.perf_counter()
        torch.manual_seed(args.seed)
        result = run_bird(blurry, kernel_size=args.kernel_size, kernel_branch=args.kernel_branch, iters=args.iters,
                          ddim_steps=args.ddim_steps, seed=args.seed, prior=prior, denoiser=denoiser, progress=True)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_image(out / "bird_x.png", to_array(result["image"]))
        kernel = result["kernel"].reshape(result["kernel"].shape[-2:]).numpy()
        write_image(out / "bird_k.png", kernel_to_image(kernel))
    except GLKMError as exc:
        print(f"bird_hub: {exc}", file=sys.stderr)
        return 2
    info = result["info"]
    losses = f", loss {info['loss_first']:.4g} -> {info['loss_last']:.4g}" if info["losses"] else ""
    print(f"bird_hub: {info['iters']} iterations x {info['ddim_steps']} DDIM steps in {time.perf_counter() - start:.1f} s "
          f"(kernel branch {info['kernel_branch']}{losses}); wrote {out / 'bird_x.png'} and {out / 'bird_k.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
