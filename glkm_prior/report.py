"""Pictures of benchmark runs (PNG): an image grid per run and a convergence plot of runs.

* :func:`image_grid` -- one row per image (the first ``max_rows`` images by name, 16 by
  default, at the lowest seed), columns ``blurry | result | ground truth | estimated kernel |
  true kernel`` (as used as ground truth: rotated when the run found and used the rotation).
  Images are scaled to fit a square cell (aspect kept); kernels are scaled so
  their maximum is white and enlarged with nearest-neighbour by a whole factor so single pixels
  stay visible. The aligned PSNR is written on the result tile, the kernel error on the
  estimated kernel (Pillow's default font).
* :func:`plot_convergence` -- PSNR (mean over the run's images and seeds) and kernel error
  (mean relative L2) against the iteration, one line per run (method / kernel branch), from
  the traces the runner records (:mod:`glkm_prior.bench`, "Convergence callback"). Methods
  without iterations are single points at their final iteration count (0 for
  ``initializer`` and ``true-kernel``). Overlay several runs with
  ``glkm eval plot OUT1 OUT2 ... -o convergence.png``.
* :func:`compare_runs` -- two run folders paired by (image, seed) over the pairs both have
  finished: PSNR at chosen iterations, where one passes the other, mean gain, spread across
  seeds; :func:`comparison_markdown` prints it (``examples/compare_runs.py``).

matplotlib is imported lazily, with the non-interactive Agg canvas (no display needed,
pyplot's global state untouched). Files are written atomically.
"""

from __future__ import annotations

import io
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .atomic import atomic_write
from .errors import GLKMError, InvalidInputError
from .imageio import default_font, kernel_to_image

GRID_COLUMNS = ("blurry", "result", "ground truth", "estimated kernel", "true kernel")
CELL = 176  # px, side of a grid cell
HEADER = 22
GAP = 4
BACKGROUND = (40, 40, 40)


def _to_pil(arr: np.ndarray) -> Image.Image:
    a = np.round(np.clip(np.asarray(arr, dtype=np.float64), 0, 1) * 255).astype(np.uint8)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    img = Image.fromarray(a)
    return img.convert("RGB")


def image_tile(arr: np.ndarray, cell: int = CELL) -> Image.Image:
    """An image scaled (bicubic, aspect kept) to fit a ``cell`` x ``cell`` square."""
    img = _to_pil(arr)
    scale = min(cell / img.width, cell / img.height)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, Image.BICUBIC if scale > 1 else Image.LANCZOS)


def kernel_tile(kernel: np.ndarray, cell: int = CELL) -> Image.Image:
    """A kernel scaled to its maximum and enlarged by the largest whole factor (nearest
    neighbour) that fits the cell (:func:`glkm_prior.imageio.kernel_to_image`)."""
    img = _to_pil(kernel_to_image(kernel, fit=cell, dtype=np.float64))
    if max(img.size) > cell:  # kernels larger than the cell: shrink to fit
        s = cell / max(img.size)
        img = img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))), Image.LANCZOS)
    return img


def _label(draw: ImageDraw.ImageDraw, xy, text: str, font) -> None:
    x, y = xy
    box = draw.textbbox((x, y), text, font=font)
    draw.rectangle((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2), fill=(0, 0, 0))
    draw.text((x, y), text, fill=(255, 230, 0), font=font)


def _save_png(img: Image.Image, path: Path) -> Path:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return atomic_write(path, lambda fh: fh.write(buf.getvalue()), "picture")


def _grid_rows(rows: list[dict], max_rows: int) -> list[dict]:
    first = {}
    for r in sorted(rows, key=lambda r: (r["name"], r["seed"])):
        first.setdefault(r["name"], r)
    return list(first.values())[:max_rows]


def _true_kernel(row: dict, load_kernel) -> np.ndarray:
    k = load_kernel(row["true_kernel"])
    return k[::-1, ::-1] if row.get("true_kernel_rotated") else k


