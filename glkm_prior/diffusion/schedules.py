"""Noise schedules (alpha-bar, float64 on the CPU) and the timestep sequences of DDIM and of a
respaced DDPM."""

from __future__ import annotations

from typing import Any

import torch

from ..errors import InvalidInputError


def linear_alphas_cumprod(num_train_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """alpha-bar of DDPM's linear beta schedule (the schedule of the CelebA-HQ, FFHQ and
    BlindDPS kernel models), float64."""
    betas = torch.linspace(beta_start, beta_end, int(num_train_timesteps), dtype=torch.float64)
    return torch.cumprod(1.0 - betas, dim=0)


def alphas_cumprod_from(source: Any) -> torch.Tensor:
    """alpha-bar (T,) as a float64 CPU tensor from a diffusers scheduler (anything with an
    ``alphas_cumprod`` attribute) or an array / tensor / list of alpha-bar values; validated:
    finite, in (0, 1], non-increasing."""
    values = getattr(source, "alphas_cumprod", source)
    try:
        ac = torch.as_tensor(values.detach().cpu() if isinstance(values, torch.Tensor) else values, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InvalidInputError(f"cannot read alphas_cumprod from {type(source).__name__}: {exc}") from None
    ac = ac.reshape(-1).clone()
    if ac.numel() < 1 or not torch.isfinite(ac).all() or (ac <= 0).any() or (ac > 1).any():
        raise InvalidInputError("alphas_cumprod must be a non-empty sequence of values in (0, 1]")
    if (ac[1:] > ac[:-1] + 1e-12).any():
        raise InvalidInputError("alphas_cumprod must be non-increasing in t")
    return ac


def ddim_timesteps(num_train_timesteps: int, steps: int) -> list[int]:
    """DDIM's 'leading' timesteps, descending: ``T // steps`` apart, from
    ``(steps - 1) * (T // steps)`` down to 0 (BIRD: T = 1000, 10 steps -> 900, 800, ..., 0)."""
    T, steps = int(num_train_timesteps), int(steps)
    if not 1 <= steps <= T:
        raise InvalidInputError(f"the number of DDIM steps must be in 1..{T}, got {steps}")
    ratio = T // steps
    return [i * ratio for i in range(steps)][::-1]


def respaced_timesteps(num_train_timesteps: int, steps: int) -> list[int]:
    """``steps`` timesteps spread evenly over 0..T-1 (first and last included), ascending: the
    retained steps of a respaced DDPM chain (guided-diffusion's ``timestep_respacing``; with
    ``steps == T`` the full chain)."""
    T, steps = int(num_train_timesteps), int(steps)
    if not 1 <= steps <= T:
        raise InvalidInputError(f"the number of diffusion steps must be in 1..{T}, got {steps}")
    if steps == 1:
        return [0]
    stride = (T - 1) / (steps - 1)
    return sorted({int(round(i * stride)) for i in range(steps)})
