"""No-reference image-quality metrics: NIQE and PIQE (pure numpy). Lower is better for both.

Input convention (all public metrics)
-------------------------------------
* ``img`` is a float array, ``(H, W)`` grey or ``(H, W, 3)`` RGB (``(H, W, 1)`` counts as grey),
  values in ``[0, 1]``: what :func:`glkm_prior.imageio.read_image` returns. Values slightly
  outside ``[0, 1]`` (deconvolution overshoot) are clipped to it, as saving to 8 bits would;
  values outside ``[-1, 2]`` are rejected as probably 8-bit data. Integer arrays are rejected
  (divide 8-bit data by 255). NaN/Inf, a wrong ndim or an image too small for the metric
  raise :class:`glkm_prior.errors.InvalidInputError`.
* Both metrics work on one grey channel on the 0-255 scale, rounded to integers (halves away
  from zero, as MATLAB's ``round``), since the reference implementations see 8-bit images:

  - NIQE, default ``convert_to="y"`` (BasicSR ``calculate_niqe(..., convert_to='y')``): BT.601
    studio-swing luma as MATLAB ``rgb2ycbcr``, ``Y = 16 + 65.481 R + 128.553 G + 24.966 B``
    for R, G, B in [0, 1], so Y lies in [16, 235]. ``convert_to="gray"`` uses MATLAB
    ``rgb2gray`` (what the original MATLAB ``niqe`` release does). A grey input is ``255 * img``
    either way.
  - PIQE (MATLAB ``piqe``): ``round(255 * rgb2gray(img))`` with MATLAB's ``rgb2gray`` weights
    ``0.298936021293775 R + 0.587043074451121 G + 0.114020904255103 B``.

MSCN coefficients (both metrics)
--------------------------------
``(I - mu) / (sigma + C)`` with ``C = 1``, ``mu = w * I``, ``sigma = sqrt(|w * I^2 - mu^2|)``,
``w`` the normalised 7x7 Gaussian window of standard deviation 7/6 (MATLAB
``fspecial('gaussian', 7, 7/6)``), applied as a correlation with replicated borders (MATLAB
``imfilter(..., 'replicate')`` / ``imgaussfilt(..., 'Padding', 'replicate')``).

NIQE (Mittal, Soundararajan & Bovik, IEEE SPL 2013; MATLAB ``niqe_release``; BasicSR)
-------------------------------------------------------------------------------------
Constants: block 96x96 (no overlap), 2 scales, the second the MATLAB ``imresize(I, 0.5)``
bicubic downscale (cubic a = -0.5, antialiased: kernel stretched by 1/scale, symmetric
borders) with 48x48 blocks over the same image regions. The image is first cropped by
``crop_border`` on every side, then to a multiple of 96 (top-left kept). Per block and scale
18 features: the AGGD fit (alpha, mean of beta_l and beta_r) of the MSCN coefficients, and
(alpha, mean, beta_l, beta_r) of the AGGD fits of their products with the circularly shifted
block ((0, 1), (1, 0), (1, 1), (1, -1): horizontal, vertical, two diagonals). AGGD shape
search grid: alpha in 0.2:0.001:10 (moment matching, as the reference). The image's features
are fitted by a multivariate Gaussian (``nanmean`` of the block features; covariance of the
blocks without NaN, normalised by n - 1), and
``NIQE = sqrt((mu_p - mu)^T pinv((cov_p + cov) / 2) (mu_p - mu))`` against the pristine model
``glkm_prior/data/niqe_pris_params.npz`` (BasicSR, Apache-2.0; see ``NOTICE-niqe.txt``).
At least 96 px per side and two NaN-free 96x96 blocks are needed (a covariance needs two
samples), i.e. at least 96x192 after cropping.

PIQE (Venkatanath N et al., NCC 2015; MATLAB ``piqe``)
------------------------------------------------------
Constants: the grey image is padded (replicate, bottom/right) to a multiple of 16, MSCN as
above, 16x16 non-overlapping blocks. A block is *spatially active* if the (n - 1 normalised)
variance of its MSCN coefficients exceeds 0.1. For an active block:

* *noticeable distortion*: each of the 4 block borders (top, bottom rows, left, right
  columns) is split into its 11 overlapping segments of 6 pixels; the block is impaired if
  any segment has a standard deviation (n - 1) below 0.1. It then scores ``1 - variance``.
* *noise*: ``sigma`` = block standard deviation, ``r`` = std of the two centre columns
  (8 and 9, 1-based) divided by the std of the surround, ``beta = |sigma - r| / max(sigma, r)``
  (``r = 0`` if it is 0/0); the block is noisy if ``sigma > 2 beta``. It then scores
  ``variance``. As in MATLAB's code, the "surround" is the block without columns 8 and 10
  (MATLAB deletes column 8, then column 9 of the narrowed block).

``PIQE = (sum of block scores + C1) / (C1 + number of active blocks) * 100`` with ``C1 = 1``;
an image without active blocks (e.g. uniform) scores 100. The score is nominally in [0, 100];
a block can score ``variance > 1`` when noisy, so values slightly above 100 are possible.

BRISQUE is not offered: it needs a trained SVR model that is not bundled (and cannot be
downloaded here), and no number is ever made up without it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import numpy as np

from glkm_prior.colour import BT601_STUDIO_Y, MATLAB_RGB2GRAY
from glkm_prior.errors import GLKMError, InvalidInputError
from glkm_prior.matlab import gaussian_window, matlab_round

__all__ = [
    "MetricUnavailableError",
    "NIQEParams",
    "PIQEResult",
    "aggd_fit",
    "available_metrics",
    "imresize_bicubic",
    "load_niqe_params",
    "mscn",
    "niqe",
    "niqe_features",
    "piqe",
    "piqe_details",
    "to_gray255",
]

MSCN_C = 1.0  # stabilising constant of the MSCN normalisation
GAUSS_SIZE = 7  # MSCN window side
GAUSS_SIGMA = 7.0 / 6.0  # MSCN window standard deviation

NIQE_BLOCK = 96  # block side at scale 1 (48 at scale 2)
NIQE_PARAMS_FILE = "niqe_pris_params.npz"
AGGD_ALPHAS = np.linspace(0.2, 10.0, 9801)  # MATLAB 0.2:0.001:10
NIQE_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))  # circshift offsets of the paired products

PIQE_BLOCK = 16
PIQE_ACTIVITY_THRESHOLD = 0.1  # block MSCN variance above which a block is spatially active
PIQE_SEGMENT_THRESHOLD = 0.1  # border-segment std below which a block has a noticeable artifact
PIQE_SEGMENT = 6  # border segment length
PIQE_C1 = 1.0  # pooling constant


_RANGE_SLACK = 1.0  # accepted value range [-1, 2]; clipped to [0, 1]


class MetricUnavailableError(GLKMError, NotImplementedError):
    """A metric cannot be computed here (e.g. its trained model is not bundled)."""


# ----------------------------------------------------------------------------------------------
# input handling
# ----------------------------------------------------------------------------------------------


def _as_image(img, name: str = "img") -> np.ndarray:
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
    arr = _as_image(img)
    return _gray255(arr, convert_to)


def _gray255(arr: np.ndarray, convert_to: str) -> np.ndarray:
    if arr.ndim == 2:
        grey = 255.0 * arr
    elif convert_to == "y":
        r, g, b = BT601_STUDIO_Y  # glkm_prior.colour.studio_y on the 0-255 scale
        grey = 16.0 + r * arr[..., 0] + g * arr[..., 1] + b * arr[..., 2]
    else:
        r, g, b = MATLAB_RGB2GRAY
        grey = 255.0 * (r * arr[..., 0] + g * arr[..., 1] + b * arr[..., 2])
    return matlab_round(grey)


# ----------------------------------------------------------------------------------------------
# filtering, MSCN, resizing
# ----------------------------------------------------------------------------------------------


def _correlate_replicate(img: np.ndarray, window: np.ndarray) -> np.ndarray:
    """2-D correlation, output the size of ``img``, borders replicated (MATLAB imfilter
    'replicate'). Loops over the window taps only."""
    kh, kw = window.shape
    h, w = img.shape
    top, left = (kh - 1) // 2, (kw - 1) // 2
    pad = np.pad(img, ((top, kh - 1 - top), (left, kw - 1 - left)), mode="edge")
    out = np.zeros_like(img, dtype=np.float64)
    for i in range(kh):
        for j in range(kw):
            if window[i, j] != 0.0:
                out += window[i, j] * pad[i : i + h, j : j + w]
    return out


def mscn(gray, window: np.ndarray | None = None, c: float = MSCN_C) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients ``(I - mu) / (sigma + c)``.

    ``gray`` is a 2-D array (the metrics pass the 0-255 grey image); ``window`` defaults to
    :func:`glkm_prior.matlab.gaussian_window` (7x7, sigma 7/6); ``mu = window * I`` and
    ``sigma = sqrt(|window * I**2 - mu**2|)`` are correlations with replicated borders.
    Invariant to adding a constant to ``gray``; scaling ``gray`` and ``c`` together by ``k > 0``
    leaves it unchanged (so it is contrast invariant up to the constant ``c``).
    """
    img = np.asarray(gray, dtype=np.float64)
    if img.ndim != 2 or img.size == 0:
        raise InvalidInputError(f"gray: expected a non-empty 2-D array, got shape {img.shape}")
    w = gaussian_window(GAUSS_SIZE, GAUSS_SIGMA) if window is None else np.asarray(window, dtype=np.float64)
    mu = _correlate_replicate(img, w)
    sigma = np.sqrt(np.abs(_correlate_replicate(img * img, w) - mu * mu))
    return (img - mu) / (sigma + c)


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys cubic kernel with a = -0.5 (MATLAB imresize 'bicubic')."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * (
        (ax > 1) & (ax <= 2)
    )


