"""Weights I/O: model folders of ``config.json`` + ``model.safetensors``, local or on the Hub.

A *component* folder holds one network::

    config.json          {"model_type": "KernelGenerator", "config": {...constructor args...},
                          "format_version": 1, "dtype": "float32" | "float16", ...card fields}
    model.safetensors    the state dict (no pickle; never ``torch.load``)

A *prior* folder holds ``generator/`` and ``initializer/`` components (see
:class:`glkm_prior.prior.KernelPrior`); a *bundle* folder holds several priors in
sub-folders, one per generator canvas size (the project's ``weights/`` is a bundle).
The same folder loads from disk or from a Hugging Face Hub repository, at a pinned revision.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from .atomic import atomic_write
from .errors import WeightsError
from .models import MODEL_CLASSES

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def save_component(module: torch.nn.Module, folder: str | Path, dtype: str = "float32", extra: dict | None = None) -> Path:
    """Write ``module`` (a class of :mod:`glkm_prior.models`) as a component folder.

    ``dtype='float16'`` halves the file size; floating tensors are cast back on load.
    ``extra`` adds fields (training notes, metrics) to ``config.json``.
    """
    if dtype not in ("float32", "float16"):
        raise WeightsError(f"dtype must be 'float32' or 'float16', got {dtype!r}")
    folder = Path(folder)
    name = type(module).__name__
    if name not in MODEL_CLASSES:
        raise WeightsError(f"cannot save {name}: not one of {sorted(MODEL_CLASSES)}")
    cast = getattr(torch, dtype)
    tensors = {
        k: (v.detach().to(cast) if v.is_floating_point() else v.detach()).contiguous().cpu().clone()
        for k, v in module.state_dict().items()
    }
    config = {"model_type": name, "config": module.config, "format_version": FORMAT_VERSION, "dtype": dtype}
    config.update(extra or {})
    atomic_write(folder / WEIGHTS_NAME, lambda fh: fh.write(save(tensors, metadata={"format": "pt"})), "weights file")
    atomic_write(folder / CONFIG_NAME, lambda fh: fh.write((json.dumps(config, indent=2) + "\n").encode()), "config file")
    return folder


def read_config(folder: str | Path) -> dict:
    """Parse a component's ``config.json``, with a clear error if it is missing or corrupt."""
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise WeightsError(f"missing {CONFIG_NAME} in {folder}")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise WeightsError(f"corrupt {path}: {exc}") from None
    if not isinstance(config, dict) or config.get("model_type") not in MODEL_CLASSES or not isinstance(config.get("config"), dict):
        raise WeightsError(f"{path} does not describe a known model (model_type one of {sorted(MODEL_CLASSES)})")
    if config.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
        raise WeightsError(f"{path} has format_version {config['format_version']}; this library reads {FORMAT_VERSION}")
    return config


def load_component(folder: str | Path, expected_type: str | None = None) -> torch.nn.Module:
    """Build the model described by ``folder/config.json`` and load its weights strictly."""
    folder = Path(folder)
    config = read_config(folder)
    if expected_type is not None and config["model_type"] != expected_type:
        raise WeightsError(f"{folder} holds a {config['model_type']}, expected a {expected_type}")
    try:
        module = MODEL_CLASSES[config["model_type"]](**config["config"])
    except (TypeError, ValueError) as exc:
        raise WeightsError(f"{folder / CONFIG_NAME}: invalid constructor arguments: {exc}") from None
    path = folder / WEIGHTS_NAME
    if not path.is_file():
        raise WeightsError(f"missing {WEIGHTS_NAME} in {folder}")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"corrupt weights file {path}: {exc}") from None
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise WeightsError(
            f"{path} does not match {folder / CONFIG_NAME}: missing keys {missing[:5]}"
            f"{'...' if len(missing) > 5 else ''}, unexpected keys {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
        )
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise WeightsError(f"{path}: tensor {key} has shape {tuple(value.shape)}, config expects {tuple(expected[key].shape)}")
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise WeightsError(f"{path}: tensor {key} holds NaN or Inf")
    module.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)
    return module


def default_weights_dir() -> Path:
    """The project's bundled ``weights/`` folder: installed inside the package as
    ``glkm_prior/weights`` (non-editable install), else the source tree's top-level ``weights/``."""
    here = Path(__file__).resolve().parent
    installed = here / "weights"
    return installed if installed.is_dir() else here.parent / "weights"


def looks_like_repo_id(source: str) -> bool:
    parts = source.split("/")
    return len(parts) == 2 and all(parts) and not source.startswith((".", "~"))


def resolve_source(
    source: str | os.PathLike | None,
    revision: str | None = None,
    local_files_only: bool | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """Return a local folder for ``source``: an existing folder, or a Hub repo id downloaded
    (or found in the cache) with huggingface_hub (:func:`hub_snapshot`). ``local_files_only=None``
    follows the library's offline switch (``HF_HUB_OFFLINE=1``); pin ``revision`` to a commit
    hash for reproducible results."""
    if source is None:
        return default_weights_dir()
    folder = local_folder(source, "weights folder")
    if folder is not None:
        return folder
    return hub_snapshot(str(source), revision, local_files_only, cache_dir, ["*.json", "*.safetensors", "*.md"])


def local_folder(source: str | os.PathLike, what: str) -> Path | None:
    """``source`` as an existing folder, or None when it is a Hub repo id ('owner/name') to fetch.
    A file, or a path that is neither, raises :class:`WeightsError` naming ``what``."""
    path = Path(source).expanduser()
    if path.exists():
        if not path.is_dir():
            raise WeightsError(f"{path} is a file; expected a {what}")
        return path
    if not looks_like_repo_id(str(source)):
        raise WeightsError(f"{what} {source} does not exist (and it is not a Hub repo id 'owner/name')")
    return None


def hub_snapshot(repo_id: str, revision: str | None, local_files_only: bool | None,
                 cache_dir: str | os.PathLike | None, patterns: list[str], what: str = "Hub repo") -> Path:
    """The files of Hub repo ``repo_id`` matching ``patterns`` as a local folder (downloaded, or
    from the cache); ``local_files_only=None`` follows ``HF_HUB_OFFLINE``. Every failure (not
    cached while offline, HTTP, bad id, network) is one :class:`WeightsError` line naming
    ``what``, the repo and the revision."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, LocalEntryNotFoundError

    if local_files_only is None:
        local_files_only = bool(constants.HF_HUB_OFFLINE)
    where = f"{what} {repo_id} (revision {revision or 'main'})"
    try:
        return Path(snapshot_download(repo_id, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only,
                                      allow_patterns=patterns))
    except LocalEntryNotFoundError:
        raise WeightsError(f"{where} is not in the local cache and cannot be downloaded (offline, no network, or "
                           f"local_files_only=True); download it once where the Hub is reachable, or pass a local folder") from None
    except (HfHubHTTPError, HFValidationError, OSError) as exc:
        raise WeightsError(f"cannot fetch {where}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    except Exception as exc:  # network stacks raise their own types (connection refused, DNS, timeouts)
        raise WeightsError(f"cannot fetch {where}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
