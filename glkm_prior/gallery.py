"""A browsable gallery of a benchmark run: ``blurry | deblurred | estimated kernel`` per photo.

:func:`write_gallery` writes into ``out_dir``:

* ``gallery.html`` -- one static page (opens from disk; no server, no external JS/CSS). One card
  per entry: name, categories, the three images (click one for full size), its scores. A
  category filter and a sort (given order, name, category or any score column; click a score
  name in a card to sort by it) work with a few lines of inline JS on ``data-`` attributes.
  Images are referenced by URL-quoted paths relative to ``out_dir`` (nothing is copied), except
  ``.npy`` kernels, which a browser cannot show: their sibling ``.png`` (as the benchmark runner
  writes it) is used, or else a viewing copy is written to ``out_dir/gallery_files/``.
* ``contact_sheet.png`` -- the same rows as one PNG (Pillow only): a header, then per entry a
  caption strip (name, categories, scores) above three ``cell`` x ``cell`` cells. At most
  ``max_rows`` entries are drawn (the header says when entries were left out); a sheet taller
  than ``max_height`` px is split into ``contact_sheet_1.png``, ``contact_sheet_2.png``, ...
  (stale sheets of an earlier run with the other naming are removed).

Conventions: entry paths are ordinary paths (relative ones are relative to the current working
directory). Pictures are fitted into their cell with the aspect kept, letterboxed on dark grey;
16-bit and float images are converted to 8 bit. Kernels: ``.npy`` arrays are scaled so their
maximum is white; kernel images are shown as they are; both are enlarged with nearest-neighbour
by a whole factor. Scores show 4 significant digits (``None`` as an em dash). A missing or
unreadable file never stops the gallery: its cell becomes a placeholder (``missing`` /
``unreadable``), and the problem is listed in the result's ``'problems'`` and at the top of the
page. Every file is written atomically (:func:`glkm_prior.atomic.atomic_write`).
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path
from typing import Any, Iterable, Sequence
from urllib.parse import quote

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from .atomic import atomic_write
from .errors import InvalidInputError
from .imageio import default_font, kernel_to_image, tile_factor

__all__ = ["GalleryEntry", "write_gallery", "format_score", "sheet_size", "HTML_NAME", "SHEET_NAME"]

HTML_NAME = "gallery.html"
SHEET_NAME = "contact_sheet"  # contact_sheet.png, or contact_sheet_1.png, contact_sheet_2.png, ...
ASSET_DIR = "gallery_files"  # viewing PNGs of .npy kernels that have no sibling .png

# Contact-sheet layout (px). Width = 2 * MARGIN + 3 * cell + 2 * GAP;
# height = HEADER_H + rows * (CAPTION_H + cell + ROW_GAP) + MARGIN.
MARGIN = 8
GAP = 8
LINE_H = 16
HEADER_H = MARGIN + 2 * LINE_H + 4
CAPTION_H = 3 * LINE_H + 4
ROW_GAP = 8
CELL = 256
MAX_ROWS = 100
MAX_HEIGHT = 32000

BACKGROUND = (24, 24, 24)
LETTERBOX = (48, 48, 48)  # dark grey around a fitted picture
PLACEHOLDER = (72, 24, 24)  # cell of a missing / unreadable file
TEXT = (230, 230, 230)
DIM_TEXT = (160, 160, 160)

ROLES = ("blurry", "result", "kernel")
_SHEET_FILE = re.compile(rf"^{SHEET_NAME}(_\d+)?\.png$")


@dataclass
class GalleryEntry:
    """One photo of the gallery. ``kernel=None``: the method gives no kernel (not a problem)."""

    name: str
    blurry: Path
    result: Path
    kernel: Path | None = None
    categories: tuple[str, ...] = ()
    scores: dict[str, float | None] = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.name, str):
            raise InvalidInputError(f"gallery entry name must be a string, got {type(self.name).__name__}")
        for role in ROLES:
            value = getattr(self, role)
            if value is None and role == "kernel":
                continue
            if not isinstance(value, (str, os.PathLike)):
                raise InvalidInputError(f"gallery entry {self.name!r}: {role} must be a path, got {value!r}")
            setattr(self, role, Path(value))
        cats = (self.categories,) if isinstance(self.categories, str) else tuple(self.categories)
        if not all(isinstance(c, str) for c in cats):
            raise InvalidInputError(f"gallery entry {self.name!r}: categories must be strings, got {cats!r}")
        self.categories = cats
        self.scores = {str(k): _score_value(self.name, k, v) for k, v in dict(self.scores).items()}


def _score_value(name: str, key, value) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InvalidInputError(f"gallery entry {name!r}: score {key!r} must be a number or None, got {value!r}")
    return float(value)


def format_score(value: float | None, missing: str = "\u2014") -> str:
    """A score with 4 significant digits (``27.31``, ``0.8123``, ``25.00``, ``1234``); ``1.23e+07``
    outside [1e-3, 1e5); ``0``, ``inf``, ``nan``; ``missing`` for None."""
    if value is None:
        return missing
    v = float(value)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0:
        return "0"
    a = abs(v)
    if not 1e-3 <= a < 1e5:
        return f"{v:.3g}"
    return f"{v:.{max(0, 3 - math.floor(math.log10(a)))}f}"


def sheet_size(rows: int, cell: int = CELL) -> tuple[int, int]:
    """(width, height) in px of a contact sheet with ``rows`` rows of ``cell`` px cells."""
    return 2 * MARGIN + 3 * cell + 2 * GAP, HEADER_H + rows * (CAPTION_H + cell + ROW_GAP) + MARGIN


# ----------------------------------------------------------------------------- arguments
def _check_args(entries, out_dir, title, columns, score_keys, cell, max_rows, max_height):
    if isinstance(entries, GalleryEntry):
        entries = [entries]
    entries = list(entries)
    if not entries:
        raise InvalidInputError("write_gallery: no entries (the gallery needs at least one photo)")
    bad = [type(e).__name__ for e in entries if not isinstance(e, GalleryEntry)]
    if bad:
        raise InvalidInputError(f"write_gallery: entries must be GalleryEntry objects, got {bad[0]}")
    if not isinstance(title, str):
        raise InvalidInputError(f"write_gallery: title must be a string, got {type(title).__name__}")
    for label, value, lowest in (("columns", columns, 1), ("max_rows", max_rows, 1), ("cell", cell, 8),
                                 ("max_height", max_height, 1)):
        if value is None and label == "columns":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
            raise InvalidInputError(f"write_gallery: {label} must be an integer >= {lowest}, got {value!r}")
    if max_height < sheet_size(1, cell)[1]:
        raise InvalidInputError(f"write_gallery: max_height={max_height} px is below one row of the contact "
                                f"sheet ({sheet_size(1, cell)[1]} px with cell={cell})")
    if score_keys is None:
        score_keys = list(dict.fromkeys(k for e in entries for k in e.scores))
    elif isinstance(score_keys, str) or not all(isinstance(k, str) for k in score_keys):
        raise InvalidInputError(f"write_gallery: score_keys must be a sequence of strings, got {score_keys!r}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"write_gallery: output folder {out} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(f"write_gallery: cannot create output folder {out}: {exc}") from None
    return entries, out, list(score_keys)


# ----------------------------------------------------------------------------- reading pictures
class _Problems:
    """What went wrong, per (entry index, role): the placeholder word and one line for the report."""

    def __init__(self, entries: list[GalleryEntry]):
        self.entries = entries
        self.cells: dict[tuple[int, str], str] = {}
        self.lines: list[str] = []

    def add(self, i: int, role: str, path: Path, exc: BaseException) -> None:
        if (i, role) in self.cells:
            return
        missing = isinstance(exc, FileNotFoundError) or not path.exists()
        self.cells[(i, role)] = "missing" if missing else "unreadable"
        reason = "file not found" if missing else (str(exc) or type(exc).__name__)
        self.lines.append(f"{self.entries[i].name}: {role} {path}: {reason}")

    def word(self, i: int, role: str) -> str | None:
        return self.cells.get((i, role))


def _open(path: Path) -> Image.Image:
    if not path.is_file():
        raise FileNotFoundError(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Image.open(path)


def _to_8bit(img: Image.Image) -> Image.Image:
    """An L or RGB image; 16-bit / 32-bit integer and float images are scaled to 8 bit."""
    if img.mode.startswith("I"):
        arr = np.asarray(img).astype(np.float64)
        if img.mode.startswith("I;16") or arr.max(initial=0) > 255:
            arr = arr / 257.0
        return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))
    if img.mode == "F":
        arr = np.nan_to_num(np.asarray(img, dtype=np.float64))
        if arr.max(initial=0) <= 1.0:
            arr = arr * 255.0
        return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))
    if img.mode in ("L", "RGB"):
        return img
    return img.convert("RGBA").convert("RGB") if "A" in img.mode or "transparency" in img.info else img.convert("RGB")


def _fit(img: Image.Image, cell: int) -> Image.Image:
    scale = min(cell / img.width, cell / img.height)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0 if scale < 0.5 else None)


def _picture(path: Path, cell: int) -> Image.Image:
    """A photo fitted into ``cell`` x ``cell`` (aspect kept), RGB; large JPEGs are decoded small."""
    with _open(path) as img:
        img.draft("RGB", (cell, cell))
        img = ImageOps.exif_transpose(img)
        img.load()
    return _fit(_to_8bit(img), cell).convert("RGB")


def _kernel_array(path: Path) -> np.ndarray:
    """An .npy kernel as uint8 scaled so its maximum is 255 (negative values shown as 0)."""
    if not path.is_file():
        raise FileNotFoundError(path)
    arr = np.load(path, allow_pickle=False)
    if not isinstance(arr, np.ndarray):
        raise ValueError("not a single .npy array")
    arr = np.squeeze(arr)
    if arr.ndim != 2 or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"not a 2-D real kernel (shape {arr.shape}, dtype {arr.dtype})")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError("kernel holds NaN or Inf")
    if not arr.max() > 0:
        raise ValueError("kernel has no positive value")
    return np.clip(np.rint(kernel_to_image(arr, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def _kernel_image(path: Path) -> Image.Image:
    if path.suffix.lower() == ".npy":
        return Image.fromarray(_kernel_array(path))
    with _open(path) as img:
        img.load()
        return _to_8bit(img).convert("L")


def _kernel_picture(path: Path, cell: int) -> Image.Image:
    """A kernel enlarged with nearest-neighbour by the largest whole factor that fits ``cell``
    (:func:`glkm_prior.imageio.tile_factor`)."""
    img = _kernel_image(path)
    if max(img.width, img.height) > cell:  # larger than the cell: shrink (rare)
        return _fit(img, cell).convert("RGB")
    factor = tile_factor((img.height, img.width), fit=cell)
    return img.resize((img.width * factor, img.height * factor), Image.Resampling.NEAREST).convert("RGB")


# ----------------------------------------------------------------------------- contact sheet
def _text(draw: ImageDraw.ImageDraw, xy, text: str, font, fill, width: int) -> None:
    """Draw one line, cut with '...' to ``width`` px; characters the font lacks become '?'."""
    if draw.textlength(text, font=font) > width:
        while text and draw.textlength(text + "...", font=font) > width:
            text = text[:-1]
        text += "..."
    try:
        draw.text(xy, text, font=font, fill=fill)
    except UnicodeError:  # the bitmap fallback font is Latin-1 only
        draw.text(xy, text.encode("latin-1", "replace").decode("latin-1"), font=font, fill=fill)


def _placeholder(cell: int, word: str, font) -> Image.Image:
    img = Image.new("RGB", (cell, cell), PLACEHOLDER)
    draw = ImageDraw.Draw(img)
    left, top, right, bottom = draw.textbbox((0, 0), word, font=font)
    draw.text(((cell - right - left) // 2, (cell - bottom - top) // 2), word, font=font, fill=TEXT)
    return img


def _caption(entry: GalleryEntry, keys: Sequence[str]) -> list[str]:
    cats = ", ".join(entry.categories) if entry.categories else "(no category)"
    scores = "   ".join(f"{k} {format_score(entry.scores.get(k), '-')}" for k in keys)
    return [entry.name, cats, scores]


def _cell_image(i: int, role: str, entry: GalleryEntry, cell: int, problems: _Problems, font) -> Image.Image:
    path = getattr(entry, role)
    if path is None:
        return _placeholder(cell, "no kernel", font)
    if problems.word(i, role) is None:
        try:
            return _kernel_picture(path, cell) if role == "kernel" else _picture(path, cell)
        except Exception as exc:  # noqa: BLE001 -- any unreadable file becomes a placeholder, never a crash
            problems.add(i, role, path, exc)
    return _placeholder(cell, problems.word(i, role), font)


def _draw_row(sheet: Image.Image, top: int, i: int, entry: GalleryEntry, keys, cell: int, problems, font) -> None:
    draw = ImageDraw.Draw(sheet)
    width = sheet.width - 2 * MARGIN
    for n, (line, colour) in enumerate(zip(_caption(entry, keys), (TEXT, DIM_TEXT, TEXT))):
        _text(draw, (MARGIN, top + 2 + n * LINE_H), line, font, colour, width)
    y = top + CAPTION_H
    for c, role in enumerate(ROLES):
        x = MARGIN + c * (cell + GAP)
        draw.rectangle((x, y, x + cell - 1, y + cell - 1), fill=LETTERBOX)
        tile = _cell_image(i, role, entry, cell, problems, font)
        sheet.paste(tile, (x + (cell - tile.width) // 2, y + (cell - tile.height) // 2))


def _sheet_header(total: int, drawn: int, part: int, parts: int, first: int, last: int) -> str:
    info = f"{total} entries"
    if drawn < total:
        info += f"; only the first {drawn} are drawn (max_rows={drawn}), {total - drawn} left out -- see {HTML_NAME}"
    if parts > 1:
        info += f"; sheet {part}/{parts}: rows {first}-{last}"
    return info + ";  columns: blurry | deblurred | kernel"


def _write_sheets(entries, out: Path, title: str, keys, cell: int, max_rows: int, max_height: int,
                  problems: _Problems) -> list[Path]:
    drawn = entries[:max_rows]
    row_h = CAPTION_H + cell + ROW_GAP
    per_sheet = (max_height - HEADER_H - MARGIN) // row_h
    chunks = [range(s, min(s + per_sheet, len(drawn))) for s in range(0, len(drawn), per_sheet)]
    font = default_font()
    paths = []
    for part, rows in enumerate(chunks, 1):
        sheet = Image.new("RGB", sheet_size(len(rows), cell), BACKGROUND)
        draw = ImageDraw.Draw(sheet)
        width = sheet.width - 2 * MARGIN
        _text(draw, (MARGIN, MARGIN), title, font, TEXT, width)
        _text(draw, (MARGIN, MARGIN + LINE_H),
              _sheet_header(len(entries), len(drawn), part, len(chunks), rows[0] + 1, rows[-1] + 1),
              font, DIM_TEXT, width)
        for n, i in enumerate(rows):
            _draw_row(sheet, HEADER_H + n * row_h, i, entries[i], keys, cell, problems, font)
        name = f"{SHEET_NAME}.png" if len(chunks) == 1 else f"{SHEET_NAME}_{part}.png"
        paths.append(atomic_write(out / name, lambda fh, img=sheet: img.save(fh, format="PNG"), "contact sheet"))
        del sheet, draw
    for old in out.iterdir():  # sheets of an earlier run that this one did not rewrite
        if _SHEET_FILE.match(old.name) and old not in paths:
            old.unlink(missing_ok=True)
    return paths


# ----------------------------------------------------------------------------- HTML
def _url(path: Path, out: Path) -> str:
    """A URL for ``path`` relative to ``out`` (file:// URI when no relative path exists)."""
    target = os.path.abspath(path)
    try:
        rel = os.path.relpath(target, os.path.abspath(out))
    except ValueError:  # another drive (Windows)
        return Path(target).as_uri()
    return quote(rel.replace(os.sep, "/"), safe="/")


def _probe(i: int, entry: GalleryEntry, problems: _Problems) -> None:
    """Find missing / unreadable files cheaply (headers only), for entries not drawn on a sheet."""
    for role in ROLES:
        path = getattr(entry, role)
        if path is None or problems.word(i, role) is not None:
            continue
        try:
            if role == "kernel" and path.suffix.lower() == ".npy":
                _kernel_array(path)
            else:
                with _open(path) as img:
                    img.size  # noqa: B018 -- the header is parsed by open()
        except Exception as exc:  # noqa: BLE001
            problems.add(i, role, path, exc)


def _kernel_src(i: int, entry: GalleryEntry, out: Path, problems: _Problems) -> Path | None:
    """A file a browser can show for the kernel: itself, its sibling .png, or a viewing copy."""
    path = entry.kernel
    if path is None or problems.word(i, "kernel") is not None:
        return None
    if path.suffix.lower() != ".npy":
        return path
    if path.with_suffix(".png").is_file():
        return path.with_suffix(".png")
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem)[:80]
    copy = out / ASSET_DIR / f"{i:04d}_{stem}.png"
    image = Image.fromarray(_kernel_array(path))
    return atomic_write(copy, lambda fh: image.save(fh, format="PNG"), "kernel view")


