"""Build the bundled example: a procedurally drawn sharp scene (our own, no dataset images),
blurred by a synthesized camera-shake kernel ('valid' correlation, as the benchmarks) with
1% Gaussian noise and 8-bit quantisation.

    python examples/make_example.py        # rewrites examples/data/*
"""

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

from glkm_prior.imageio import write_image
from glkm_prior.kernel_io import save_kernel
from glkm_prior.physics import blur
from glkm_prior.synthesis import KernelSynthesizer

OUT = Path(__file__).resolve().parent / "data"
SIZE, KERNEL_SIZE, NOISE, SEED = 255, 19, 0.01, 7


def draw_scene(size: int, rng: np.random.Generator) -> np.ndarray:
    """A colour scene with smooth shading, hard edges, thin lines and text-like strokes."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = np.stack([0.35 + 0.3 * xx, 0.4 + 0.2 * yy, 0.55 - 0.25 * xx * yy], axis=-1)
    img = Image.fromarray((base * 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(14):
        x0, y0 = rng.integers(-20, size, 2)
        w, h = rng.integers(15, 90, 2)
        colour = tuple(int(c) for c in rng.integers(20, 236, 3))
        shape = rng.integers(3)
        box = [int(x0), int(y0), int(x0 + w), int(y0 + h)]
        if shape == 0:
            draw.ellipse(box, fill=colour)
        elif shape == 1:
            draw.rectangle(box, fill=colour)
        else:
            pts = [tuple(int(v) for v in rng.integers(0, size, 2)) for _ in range(3)]
            draw.polygon(pts, fill=colour)
    for _ in range(10):
        pts = [tuple(int(v) for v in rng.integers(0, size, 2)) for _ in range(2)]
        draw.line(pts, fill=tuple(int(c) for c in rng.integers(0, 256, 3)), width=int(rng.integers(1, 4)))
    for i, word in enumerate(["GLKM", "kernel prior", "blind deblur", "0123456789"]):
        draw.text((12 + 30 * i, 20 + 55 * i), word, fill=(250, 250, 245) if i % 2 else (15, 15, 20))
    img = img.filter(ImageFilter.GaussianBlur(0.6))  # anti-alias: a camera's optics, not motion
    arr = np.asarray(img, dtype=np.float32) / 255
    texture = rng.normal(0, 0.02, (size, size, 1)).astype(np.float32)
    return np.clip(arr + texture, 0, 1)


def main() -> None:
    rng = np.random.default_rng(SEED)
    kernel = KernelSynthesizer("levin", seed=SEED).sample(1, KERNEL_SIZE)[0]
    big = SIZE + KERNEL_SIZE - 1
    sharp = draw_scene(big, rng)
    x = torch.from_numpy(sharp.transpose(2, 0, 1))[None]
    y = blur(x, torch.from_numpy(kernel)[None, None], "valid")[0].numpy().transpose(1, 2, 0)
    y = np.clip(y + rng.normal(0, NOISE, y.shape), 0, 1)
    c = KERNEL_SIZE // 2
    write_image(OUT / "sharp.png", sharp[c : c + SIZE, c : c + SIZE])
    write_image(OUT / "blurry.png", y)
    save_kernel(kernel, OUT / "kernel.png")
    save_kernel(kernel, OUT / "kernel.npy")
    print(f"wrote {OUT}: sharp.png, blurry.png ({SIZE}x{SIZE} RGB), kernel.png/.npy ({KERNEL_SIZE} px)")


if __name__ == "__main__":
    main()
