"""The output folder of a benchmark run as resume state (layout: :mod:`glkm_prior.bench`).

``OUT/run.json`` holds the run's identity (a rerun must match it while results exist) and
``OUT/results/<name>__s<seed>.json`` one finished (image, seed) pair; a pair with a readable
result is not computed again.
"""

from __future__ import annotations

import json
from pathlib import Path

from .bench_report import json_safe, write_json
from .errors import InvalidInputError


def pair_stem(name: str, seed: int) -> str:
    """File stem of one (image, seed) pair: ``<name>__s<seed>``."""
    return f"{name}__s{seed}"


def result_path(out: Path, name: str, seed: int) -> Path:
    """``OUT/results/<name>__s<seed>.json``."""
    return out / "results" / f"{pair_stem(name, seed)}.json"


def load_result(out: Path, name: str, seed: int) -> dict | None:
    """A finished pair's result, or None if it is missing or unreadable."""
    path = result_path(out, name, seed)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("name") != name or data.get("seed") != seed or "psnr" not in data:
        return None
    return data


def run_identity(cfg, folder: Path, layout: str) -> dict:
    """What makes two runs the same run (``cfg`` a :class:`glkm_prior.bench_config.BenchConfig`)."""
    identity = {"dataset": str(folder.resolve()), "layout": layout, "method": cfg.method,
                "kernel_branch": cfg.kernel_branch, "iters": cfg.iters, "weights": cfg.weights,
                "revision": cfg.revision, "true_kernel_orientation": cfg.true_kernel_orientation,
                "options": json_safe(cfg.options)}
    if cfg.kernel_size is not None:  # only when set, so runs made before the option still resume
        identity["kernel_size"] = cfg.kernel_size
    return identity


def check_run_file(out: Path, identity: dict, write: bool) -> None:
    """Refuse an ``out`` holding results of a different run; (re)write ``OUT/run.json`` if ``write``."""
    path = out / "run.json"
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            old = None
        has_results = (out / "results").is_dir() and any((out / "results").glob("*.json"))
        if isinstance(old, dict):
            diffs = [f"{k}: {old.get(k)!r} -> {v!r}" for k, v in identity.items() if old.get(k) != v]
            if diffs and has_results:
                raise InvalidInputError(f"{out} holds results of a different run ({'; '.join(diffs)}); use another --out")
            if not diffs:
                return
    if write:
        write_json(path, identity)