def _figure(label: str, src: Path | None, word: str | None, out: Path, kind: str) -> str:
    if src is None:
        body = f'<div class="ph">{html.escape(word or "no kernel")}</div>'
    else:
        url = html.escape(_url(src, out), quote=True)
        body = (f'<a href="{url}" target="_blank"><img class="{kind}" src="{url}" alt="{label}" '
                f'loading="lazy" decoding="async"></a>')
    return f"<figure>{body}<figcaption>{label}</figcaption></figure>"


def _js_number(v: float | None):
    if v is None or math.isnan(v):
        return None
    return v if math.isfinite(v) else ("Infinity" if v > 0 else "-Infinity")


def _card(i: int, entry: GalleryEntry, keys, ranks, out: Path, problems: _Problems) -> str:
    esc = html.escape
    scores = json.dumps({k: _js_number(entry.scores.get(k)) for k in keys}, allow_nan=False)
    cats = "".join(f'<span class="cat">{esc(c)}</span>' for c in entry.categories)
    no_category = '<span class="none">no category</span>'
    rows = "".join(f'<tr><th data-key="{esc(k, quote=True)}">{esc(k)}</th>'
                   f"<td>{esc(format_score(entry.scores.get(k)))}</td></tr>" for k in keys)
    sources = {"blurry": None if problems.word(i, "blurry") else entry.blurry,
               "result": None if problems.word(i, "result") else entry.result,
               "kernel": _kernel_src(i, entry, out, problems)}
    figs = [_figure(label, sources[role], problems.word(i, role), out, "kernel" if role == "kernel" else "photo")
            for role, label in zip(ROLES, ("blurry", "deblurred", "kernel"))]
    return (f'<article class="card" data-order="{i}" data-name-rank="{ranks["name"][i]}" '
            f'data-cat-rank="{ranks["cat"][i]}" data-cats="{esc(json.dumps(list(entry.categories)), quote=True)}" '
            f'data-scores="{esc(scores, quote=True)}">\n'
            f'<h2>{esc(entry.name)}</h2><div class="cats">{cats or no_category}</div>\n'
            f'<div class="figs">{"".join(figs)}</div>\n'
            f'<table class="scores">{rows}</table>\n</article>')


