"""Noise level of an image (Immerkaer's estimator)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import InvalidInputError
from .validation import _check_image


def estimate_noise(y: torch.Tensor) -> float:
    """Standard deviation of white Gaussian noise in ``y`` (B, C, H, W), Immerkaer's estimator
    (CVIU 1996): ``sqrt(pi / 2) / 6 * mean |y (*) M|`` with ``M`` the 3 x 3 difference of two
    Laplacians, which cancels smooth image content. Colour channels are averaged first (so for
    independent per-channel noise it returns sigma / sqrt(3)). Blurred images have little
    content at this scale, so it reads their noise well; textures make it an overestimate."""
    y = _check_image(y)
    plane = y.double().mean(dim=1, keepdim=True)
    if min(plane.shape[-2:]) < 3:
        raise InvalidInputError(f"estimate_noise needs at least 3 x 3 pixels, got {tuple(plane.shape[-2:])}")
    m = torch.tensor([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]], dtype=torch.float64)
    response = F.conv2d(plane.reshape(-1, 1, *plane.shape[-2:]), m[None, None])
    return float(math.sqrt(math.pi / 2) / 6 * response.abs().mean())
