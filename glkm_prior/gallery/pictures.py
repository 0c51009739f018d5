"""Reading the gallery's pictures: photos fitted into a cell (aspect kept, 8 bit, RGB) and
kernels enlarged by a whole nearest-neighbour factor (``.npy`` scaled so the maximum is white)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ..imageio import kernel_to_image, tile_factor


def open_image(path: Path) -> Image.Image:
    if not path.is_file():
        raise FileNotFoundError(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Image.open(path)


def to_8bit(img: Image.Image) -> Image.Image:
    """An L or RGB image; 16-bit / 32-bit integer and float images are scaled to 8 bit."""
    if img.mode.startswith("I"):
        arr = np.asarray(img).astype(np.float64)
        if img.mode.startswith("I;16") or arr.max(initial=0) > 255:
            arr = arr / 257.0
        return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))
    if img.mode == "F":
        arr = np.nan_to_num(np.asarray(img, dtype=np.float64))
        if arr.max(initial=0) <= 1.0:
            arr = arr * 255.0
        return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))
    if img.mode in ("L", "RGB"):
        return img
    return img.convert("RGBA").convert("RGB") if "A" in img.mode or "transparency" in img.info else img.convert("RGB")


def fit_into(img: Image.Image, cell: int) -> Image.Image:
    scale = min(cell / img.width, cell / img.height)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0 if scale < 0.5 else None)


def photo_picture(path: Path, cell: int) -> Image.Image:
    """A photo fitted into ``cell`` x ``cell`` (aspect kept), RGB; large JPEGs are decoded small."""
    with open_image(path) as img:
        img.draft("RGB", (cell, cell))
        img = ImageOps.exif_transpose(img)
        img.load()
    return fit_into(to_8bit(img), cell).convert("RGB")


def kernel_array(path: Path) -> np.ndarray:
    """An .npy kernel as uint8 scaled so its maximum is 255 (negative values shown as 0)."""
    if not path.is_file():
        raise FileNotFoundError(path)
    arr = np.load(path, allow_pickle=False)
    if not isinstance(arr, np.ndarray):
        raise ValueError("not a single .npy array")
    arr = np.squeeze(arr)
    if arr.ndim != 2 or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"not a 2-D real kernel (shape {arr.shape}, dtype {arr.dtype})")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError("kernel holds NaN or Inf")
    if not arr.max() > 0:
        raise ValueError("kernel has no positive value")
    return np.clip(np.rint(kernel_to_image(arr, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def _kernel_image(path: Path) -> Image.Image:
    if path.suffix.lower() == ".npy":
        return Image.fromarray(kernel_array(path))
    with open_image(path) as img:
        img.load()
        return to_8bit(img).convert("L")


def kernel_picture(path: Path, cell: int) -> Image.Image:
    """A kernel enlarged with nearest-neighbour by the largest whole factor that fits ``cell``
    (:func:`glkm_prior.imageio.tile_factor`)."""
    img = _kernel_image(path)
    if max(img.width, img.height) > cell:  # larger than the cell: shrink (rare)
        return fit_into(img, cell).convert("RGB")
    factor = tile_factor((img.height, img.width), fit=cell)
    return img.resize((img.width * factor, img.height * factor), Image.Resampling.NEAREST).convert("RGB")
