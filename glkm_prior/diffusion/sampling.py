"""The update rules of the diffusion solvers: DDIM steps and trajectories with BIRD's sphere
projection, and the DDPM ancestral chain of BlindDPS. Images are in [-1, 1]."""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch

from ..errors import InvalidInputError
from .denoiser import Denoiser, network_output
from .schedules import alphas_cumprod_from


def ddim_step(x_t: torch.Tensor, eps: torch.Tensor, alpha_t: float, alpha_prev: float, clip: bool = True):
    """One deterministic DDIM update (eta = 0) -> (x_prev, x0_hat).

    ``x0 = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t)``, clipped to [-1, 1] when ``clip``, the noise
    re-derived from the clipped x0 (``eps = (x_t - sqrt(a_t) x0) / sqrt(1 - a_t)``, as BIRD's
    scheduler with ``use_clipped_model_output``), then
    ``x_prev = sqrt(a_prev) x0 + sqrt(1 - a_prev) eps``. With ``eps`` detached the map is
    piecewise linear in ``x_t`` (linear where nothing is clipped): the gradient w.r.t. x_t flows
    through these combinations only.
    """
    a_t, a_prev = float(alpha_t), float(alpha_prev)
    x0 = (x_t - math.sqrt(1.0 - a_t) * eps) / math.sqrt(a_t)
    if clip:
        x0 = x0.clamp(-1.0, 1.0)
        eps = (x_t - math.sqrt(a_t) * x0) / math.sqrt(1.0 - a_t)
    return math.sqrt(a_prev) * x0 + math.sqrt(1.0 - a_prev) * eps, x0


def ddim_trajectory(x_T: torch.Tensor, denoiser: Callable, timesteps: Sequence[int], alphas_cumprod: Any, *,
                    clip: bool = True, final_alpha_cumprod: float = 1.0) -> torch.Tensor:
    """Run the deterministic DDIM chain from ``x_T`` through ``timesteps`` (descending) and return
    the final sample x0 (BIRD's ``DDIM_efficient_feed_forward``).

    The denoiser is evaluated under ``torch.no_grad()`` (its output is a constant for autograd,
    as in BIRD), so the result is differentiable w.r.t. ``x_T`` through the DDIM updates alone
    and no activation of the network is kept. The step after the last timestep uses
    ``final_alpha_cumprod`` (1: the chain ends at x0, DDIM's ``set_alpha_to_one``).
    Deterministic: equal inputs give equal outputs.
    """
    ac = alphas_cumprod_from(alphas_cumprod)
    steps = [int(t) for t in timesteps]
    if not steps:
        raise InvalidInputError("ddim_trajectory needs at least one timestep")
    if any(not 0 <= t < ac.numel() for t in steps) or any(b >= a for a, b in zip(steps, steps[1:])):
        raise InvalidInputError(f"timesteps must be strictly decreasing within 0..{ac.numel() - 1}, got {steps}")
    x = x_T
    for i, t in enumerate(steps):
        a_prev = ac[steps[i + 1]].item() if i + 1 < len(steps) else float(final_alpha_cumprod)
        with torch.no_grad():
            eps = denoiser(x, torch.full((x.shape[0],), t, dtype=torch.long, device=x.device))
            eps = network_output(eps)[:, : x.shape[1]].to(x.dtype)
        x, _ = ddim_step(x, eps, ac[t].item(), a_prev, clip=clip)
    return x


@torch.no_grad()
def project_to_sphere_(x: torch.Tensor, radius: float | None = None, eps: float = 1e-9) -> torch.Tensor:
    """In place: scale each sample of ``x`` (B, ...) to Euclidean norm ``radius`` (default
    ``sqrt(numel per sample)``, the typical norm of N(0, I) noise: BIRD's projection of x_T after
    every optimiser step). Works on parameters (acts on ``.data``, outside autograd)."""
    flat = x.reshape(x.shape[0], -1)
    r = math.sqrt(flat.shape[1]) if radius is None else float(radius)
    norms = (flat.pow(2).sum(dim=1) + eps).sqrt()
    x.mul_((r / norms).reshape(-1, *([1] * (x.dim() - 1))).to(x.dtype))
    return x


