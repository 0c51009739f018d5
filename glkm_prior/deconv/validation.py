"""Argument checks of the deconvolution solvers (images, kernels, numbers, boundary names)."""

from __future__ import annotations

import math

import torch

from ..errors import InvalidInputError, KernelSizeError


def _check_image(y, name: str = "y") -> torch.Tensor:
    if not torch.is_tensor(y):
        raise InvalidInputError(
            f"{name} must be a torch.Tensor of shape (B, C, H, W), got {type(y).__name__}")
    if y.dim() != 4:
        raise InvalidInputError(f"{name} must be 4-D (B, C, H, W), got shape {tuple(y.shape)}")
    if not y.is_floating_point():
        raise InvalidInputError(
            f"{name} must be a floating-point tensor with values in [0, 1], got dtype {y.dtype}")
    if y.numel() == 0:
        raise InvalidInputError(f"{name} is empty, shape {tuple(y.shape)}")
    y = y.detach().to(torch.float32)
    if not bool(torch.isfinite(y).all()):
        raise InvalidInputError(f"{name} contains NaN or Inf values")
    return y


def _check_kernel(k, B: int, H: int, W: int, device) -> torch.Tensor:
    """Validate ``k`` and return it as float32 ``(B, 1, Kh, Kw)``, non-negative, sum 1."""
    if not torch.is_tensor(k):
        raise InvalidInputError(f"kernel k must be a torch.Tensor, got {type(k).__name__}")
    if not k.is_floating_point():
        raise InvalidInputError(f"kernel k must be a floating-point tensor, got dtype {k.dtype}")
    if k.dim() == 2:
        k = k[None, None]
    elif k.dim() != 4 or k.shape[1] != 1:
        raise InvalidInputError(
            f"kernel k must have shape (Kh, Kw) or (B, 1, Kh, Kw), got {tuple(k.shape)}")
    if k.shape[0] not in (1, B):
        raise InvalidInputError(
            f"kernel batch size {k.shape[0]} does not match image batch size {B}")
    Kh, Kw = k.shape[-2:]
    if Kh < 1 or Kw < 1:
        raise KernelSizeError(f"kernel k is empty, shape {tuple(k.shape)}")
    if Kh > H or Kw > W:
        raise KernelSizeError(f"kernel {Kh}x{Kw} is larger than the image {H}x{W}")
    k = k.detach().to(device=device, dtype=torch.float32)
    if not bool(torch.isfinite(k).all()):
        raise InvalidInputError("kernel k contains NaN or Inf values")
    kmax = k.amax(dim=(-2, -1), keepdim=True)
    if bool((kmax <= 0).any()):
        raise InvalidInputError("kernel k must have a positive sum (all entries are <= 0)")
    if bool((k < -0.01 * kmax).any()):
        raise InvalidInputError("kernel k must be non-negative (found negative entries)")
    k = k.clamp(min=0.0)
    s = k.sum(dim=(-2, -1), keepdim=True)
    if bool((s <= 0).any()):
        raise InvalidInputError("kernel k must have a positive sum")
    k = k / s
    return k.expand(B, 1, Kh, Kw)


def _check_int(name: str, value, minimum: int) -> int:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        and value == int(value) and int(value) >= minimum
    if not ok:
        raise InvalidInputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_positive(name: str, value, strict: bool = True) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or (v <= 0 if strict else v < 0):
        kind = "positive" if strict else "non-negative"
        raise InvalidInputError(f"{name} must be a finite {kind} number, got {value!r}")
    return v


_BOUNDARIES = ("valid", "taper", "periodic")


def _check_boundary(boundary: str) -> str:
    if boundary not in _BOUNDARIES:
        raise InvalidInputError(f"boundary must be one of {_BOUNDARIES}, got {boundary!r}")
    return boundary
