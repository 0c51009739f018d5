"""Reading and writing images (Pillow), with validation and atomic writes.

Arrays are float32 numpy, values in [0, 1], shape (H, W) for grey or (H, W, 3) for colour.
Tensors are (1, C, H, W). 8- and 16-bit files are both read; files are written as 8-bit PNG
(or JPEG by extension) through a temporary file, so a failed write leaves nothing behind.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFont, ImageOps, UnidentifiedImageError

from .atomic import atomic_write
from .errors import ImageReadError, InvalidInputError
from .metrics import rgb_to_y

Image.MAX_IMAGE_PIXELS = 200_000_000  # large photos are fine; Pillow's default warns at 89 MP


def read_image(path: str | os.PathLike, mode: str = "auto") -> np.ndarray:
    """Read an image as float32 in [0, 1]: (H, W) if grey (or ``mode='gray'``), else (H, W, 3).

    EXIF orientation is applied; alpha is dropped. Raises :class:`ImageReadError` naming the
    file if it is missing, unreadable or corrupt.
    """
    path = Path(path)
    if mode not in ("auto", "gray", "rgb"):
        raise InvalidInputError(f"mode must be 'auto', 'gray' or 'rgb', got {mode!r}")
    if not path.is_file():
        raise ImageReadError(f"image file not found: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as img:
                img = ImageOps.exif_transpose(img)
                img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"cannot read image {path}: {exc}") from None
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float32) / (65535.0 if img.mode.startswith("I;16") or np.asarray(img).max() > 255 else 255.0)
        arr = np.clip(arr, 0, 1)
    elif img.mode == "F":
        arr = np.asarray(img, dtype=np.float32)
    else:
        grey = img.mode in ("L", "LA", "1") or (img.mode == "P" and _palette_is_grey(img))
        img = img.convert("L" if grey else "RGB")
        arr = np.asarray(img, dtype=np.float32) / 255.0
    if arr.ndim == 3 and mode == "gray":
        arr = rgb_to_gray(arr)
    elif arr.ndim == 2 and mode == "rgb":
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim == 3 and mode == "auto" and np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 1], arr[..., 2]):
        arr = arr[..., 0]
    if not np.isfinite(arr).all():
        raise ImageReadError(f"image {path} contains NaN or Inf values")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _palette_is_grey(img: Image.Image) -> bool:
    rgb = np.asarray(img.convert("RGB"))
    return bool(np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]))


def rgb_to_gray(arr: np.ndarray) -> np.ndarray:
    """BT.601 luma 0.299 R + 0.587 G + 0.114 B of an (H, W, 3) array, float32."""
    return rgb_to_y(arr, matlab=False).astype(np.float32)


def check_array_image(arr: np.ndarray, name: str = "image") -> np.ndarray:
    if not isinstance(arr, np.ndarray) or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3)):
        shape = arr.shape if isinstance(arr, np.ndarray) else type(arr).__name__
        raise InvalidInputError(f"{name} must be an (H, W) or (H, W, 3) array, got {shape}")
    if not np.isfinite(arr).all():
        raise InvalidInputError(f"{name} contains NaN or Inf values")
    return arr


def to_tensor(arr: np.ndarray) -> torch.Tensor:
    """(H, W) or (H, W, C) array -> (1, C, H, W) float32 tensor."""
    check_array_image(arr)
    if arr.ndim == 2:
        arr = arr[..., None]
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1), dtype=np.float32))[None]


def to_array(x: torch.Tensor) -> np.ndarray:
    """(1, C, H, W) tensor -> (H, W) or (H, W, C) float32 array."""
    if x.dim() != 4 or x.shape[0] != 1:
        raise InvalidInputError(f"expected a (1, C, H, W) tensor, got {tuple(x.shape)}")
    arr = x[0].detach().cpu().float().numpy().transpose(1, 2, 0)
    return arr[..., 0] if arr.shape[2] == 1 else arr


def write_image(path: str | os.PathLike, arr: np.ndarray) -> Path:
    """Write an (H, W) or (H, W, 3) array in [0, 1] (clipped) as an 8-bit image, atomically."""
    check_array_image(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    img = Image.fromarray(np.round(np.clip(arr, 0, 1) * 255).astype(np.uint8))
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}
    suffix = Path(path).suffix.lower()
    if suffix not in fmt:
        raise InvalidInputError(f"unsupported output image extension {suffix!r} (use one of {', '.join(fmt)})")
    return atomic_write(path, lambda fh: img.save(fh, format=fmt[suffix]), "image")


def tile_factor(shape: tuple[int, int], min_side: int = 0, fit: int | None = None) -> int:
    """The whole factor by which a kernel picture of ``shape`` (h, w) is enlarged (nearest
    neighbour, every kernel pixel a visible square): the smallest that makes its shorter side
    ``min_side`` px or more, or with ``fit`` the largest that keeps its longer side within
    ``fit`` px; at least 1 (a kernel larger than ``fit`` is the caller's to shrink)."""
    if fit is not None:
        return max(1, int(fit) // max(shape))
    return max(1, -(-int(min_side) // min(shape)))


def kernel_to_image(kernel: np.ndarray, min_side: int = 0, *, fit: int | None = None,
                    dtype=np.float32) -> np.ndarray:
    """A kernel for viewing: 2-D, computed in ``dtype``, scaled so its maximum is 1 and enlarged
    by :func:`tile_factor` (``min_side`` or ``fit``). The one kernel-tile drawing of the
    package (command line PNG, kernel fields, report grids, gallery)."""
    k = np.asarray(kernel, dtype=dtype).squeeze()
    if k.ndim != 2:
        raise InvalidInputError(f"a kernel must be 2-D, got shape {k.shape}")
    factor = tile_factor(k.shape, min_side, fit)
    k = k.repeat(factor, 0).repeat(factor, 1) if factor > 1 else k
    return k / max(float(k.max()), 1e-12)


def kernel_field_to_image(field: np.ndarray, gap: int = 3, scale: int = 2) -> np.ndarray:
    """A P x Q grid of kernels (P, Q, K, K) laid out as they sit on the image, for viewing:
    each kernel scaled to its own maximum, enlarged ``scale`` x (nearest), separated by
    ``gap`` px of mid grey; values in [0, 1]."""
    f = np.asarray(field, dtype=np.float32)
    if f.ndim != 4 or f.shape[-1] != f.shape[-2]:
        raise InvalidInputError(f"a kernel field must be (P, Q, K, K), got shape {f.shape}")
    P, Q, K, _ = f.shape
    tile = K * scale
    out = np.full((P * tile + (P + 1) * gap, Q * tile + (Q + 1) * gap), 0.5, dtype=np.float32)
    for i in range(P):
        for j in range(Q):
            k = kernel_to_image(f[i, j], min_side=tile)
            top, left = gap + i * (tile + gap), gap + j * (tile + gap)
            out[top: top + tile, left: left + tile] = k
    return out


def default_font(size: int = 12):
    """Pillow's default font at ``size`` px (labels of report grids and contact sheets); on
    Pillow < 10.1 the bitmap font, which has one size."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:
        return ImageFont.load_default()
