"""Build a synthetic benchmark set from a folder of sharp photos (``glkm eval make-synthetic``).

For each sharp image (sorted by file name; the first ``n`` if given):

1. read it (RGB, or grey when ``colour=False``), optionally resize it by ``upscale`` (bicubic,
   e.g. to make large test images) and shrink it so its longer side is at most ``max_side``;
   quantise to 8 bit: this is ``sharp_big`` (:func:`prepare_sharp`);
2. draw one kernel ``KernelSynthesizer(family).sample(1, K, seed=<per-image seed>)`` (K: 31 for
   ``levin``, 75 for ``lai`` by default), or take the next of the given ``kernels``;
3. ``blurry = blur(sharp_big, k, 'valid')`` (cross-correlation as ``F.conv2d``, no flip), plus
   Gaussian noise of standard deviation ``noise`` (images in [0, 1]), clipped and quantised
   to 8 bit;
4. store the **central part** of ``sharp_big`` aligned with the blurry image,
   ``sharp = sharp_big[K//2 : K//2 + Hb, K//2 : K//2 + Wb]`` (``Hb, Wb`` the blurry size), so
   sharp and blurry have the same size and ``blurry[i, j] = sum_ab k[a, b] sharp[i + a - K//2,
   j + b - K//2]`` wherever the kernel footprint is inside the frame.

Output (the generic layout :func:`glkm_prior.datasets.folder_dataset` reads)::

    OUT/blurry/<stem>.png     8-bit blurry image
    OUT/sharp/<stem>.png      8-bit sharp image (central part, same size as blurry)
    OUT/kernels/<stem>.npy    exact float32 kernel (sums to 1); <stem>.png scaled for viewing
    OUT/manifest.json         seed, family, noise, per-image kernel size, seeds and source file

Non-uniform sets (``motion="camera"``): step 2-3 become a dense spatially varying blur of one
simulated exposure with camera roll and a depth ramp (:mod:`glkm_prior.camera_motion`; kernel
canvas ``K``, every per-pixel kernel fits in it, the same 'valid' geometry and alignment). No
single true kernel exists, so ``kernels/`` is not written; instead
``OUT/kernel_fields/<stem>.npy`` holds the exact kernels at the centres of a ``field_grid``
(default 3 x 3) spanning the blurry image, (P, Q, K, K), with a ``.png`` for viewing, and the
manifest records each exposure's rotation, translation and depth range.

Reproducible: the same arguments and seed give byte-identical files (per-image seeds derive
from ``seed`` and the image index with :class:`numpy.random.SeedSequence`). Every file is
written atomically.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from .atomic import atomic_write
from .camera_motion import ROTATION_DEG, sample_camera_motion
from .datasets import IMAGE_SUFFIXES
from .errors import InvalidInputError
from .imageio import kernel_field_to_image, read_image, to_array, to_tensor, write_image
from .kernel_io import save_kernel
from .physics import blur
from .synthesis import FAMILIES, KernelSynthesizer

DEFAULT_KERNEL_SIZE = {"levin": 31, "lai": 75, "mixed": 75}


def per_image_seed(seed: int, index: int, stream: int) -> int:
    """Seed of one image's random stream (0: kernel, 1: noise), independent of the others."""
    return int(np.random.SeedSequence([int(seed), int(index), int(stream)]).generate_state(1)[0])


def prepare_sharp(path: str | os.PathLike, colour: bool = True, max_side: int | None = None,
                  upscale: float = 1.0) -> np.ndarray:
    """The (large) sharp image of step 1: float32 in [0, 1] on the 8-bit grid, (H, W[, 3])."""
    arr = read_image(path, mode="auto" if colour else "gray")
    img = Image.fromarray(np.round(np.clip(arr, 0, 1) * 255).astype(np.uint8))
    w, h = img.size
    scale = float(upscale)
    if max_side is not None and max(w, h) * scale > max_side:
        scale = max_side / max(w, h)
    if scale != 1.0:
        img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BICUBIC)
    return np.asarray(img, dtype=np.float32) / 255.0


