"""Tiling of large images and the per-image driver shared by the solvers (see "Large images"
in :mod:`glkm_prior.deconv`). The size thresholds are read here: patch them on this module."""

from __future__ import annotations

from typing import Callable, List, Optional, Tuple, Union

import torch

from ..errors import InvalidInputError
from .validation import _check_image, _check_int, _check_kernel

#: Images with more pixels than this are tiled by default (``tile='auto'``).
AUTO_TILE_PIXELS = 2048 * 2048
#: Tile size used by ``tile='auto'``.
AUTO_TILE_SIZE = 2048
#: Above this many pixels per channel, channels are processed one at a time.
_CHANNEL_CHUNK_PIXELS = 1024 * 1024

TileArg = Union[int, str, None]


def _default_overlap(k_size: Tuple[int, int]) -> int:
    return max(4 * max(k_size), 64)


def _tile_spans(n: int, tile: int, overlap: int) -> List[Tuple[int, int]]:
    """Equal-length spans covering ``range(n)``; consecutive spans overlap by >= ``overlap - 1``."""
    if n <= tile:
        return [(0, n)]
    nt = -(-(n - overlap) // (tile - overlap))
    length = -(-(n + (nt - 1) * overlap) // nt)
    length = min(length, tile)
    spans = []
    for i in range(nt):
        s = (i * (n - length) + (nt - 1) // 2) // (nt - 1)
        spans.append((s, s + length))
    return spans


def _tile_ramp(s: int, e: int, n: int, overlap: int, margin: int, device=None) -> torch.Tensor:
    """1-D blending weight of the span ``[s, e)``: linear ramps on edges shared with neighbours."""
    L = e - s
    t = torch.arange(L, dtype=torch.float32, device=device)
    w = torch.ones(L, dtype=torch.float32, device=device)
    width = float(max(overlap - 2 * margin, 1))
    if s > 0:
        w = torch.minimum(w, ((t + 0.5 - margin) / width).clamp(0.0, 1.0))
    if e < n:
        w = torch.minimum(w, ((L - 1 - t + 0.5 - margin) / width).clamp(0.0, 1.0))
    return w


def _resolve_tile(tile: TileArg, H: int, W: int, overlap: int) -> Optional[int]:
    if tile is None:
        return None
    if isinstance(tile, str):
        if tile != "auto":
            raise InvalidInputError(f"tile must be 'auto', None or a positive int, got {tile!r}")
        if H * W <= AUTO_TILE_PIXELS:
            return None
        t = max(AUTO_TILE_SIZE, 2 * overlap)
    else:
        t = _check_int("tile ('auto', None or a size)", tile, 0)
        if t == 0:
            return None
        if t < 2 * overlap:
            raise InvalidInputError(
                f"tile={t} is too small: it must be at least 2 * overlap = {2 * overlap} "
                f"(overlap >= 2 * kernel size)")
    if H <= t and W <= t:
        return None
    return t


def _tiled(img: torch.Tensor, k: torch.Tensor, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
           tile: int, overlap: int) -> torch.Tensor:
    H, W = img.shape[-2:]
    margin = max(k.shape[-2:]) // 2
    rows = _tile_spans(H, tile, overlap)
    cols = _tile_spans(W, tile, overlap)
    acc = torch.zeros_like(img)
    wacc = torch.zeros((H, W), dtype=img.dtype, device=img.device)
    for r0, r1 in rows:
        wr = _tile_ramp(r0, r1, H, overlap, margin, device=img.device)
        for c0, c1 in cols:
            wc = _tile_ramp(c0, c1, W, overlap, margin, device=img.device)
            wgt = wr[:, None] * wc[None, :]
            res = fn(img[..., r0:r1, c0:c1], k)
            acc[..., r0:r1, c0:c1] += res * wgt
            wacc[r0:r1, c0:c1] += wgt
    return acc / wacc


def _run(y, k, fn, *, tile: TileArg, overlap: Optional[int], clip: bool) -> torch.Tensor:
    """Validate, then apply ``fn(img (1, c, h, w), kernel (Kh, Kw))`` per batch element/channel chunk."""
    y = _check_image(y)
    B, C, H, W = y.shape
    kb = _check_kernel(k, B, H, W, y.device)
    Kh, Kw = kb.shape[-2:]
    if overlap is None:
        ov = _default_overlap((Kh, Kw))
    else:
        ov = _check_int("overlap (>= 2 * kernel size)", overlap, 2 * max(Kh, Kw))
    t = _resolve_tile(tile, H, W, ov)
    cchunk = C if H * W <= _CHANNEL_CHUNK_PIXELS else 1
    out = torch.empty_like(y)
    with torch.no_grad():
        for b in range(B):
            kk = kb[b, 0]
            for c0 in range(0, C, cchunk):
                img = y[b:b + 1, c0:c0 + cchunk]
                if t is None:
                    res = fn(img, kk)
                else:
                    res = _tiled(img, kk, fn, t, ov)
                out[b:b + 1, c0:c0 + cchunk] = res
    if clip:
        out.clamp_(0.0, 1.0)
    return out
