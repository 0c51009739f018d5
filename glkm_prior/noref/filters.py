"""MSCN coefficients (Gaussian-window local normalisation, replicate borders) and MATLAB's
antialiased bicubic ``imresize``, on 2-D float64 arrays."""

from __future__ import annotations

import math

import numpy as np

from ..errors import InvalidInputError
from ..matlab import gaussian_window

MSCN_C = 1.0  # stabilising constant of the MSCN normalisation
GAUSS_SIZE = 7  # MSCN window side
GAUSS_SIGMA = 7.0 / 6.0  # MSCN window standard deviation


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