class DDPMChain:
    """The ancestral DDPM sampler over retained ``timesteps`` (ascending original indices) of a
    model trained with ``alphas_cumprod``: respaced betas ``1 - ab_i / ab_{i-1}``, posterior
    ``q(x_{i-1} | x_i, x0)`` and the variance rules of guided-diffusion (what BlindDPS runs).
    Index ``i`` is the position in the retained chain; ``timesteps[i]`` is what the network sees.
    """

    def __init__(self, alphas_cumprod: Any, timesteps: Sequence[int] | None = None):
        full = alphas_cumprod_from(alphas_cumprod)
        steps = list(range(full.numel())) if timesteps is None else [int(t) for t in timesteps]
        if not steps or any(b <= a for a, b in zip(steps, steps[1:])) or steps[0] < 0 or steps[-1] >= full.numel():
            raise InvalidInputError(f"timesteps must be strictly increasing within 0..{full.numel() - 1}")
        self.timesteps = steps
        ab = full[steps]
        ab_prev = torch.cat([ab.new_ones(1), ab[:-1]])
        betas = 1.0 - ab / ab_prev
        self.alphas_cumprod = ab
        self.alphas_cumprod_prev = ab_prev
        self.betas = betas
        post_var = betas * (1.0 - ab_prev) / (1.0 - ab)
        self.posterior_variance = post_var
        first = post_var[1] if len(steps) > 1 else betas[0]
        self.posterior_log_variance_clipped = torch.log(torch.cat([first.reshape(1), post_var[1:]]))
        self.coef_x0 = betas * ab_prev.sqrt() / (1.0 - ab)
        self.coef_xt = (1.0 - ab_prev) * (1.0 - betas).sqrt() / (1.0 - ab)

    def __len__(self) -> int:
        return len(self.timesteps)

    def predict_x0(self, x_t: torch.Tensor, i: int, eps: torch.Tensor, clip: bool = True) -> torch.Tensor:
        """Tweedie / epsilon parameterisation: ``x0 = (x_t - sqrt(1 - ab) eps) / sqrt(ab)``."""
        ab = self.alphas_cumprod[i].item()
        x0 = x_t / math.sqrt(ab) - math.sqrt(1.0 / ab - 1.0) * eps
        return x0.clamp(-1.0, 1.0) if clip else x0

    def posterior_mean(self, x0: torch.Tensor, x_t: torch.Tensor, i: int) -> torch.Tensor:
        return self.coef_x0[i].item() * x0 + self.coef_xt[i].item() * x_t

    def log_variance(self, i: int, var_values: torch.Tensor | None = None, variance_type: str = "fixed_small"):
        """log of the sampling variance at step ``i``: from the network's learned-range output
        (values in [-1, 1] interpolating between the clipped posterior and beta), or fixed."""
        if var_values is not None:
            frac = (var_values + 1.0) / 2.0
            max_log, min_log = math.log(self.betas[i].item()), self.posterior_log_variance_clipped[i].item()
            return frac * max_log + (1.0 - frac) * min_log
        if variance_type == "fixed_large":
            value = self.posterior_variance[1].item() if i == 0 and len(self) > 1 else self.betas[i].item()
            return math.log(value)
        return self.posterior_log_variance_clipped[i].item()

    def p_sample(self, denoiser: Denoiser, x_t: torch.Tensor, i: int, noise: torch.Tensor | None):
        """One ancestral step from ``x_t`` (graph kept: DPS differentiates through it) ->
        (x_{i-1} sample, x0_hat). ``noise`` ~ N(0, I), unused at i = 0."""
        out = denoiser.output(x_t, self.timesteps[i])
        C = x_t.shape[1]
        eps, var_values = out[:, :C], (out[:, C:] if out.shape[1] == 2 * C else None)
        x0 = self.predict_x0(x_t, i, eps, clip=denoiser.clip_sample)
        mean = self.posterior_mean(x0, x_t, i)
        if i == 0 or noise is None:
            return mean, x0
        log_var = self.log_variance(i, var_values, denoiser.variance_type)
        std = torch.exp(0.5 * log_var) if isinstance(log_var, torch.Tensor) else math.exp(0.5 * log_var)
        return mean + std * noise, x0
