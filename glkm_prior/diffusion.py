"""Diffusion image priors for the diffusion-based adapters (``bird``, ``blinddps``): a frozen
noise-prediction network with its noise schedule (:class:`Denoiser`), the DDIM and DDPM update
rules those solvers use, the sphere projection of BIRD, and safe loaders for pretrained models.

Nothing here trains a diffusion model: denoisers are loaded. Three sources are accepted:

* a diffusers ``UNet2DModel`` + its scheduler config, from the Hugging Face Hub or a local folder
  in the same layout (:func:`load_diffusers_unet`; needs the optional extra
  ``pip install 'glkm-prior[diffusion]'``; e.g. ``google/ddpm-celebahq-256``, the DDPM CelebA-HQ
  256 model that BIRD's prior corresponds to);
* a guided-diffusion checkpoint, the format of BlindDPS' models (``ffhq_10m.pt``,
  ``kernel_checkpoint.pt``): :func:`load_guided_diffusion_state` reads the state dict safely
  (safetensors, or ``torch.load(..., weights_only=True)``) into a network with the matching
  architecture, and rejects a file whose keys do not match. The architecture is
  :mod:`glkm_prior.guided_unet` (guided-diffusion's UNet): pass a config name, e.g.
  ``load_guided_diffusion("ffhq_10m.pt", "ffhq")`` or ``(..., "blinddps-kernel")``, or a module;
* any ``nn.Module`` ``unet(x, t)`` plus its ``alphas_cumprod`` (tests build a tiny one).

Conventions: images inside the diffusion loops are in [-1, 1]; the network predicts the noise
epsilon (``prediction_type='epsilon'``); a network whose output has twice the input channels
carries guided-diffusion's learned variance (``learned_range``) in the second half.
``alphas_cumprod`` are float64 on the CPU; update coefficients are Python floats, so the update
rules keep the dtype of the images (float64 in the gradient tests).

Memory: a :class:`Denoiser` holds a *reference* to the network (never a copy); building one puts
the network in eval mode and turns ``requires_grad`` off on its parameters, in place, so no
gradient buffers are ever allocated for it.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn as nn

from .errors import InvalidInputError, WeightsError

DEFAULT_MODEL = "google/ddpm-celebahq-256"  # DDPM CelebA-HQ 256 (Ho et al. 2020), diffusers format
VARIANCE_TYPES = ("fixed_small", "fixed_large", "learned_range")
EXTRA_HINT = "pip install 'glkm-prior[diffusion]' (or: pip install diffusers)"


# ============================================================================ schedules
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


# ============================================================================ denoiser
def _timestep_tensor(t, batch: int, device) -> torch.Tensor:
    t = torch.as_tensor(t, device=device)
    if t.dim() == 0:
        t = t.expand(batch)
    return t.to(torch.long)


def _as_output_tensor(out: Any) -> torch.Tensor:
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
        out = _as_output_tensor(self.unet(x, _timestep_tensor(t, x.shape[0], x.device)))
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


# ============================================================================ DDIM (BIRD)
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
            eps = _as_output_tensor(eps)[:, : x.shape[1]].to(x.dtype)
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


# ============================================================================ DDPM (BlindDPS)
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


# ============================================================================ loaders
def _unet_folder(folder: Path, subfolder: str | None) -> Path:
    if subfolder:
        path = folder / subfolder
    elif (folder / "unet" / "config.json").is_file():
        path = folder / "unet"  # pipeline layout (model_index.json + unet/ + scheduler/)
    else:
        path = folder            # a bare model folder (config.json + weights)
    if not (path / "config.json").is_file():
        raise WeightsError(f"no diffusers model in {path}: expected config.json (+ diffusion_pytorch_model.safetensors), "
                           f"or a pipeline folder with unet/")
    return path


def _has_weights(folder: Path) -> bool:
    return any(folder.glob("diffusion_pytorch_model*.safetensors")) or any(folder.glob("diffusion_pytorch_model*.bin"))


def _scheduler_config(folder: Path, unet_dir: Path) -> tuple[dict | None, Path | None]:
    for path in (folder / "scheduler" / "scheduler_config.json", folder / "scheduler_config.json",
                 unet_dir / "scheduler_config.json"):
        if path.is_file():
            try:
                return json.loads(path.read_text()), path
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise WeightsError(f"corrupt scheduler config {path}: {exc}") from None
    return None, None


def load_diffusers_unet(source: str | os.PathLike = DEFAULT_MODEL, revision: str | None = None, *,
                        local_files_only: bool | None = None, cache_dir: str | os.PathLike | None = None,
                        subfolder: str | None = None, dtype: torch.dtype = torch.float32) -> Denoiser:
    """Load a diffusers ``UNet2DModel`` and its noise schedule as a :class:`Denoiser`.

    ``source``: a local folder (a pipeline folder with ``unet/`` and ``scheduler/``, or a bare
    model folder with ``config.json``) or a Hub repo id (pin ``revision`` to a commit for
    reproducible results). ``local_files_only=None`` follows ``HF_HUB_OFFLINE``. Weights are read
    by diffusers: safetensors, else ``.bin`` with ``torch.load(weights_only=True)``. The schedule
    comes from the scheduler config (its class, betas and ``variance_type``, ``clip_sample``);
    without one, DDPM's linear schedule (1e-4 .. 0.02 over 1000 steps) is assumed.

    Raises :class:`WeightsError` with one clear line when diffusers is not installed, the model
    is neither a folder nor cached while offline, or the files are not a UNet2DModel.
    """
    try:
        import diffusers
    except ImportError:
        raise WeightsError(f"loading a diffusers model needs the optional dependency diffusers: {EXTRA_HINT}") from None
    from .hub import hub_snapshot, local_folder

    folder = local_folder(source, "diffusion model folder")
    if folder is None:
        args = (str(source), revision, local_files_only, cache_dir)
        folder = hub_snapshot(*args, ["*.json", "*.safetensors"], what="Hub model")
        if not _has_weights(_unet_folder(folder, subfolder)):  # older repos ship only a .bin state dict
            folder = hub_snapshot(*args, ["*.json", "*.bin"], what="Hub model")
    unet_dir = _unet_folder(folder, subfolder)
    try:
        config = json.loads((unet_dir / "config.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise WeightsError(f"corrupt model config {unet_dir / 'config.json'}: {exc}") from None
    if config.get("_class_name") != "UNet2DModel":
        raise WeightsError(f"{unet_dir} holds a {config.get('_class_name')!r}; the diffusion adapters take a UNet2DModel")
    if not _has_weights(unet_dir):
        raise WeightsError(f"no weights in {unet_dir}: expected diffusion_pytorch_model.safetensors (or .bin)")
    verbosity = diffusers.utils.logging.get_verbosity()
    diffusers.utils.logging.set_verbosity_error()  # not the advice to install accelerate on every load
    try:
        unet = diffusers.UNet2DModel.from_pretrained(str(unet_dir), torch_dtype=dtype)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise WeightsError(f"cannot load the UNet2DModel in {unet_dir}: {str(exc).splitlines()[0]}") from None
    finally:
        diffusers.utils.logging.set_verbosity(verbosity)

    sched, sched_path = _scheduler_config(folder, unet_dir)
    variance_type, clip_sample = "fixed_small", True
    if sched is None:
        alphas = linear_alphas_cumprod(1000)
    else:
        if sched.get("prediction_type", "epsilon") != "epsilon":
            raise WeightsError(f"{sched_path}: prediction_type {sched.get('prediction_type')!r} is not supported "
                               f"(the adapters need an epsilon-prediction model)")
        cls = getattr(diffusers, str(sched.get("_class_name", "DDPMScheduler")), None) or diffusers.DDPMScheduler
        try:
            scheduler = cls.from_config(sched)
        except (ValueError, TypeError, NotImplementedError) as exc:
            raise WeightsError(f"cannot build the scheduler of {sched_path}: {exc}") from None
        alphas = alphas_cumprod_from(scheduler)
        if sched.get("variance_type") in VARIANCE_TYPES:
            variance_type = sched["variance_type"]
        clip_sample = bool(sched.get("clip_sample", True))
    return Denoiser(unet, alphas, variance_type=variance_type, clip_sample=clip_sample, source=str(source))


def _read_state(path: Path) -> dict:
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise WeightsError(f"corrupt safetensors file {path}: {exc}") from None
    import pickle

    try:
        # weights_only: tensors and plain containers only, never arbitrary objects (no code runs)
        return torch.load(str(path), map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as exc:
        raise WeightsError(f"{path} was not loaded: torch.load(weights_only=True) reads tensors and plain containers only "
                           f"and refused it ({_unpickler_reason(exc)}): the file is corrupt or pickles other objects; "
                           f"convert a checkpoint you trust to safetensors") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        raise WeightsError(f"cannot read checkpoint {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def _unpickler_reason(exc: Exception) -> str:
    """The specific reason inside torch's long weights_only message (e.g. 'Unsupported global: ...')."""
    text = str(exc)
    marker = "WeightsUnpickler error:"
    if marker in text:
        first = next((p for p in text.split(marker, 1)[1].split("\n\n") if p.strip()), "")
        return " ".join(first.split()).split(". ")[0][:200]
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _flat_state(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict) and not all(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in ("state_dict", "model", "ema"):
            inner = obj.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                obj = inner
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise WeightsError(f"{path} is not a state dict (a mapping of parameter names to tensors)")
    if all(k.startswith("module.") for k in obj):  # saved from DataParallel
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def _listing(keys: list[str], n: int = 5) -> str:
    return ", ".join(keys[:n]) + (f", ... ({len(keys)} in all)" if len(keys) > n else "")


def _guided_model(model: nn.Module | str) -> nn.Module:
    """``model`` itself, or a fresh :class:`~glkm_prior.guided_unet.GuidedUNet` for a config name."""
    if isinstance(model, str):
        from .guided_unet import build_guided_unet

        return build_guided_unet(model)
    if not isinstance(model, nn.Module):
        raise InvalidInputError(f"model must be an nn.Module or a guided-diffusion config name, got {type(model).__name__}")
    return model


def load_guided_diffusion_state(path: str | os.PathLike, model: nn.Module | str) -> nn.Module:
    """Load a guided-diffusion checkpoint (BlindDPS' ``ffhq_10m.pt``, ``kernel_checkpoint.pt``, or
    the same weights as ``.safetensors``) into ``model``, built with the matching architecture, or
    into a new :class:`~glkm_prior.guided_unet.GuidedUNet` when ``model`` is a config name of
    :data:`~glkm_prior.guided_unet.GUIDED_UNET_CONFIGS` ('ffhq', 'blinddps-kernel').

    The file is read safely: safetensors, or ``torch.load(path, weights_only=True,
    map_location='cpu')`` (memory-mapped when possible). A state dict saved from DataParallel
    (``module.`` prefixes) or wrapped in ``{"state_dict": ...}`` is accepted. Keys and shapes must
    match exactly; otherwise :class:`WeightsError` lists a few missing and unexpected keys. The
    model is returned in eval mode with ``requires_grad`` off (one copy of the weights: the
    loaded tensors are released after copying).
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"checkpoint file not found: {path}")
    model = _guided_model(model)
    state = _flat_state(_read_state(path), path)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise WeightsError(f"{path} does not match the {type(model).__name__} it is loaded into: "
                           f"{len(missing)} missing key(s) [{_listing(missing)}], "
                           f"{len(unexpected)} unexpected key(s) [{_listing(unexpected)}]; check the model config "
                           f"(image size, channels, res blocks, attention, learn_sigma) against the checkpoint's")
    wrong = [f"{k} {tuple(v.shape)} vs {tuple(expected[k].shape)}" for k, v in state.items() if v.shape != expected[k].shape]
    if wrong:
        raise WeightsError(f"{path}: {len(wrong)} tensor(s) have other shapes than the model's: {_listing(wrong, 3)}")
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise WeightsError(f"{path}: tensor(s) hold NaN or Inf: {_listing(bad, 3)}")
    model.load_state_dict(state, strict=True)
    del state
    model.eval()
    model.requires_grad_(False)
    return model


def load_guided_diffusion(path: str | os.PathLike, model: nn.Module | str, *, alphas_cumprod: Any = None,
                          image_size: int | None = None, channels: int | None = None) -> Denoiser:
    """:func:`load_guided_diffusion_state` (``model``: a module or a config name such as 'ffhq' or
    'blinddps-kernel') then a :class:`Denoiser` with the schedule of guided-diffusion's BlindDPS
    configs (linear, 1000 steps) unless ``alphas_cumprod`` is given. A learned-variance network
    (2C outputs) is detected at run time."""
    model = load_guided_diffusion_state(path, model)
    ac = linear_alphas_cumprod(1000) if alphas_cumprod is None else alphas_cumprod
    return Denoiser(model, ac, image_size=image_size, channels=channels, source=str(path))


__all__ = ["DEFAULT_MODEL", "Denoiser", "DDPMChain", "as_denoiser", "alphas_cumprod_from", "linear_alphas_cumprod",
           "ddim_timesteps", "respaced_timesteps", "ddim_step", "ddim_trajectory", "project_to_sphere_",
           "load_diffusers_unet", "load_guided_diffusion_state", "load_guided_diffusion"]
