"""Loading a guided-diffusion checkpoint (BlindDPS' format) safely into the matching
:mod:`glkm_prior.guided_unet` network, as a :class:`~glkm_prior.diffusion.denoiser.Denoiser`."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..errors import InvalidInputError, WeightsError
from .denoiser import Denoiser
from .schedules import linear_alphas_cumprod


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
        from ..guided_unet import build_guided_unet

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
