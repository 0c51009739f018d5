"""Reading and writing blur-kernel files.

Kernels are 2-D, non-negative, finite arrays.  :func:`load_kernel` returns them as
``float32`` normalised to sum 1, whatever the file's scaling.  Supported inputs:

* ``.npy``: a 2-D real array (any numeric dtype); stored values are used as they are.
* images Pillow can read (PNG, JPEG, BMP, TIFF, ...) as benchmarks ship kernels,
  usually scaled so the maximum is 255: 8-bit or 16-bit grayscale, RGB/RGBA (channels
  averaged, alpha ignored), palette images.

Loaded kernels may have any size (even sides included); only 2-D with both sides >= 1
is required.  Problems raise :class:`~glkm_prior.errors.ImageReadError` (missing,
unreadable, corrupt file) or :class:`~glkm_prior.errors.InvalidInputError` (wrong
shape or dtype, NaN/Inf, negative values, all zeros); messages name the path.

:func:`save_kernel` writes ``.npy`` (exact ``float32``) or ``.png`` / ``.bmp`` /
``.tif`` (8-bit grayscale scaled so the maximum is 255, for viewing) atomically: the
data goes to a temporary file in the target folder that is then renamed over the
target, so a partial file is never left behind.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from glkm_prior.atomic import atomic_write
from glkm_prior.errors import GLKMError, ImageReadError, InvalidInputError

__all__ = ["load_kernel", "save_kernel", "IMAGE_SAVE_SUFFIXES"]

#: Image formats ``save_kernel`` writes (8-bit, lossless), by suffix.
IMAGE_SAVE_SUFFIXES = {".png": "PNG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}

_PIL_ERRORS = (OSError, UnidentifiedImageError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)


def _as_numpy(kernel) -> np.ndarray:
    """Accept numpy arrays, array-likes and (CPU or GPU) torch tensors."""
    if hasattr(kernel, "detach") and hasattr(kernel, "cpu"):
        kernel = kernel.detach().cpu().numpy()
    return np.asarray(kernel)


def _validate(arr: np.ndarray, what: str) -> np.ndarray:
    """Check a kernel array and return it as float64 (not yet normalised)."""
    if arr.dtype == np.bool_:
        arr = arr.astype(np.float64)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise InvalidInputError(f"{what}: kernel must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise InvalidInputError(f"{what}: kernel must be 2-D, got shape {tuple(arr.shape)}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise InvalidInputError(f"{what}: kernel is empty, shape {tuple(arr.shape)}")
    a = arr.astype(np.float64)
    if not np.isfinite(a).all():
        raise InvalidInputError(f"{what}: kernel holds NaN or Inf")
    if (a < 0).any():
        raise InvalidInputError(f"{what}: kernel holds negative values (min {a.min():.6g})")
    total = a.sum()
    if not total > 0:
        raise InvalidInputError(f"{what}: kernel is all zeros")
    if not np.isfinite(total):
        raise InvalidInputError(f"{what}: kernel sum overflows")
    return a


def _normalise(a: np.ndarray) -> np.ndarray:
    total = a.sum()
    if abs(total - 1.0) <= 1e-6:
        # Already normalised (e.g. a saved float32 kernel): keep the values bit-exact.
        return a.astype(np.float32)
    return (a / total).astype(np.float32)


def _read_npy(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ImageReadError(f"kernel file not found: {path}") from None
    except IsADirectoryError:
        raise ImageReadError(f"kernel path is a directory: {path}") from None
    except (OSError, ValueError, EOFError) as exc:
        raise ImageReadError(f"cannot read kernel file {path}: {exc}") from exc
    if not isinstance(arr, np.ndarray):  # an .npz archive saved under a .npy name
        if hasattr(arr, "close"):
            arr.close()
        raise ImageReadError(f"cannot read kernel file {path}: not a single .npy array")
    return arr


def _image_to_array(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode == "P" or mode == "PA":
        img = img.convert("RGBA" if "transparency" in img.info or mode == "PA" else "RGB")
        mode = img.mode
    elif mode == "CMYK" or mode == "YCbCr" or mode == "LAB" or mode == "HSV":
        img = img.convert("RGB")
        mode = img.mode
    elif mode == "1":
        img = img.convert("L")
        mode = "L"
    arr = np.asarray(img)
    if mode in ("RGB", "RGBA", "RGBX", "RGBa"):
        arr = arr[..., :3].astype(np.float64).mean(axis=-1)
    elif mode in ("LA", "La"):
        arr = arr[..., 0]
    return arr


def _read_image(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as img:
            img.load()
            return _image_to_array(img)
    except FileNotFoundError:
        raise ImageReadError(f"kernel file not found: {path}") from None
    except IsADirectoryError:
        raise ImageReadError(f"kernel path is a directory: {path}") from None
    except _PIL_ERRORS as exc:
        raise ImageReadError(f"cannot read kernel image {path}: {exc}") from exc


def load_kernel(path: str | os.PathLike) -> np.ndarray:
    """Load a blur kernel; return a ``(H, W)`` float32 array normalised to sum 1."""
    p = Path(path)
    if not p.exists():
        raise ImageReadError(f"kernel file not found: {p}")
    if p.is_dir():
        raise ImageReadError(f"kernel path is a directory: {p}")
    arr = _read_npy(p) if p.suffix.lower() == ".npy" else _read_image(p)
    return _normalise(_validate(arr, str(p)))


def save_kernel(kernel, path: str | os.PathLike) -> None:
    """Save a 2-D kernel to ``.npy`` (exact float32) or an 8-bit image (max = 255).

    The kernel is written as given (not re-normalised) to ``.npy``; image files are
    scaled so their maximum is 255.  Invalid kernels (not 2-D, NaN/Inf, negative,
    all zero) raise :class:`InvalidInputError`; an unsupported suffix too.  Write
    failures (missing folder, permissions, full disk) raise :class:`GLKMError`.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix != ".npy" and suffix not in IMAGE_SAVE_SUFFIXES:
        supported = ", ".join([".npy", *IMAGE_SAVE_SUFFIXES])
        raise InvalidInputError(f"cannot save kernel to {p}: unsupported suffix {p.suffix!r} (use {supported})")
    arr = _as_numpy(kernel)
    a = _validate(arr, f"cannot save kernel to {p}")
    if not p.parent.is_dir():
        raise GLKMError(f"cannot write kernel file {p}: folder {p.parent} does not exist")

    if suffix == ".npy":
        data = np.ascontiguousarray(arr.astype(np.float32))
        if not np.isfinite(data).all():
            raise InvalidInputError(f"cannot save kernel to {p}: values overflow float32")

        def write(fh):
            np.save(fh, data, allow_pickle=False)

    else:
        img8 = np.clip(np.rint(a * (255.0 / a.max())), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        # A 2-D uint8 array becomes an 8-bit grayscale ("L") image.
        Image.fromarray(img8).save(buf, format=IMAGE_SAVE_SUFFIXES[suffix])

        def write(fh):
            fh.write(buf.getvalue())

    atomic_write(p, write, what="kernel file")
