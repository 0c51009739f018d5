"""A :class:`~glkm_prior.diffusion.denoiser.Denoiser` from whatever a method was given
(:func:`as_denoiser`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError
from .denoiser import DEFAULT_MODEL, VARIANCE_TYPES, Denoiser
from .diffusers_model import load_diffusers_unet
from .guided_checkpoint import load_guided_diffusion


def as_denoiser(denoiser: Any, *, default: str | None = DEFAULT_MODEL, what: str = "denoiser",
                guided_config: str = "ffhq", **load_options) -> Denoiser:
    """A :class:`Denoiser` from what a method was given: a Denoiser (returned as is); a pair
    ``(unet, scheduler)`` (a diffusers scheduler or an alpha-bar array), an object with ``unet``
    and ``alphas_cumprod`` attributes, or a diffusers pipeline (``unet`` + ``scheduler``): wrapped,
    same network object; a guided-diffusion checkpoint *file* (BlindDPS' format; architecture
    ``guided_config``, see :mod:`glkm_prior.guided_unet`); a folder or Hub repo id in diffusers
    format (loaded with :func:`load_diffusers_unet` and ``load_options``); or None for ``default``
    (an error if ``default`` is None)."""
    if denoiser is None:
        if default is None:
            raise InvalidInputError(f"no {what} given: pass {what}= a Denoiser, a diffusers folder or Hub repo id")
        denoiser = default
    if isinstance(denoiser, Denoiser):
        return denoiser
    if isinstance(denoiser, (str, os.PathLike)):
        if Path(denoiser).is_file():  # a guided-diffusion checkpoint, e.g. BlindDPS' ffhq_10m.pt
            return load_guided_diffusion(denoiser, guided_config)
        return load_diffusers_unet(denoiser, **load_options)
    if isinstance(denoiser, (tuple, list)) and len(denoiser) == 2:  # (unet, scheduler or alphas_cumprod)
        unet, schedule = denoiser
    else:  # an object with .unet and .alphas_cumprod, or a diffusers pipeline (.unet and .scheduler)
        unet = getattr(denoiser, "unet", None)
        schedule = getattr(denoiser, "alphas_cumprod", None)
        if schedule is None:
            schedule = getattr(denoiser, "scheduler", None)
    if unet is not None and schedule is not None:
        sched_cfg = getattr(schedule, "config", None) or {}
        variance = getattr(denoiser, "variance_type", None) or sched_cfg.get("variance_type", "fixed_small")
        return Denoiser(unet, schedule, image_size=getattr(denoiser, "image_size", None),
                        channels=getattr(denoiser, "channels", None),
                        variance_type=variance if variance in VARIANCE_TYPES else "fixed_small",
                        clip_sample=getattr(denoiser, "clip_sample", sched_cfg.get("clip_sample", True)))
    raise InvalidInputError(f"{what} must be a Denoiser, a (unet, scheduler) pair, an object with .unet and "
                            f".alphas_cumprod (or .scheduler, e.g. a diffusers pipeline), or a diffusers folder / Hub "
                            f"repo id; got {type(denoiser).__name__}")
