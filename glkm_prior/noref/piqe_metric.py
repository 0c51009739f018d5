"""PIQE (MATLAB ``piqe``): block-wise distortion scores of the MSCN image, pooled over the
spatially active 16 x 16 blocks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .filters import mscn
from .inputs import as_metric_image, gray255_of

PIQE_BLOCK = 16
PIQE_ACTIVITY_THRESHOLD = 0.1  # block MSCN variance above which a block is spatially active
PIQE_SEGMENT_THRESHOLD = 0.1  # border-segment std below which a block has a noticeable artifact
PIQE_SEGMENT = 6  # border segment length
PIQE_C1 = 1.0  # pooling constant


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
    arr = as_metric_image(img)
    gray = gray255_of(arr, "gray")
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
