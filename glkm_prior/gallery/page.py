"""The gallery's HTML page: one static file (no server, no external JS/CSS), a card per
entry, a category filter and a sort done by inline JS on ``data-`` attributes."""

from __future__ import annotations

import html
import json
import math
import os
import re
from pathlib import Path
from typing import Iterable
from urllib.parse import quote

from PIL import Image

from ..atomic import atomic_write
from .entry import ROLES, GalleryEntry, Problems, format_score
from .pictures import kernel_array, open_image

ASSET_DIR = "gallery_files"  # viewing PNGs of .npy kernels that have no sibling .png


def _url(path: Path, out: Path) -> str:
    """A URL for ``path`` relative to ``out`` (file:// URI when no relative path exists)."""
    target = os.path.abspath(path)
    try:
        rel = os.path.relpath(target, os.path.abspath(out))
    except ValueError:  # another drive (Windows)
        return Path(target).as_uri()
    return quote(rel.replace(os.sep, "/"), safe="/")


def probe(i: int, entry: GalleryEntry, problems: Problems) -> None:
    """Find missing / unreadable files cheaply (headers only), for entries not drawn on a sheet."""
    for role in ROLES:
        path = getattr(entry, role)
        if path is None or problems.word(i, role) is not None:
            continue
        try:
            if role == "kernel" and path.suffix.lower() == ".npy":
                kernel_array(path)
            else:
                with open_image(path) as img:
                    img.size  # noqa: B018 -- the header is parsed by open()
        except Exception as exc:  # noqa: BLE001
            problems.add(i, role, path, exc)


def _kernel_src(i: int, entry: GalleryEntry, out: Path, problems: Problems) -> Path | None:
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
    image = Image.fromarray(kernel_array(path))
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


def _card(i: int, entry: GalleryEntry, keys, ranks, out: Path, problems: Problems) -> str:
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


def html_page(entries, out: Path, title: str, keys, columns: int | None, sheets: list[Path], problems: Problems) -> str:
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
