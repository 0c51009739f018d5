"""What a benchmark run writes at the end: ``results.csv`` / ``results.json`` (every pair),
``summary.json`` / ``summary.md`` (mean and std across seeds of the per-seed means, per category
and overall), ``grid.png``, ``convergence.png``, ``gallery.html`` and contact sheets
(:func:`finalize`); JSON through :func:`write_json` (non-finite numbers become null)."""

from __future__ import annotations

import csv
import datetime
import io
import json
import math
import statistics
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .atomic import atomic_write
from .scoring import FLIP_MARGIN_DB, TRUE_KERNEL_METHOD

CSV_COLUMNS = [
    "name", "category", "seed", "method", "kernel_branch", "kernel_size", "true_kernel_size", "psnr", "ssim",
    "kernel_rel_l2", "kernel_psnr", "error_ratio", "lpips", "seam_rmse", "interior_rmse", "grid", "niqe_input", "niqe",
    "piqe_input", "piqe", "seconds", "peak_rss_mb", "iters", "shift_y", "shift_x",
    "true_kernel_rotated", "true_kernel_fit_psnr", "true_kernel_fit_psnr_rotated", "image", "kernel", "rank",
]


def _finite_or_none(v):
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def json_safe(obj):
    """JSON-safe copy: non-finite floats -> None, numpy scalars -> Python numbers."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return _finite_or_none(obj)
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


def write_json(path: Path, data) -> Path:
    text = json.dumps(json_safe(data), indent=2, allow_nan=False) + "\n"
    return atomic_write(path, lambda fh: fh.write(text.encode()), "JSON file")

#: Scores summarised in summary.md/json (in this order) and their headings.
SUMMARY_METRICS = {
    "psnr": "PSNR (dB)",
    "ssim": "SSIM",
    "kernel_rel_l2": "kernel rel. L2",
    "error_ratio": "error ratio",
    "lpips": "LPIPS",
    "seam_rmse": "seam RMSE",
    "interior_rmse": "interior RMSE",
    "niqe_input": "NIQE input",
    "niqe": "NIQE",
    "piqe_input": "PIQE input",
    "piqe": "PIQE",
    "seconds": "seconds",
    "peak_rss_mb": "peak RSS (MB)",
}


def _seed_stats(rows: list[dict], key: str, seeds) -> dict | None:
    per_seed = []
    for seed in seeds:
        vals = [r.get(key) for r in rows if r["seed"] == seed]
        vals = [float(v) for v in vals if v is not None and math.isfinite(float(v))]
        if vals:
            per_seed.append(statistics.fmean(vals))
    if not per_seed:
        return None
    return {
        "mean": statistics.fmean(per_seed),
        "std": statistics.stdev(per_seed) if len(per_seed) > 1 else None,
        "n_seeds": len(per_seed),
        "per_seed": per_seed,
    }


def row_categories(row: dict) -> list[str]:
    """A row's categories: several per photo (Lai's real set; the photo counts in each), else
    its one category (rows written before ``categories`` existed)."""
    return row.get("categories") or [row["category"]]


def summarize(rows: list[dict], seeds) -> dict:
    """Mean and std (sample std, ddof=1; None for one seed) across seeds of the per-seed means
    over images, per category and overall ('all')."""
    categories = sorted({c for r in rows for c in row_categories(r)})
    groups = {c: [r for r in rows if c in row_categories(r)] for c in categories}
    if len(categories) > 1 or "all" not in groups:
        groups["all"] = rows
    table = {}
    for name, group in groups.items():
        table[name] = {
            "images": len({r["name"] for r in group}),
            **{k: _seed_stats(group, k, seeds) for k in SUMMARY_METRICS},
        }
    return table


def _fmt(stat, digits: int) -> str:
    if stat is None:
        return "—"
    mean = f"{stat['mean']:.{digits}f}"
    return mean if stat["std"] is None else f"{mean} ± {stat['std']:.{digits}f}"


DIGITS = {"psnr": 2, "ssim": 4, "kernel_rel_l2": 3, "error_ratio": 2, "lpips": 4, "seam_rmse": 4, "interior_rmse": 4,
          "niqe_input": 2, "niqe": 2, "piqe_input": 2, "piqe": 2, "seconds": 2, "peak_rss_mb": 0}


def summary_markdown(summary: dict) -> str:
    cfg = summary["config"]
    table = summary["table"]
    keys = [k for k in SUMMARY_METRICS if any(table[c].get(k) for c in table)]
    lines = [
        f"# {cfg['method']} ({cfg['kernel_branch']}) on {summary['dataset']['name']}",
        "",
        f"- dataset: `{summary['dataset']['folder']}` ({summary['dataset']['layout']} layout), "
        f"{summary['images']} images x {len(cfg['seeds'])} seed(s) ({', '.join(map(str, cfg['seeds']))})",
        f"- iterations: {cfg['iters'] if cfg['iters'] is not None else 'method default'}; "
        f"prior: {', '.join(summary['priors']) or 'none'}",
        "- PSNR/SSIM: comp_upto_shift (15 px border, +-5 px (Lai: +-10) in 0.25 px steps), peak 1 on [0, 1], "
        "on the saved 8-bit result; colour scored on MATLAB Y",
        "- kernel rel. L2: ||k_est - k_true|| / ||k_true|| at the best integer shift (no flip); "
        "error ratio: SSD(result) / SSD(true-kernel deconvolution)",
        "- cells: mean ± std across seeds of the per-seed mean over images; seconds = method wall time; "
        "peak RSS = process high-water mark",
    ]
    if summary.get("lpips_note"):
        lines.append(f"- LPIPS: not reported ({summary['lpips_note']})")
    for note in summary.get("notes", []):
        lines.append(f"- **note**: {note}")
    lines += ["", "| category | images | " + " | ".join(SUMMARY_METRICS[k] for k in keys) + " |",
              "|---|---:|" + "---:|" * len(keys)]
    order = [c for c in table if c != "all"] + ["all"]
    for c in order:
        if c not in table:
            continue
        label = f"**{c}**" if c == "all" else c
        lines.append(f"| {label} | {table[c]['images']} | " + " | ".join(_fmt(table[c][k], DIGITS[k]) for k in keys) + " |")
    return "\n".join(lines) + "\n"


#: Scores shown in the gallery, when a run has them (ground truth: PSNR...; photos: NIQE/PIQE).
GALLERY_SCORES = ("psnr", "ssim", "kernel_rel_l2", "niqe_input", "niqe", "piqe_input", "piqe", "seam_rmse", "seconds")


def write_run_gallery(rows: list[dict], out: Path, title: str) -> dict:
    """``gallery.html`` (sortable by category and score) and ``contact_sheet*.png`` (blurry |
    result | kernel per image) of a run (:mod:`glkm_prior.gallery`)."""
    from .gallery import GalleryEntry, write_gallery

    keys = [k for k in GALLERY_SCORES if any(isinstance(r.get(k), (int, float)) for r in rows)]
    entries = []
    for r in sorted(rows, key=lambda r: (r["name"], r["seed"])):
        entries.append(GalleryEntry(
            name=r["name"] if len({x["seed"] for x in rows}) == 1 else f"{r['name']} (seed {r['seed']})",
            blurry=Path(r["blurry"]), result=out / r["image"],
            kernel=(out / r["kernel"]).with_suffix(".png") if r.get("kernel") else None,
            categories=tuple(row_categories(r)),
            scores={k: (float(r[k]) if isinstance(r.get(k), (int, float)) and math.isfinite(r[k]) else None) for k in keys}))
    return write_gallery(entries, out, title, score_keys=keys)


def _write_csv(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        clean = json_safe(row)
        writer.writerow({k: ("" if clean.get(k) is None else clean.get(k)) for k in CSV_COLUMNS})
    atomic_write(path, lambda fh: fh.write(buf.getvalue().encode()), "CSV file")


def finalize(out: Path, cfg, rows: list[dict], *, runner=None, identity=None, counts=None, wall=None,
             log=None) -> dict:
    """Write results.csv/json, summary.md/json, grid.png, convergence.png, gallery.html and the
    contact sheet(s) from ``rows`` (``cfg``: the run's :class:`glkm_prior.bench.BenchConfig`)."""
    from . import report

    out = Path(out)
    rows = sorted(rows, key=lambda r: (r["name"], r["seed"]))
    priors = sorted({r["prior"] for r in rows if r.get("prior")})
    notes = list(runner.notes) if runner is not None else []
    if any(p == "untrained" for p in priors) and not any("UNTRAINED" in n for n in notes):
        notes.append("the GLKM prior is UNTRAINED (random): kernel estimates are meaningless")
    suspicious = sorted({r["name"] for r in rows if r.get("true_kernel_fit_psnr") is not None
                         and r["true_kernel_fit_psnr_rotated"] > r["true_kernel_fit_psnr"] + FLIP_MARGIN_DB})
    if suspicious:
        if cfg.true_kernel_orientation == "auto":
            notes.append(f"{len(suspicious)} stored true kernel(s) fit the blurry image only after a 180-degree "
                         f"rotation; the rotated kernel was used as ground truth: {', '.join(suspicious)}")
        else:
            notes.append(f"{len(suspicious)} stored true kernel(s) fit the blurry image better after a 180-degree "
                         f"rotation (blur(sharp, k) vs blurry, see true_kernel_fit_psnr* in results.json): "
                         f"{', '.join(suspicious)}; their kernel errors, true-kernel results and error ratios use "
                         "the kernel as stored. --true-kernel-orientation auto uses the rotated one")
    summary = {
        "config": {**asdict(cfg), "seeds": list(cfg.seeds)},
        "dataset": {"name": Path(identity["dataset"]).name if identity else str(cfg.dataset),
                    "folder": identity["dataset"] if identity else str(cfg.dataset),
                    "layout": identity["layout"] if identity else None},
        "images": len({r["name"] for r in rows}),
        "pairs": len(rows),
        "priors": priors,
        "notes": notes,
        "lpips_note": None if (runner is None or runner.lpips_ok) else runner.lpips_reason,
        "table": summarize(rows, cfg.seeds),
        "run": {**(counts or {}), "wall_seconds": wall, "finished": datetime.datetime.now().isoformat(timespec="seconds")},
    }
    write_json(out / "results.json", {"config": summary["config"], "dataset": summary["dataset"], "rows": rows})
    _write_csv(out / "results.csv", rows)
    write_json(out / "summary.json", summary)
    text = summary_markdown(json_safe(summary))
    atomic_write(out / "summary.md", lambda fh: fh.write(text.encode()), "summary")
    label = cfg.method if cfg.method == TRUE_KERNEL_METHOD else f"{cfg.method} ({cfg.kernel_branch})"
    report.image_grid(rows, out, out / "grid.png", max_rows=cfg.grid_rows)
    report.plot_convergence([(label, rows)], out / "convergence.png")
    gallery = write_run_gallery(rows, out, f"{label} on {summary['dataset']['name']}")
    for problem in gallery["problems"]:
        if log:
            log(f"gallery: {problem}")
    summary["files"] = {k: str(out / k) for k in ("results.csv", "results.json", "summary.md", "summary.json",
                                                  "grid.png", "convergence.png", "gallery.html")}
    summary["files"]["contact_sheets"] = [str(p) for p in gallery["contact_sheets"]]
    summary["markdown"] = text
    return summary
