"""Resumable training checkpoints without pickle: tensors in safetensors, the rest in JSON.

A checkpoint folder holds ``state.safetensors`` (module state dicts and optimiser moment
tensors, flattened as ``<name>.<key>``) and ``state.json`` (step counters, optimiser
hyper-parameters, anything JSON-serialisable). Both are written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from .errors import WeightsError
from .atomic import atomic_write


def save_checkpoint(folder: str | Path, modules: dict, optimizers: dict, meta: dict) -> Path:
    folder = Path(folder)
    tensors: dict[str, torch.Tensor] = {}
    opt_meta = {}
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            tensors[f"module.{name}.{key}"] = value.detach().cpu().contiguous().clone()
    for name, opt in optimizers.items():
        state = opt.state_dict()
        entries = {}
        for idx, slots in state["state"].items():
            entries[str(idx)] = []
            for key, value in slots.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optim.{name}.{idx}.{key}"] = value.detach().cpu().contiguous().clone().reshape(value.shape)
                    entries[str(idx)].append(key)
        opt_meta[name] = {"param_groups": state["param_groups"], "slots": entries}
    payload = {"meta": meta, "optimizers": opt_meta}
    atomic_write(folder / "state.safetensors", lambda fh: fh.write(save(tensors)), "checkpoint")
    atomic_write(folder / "state.json", lambda fh: fh.write(json.dumps(payload, indent=1).encode()), "checkpoint")
    return folder


def load_checkpoint(folder: str | Path, modules: dict, optimizers: dict) -> dict:
    """Restore modules and optimisers in place; return the saved ``meta`` dict."""
    folder = Path(folder)
    try:
        tensors = load_file(str(folder / "state.safetensors"))
        payload = json.loads((folder / "state.json").read_text())
    except (FileNotFoundError, SafetensorError, json.JSONDecodeError, OSError) as exc:
        raise WeightsError(f"cannot read checkpoint in {folder}: {exc}") from None
    for name, module in modules.items():
        prefix = f"module.{name}."
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        missing, unexpected = module.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise WeightsError(f"checkpoint {folder} does not match module {name}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    for name, opt in optimizers.items():
        saved = payload["optimizers"].get(name)
        if saved is None:
            raise WeightsError(f"checkpoint {folder} has no optimiser {name!r}")
        state = {
            int(idx): {key: tensors[f"optim.{name}.{idx}.{key}"] for key in keys}
            for idx, keys in saved["slots"].items()
        }
        opt.load_state_dict({"state": state, "param_groups": saved["param_groups"]})
    return payload["meta"]