def _list_sharp(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise InvalidInputError(f"sharp image folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                   and not p.name.startswith("."))
    if not files:
        raise InvalidInputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    stems = [p.stem for p in files]
    dup = sorted({s for s in stems if stems.count(s) > 1})
    if dup:
        raise InvalidInputError(f"{folder}: several images share the stem(s) {', '.join(dup)}")
    return files


def _check_kernel_array(k, i: int) -> np.ndarray:
    k = np.asarray(k, dtype=np.float32)
    if k.ndim != 2 or not np.isfinite(k).all() or (k < 0).any() or k.sum() <= 0:
        raise InvalidInputError(f"kernels[{i}] must be a finite, non-negative 2-D array with a positive sum")
    return (k / k.sum()).astype(np.float32)


def _check_arguments(family, noise, n, upscale, max_side, kernels, motion, rotation_deg):
    """The arguments of :func:`build_synthetic_set`, checked: returns the camera roll range
    ``(low, high)`` and the given kernels normalised (None when they are synthesized)."""
    if motion not in ("uniform", "camera"):
        raise InvalidInputError(f"motion must be 'uniform' or 'camera', got {motion!r}")
    if motion == "camera" and kernels is not None:
        raise InvalidInputError("motion='camera' draws its own spatially varying kernels; do not pass kernels")
    if rotation_deg is not None and motion != "camera":
        raise InvalidInputError("rotation_deg applies to motion='camera' only")
    rotation = tuple(float(v) for v in (ROTATION_DEG if rotation_deg is None else rotation_deg))
    if len(rotation) != 2 or not (np.isfinite(rotation).all() and 0 <= rotation[0] <= rotation[1]):
        raise InvalidInputError(f"rotation_deg must be (low, high) degrees with 0 <= low <= high, got {rotation_deg!r}")
    if family not in FAMILIES:
        raise InvalidInputError(f"unknown kernel family {family!r}; expected one of {', '.join(sorted(FAMILIES))}")
    if not (isinstance(noise, (int, float)) and np.isfinite(noise) and noise >= 0):
        raise InvalidInputError(f"noise must be a finite number >= 0, got {noise!r}")
    if n is not None and (isinstance(n, bool) or int(n) != n or n < 1):
        raise InvalidInputError(f"n must be a positive integer, got {n!r}")
    if not (np.isfinite(upscale) and upscale > 0):
        raise InvalidInputError(f"upscale must be a positive number, got {upscale!r}")
    if max_side is not None and max_side < 16:
        raise InvalidInputError(f"max_side must be >= 16, got {max_side!r}")
    fixed = None if kernels is None else [_check_kernel_array(k, i) for i, k in enumerate(kernels)]
    if fixed is not None and not fixed:
        raise InvalidInputError("kernels must hold at least one kernel")
    return rotation, fixed


def _image_kernel(i: int, motion: str, fixed, synth: KernelSynthesizer, seed: int, K: int):
    """Step 2 for image ``i``: ``(kernel, kernel seed)``; for ``motion='camera'`` only a K x K
    canvas (the exposure is drawn in :func:`_blurry` from the seed)."""
    if motion == "camera":
        kseed = per_image_seed(seed, i, 0)
        k = np.zeros((K, K), dtype=np.float32)  # canvas size only
    elif fixed is not None:
        k = fixed[i % len(fixed)]
        kseed = None
    else:
        kseed = per_image_seed(seed, i, 0)
        k = synth.sample(1, K, seed=kseed)[0]  # KernelSizeError for sizes outside 11..75 / even
    return k, kseed


def _blurry(big: np.ndarray, k: np.ndarray, motion: str, kseed, nseed: int, noise: float, family: str, rotation):
    """Step 3: the blurry image (float32 on the 8-bit grid) and the camera exposure (or None)."""
    kh, kw = k.shape
    H, W = big.shape[:2]
    exposure = None
    with torch.no_grad():
        if motion == "camera":
            exposure = sample_camera_motion(np.random.default_rng(kseed), H - kh + 1, W - kw + 1, kh, family=family,
                                            rotation_deg=rotation)
            y = exposure.blur(to_tensor(big).double())
        else:
            y = blur(to_tensor(big).double(), torch.from_numpy(k)[None, None].double(), "valid")
    y = to_array(y).astype(np.float64)
    if noise > 0:
        y = y + noise * np.random.default_rng(nseed).standard_normal(y.shape)
    y = (np.round(np.clip(y, 0, 1) * 255) / 255).astype(np.float32)
    return y, exposure


def _write_pair(out: Path, path: Path, big: np.ndarray, y: np.ndarray, k: np.ndarray, exposure, field_grid,
                item: dict) -> dict:
    """Step 4: writes the blurry image, the aligned central part of ``big`` and the kernel (or the
    kernel field of ``exposure``); returns ``item`` (the manifest entry) completed."""
    kh, kw = k.shape
    top, left = kh // 2, kw // 2
    sharp = big[top : top + y.shape[0], left : left + y.shape[1]]
    stem = path.stem
    write_image(out / "blurry" / f"{stem}.png", y)
    write_image(out / "sharp" / f"{stem}.png", sharp)
    if exposure is not None:
        field = exposure.kernel_field(field_grid)
        (out / "kernel_fields").mkdir(parents=True, exist_ok=True)
        atomic_write(out / "kernel_fields" / f"{stem}.npy", lambda fh: np.save(fh, field, allow_pickle=False), "kernel field")
        write_image(out / "kernel_fields" / f"{stem}.png", kernel_field_to_image(field))
        item.update(category="camera", exposure=exposure.describe())
    else:
        (out / "kernels").mkdir(parents=True, exist_ok=True)
        save_kernel(k, out / "kernels" / f"{stem}.npy")
        save_kernel(k, out / "kernels" / f"{stem}.png")
    return item


def build_synthetic_set(
    sharp_folder: str | os.PathLike,
    out: str | os.PathLike,
    family: str = "levin",
    kernel_size: int | None = None,
    noise: float = 0.01,
    n: int | None = None,
    seed: int = 0,
    colour: bool = True,
    max_side: int | None = None,
    upscale: float = 1.0,
    kernels: Sequence[np.ndarray] | None = None,
    motion: str = "uniform",
    field_grid: tuple[int, int] = (3, 3),
    rotation_deg: tuple[float, float] | None = None,
    log=None,
) -> dict:
    """Write a synthetic benchmark set to ``out`` (see the module docstring); returns the manifest.

    ``kernels``: optional 2-D arrays used instead of synthesized ones (cycled over the images;
    normalised to sum 1). Images smaller than the kernel are skipped and listed under
    ``"skipped"`` in the manifest. ``motion``: 'uniform' (one kernel per image) or 'camera'
    (dense non-uniform blur, see the module docstring; ``family`` then shapes the translation;
    ``rotation_deg``, (low, high) degrees peak to peak, replaces the default roll range of
    :func:`glkm_prior.camera_motion.sample_camera_motion`).
    """
    rotation, fixed = _check_arguments(family, noise, n, upscale, max_side, kernels, motion, rotation_deg)
    K = kernel_size if kernel_size is not None else DEFAULT_KERNEL_SIZE.get(family, 31)
    synth = KernelSynthesizer(family)
    files = _list_sharp(Path(sharp_folder))
    if n is not None:
        files = files[: int(n)]
    out = Path(out)
    items, skipped = [], []
    for i, path in enumerate(files):
        k, kseed = _image_kernel(i, motion, fixed, synth, seed, K)
        kh, kw = k.shape
        big = prepare_sharp(path, colour=colour, max_side=max_side, upscale=upscale)
        H, W = big.shape[:2]
        if H < kh + 15 or W < kw + 15:
            skipped.append({"source": path.name, "reason": f"{W}x{H} image is too small for a {kw}x{kh} kernel"})
            if log:
                log(f"skipping {path.name}: {W}x{H} is too small for a {kw}x{kh} kernel")
            continue
        nseed = per_image_seed(seed, i, 1)
        y, exposure = _blurry(big, k, motion, kseed, nseed, noise, family, rotation)
        item = {
            "name": path.stem, "source": path.name, "kernel_size": int(max(kh, kw)), "kernel_seed": kseed,
            "noise_seed": nseed, "category": family if fixed is None else "given",
            "shape": list(y.shape), "source_shape": list(big.shape),
        }
        items.append(_write_pair(out, path, big, y, k, exposure, field_grid, item))
    if not items:
        raise InvalidInputError(f"no usable image in {sharp_folder} (all smaller than the kernel)")
    manifest = {
        "generator": "glkm_prior.synthetic_set.build_synthetic_set",
        "sharp_folder": str(sharp_folder), "family": family if fixed is None else None, "seed": int(seed),
        "noise": float(noise), "kernel_size": int(K) if fixed is None else None, "colour": bool(colour),
        "max_side": max_side, "upscale": float(upscale), "boundary": "valid", "quantisation": "8-bit",
        "motion": motion,
        **({"rotation_deg": list(rotation)} if motion == "camera" else {}),
        "convention": ("blurry = blur(sharp_big, kernel, 'valid') (cross-correlation)" if motion == "uniform" else
                       "blurry = dense camera-motion blur of sharp_big ('valid', glkm_prior.camera_motion)")
                      + " + N(0, noise^2); sharp = central part of sharp_big aligned with blurry",
        "items": items, "skipped": skipped,
    }
    atomic_write(out / "manifest.json", lambda fh: fh.write((json.dumps(manifest, indent=2) + "\n").encode()), "manifest")
    return manifest
