"""LPIPS availability (no network access, never fake values)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

_LPIPS_BACKBONES = {
    "alex": "alexnet-*.pth",
    "vgg": "vgg16-*.pth",
    "squeeze": "squeezenet1_1-*.pth",
}


def _torch_hub_dir() -> Path:
    try:
        import torch.hub

        return Path(torch.hub.get_dir())
    except Exception:  # pragma: no cover - torch is a dependency, but be defensive
        home = os.environ.get("TORCH_HOME") or os.path.join(
            os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch"
        )
        return Path(home) / "hub"


def lpips_available(net: str = "alex") -> tuple[bool, str]:
    """Whether LPIPS can be computed offline: ``(ok, one-line reason)``.

    True only if the ``lpips`` and ``torchvision`` packages are installed, the package's
    linear-layer weights ``lpips/weights/v0.1/<net>.pth`` exist and the ImageNet backbone
    weights are already in the torch hub cache (``<torch hub dir>/checkpoints``). Nothing is
    imported from lpips and nothing is downloaded. This module never returns made-up LPIPS
    values.
    """
    if net not in _LPIPS_BACKBONES:
        return False, f"unknown LPIPS network {net!r} (expected one of {sorted(_LPIPS_BACKBONES)})"
    try:
        spec = importlib.util.find_spec("lpips")
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None:
        return False, "the 'lpips' package is not installed"
    try:
        tv = importlib.util.find_spec("torchvision")
    except (ImportError, ValueError):
        tv = None
    if tv is None:
        return False, "the 'torchvision' package (needed by lpips) is not installed"
    lin = Path(spec.origin).parent / "weights" / "v0.1" / f"{net}.pth"
    if not lin.is_file():
        return False, f"lpips linear-layer weights not found at {lin}"
    ckpt_dir = _torch_hub_dir() / "checkpoints"
    hits = sorted(ckpt_dir.glob(_LPIPS_BACKBONES[net])) if ckpt_dir.is_dir() else []
    if not hits:
        return False, (
            f"{net} backbone weights ({_LPIPS_BACKBONES[net]}) not in {ckpt_dir}; "
            "they would have to be downloaded"
        )
    return True, f"lpips ({net}) and its backbone weights {hits[0].name} are available locally"