def _resize_matrix(in_len: int, scale: float, antialiasing: bool = True) -> np.ndarray:
    """(out_len, in_len) matrix of MATLAB imresize's bicubic weights along one axis."""
    out_len = int(math.ceil(in_len * scale))
    width = 4.0 / scale if (scale < 1 and antialiasing) else 4.0
    x = np.arange(1, out_len + 1, dtype=np.float64)  # 1-based output coordinates
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)  # their positions in input coordinates
    left = np.floor(u - width / 2.0)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]  # 1-based input indices
    dist = u[:, None] - idx
    if scale < 1 and antialiasing:
        weights = scale * _cubic(scale * dist)
    else:
        weights = _cubic(dist)
    weights = weights / weights.sum(axis=1, keepdims=True)
    # symmetric borders: MATLAB's aux = [1:n, n:-1:1] indexed modulo 2n
    aux = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    src = aux[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    mat = np.zeros((out_len, in_len))
    rows = np.broadcast_to(np.arange(out_len)[:, None], src.shape)
    np.add.at(mat, (rows, src), weights)
    return mat


def imresize_bicubic(img, scale: float, antialiasing: bool = True) -> np.ndarray:
    """MATLAB ``imresize(img, scale)`` (bicubic, antialiasing on downscaling) of a 2-D array.

    Output size ``ceil(scale * H) x ceil(scale * W)``; rows are resized first, then columns;
    no rounding or clipping (as MATLAB for double input).
    """
    a = np.asarray(img, dtype=np.float64)
    if a.ndim != 2 or a.size == 0:
        raise InvalidInputError(f"img: expected a non-empty 2-D array, got shape {a.shape}")
    if not (math.isfinite(scale) and scale > 0):
        raise InvalidInputError(f"scale: expected a finite positive number, got {scale!r}")
    rows = _resize_matrix(a.shape[0], scale, antialiasing)
    cols = _resize_matrix(a.shape[1], scale, antialiasing)
    return (rows @ a) @ cols.T


# ----------------------------------------------------------------------------------------------
# AGGD fit
# ----------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _aggd_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gamma(1/a), Gamma(2/a), Gamma(3/a) and r(a) = Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a))."""
    gam = np.vectorize(math.gamma, otypes=[np.float64])
    g1, g2, g3 = gam(1.0 / AGGD_ALPHAS), gam(2.0 / AGGD_ALPHAS), gam(3.0 / AGGD_ALPHAS)
    return g1, g2, g3, g2 * g2 / (g1 * g3)


def _aggd_rows(
    x: np.ndarray, chunk: int = 256
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """AGGD moment-matching fit of every row of ``x`` (n, m): alpha, beta_l, beta_r and the
    index of alpha in :data:`AGGD_ALPHAS`, each (n,).

    As the reference: a side without samples gives NaN betas; then alpha is the first grid value
    (MATLAB's min over an all-NaN vector returns index 1).
    """
    neg, pos = x < 0, x > 0
    x2 = x * x
    with np.errstate(invalid="ignore", divide="ignore"):
        left_std = np.sqrt((x2 * neg).sum(axis=1) / neg.sum(axis=1))
        right_std = np.sqrt((x2 * pos).sum(axis=1) / pos.sum(axis=1))
        gammahat = left_std / right_std
        rhat = np.mean(np.abs(x), axis=1) ** 2 / np.mean(x2, axis=1)
        rhatnorm = rhat * (gammahat**3 + 1) * (gammahat + 1) / (gammahat**2 + 1) ** 2
    g1, _, g3, r_gam = _aggd_tables()
    index = np.zeros(x.shape[0], dtype=np.int64)
    for start in range(0, x.shape[0], chunk):
        part = rhatnorm[start : start + chunk]
        err = (r_gam[None, :] - part[:, None]) ** 2
        found = np.argmin(np.where(np.isnan(err), np.inf, err), axis=1)
        index[start : start + chunk] = np.where(np.isnan(part), 0, found)
    alpha = AGGD_ALPHAS[index]
    ratio = np.sqrt(g1[index] / g3[index])
    return alpha, left_std * ratio, right_std * ratio, index


def aggd_fit(x) -> tuple[float, float, float]:
    """Fit an asymmetric generalised Gaussian to the samples ``x`` (any shape).

    Moment matching as in BRISQUE/NIQE: ``alpha`` is the grid value (0.2:0.001:10) whose
    ``Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a))`` is nearest to the normalised ratio
    ``rhat (g^3 + 1)(g + 1) / (g^2 + 1)^2`` with ``rhat = mean|x|^2 / mean(x^2)`` and
    ``g = std_l / std_r`` (root mean squares of the negative / positive samples); then
    ``beta_{l,r} = std_{l,r} sqrt(Gamma(1/alpha) / Gamma(3/alpha))``.
    Returns ``(alpha, beta_l, beta_r)``; a side without samples gives NaN betas.
    """
    a = np.asarray(x, dtype=np.float64).reshape(1, -1)
    if a.size == 0 or not np.all(np.isfinite(a)):
        raise InvalidInputError("x: expected a non-empty array of finite values")
    alpha, beta_l, beta_r, _ = _aggd_rows(a)
    return float(alpha[0]), float(beta_l[0]), float(beta_r[0])


# ----------------------------------------------------------------------------------------------
# NIQE
# ----------------------------------------------------------------------------------------------


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
    alpha, beta_l, beta_r, _ = _aggd_rows(blocks.reshape(n, -1))
    feats = [alpha, (beta_l + beta_r) / 2.0]
    g1, g2, _, _ = _aggd_tables()
    for shift in NIQE_SHIFTS:
        pair = blocks * np.roll(blocks, shift, axis=(1, 2))
        alpha, beta_l, beta_r, index = _aggd_rows(pair.reshape(n, -1))
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
    arr = _as_image(img)
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
    feats = niqe_features(_gray255(arr, convert_to), params.window)
    return _niqe_distance(feats, params)


# ----------------------------------------------------------------------------------------------
# PIQE
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PIQEResult:
    """PIQE score and its (H, W) boolean block masks (MATLAB piqe's outputs)."""

    score: float
    activity_mask: np.ndarray  # spatially active blocks
    noticeable_artifacts_mask: np.ndarray  # active blocks with a flat border segment
    noise_mask: np.ndarray  # active blocks failing the centre-surround noise test


def _piqe_from_mscn(coeffs: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """PIQE pooling over the 16x16 blocks of an MSCN array whose sides are multiples of 16.

    Returns the score and the (n_h, n_w) block flags: active, noticeable artifact, noise.
    """
    b = PIQE_BLOCK
    nh, nw = coeffs.shape[0] // b, coeffs.shape[1] // b
    blocks = coeffs.reshape(nh, b, nw, b).transpose(0, 2, 1, 3)  # (nh, nw, 16, 16)
    var = blocks.reshape(nh, nw, b * b).var(axis=-1, ddof=1)
    active = var > PIQE_ACTIVITY_THRESHOLD

    borders = np.stack(
        [blocks[..., 0, :], blocks[..., :, b - 1], blocks[..., b - 1, :], blocks[..., :, 0]],
        axis=2,
    )  # (nh, nw, 4, 16): top, right, bottom, left
    segments = np.lib.stride_tricks.sliding_window_view(borders, PIQE_SEGMENT, axis=-1)
    artifact = (segments.std(axis=-1, ddof=1) < PIQE_SEGMENT_THRESHOLD).any(axis=(2, 3))

    centre_cols = [b // 2 - 1, b // 2]  # 1-based columns 8 and 9
    surround_cols = [c for c in range(b) if c not in (b // 2 - 1, b // 2 + 1)]  # MATLAB quirk
    centre = blocks[..., :, centre_cols].reshape(nh, nw, -1)
    surround = blocks[..., :, surround_cols].reshape(nh, nw, -1)
    sigma = np.sqrt(var)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = centre.std(axis=-1, ddof=1) / surround.std(axis=-1, ddof=1)
        ratio = np.where(np.isnan(ratio), 0.0, ratio)
        beta = np.abs(sigma - ratio) / np.maximum(sigma, ratio)
        noise = sigma > 2.0 * beta  # NaN beta (0/0, inf/inf) -> not noisy, as in MATLAB

    artifact &= active
    noise &= active
    total = float(np.sum(artifact * (1.0 - var)) + np.sum(noise * var))
    score = (total + PIQE_C1) / (PIQE_C1 + int(active.sum())) * 100.0
    return score, active, artifact, noise


def piqe_details(img) -> PIQEResult:
    """PIQE score with MATLAB piqe's ActivityMask, NoticeableArtifactsMask and NoiseMask."""
    arr = _as_image(img)
    gray = _gray255(arr, "gray")
    h, w = gray.shape
    b = PIQE_BLOCK
    gray = np.pad(gray, ((0, (-h) % b), (0, (-w) % b)), mode="edge")
    score, active, artifact, noise = _piqe_from_mscn(mscn(gray))

    def expand(flags: np.ndarray) -> np.ndarray:
        return np.repeat(np.repeat(flags, b, axis=0), b, axis=1)[:h, :w]

    return PIQEResult(score, expand(active), expand(artifact), expand(noise))


def piqe(img) -> float:
    """PIQE of an image (module conventions), nominally in [0, 100]; lower is better.

    Any non-empty image is accepted (it is padded to a multiple of 16); an image without
    spatially active 16x16 blocks (e.g. uniform) scores 100.
    """
    return piqe_details(img).score


# ----------------------------------------------------------------------------------------------
# availability
# ----------------------------------------------------------------------------------------------


def available_metrics() -> dict[str, bool]:
    """Which no-reference metrics can be computed here: ``{"niqe": ..., "piqe": True}`` (NIQE
    needs its bundled parameter file; BRISQUE is not offered, module doc)."""
    try:
        load_niqe_params()
        niqe_ok = True
    except MetricUnavailableError:
        niqe_ok = False
    return {"niqe": niqe_ok, "piqe": True}
