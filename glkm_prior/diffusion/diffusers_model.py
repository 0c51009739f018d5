"""Loading a diffusers ``UNet2DModel`` and its scheduler config (Hub repo id or local folder in
the same layout) as a :class:`~glkm_prior.diffusion.denoiser.Denoiser`; needs the optional
extra ``diffusion``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ..errors import WeightsError
from .denoiser import DEFAULT_MODEL, VARIANCE_TYPES, Denoiser
from .schedules import alphas_cumprod_from, linear_alphas_cumprod

EXTRA_HINT = "pip install 'glkm-prior[diffusion]' (or: pip install diffusers)"


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
    from ..hub import hub_snapshot, local_folder

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