def _ranks(entries: list[GalleryEntry]) -> dict[str, list[int]]:
    def rank(key) -> list[int]:
        order = sorted(range(len(entries)), key=lambda i: (key(entries[i]), i))
        out = [0] * len(entries)
        for r, i in enumerate(order):
            out[i] = r
        return out
    return {"name": rank(lambda e: (e.name.casefold(), e.name)),
            "cat": rank(lambda e: (tuple(c.casefold() for c in e.categories) or ("\uffff",), e.name.casefold()))}


def _options(values: Iterable[tuple[str, str]]) -> str:
    return "".join(f'<option value="{html.escape(v, quote=True)}">{html.escape(label)}</option>' for v, label in values)


_STYLE = """
body{background:#181818;color:#e6e6e6;font:14px/1.4 system-ui,sans-serif;margin:1em}
h1{font-size:1.4em;margin:.2em 0}
.controls{position:sticky;top:0;background:#181818;padding:.5em 0;z-index:1;border-bottom:1px solid #333}
.controls select,.controls button{font:inherit;margin-right:.8em}
.problems{background:#4a1818;border:1px solid #a33;padding:.5em 1em;margin:.5em 0}
#cards{display:grid;gap:12px;margin-top:12px;grid-template-columns:var(--cols)}
.card{background:#242424;border-radius:6px;padding:8px 10px}
.card h2{font-size:1.05em;margin:0;word-break:break-all}
.cat{display:inline-block;background:#3a4a5a;border-radius:3px;padding:0 6px;margin:2px 4px 2px 0;font-size:.85em}
.none{color:#888;font-size:.85em}
.figs{display:flex;flex-wrap:wrap;gap:8px;margin:6px 0}
figure{margin:0;text-align:center;font-size:.8em;color:#aaa}
img,.ph{width:var(--thumb);height:var(--thumb);object-fit:contain;background:#303030;display:block}
img.kernel{image-rendering:crisp-edges;image-rendering:pixelated;background:#000}
.ph{display:flex;align-items:center;justify-content:center;background:#481818;color:#e6e6e6}
table.scores{border-collapse:collapse;font-variant-numeric:tabular-nums}
table.scores th{text-align:left;font-weight:normal;color:#aaa;padding:0 1em 0 0;cursor:pointer}
table.scores th:hover{text-decoration:underline}
table.scores td{text-align:right}
"""

