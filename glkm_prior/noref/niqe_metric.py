"""NIQE (Mittal et al. 2013): MSCN block features at two scales against the bundled pristine
multivariate Gaussian (``glkm_prior/data/niqe_pris_params.npz``)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import numpy as np

from ..errors import InvalidInputError
from .aggd import aggd_fit_rows, aggd_gamma_tables
from .filters import imresize_bicubic, mscn
from .inputs import MetricUnavailableError, as_metric_image, gray255_of

NIQE_BLOCK = 96  # block side at scale 1 (48 at scale 2)
NIQE_PARAMS_FILE = "niqe_pris_params.npz"
NIQE_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))  # circshift offsets of the paired products


@dataclass(frozen=True)
class NIQEParams:
    """The pristine multivariate Gaussian and the MSCN window of NIQE."""

    mu: np.ndarray  # (36,)
    cov: np.ndarray  # (36, 36)
    window: np.ndarray  # (7, 7)


@functools.lru_cache(maxsize=1)
def load_niqe_params() -> NIQEParams:
    """Load ``glkm_prior/data/niqe_pris_params.npz`` (BasicSR's, Apache-2.0); read-only arrays."""
    source = resources.files("glkm_prior").joinpath("data").joinpath(NIQE_PARAMS_FILE)
    try:
        with source.open("rb") as fh, np.load(fh, allow_pickle=False) as data:
            mu = np.array(data["mu_pris_param"], dtype=np.float64).reshape(-1)
            cov = np.array(data["cov_pris_param"], dtype=np.float64)
            window = np.array(data["gaussian_window"], dtype=np.float64)
    except (OSError, KeyError, ValueError) as exc:
        raise MetricUnavailableError(
            f"NIQE: cannot read its pristine model glkm_prior/data/{NIQE_PARAMS_FILE} ({exc}); "
            "the file ships with the package, reinstall it"
        ) from exc
    if mu.shape != (36,) or cov.shape != (36, 36) or window.shape != (7, 7):
        raise MetricUnavailableError(f"NIQE: {NIQE_PARAMS_FILE} has unexpected array shapes")
    for arr in (mu, cov, window):
        arr.flags.writeable = False
    return NIQEParams(mu, cov, window)


def _blocks(img: np.ndarray, size: int) -> np.ndarray:
    """Split an (nh * size, nw * size) array into (nh * nw, size, size) blocks."""
    nh, nw = img.shape[0] // size, img.shape[1] // size
    return img.reshape(nh, size, nw, size).transpose(0, 2, 1, 3).reshape(nh * nw, size, size)


def _scale_features(coeffs: np.ndarray, size: int) -> np.ndarray:
    """The 18 NIQE features of every size x size block of an MSCN image: (n_blocks, 18)."""
    blocks = _blocks(coeffs, size)
    n = blocks.shape[0]
    alpha, beta_l, beta_r, _ = aggd_fit_rows(blocks.reshape(n, -1))
    feats = [alpha, (beta_l + beta_r) / 2.0]
    g1, g2, _, _ = aggd_gamma_tables()
    for shift in NIQE_SHIFTS:
        pair = blocks * np.roll(blocks, shift, axis=(1, 2))
        alpha, beta_l, beta_r, index = aggd_fit_rows(pair.reshape(n, -1))
        mean = (beta_r - beta_l) * g2[index] / g1[index]
        feats += [alpha, mean, beta_l, beta_r]
    return np.stack(feats, axis=1)


def niqe_features(gray255, window: np.ndarray | None = None) -> np.ndarray:
    """NIQE block features (n_blocks, 36) of a 2-D grey image on the 0-255 scale.

    The image is cropped to a multiple of 96 (top-left kept); columns 0-17 are the scale-1
    features, 18-35 those of the ``imresize(., 0.5)`` image (48 px blocks).
    """
    img = np.asarray(gray255, dtype=np.float64)
    if img.ndim != 2:
        raise InvalidInputError(f"gray255: expected a 2-D array, got shape {img.shape}")
    nh, nw = img.shape[0] // NIQE_BLOCK, img.shape[1] // NIQE_BLOCK
    if nh < 1 or nw < 1:
        raise InvalidInputError(
            f"NIQE needs at least {NIQE_BLOCK} px per side, got {img.shape[0]}x{img.shape[1]}"
        )
    w = load_niqe_params().window if window is None else window
    img = img[: nh * NIQE_BLOCK, : nw * NIQE_BLOCK]
    scale1 = _scale_features(mscn(img, w), NIQE_BLOCK)
    half = imresize_bicubic(img / 255.0, 0.5) * 255.0  # as BasicSR: resize on [0, 1] data
    scale2 = _scale_features(mscn(half, w), NIQE_BLOCK // 2)
    return np.concatenate([scale1, scale2], axis=1)


def _niqe_distance(feats: np.ndarray, params: NIQEParams) -> float:
    """sqrt((mu_p - mu)^T pinv((cov_p + cov) / 2) (mu_p - mu)) of the features' MVG fit."""
    complete = feats[~np.isnan(feats).any(axis=1)]
    if complete.shape[0] < 2:
        raise InvalidInputError(
            f"NIQE is undefined for this image: {complete.shape[0]} of its {feats.shape[0]} "
            f"{NIQE_BLOCK}x{NIQE_BLOCK} blocks have well-defined features and at least 2 are "
            "needed (flat or saturated blocks have none)"
        )
    with np.errstate(invalid="ignore"):
        mu = np.nanmean(feats, axis=0)
    cov = np.cov(complete, rowvar=False)
    diff = params.mu - mu
    # MATLAB pinv's tolerance: max(size) * eps * largest singular value
    inv = np.linalg.pinv((params.cov + cov) / 2.0, rcond=36 * np.finfo(np.float64).eps)
    return float(np.sqrt(diff @ inv @ diff))


def niqe(img, crop_border: int = 0, convert_to: Literal["y", "gray"] = "y") -> float:
    """NIQE of an image (module conventions); lower is better (pristine photos score ~3-5).

    ``crop_border`` pixels are removed from every side first. After cropping the image needs
    at least 96 px per side and two 96x96 blocks (so at least 96x192) with well-defined
    features. ``convert_to`` picks the channel of RGB input: ``"y"`` (BasicSR's default) or
    ``"gray"`` (MATLAB ``rgb2gray``, as the original MATLAB release).
    """
    if convert_to not in ("y", "gray"):
        raise InvalidInputError(f"convert_to: expected 'y' or 'gray', got {convert_to!r}")
    if isinstance(crop_border, bool) or not isinstance(crop_border, (int, np.integer)):
        raise InvalidInputError(f"crop_border: expected an int >= 0, got {crop_border!r}")
    if crop_border < 0:
        raise InvalidInputError(f"crop_border: expected an int >= 0, got {crop_border}")
    arr = as_metric_image(img)
    h, w = arr.shape[:2]
    ch, cw = h - 2 * crop_border, w - 2 * crop_border
    nh, nw = max(ch, 0) // NIQE_BLOCK, max(cw, 0) // NIQE_BLOCK
    if nh < 1 or nw < 1 or nh * nw < 2:
        raise InvalidInputError(
            f"NIQE needs at least two {NIQE_BLOCK}x{NIQE_BLOCK} blocks, i.e. an image of at "
            f"least {NIQE_BLOCK}x{2 * NIQE_BLOCK} or {2 * NIQE_BLOCK}x{NIQE_BLOCK} px after "
            f"cropping {crop_border} px per side; "
            f"got {h}x{w} -> {max(ch, 0)}x{max(cw, 0)}"
        )
    if crop_border:
        arr = arr[crop_border:-crop_border, crop_border:-crop_border]
    params = load_niqe_params()
    feats = niqe_features(gray255_of(arr, convert_to), params.window)
    return _niqe_distance(feats, params)
