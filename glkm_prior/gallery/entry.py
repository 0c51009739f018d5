"""A gallery's entries (one photo: blurry, result, kernel, categories, scores), the score
format, the names of the files a gallery writes, and the record of unreadable files."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path

from ..errors import InvalidInputError

HTML_NAME = "gallery.html"
SHEET_NAME = "contact_sheet"  # contact_sheet.png, or contact_sheet_1.png, contact_sheet_2.png, ...
ROLES = ("blurry", "result", "kernel")


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


class Problems:
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
