"""Input handling of the no-reference metrics (convention: :mod:`glkm_prior.noref`): checking
an image in [0, 1] and its grey channel on the 0-255 scale, rounded as MATLAB does."""

from __future__ import annotations

from typing import Literal

import numpy as np

from ..colour import BT601_STUDIO_Y, MATLAB_RGB2GRAY
from ..errors import GLKMError, InvalidInputError
from ..matlab import matlab_round

_RANGE_SLACK = 1.0  # accepted value range [-1, 2]; clipped to [0, 1]


class MetricUnavailableError(GLKMError, NotImplementedError):
    """A metric cannot be computed here (e.g. its trained model is not bundled)."""


def as_metric_image(img, name: str = "img") -> np.ndarray:
    """Validate a float (H, W) / (H, W, 1) / (H, W, 3) image in [0, 1]; float64, clipped."""
    try:
        arr = np.asarray(img)
    except Exception as exc:  # pragma: no cover - exotic objects
        raise InvalidInputError(f"{name}: cannot be converted to an array ({exc})") from exc
    if not np.issubdtype(arr.dtype, np.floating):
        hint = " (divide 8-bit data by 255)" if np.issubdtype(arr.dtype, np.integer) else ""
        raise InvalidInputError(
            f"{name}: expected a float array with values in [0, 1], got dtype {arr.dtype}{hint}"
        )
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise InvalidInputError(
            f"{name}: expected an (H, W) grey or (H, W, 3) RGB image, got shape {arr.shape}"
        )
    if arr.size == 0:
        raise InvalidInputError(f"{name}: image is empty (shape {arr.shape})")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        n_nan, n_inf = int(np.isnan(arr).sum()), int(np.isinf(arr).sum())
        raise InvalidInputError(f"{name}: contains non-finite values ({n_nan} NaN, {n_inf} Inf)")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -_RANGE_SLACK or hi > 1.0 + _RANGE_SLACK:
        raise InvalidInputError(
            f"{name}: values must lie in [0, 1], got [{lo:g}, {hi:g}]"
            + (" (8-bit data? divide by 255)" if hi > 2.0 else "")
        )
    return np.clip(arr, 0.0, 1.0)


def to_gray255(img, convert_to: Literal["y", "gray"] = "y") -> np.ndarray:
    """One channel on the 0-255 scale, rounded to integers (float64 (H, W)).

    ``img`` follows the module's input convention. A grey image gives ``round(255 * img)``.
    An RGB image gives the BT.601 studio-swing ``Y = 16 + 65.481 R + 128.553 G + 24.966 B``
    (``convert_to="y"``, range [16, 235]) or MATLAB ``rgb2gray`` times 255
    (``convert_to="gray"``).
    """
    if convert_to not in ("y", "gray"):
        raise InvalidInputError(f"convert_to: expected 'y' or 'gray', got {convert_to!r}")
    arr = as_metric_image(img)
    return gray255_of(arr, convert_to)


def gray255_of(arr: np.ndarray, convert_to: str) -> np.ndarray:
    if arr.ndim == 2:
        grey = 255.0 * arr
    elif convert_to == "y":
        r, g, b = BT601_STUDIO_Y  # glkm_prior.colour.studio_y on the 0-255 scale
        grey = 16.0 + r * arr[..., 0] + g * arr[..., 1] + b * arr[..., 2]
    else:
        r, g, b = MATLAB_RGB2GRAY
        grey = 255.0 * (r * arr[..., 0] + g * arr[..., 1] + b * arr[..., 2])
    return matlab_round(grey)
