"""How a result is scored against its ground truth (the benchmark protocol of :mod:`glkm_prior.bench`).

* :func:`score_image`: Levin's ``comp_upto_shift`` (:func:`metrics.align_upto_shift`, 15 px
  border, sub-pixel shifts within +-5 px in 0.25 px steps; +-10 px on Lai et al.'s set,
  :data:`LAYOUT_MAXSHIFT`) on the luma plane (:func:`eval_plane`), after :func:`quantise` to
  the 8-bit grid the saved result has.
* :func:`no_reference_scores`: NIQE and PIQE of input and result (no ground truth).
* :func:`kernel_fit`: how well the stored true kernel and its 180-degree rotation explain the
  blurry image (the orientation check).
"""

from __future__ import annotations

import numpy as np
import torch

from . import metrics
from .errors import InvalidInputError

#: The registered method whose result is the error ratio's denominator (true kernel, same deconvolution).
TRUE_KERNEL_METHOD = "true-kernel"
ALIGN = dict(maxshift=5, step=0.25, border=15)
TRACE_ALIGN = dict(maxshift=5, step=1.0, border=15)
#: comp_upto_shift's search range (px) per dataset layout where it is not Levin's 5: SelfDeblur's
#: ``statistic_lai.m`` uses 10 on Lai et al.'s set, whose 51 and 55 px kernels have their centroid
#: 6.6 and 7.1 px off the centre, so a result deblurred with a centred estimate is shifted by as
#: much and a 5 px search scores it as a miss.
LAYOUT_MAXSHIFT = {"lai": 10}
#: The stored true kernel counts as rotated when its 180-degree rotation explains the blurry
#: image better by more than this many dB (nearly symmetric kernels differ by ~0.5 dB).
FLIP_MARGIN_DB = 1.0


def eval_plane(arr: np.ndarray) -> np.ndarray:
    """What is scored: grey as is, colour as MATLAB luma Y (``rgb_to_y(matlab=True)``)."""
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[2] == 3:
        return metrics.rgb_to_y(arr, matlab=True)
    if arr.ndim == 3:
        return arr[..., 0]
    return arr


def common_crop(a: np.ndarray, b: np.ndarray):
    if a.shape[:2] == b.shape[:2]:
        return a, b
    shape = (min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1]))
    return metrics.center_crop_to(a, shape), metrics.center_crop_to(b, shape)


def score_image(estimate: np.ndarray, ground_truth: np.ndarray, **align) -> metrics.AlignResult:
    """Align ``estimate`` to ``ground_truth`` and score it (module docstring, "Scores")."""
    e, g = common_crop(eval_plane(estimate), eval_plane(ground_truth))
    return metrics.align_upto_shift(e, g, **{**ALIGN, **align})


def no_reference_scores(blurry: np.ndarray, result: np.ndarray) -> dict:
    """NIQE and PIQE (lower is better) of the input and of the result (:mod:`glkm_prior.noref`);
    None where an image is too small for a metric."""
    from . import noref

    out = {}
    for name, fn in (("niqe", noref.niqe), ("piqe", noref.piqe)):
        for key, img in ((f"{name}_input", blurry), (name, result)):
            try:
                out[key] = float(fn(img))
            except InvalidInputError:
                out[key] = None
    return out


def kernel_fit(blurry: np.ndarray, sharp: np.ndarray, kernel: np.ndarray) -> dict | None:
    """How well the true kernel, as stored and rotated by 180 degrees, explains the blurry image.

    ``blur(sharp, k, 'same')`` is compared with ``blurry`` (luma for colour) after alignment on
    whole-pixel shifts within +-8 px, ignoring a ``K // 2 + 8`` px border (where 'same' zero
    padding and unknown outside content differ from the data). Returns the two PSNRs, or None
    when the image is too small for the check.
    """
    from .physics import blur

    b, g = common_crop(eval_plane(blurry), eval_plane(sharp))
    K = int(max(kernel.shape))
    border = min(K // 2 + 8, (min(b.shape) - metrics.SSIM_WIN) // 2)
    maxshift = min(8, border)
    if border < 1:
        return None
    out = {}
    for key, k in (("stored", kernel), ("flipped", kernel[::-1, ::-1])):
        kt = torch.from_numpy(np.ascontiguousarray(k, dtype=np.float64))[None, None]
        pred = blur(torch.from_numpy(np.ascontiguousarray(g, dtype=np.float64))[None, None], kt, "same")[0, 0].numpy()
        out[key] = metrics.align_upto_shift(pred, b, maxshift=maxshift, step=1.0, border=border).psnr
    out["rotated"] = bool(out["flipped"] > out["stored"] + FLIP_MARGIN_DB)
    return out


def quantise(arr: np.ndarray) -> np.ndarray:
    """Round to the 8-bit grid exactly as :func:`imageio.write_image` stores it."""
    return (np.round(np.clip(arr, 0, 1) * 255) / 255).astype(np.float32)
