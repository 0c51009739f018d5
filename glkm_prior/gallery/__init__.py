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

Modules: :mod:`.entry` (entries, score format), :mod:`.pictures` (reading pictures),
:mod:`.contact_sheet` (the PNG sheets and their layout), :mod:`.page` (the HTML page).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..atomic import atomic_write
from ..errors import InvalidInputError
from .contact_sheet import CELL, sheet_size, write_sheets
from .entry import HTML_NAME, SHEET_NAME, GalleryEntry, Problems, format_score
from .page import html_page, probe

__all__ = ["GalleryEntry", "write_gallery", "format_score", "sheet_size", "HTML_NAME", "SHEET_NAME"]

MAX_ROWS = 100
MAX_HEIGHT = 32000


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
    problems = Problems(entries)
    sheets = write_sheets(entries, out, title, keys, cell, max_rows, max_height, problems)
    for i in range(max_rows, len(entries)):
        probe(i, entries[i], problems)
    text = html_page(entries, out, title, keys, columns, sheets, problems)
    page = atomic_write(out / HTML_NAME, lambda fh: fh.write(text.encode("utf-8")), "gallery page")
    return {"html": page, "contact_sheets": sheets, "problems": list(problems.lines)}


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