_SCRIPT = """
(function () {
  var list = document.getElementById('cards'), cards = Array.prototype.slice.call(list.children);
  var cat = document.getElementById('cat'), key = document.getElementById('sort'), dir = document.getElementById('dir');
  var count = document.getElementById('count'), desc = false;
  function val(card, k) {
    if (k === '#') return Number(card.dataset.order);
    if (k === 'name') return Number(card.dataset.nameRank);
    if (k === 'category') return Number(card.dataset.catRank);
    var v = JSON.parse(card.dataset.scores)[k];
    return (v === null || v === undefined) ? null : Number(v);
  }
  function update() {
    var k = key.value, c = cat.value, shown = 0;
    cards.slice().sort(function (a, b) {
      var x = val(a, k), y = val(b, k), tie = Number(a.dataset.order) - Number(b.dataset.order);
      if (x === null || y === null) return x === y ? tie : (x === null ? 1 : -1);  // no score: last
      return (desc ? y - x : x - y) || tie;
    }).forEach(function (card) {
      var on = c === '' || JSON.parse(card.dataset.cats).indexOf(c) >= 0;
      card.hidden = !on; shown += on ? 1 : 0; list.appendChild(card);
    });
    count.textContent = shown + ' of ' + cards.length + ' shown';
    dir.textContent = desc ? 'descending' : 'ascending';
  }
  cat.onchange = key.onchange = update;
  dir.onclick = function () { desc = !desc; update(); };
  list.addEventListener('click', function (ev) {
    var k = ev.target.dataset && ev.target.dataset.key;
    if (!k) return;
    if (key.value === k) desc = !desc; else { key.value = k; desc = false; }
    update();
  });
  update();
})();
"""


