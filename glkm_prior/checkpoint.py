"""Resumable checkpoints without pickle: tensors in safetensors, the rest in JSON.

A checkpoint folder holds ``state.safetensors`` (module state dicts, optimiser moment tensors
and any extra tensors such as RNG states, flattened as ``<kind>.<name>.<key>``) and
``state.json`` (step counters, optimiser hyper-parameters, anything JSON-serialisable). Both
are written atomically (training uses one such folder and rewrites it).

:class:`RunCheckpoint` keeps the checkpoints of one long optimisation (a DIP/VDIP run): each
save goes to a new ``step_<N>`` sub-folder and only then does ``latest.json`` point to it, so
an interruption at any moment leaves the previous checkpoint readable.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from .errors import WeightsError
from .atomic import atomic_write


def save_checkpoint(folder: str | Path, modules: dict, optimizers: dict, meta: dict,
                    extra_tensors: dict | None = None) -> Path:
    """Write modules' state dicts, optimisers' states, ``meta`` (JSON) and ``extra_tensors``."""
    folder = Path(folder)
    tensors: dict[str, torch.Tensor] = {}
    for name, value in (extra_tensors or {}).items():
        tensors[f"extra.{name}"] = value.detach().cpu().contiguous().clone()
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


def load_checkpoint(folder: str | Path, modules: dict, optimizers: dict, extra_tensors: dict | None = None) -> dict:
    """Restore modules and optimisers in place; return the saved ``meta`` dict. A dict passed
    as ``extra_tensors`` receives the saved extra tensors by name."""
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
    if extra_tensors is not None:
        extra_tensors.update({k[len("extra."):]: v for k, v in tensors.items() if k.startswith("extra.")})
    return payload["meta"]


def seconds_before_resume(result: dict) -> float:
    """Seconds a resumed run spent before its interruption (``result["info"]["seconds_before_resume"]``
    of a method run with a :class:`RunCheckpoint`; 0 for a run that was not resumed)."""
    return float((result.get("info") or {}).get("seconds_before_resume") or 0.0)


class RunCheckpoint:
    """The checkpoints of one resumable optimisation in ``folder``.

    ``folder/step_<N>/`` holds a :func:`save_checkpoint` folder; ``folder/latest.json``
    (``{"step": N, "folder": "step_<N>"}``, written atomically after the sub-folder is
    complete) names the newest, and older sub-folders are removed after the pointer moved.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    @property
    def pointer(self) -> Path:
        return self.folder / "latest.json"

    def exists(self) -> bool:
        return self.pointer.is_file()

    def save(self, step: int, modules: dict, optimizers: dict, meta: dict, extra_tensors: dict | None = None) -> Path:
        name = f"step_{int(step):07d}"
        save_checkpoint(self.folder / name, modules, optimizers, {**meta, "step": int(step)}, extra_tensors)
        atomic_write(self.pointer, lambda fh: fh.write(json.dumps({"step": int(step), "folder": name}).encode()),
                     "checkpoint pointer")
        for old in self.folder.glob("step_*"):
            if old.name != name and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
        return self.folder / name

    def latest(self) -> Path:
        """The newest checkpoint's sub-folder (WeightsError if the pointer is unreadable)."""
        try:
            pointer = json.loads(self.pointer.read_text())
            return self.folder / str(pointer["folder"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise WeightsError(f"cannot read checkpoint pointer {self.pointer}: {exc}; delete {self.folder} to "
                               "start over") from None

    def meta(self) -> dict:
        """The newest checkpoint's meta (JSON only: check it before loading tensors)."""
        sub = self.latest()
        try:
            return json.loads((sub / "state.json").read_text())["meta"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise WeightsError(f"cannot read checkpoint in {sub}: {exc}; delete {self.folder} to start over") from None

    def load(self, modules: dict, optimizers: dict, extra_tensors: dict | None = None) -> dict:
        """Restore the newest checkpoint in place; returns its meta (with ``step``)."""
        sub = self.latest()
        try:
            return load_checkpoint(sub, modules, optimizers, extra_tensors)
        except WeightsError as exc:
            raise WeightsError(f"{exc}; delete {self.folder} to start over") from None

    def clear(self) -> None:
        """Remove the checkpoints (after the run's result is safely written): the ``step_*``
        sub-folders and the pointer, then the folder itself if nothing else is in it."""
        for sub in self.folder.glob("step_*"):
            if sub.is_dir():
                shutil.rmtree(sub, ignore_errors=True)
        self.pointer.unlink(missing_ok=True)
        try:
            self.folder.rmdir()
        except OSError:  # missing, or holds files of someone else's
            pass