def image_grid(rows: list[dict], out: str | Path, path: str | Path, max_rows: int = 16, cell: int = CELL) -> Path:
    """Write the grid picture of a run (see the module docstring). ``rows`` are the runner's
    result records; their ``image``/``kernel`` paths are relative to ``out``."""
    from .imageio import read_image
    from .kernel_io import load_kernel

    out = Path(out)
    chosen = _grid_rows(rows, max_rows)
    if not chosen:
        raise InvalidInputError("no results to draw")
    font = default_font(12)
    ncol = len(GRID_COLUMNS)
    width = ncol * cell + (ncol + 1) * GAP
    height = HEADER + len(chosen) * (cell + GAP) + GAP
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for c, title in enumerate(GRID_COLUMNS):
        x = GAP + c * (cell + GAP)
        draw.text((x + 4, 4), title, fill=(255, 255, 255), font=font)
    for i, row in enumerate(chosen):
        y0 = HEADER + i * (cell + GAP)
        est_k = load_kernel(out / row["kernel"])
        true_k = _true_kernel(row, load_kernel) if row.get("true_kernel") else None
        tiles: list[Image.Image | None] = [
            image_tile(read_image(row["blurry"]), cell),
            image_tile(read_image(out / row["image"]), cell),
            image_tile(read_image(row["sharp"]), cell) if row.get("sharp") else None,
            kernel_tile(est_k, cell),
            kernel_tile(true_k, cell) if true_k is not None else None,
        ]
        for c, tile in enumerate(tiles):
            x0 = GAP + c * (cell + GAP)
            if tile is None:
                draw.text((x0 + 8, y0 + cell // 2), "n/a", fill=(160, 160, 160), font=font)
                continue
            canvas.paste(tile, (x0 + (cell - tile.width) // 2, y0 + (cell - tile.height) // 2))
        _label(draw, (GAP + 4, y0 + 4), f"{row['name']} s{row['seed']}", font)
        if row.get("psnr") is not None:
            text = f"PSNR {row['psnr']:.2f} dB"
            if row.get("ssim") is not None:
                text += f" / {row['ssim']:.3f}"
            _label(draw, (GAP + cell + GAP + 4, y0 + 4), text, font)
        if row.get("kernel_rel_l2") is not None:
            _label(draw, (GAP + 3 * (cell + GAP) + 4, y0 + 4), f"rel. L2 {row['kernel_rel_l2']:.3f}", font)
        _label(draw, (GAP + 3 * (cell + GAP) + 4, y0 + cell - 16), "x".join(map(str, est_k.shape)) + " px", font)
        if true_k is not None:
            _label(draw, (GAP + 4 * (cell + GAP) + 4, y0 + cell - 16), "x".join(map(str, true_k.shape)) + " px", font)
        if row.get("true_kernel_rotated"):
            _label(draw, (GAP + 4 * (cell + GAP) + 4, y0 + 4), "rotated 180", font)
    return _save_png(canvas, Path(path))


# ----------------------------------------------------------------------------- convergence
def load_run(folder: str | Path) -> tuple[str, list[dict]]:
    """``(label, rows)`` of a finished run folder (its ``results.json``)."""
    path = Path(folder) / "results.json"
    if not path.is_file():
        raise InvalidInputError(f"no results.json in {folder} (is it the --out folder of a finished `glkm eval` run?)")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot read {path}: {exc}") from None
    cfg, rows = data.get("config", {}), data.get("rows", [])
    method, branch = cfg.get("method", "?"), cfg.get("kernel_branch", "?")
    label = method if method == "true-kernel" else f"{method} ({branch})"
    return label, rows


def convergence_curves(rows: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """Mean PSNR and mean kernel rel. L2 per iteration over a run's traces."""
    psnr, kerr = defaultdict(list), defaultdict(list)
    for row in rows:
        for p in row.get("trace") or []:
            if p.get("psnr") is not None and math.isfinite(p["psnr"]):
                psnr[int(p["step"])].append(float(p["psnr"]))
            if p.get("kernel_rel_l2") is not None and math.isfinite(p["kernel_rel_l2"]):
                kerr[int(p["step"])].append(float(p["kernel_rel_l2"]))
    return {
        "psnr": [(s, float(np.mean(v))) for s, v in sorted(psnr.items())],
        "kernel_rel_l2": [(s, float(np.mean(v))) for s, v in sorted(kerr.items())],
    }


def plot_convergence(runs, path: str | Path, title: str | None = None) -> Path:
    """Write the convergence plot of one or several runs.

    ``runs``: a list of ``(label, rows)`` pairs or of run folders (``--out`` of finished runs).
    Duplicate labels get their folder name appended.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError as exc:  # pragma: no cover - matplotlib is a dependency
        raise GLKMError(f"the convergence plot needs matplotlib ({exc}); pip install matplotlib") from None
    loaded = []
    for run in runs:
        if isinstance(run, (str, Path)):
            label, rows = load_run(run)
            loaded.append((label, rows, Path(run).name))
        else:
            loaded.append((run[0], run[1], None))
    if not loaded:
        raise InvalidInputError("no runs to plot")
    labels = [l for l, _, _ in loaded]
    fig = Figure(figsize=(10, 4), dpi=110)
    FigureCanvasAgg(fig)
    ax_p, ax_k = fig.subplots(1, 2)
    for label, rows, folder in loaded:
        if labels.count(label) > 1 and folder:
            label = f"{label} [{folder}]"
        curves = convergence_curves(rows)
        for ax, key in ((ax_p, "psnr"), (ax_k, "kernel_rel_l2")):
            pts = curves[key]
            if pts:
                xs, ys = zip(*pts)
                line, = ax.plot(xs, ys, marker="o", markersize=4 if len(xs) > 1 else 7, label=label)
                ax.annotate(f"{ys[-1]:.2f}" if key == "psnr" else f"{ys[-1]:.3f}", (xs[-1], ys[-1]),
                            textcoords="offset points", xytext=(6, 4), fontsize=8, color=line.get_color())
    ax_p.set(xlabel="iteration", ylabel="PSNR (dB), mean over images", title="image PSNR (aligned)")
    ax_k.set(xlabel="iteration", ylabel="||k - k_true|| / ||k_true||, mean", title="kernel error")
    for ax in (ax_p, ax_k):
        ax.grid(True, alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        steps = [x for line in ax.lines for x in line.get_xdata()]
        if steps and max(steps) == min(steps):  # single-iteration methods only: a readable axis
            ax.set_xlim(min(steps) - 1, max(steps) + 1)
        if ax.lines:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return atomic_write(Path(path), lambda fh: fh.write(buf.getvalue()), "plot")


# ----------------------------------------------------------------------------- paired comparison
def load_pairs(folder: str | Path) -> dict[tuple[str, int], dict]:
    """Every finished ``(image, seed)`` pair of a run folder (``results/*.json``), by key."""
    results = Path(folder) / "results"
    if not results.is_dir():
        raise InvalidInputError(f"no results/ folder in {folder} (is it the --out folder of a `glkm eval` run?)")
    pairs = {}
    for path in sorted(results.glob("*.json")):
        try:
            row = json.loads(path.read_text())
            float(row["psnr"])  # scored against a ground truth: compare_pair needs it
            pairs[(str(row["name"]), int(row["seed"]))] = row
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InvalidInputError(f"cannot read {path} as a result (name, seed, psnr): {exc!r}") from None
    return pairs


def _psnr_trace(row: dict) -> dict[int, float]:
    return {int(p["step"]): float(p["psnr"]) for p in row.get("trace") or [] if p.get("psnr") is not None}


def compare_pair(a: dict, b: dict, at=(250, 500)) -> dict:
    """One image and seed run by two methods ``a`` and ``b`` (rows with PSNR traces).

    * ``psnr_a`` / ``psnr_b``: final PSNR; ``a_at`` / ``b_at``: PSNR at the steps ``at``
      (None where a trace lacks the step);
    * ``b_ahead_from``: the first traced step from which ``b`` >= ``a`` at every later common
      step (None: ``a`` ahead at the last step);
    * ``a_reaches_b_final``: the first step at which ``a`` >= ``b``'s final PSNR (None: never).

    The runner scores trace points with whole-pixel alignment and the last point with the full
    sub-pixel protocol (:mod:`glkm_prior.bench`; on DIP outputs the last point gains 0.3-1.5
    dB from it), so comparisons at one step are like for like, while ``a_reaches_b_final``
    before the last step is conservative (a whole-pixel score against a sub-pixel one).
    """
    ta, tb = _psnr_trace(a), _psnr_trace(b)
    common = sorted(set(ta) & set(tb))
    ahead_from = None
    for step in reversed(common):
        if tb[step] < ta[step]:
            break
        ahead_from = step
    reach = next((s for s in sorted(ta) if ta[s] >= float(b["psnr"])), None)
    return {"name": a["name"], "seed": int(a["seed"]), "psnr_a": float(a["psnr"]), "psnr_b": float(b["psnr"]),
            "a_at": [ta.get(s) for s in at], "b_at": [tb.get(s) for s in at],
            "b_ahead_from": ahead_from, "a_reaches_b_final": reach}


def compare_runs(folder_a: str | Path, folder_b: str | Path, at=(250, 500), seeds=None) -> dict:
    """Paired comparison of two run folders over the pairs both have finished (only ``seeds``
    when given).

    ``pairs``: :func:`compare_pair` per common (image, seed); ``mean_a`` / ``mean_b`` and
    ``mean_gain`` (a - b) over those pairs; ``mean_a_at`` / ``mean_b_at``: the mean PSNR at each
    ``at`` iteration (over the pairs whose traces have it); ``a_wins``: pairs where a's final PSNR
    is higher; ``seed_std_a`` / ``seed_std_b``: the standard
    deviation (ddof 0) of the final PSNR across seeds, per image with >= 2 common seeds, and
    ``mean_seed_std_*`` their mean (None without such images).
    """
    pa, pb = load_pairs(folder_a), load_pairs(folder_b)
    wanted = None if seeds is None else set(seeds)
    keys = sorted(k for k in set(pa) & set(pb) if wanted is None or k[1] in wanted)
    pairs = [compare_pair(pa[k], pb[k], at) for k in keys]
    by_image = defaultdict(list)
    for p in pairs:
        by_image[p["name"]].append(p)
    std_a = {n: float(np.std([p["psnr_a"] for p in ps])) for n, ps in by_image.items() if len(ps) > 1}
    std_b = {n: float(np.std([p["psnr_b"] for p in ps])) for n, ps in by_image.items() if len(ps) > 1}
    mean = (lambda xs: float(np.mean(xs)) if xs else None)
    mean_at = (lambda side: [mean([p[side][i] for p in pairs if p[side][i] is not None]) for i in range(len(at))])
    return {"pairs": pairs, "at": list(at), "count": len(pairs),
            "mean_a": mean([p["psnr_a"] for p in pairs]), "mean_b": mean([p["psnr_b"] for p in pairs]),
            "mean_gain": mean([p["psnr_a"] - p["psnr_b"] for p in pairs]),
            "mean_a_at": mean_at("a_at"), "mean_b_at": mean_at("b_at"),
            "a_wins": sum(p["psnr_a"] > p["psnr_b"] for p in pairs),
            "seed_std_a": std_a, "seed_std_b": std_b,
            "mean_seed_std_a": mean(list(std_a.values())), "mean_seed_std_b": mean(list(std_b.values()))}


def _step(step) -> str:
    return "never" if step is None else str(step)


def comparison_markdown(cmp: dict, label_a: str = "A", label_b: str = "B") -> str:
    """:func:`compare_runs` as a Markdown table and summary lines."""
    f = (lambda v: "-" if v is None else f"{v:.2f}")
    at = " / ".join(str(s) for s in cmp["at"])
    lines = [f"| image | seed | {label_a} at {at} / final | {label_b} at {at} / final | {label_b} ahead from | "
             f"{label_a} reaches {label_b}'s final |", "| --- | ---: | --- | --- | ---: | ---: |"]
    for p in cmp["pairs"]:
        lines.append(f"| {p['name']} | {p['seed']} | {' / '.join(map(f, p['a_at']))} / **{f(p['psnr_a'])}** | "
                     f"{' / '.join(map(f, p['b_at']))} / **{f(p['psnr_b'])}** | {_step(p['b_ahead_from'])} | "
                     f"{_step(p['a_reaches_b_final'])} |")
    lines += ["", "PSNR at the listed iterations: whole-pixel alignment (the run's trace); final: the full "
              "sub-pixel protocol, so a score before the final one can only underestimate reaching the other's final.",
              "", f"{cmp['count']} pairs: mean final PSNR {label_a} {f(cmp['mean_a'])} dB, {label_b} {f(cmp['mean_b'])} dB "
              f"({label_a} - {label_b} = {f(cmp['mean_gain'])} dB); {label_a} higher on {cmp['a_wins']} of "
              f"{cmp['count']}",
              f"mean PSNR at {at} (whole-pixel alignment): {label_a} {' / '.join(map(f, cmp['mean_a_at']))} dB, "
              f"{label_b} {' / '.join(map(f, cmp['mean_b_at']))} dB"]
    if cmp["seed_std_a"]:
        lines.append(f"spread across seeds (std of the final PSNR, mean over {len(cmp['seed_std_a'])} images with >= 2 seeds): "
                     f"{label_a} {f(cmp['mean_seed_std_a'])} dB, {label_b} {f(cmp['mean_seed_std_b'])} dB")
    return "\n".join(lines) + "\n"
