"""The contact sheet(s) of a gallery: a header, then per entry a caption strip above three
``cell`` x ``cell`` cells (blurry | deblurred | kernel); split into numbered sheets when taller
than ``max_height`` px."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from PIL import Image, ImageDraw

from ..atomic import atomic_write
from ..imageio import default_font
from .entry import HTML_NAME, ROLES, SHEET_NAME, GalleryEntry, Problems, format_score
from .pictures import kernel_picture, photo_picture

# Contact-sheet layout (px). Width = 2 * MARGIN + 3 * cell + 2 * GAP;
# height = HEADER_H + rows * (CAPTION_H + cell + ROW_GAP) + MARGIN.
MARGIN = 8
GAP = 8
LINE_H = 16
HEADER_H = MARGIN + 2 * LINE_H + 4
CAPTION_H = 3 * LINE_H + 4
ROW_GAP = 8
CELL = 256

BACKGROUND = (24, 24, 24)
LETTERBOX = (48, 48, 48)  # dark grey around a fitted picture
PLACEHOLDER = (72, 24, 24)  # cell of a missing / unreadable file
TEXT = (230, 230, 230)
DIM_TEXT = (160, 160, 160)

_SHEET_FILE = re.compile(rf"^{SHEET_NAME}(_\d+)?\.png$")


def sheet_size(rows: int, cell: int = CELL) -> tuple[int, int]:
    """(width, height) in px of a contact sheet with ``rows`` rows of ``cell`` px cells."""
    return 2 * MARGIN + 3 * cell + 2 * GAP, HEADER_H + rows * (CAPTION_H + cell + ROW_GAP) + MARGIN


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


def _cell_image(i: int, role: str, entry: GalleryEntry, cell: int, problems: Problems, font) -> Image.Image:
    path = getattr(entry, role)
    if path is None:
        return _placeholder(cell, "no kernel", font)
    if problems.word(i, role) is None:
        try:
            return kernel_picture(path, cell) if role == "kernel" else photo_picture(path, cell)
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


def write_sheets(entries, out: Path, title: str, keys, cell: int, max_rows: int, max_height: int,
                  problems: Problems) -> list[Path]:
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
