"""Atomic file writes: no reader ever sees a partial file, and a failure leaves nothing behind."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import BinaryIO, Callable

from .errors import GLKMError


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object], what: str = "file") -> Path:
    """Call ``write(fileobj)`` on a temporary file beside ``path``, then rename it onto ``path``.

    The temporary file gets ordinary permissions (0o666 & ~umask). OS errors become
    :class:`GLKMError` naming ``path``; the parent folder is created if needed.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as exc:
        raise GLKMError(f"cannot write {what} {path}: {exc}") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise GLKMError(f"cannot write {what} {path}: {exc}") from exc
        raise
    return path