def _html(entries, out: Path, title: str, keys, columns: int | None, sheets: list[Path], problems: _Problems) -> str:
    esc = html.escape
    ranks = _ranks(entries)
    cards = "\n".join(_card(i, e, keys, ranks, out, problems) for i, e in enumerate(entries))
    categories = sorted({c for e in entries for c in e.categories}, key=lambda c: (c.casefold(), c))
    cat_opts = _options([("", "all")] + [(c, c + (" (category)" if c == "all" else "")) for c in categories])
    sort_opts = _options([("#", "given order"), ("name", "name"), ("category", "category")] + [(k, k) for k in keys])
    cols = "repeat(auto-fill,minmax(560px,1fr))" if columns is None else f"repeat({columns},minmax(0,1fr))"
    links = " ".join(f'<a href="{esc(_url(p, out), quote=True)}">{esc(p.name)}</a>' for p in sheets)
    note = ""
    if problems.lines:
        items = "".join(f"<li>{esc(line)}</li>" for line in problems.lines)
        note = f'<div class="problems"><strong>{len(problems.lines)} problem(s):</strong><ul>{items}</ul></div>'
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>:root{{--thumb:200px;--cols:{cols}}}{_STYLE}</style>
</head>
<body>
<h1>{esc(title)}</h1>
<p>{len(entries)} entries: blurry | deblurred | estimated kernel; click an image for full size. Contact sheet: {links}</p>
{note}
<div class="controls">
<label>category <select id="cat">{cat_opts}</select></label>
<label>sort by <select id="sort">{sort_opts}</select></label>
<button id="dir" type="button">ascending</button>
<span id="count"></span>
</div>
<main id="cards">
{cards}
</main>
<script>{_SCRIPT}</script>
</body>
</html>
"""


# ----------------------------------------------------------------------------- entry point
def write_gallery(entries: Iterable[GalleryEntry], out_dir: str | os.PathLike, title: str,
                  columns: int | None = None, *, score_keys: Sequence[str] | None = None, cell: int = CELL,
                  max_rows: int = MAX_ROWS, max_height: int = MAX_HEIGHT) -> dict[str, Any]:
    """Write ``gallery.html`` and the contact sheet(s) of ``entries`` into ``out_dir``.

    ``columns``: cards per row on the page (None: as many as fit the window). ``score_keys``:
    the scores shown, in order (None: every key of any entry, first seen first; entries without
    one show an em dash). ``cell``: side of a contact-sheet cell in px; ``max_rows``: entries
    drawn on the sheet(s); ``max_height``: the tallest sheet in px before it is split.

    Returns ``{"html": Path, "contact_sheets": [Path, ...], "problems": [str, ...]}``. Bad
    arguments raise :class:`InvalidInputError`; unreadable pictures are only reported.
    """
    entries, out, keys = _check_args(entries, out_dir, title, columns, score_keys, cell, max_rows, max_height)
    problems = _Problems(entries)
    sheets = _write_sheets(entries, out, title, keys, cell, max_rows, max_height, problems)
    for i in range(max_rows, len(entries)):
        _probe(i, entries[i], problems)
    text = _html(entries, out, title, keys, columns, sheets, problems)
    page = atomic_write(out / HTML_NAME, lambda fh: fh.write(text.encode("utf-8")), "gallery page")
    return {"html": page, "contact_sheets": sheets, "problems": list(problems.lines)}
