"""A frozen epsilon-prediction network with its training schedule (:class:`Denoiser`).

The network is held by reference, put in eval mode with ``requires_grad`` off, in place."""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn as nn

from ..errors import InvalidInputError
from .schedules import alphas_cumprod_from

DEFAULT_MODEL = "google/ddpm-celebahq-256"  # DDPM CelebA-HQ 256 (Ho et al. 2020), diffusers format
VARIANCE_TYPES = ("fixed_small", "fixed_large", "learned_range")


def _timestep_tensor(t, batch: int, device) -> torch.Tensor:
    t = torch.as_tensor(t, device=device)
    if t.dim() == 0:
        t = t.expand(batch)
    return t.to(torch.long)


def network_output(out: Any) -> torch.Tensor:
    """The prediction tensor of a network call: a tensor, a diffusers output (``.sample``) or a
    tuple whose first item is the tensor."""
    if isinstance(out, torch.Tensor):
        return out
    sample = getattr(out, "sample", None)
    if isinstance(sample, torch.Tensor):
        return sample
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    raise InvalidInputError(f"the denoiser returned {type(out).__name__}; expected a tensor")


class Denoiser:
    """A frozen epsilon-prediction network ``unet(x, t)`` and the alpha-bar of its training
    schedule.

    ``denoiser(x, t)`` returns the predicted noise (the first C channels of the output);
    :meth:`output` the whole output (2C channels for a learned-variance network). ``t`` is an
    int or a (B,) tensor of training timesteps 0..T-1. ``image_size`` and ``channels`` are read
    from the network (diffusers ``config.sample_size`` / ``in_channels``, or attributes
    ``image_size`` / ``in_channels``) when not given. ``variance_type`` applies to networks
    without a learned variance ('fixed_small' as DDPM, or 'fixed_large'); ``clip_sample`` clips
    the predicted x0 to [-1, 1] as the references do.

    The network is put in eval mode with ``requires_grad`` off on every parameter, in place; the
    object keeps a reference, not a copy.
    """

    def __init__(self, unet: nn.Module, alphas_cumprod: Any, *, image_size: int | None = None,
                 channels: int | None = None, variance_type: str = "fixed_small", clip_sample: bool = True,
                 source: str | None = None):
        if not callable(unet):
            raise InvalidInputError(f"the denoiser network must be callable as unet(x, t), got {type(unet).__name__}")
        if variance_type not in VARIANCE_TYPES:
            raise InvalidInputError(f"variance_type must be one of {VARIANCE_TYPES}, got {variance_type!r}")
        if isinstance(unet, nn.Module):
            unet.eval()
            unet.requires_grad_(False)
        self.unet = unet
        self.alphas_cumprod = alphas_cumprod_from(alphas_cumprod)
        config = getattr(unet, "config", None)
        cfg = config if isinstance(config, dict) else (dict(config) if hasattr(config, "keys") else {})
        if image_size is None:
            image_size = cfg["sample_size"] if "sample_size" in cfg else getattr(unet, "image_size", None)
        if channels is None:
            channels = cfg["in_channels"] if "in_channels" in cfg else getattr(unet, "in_channels", None)
        self.image_size = _int_or_none(image_size)
        self.channels = _int_or_none(channels)
        self.variance_type = variance_type
        self.clip_sample = bool(clip_sample)
        self.source = source

    @property
    def num_train_timesteps(self) -> int:
        return int(self.alphas_cumprod.numel())

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.unet.parameters()) if isinstance(self.unet, nn.Module) else 0

    def output(self, x: torch.Tensor, t) -> torch.Tensor:
        """The network's raw output for images ``x`` (B, C, H, W) in [-1, 1] at timesteps ``t``."""
        out = network_output(self.unet(x, _timestep_tensor(t, x.shape[0], x.device)))
        if out.shape[0] != x.shape[0] or out.shape[-2:] != x.shape[-2:] or out.shape[1] not in (x.shape[1], 2 * x.shape[1]):
            raise InvalidInputError(f"the denoiser maps {tuple(x.shape)} to {tuple(out.shape)}; expected the same shape "
                                    f"(epsilon) or twice the channels (epsilon + learned variance)")
        return out

    def __call__(self, x: torch.Tensor, t) -> torch.Tensor:
        """Predicted noise epsilon(x, t), same shape as ``x``."""
        return self.output(x, t)[:, : x.shape[1]]

    def check_image(self, shape: Sequence[int], what: str = "image") -> None:
        """Raise :class:`InvalidInputError` unless (B, C, H, W) fits the network."""
        C, H, W = shape[1], shape[-2], shape[-1]
        if self.channels is not None and C != self.channels:
            raise InvalidInputError(f"the diffusion model takes {self.channels}-channel {what}s, got {C} channels")
        if self.image_size is not None and (H, W) != (self.image_size, self.image_size):
            fix = (f"use kernel_size={self.image_size}" if what == "kernel" else
                   f"resize or crop the input to {self.image_size}x{self.image_size} first")
            raise InvalidInputError(f"the diffusion model was trained on {self.image_size}x{self.image_size} {what}s; got "
                                    f"{H}x{W}: {fix}")

    def __repr__(self) -> str:
        return (f"Denoiser({type(self.unet).__name__}, T={self.num_train_timesteps}, image_size={self.image_size}, "
                f"channels={self.channels}, params={self.num_parameters():,}, source={self.source!r})")


def _int_or_none(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        value = value[0]
    return int(value)
