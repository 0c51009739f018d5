"""Argument types and option parsing shared by the ``glkm`` subcommands, and the thread setting."""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from ..errors import InvalidInputError

#: Default intra-op threads: one. Most of a kernel estimate is many small FFTs and Adam steps,
#: which gain little from a second thread, and with two threads on two cores one busy process
#: elsewhere slows a run 10x (the threads spin-wait for each other); see RESULTS.md, "Threads".
DEFAULT_THREADS = 1


def _kernel_size_arg(text: str):
    if text == "auto":
        return "auto"
    try:
        size = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"kernel size must be 'auto' or an odd integer, got {text!r}") from None
    if size % 2 == 0:
        raise argparse.ArgumentTypeError(f"kernel size must be odd (the kernel has a centre pixel), got {size}")
    return size


def _threads_arg(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"threads must be an integer >= 1, got {text!r}")
    return n


def set_threads(n: int | None) -> None:
    """Intra-op threads of torch for this process (``None``: :data:`DEFAULT_THREADS`)."""
    torch.set_num_threads(DEFAULT_THREADS if n is None else int(n))


def _add_threads_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=_threads_arg, default=None,
                        help=f"intra-op CPU threads (default {DEFAULT_THREADS}: robust when other programs share the "
                        "CPU; 2 is faster for dip and vdip-* on an otherwise idle machine)")


def _add_weights_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", default=None, help="prior or bundle folder, or Hub repo id (default: the bundled weights/)")
    parser.add_argument("--revision", default=None, help="Hub revision (commit hash) when --weights is a repo id")


def _parse_number(text, name: str, parse, kind: str):
    """``parse(text)``; a text it cannot read raises naming the option and the ``kind`` wanted."""
    try:
        return parse(text)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be {kind}, got {text!r}") from None


def _int_option(text, name: str, minimum: int | None = None):
    if text is None:
        return None
    value = _parse_number(text, name, int, "an integer")
    if minimum is not None and value < minimum:
        raise InvalidInputError(f"{name} must be >= {minimum}, got {value}")
    return value


def _float_option(text, name: str, minimum: float | None = None, strict: bool = False):
    if text is None:
        return None
    value = _parse_number(text, name, float, "a number")
    if not np.isfinite(value) or (minimum is not None and (value <= minimum if strict else value < minimum)):
        bound = "" if minimum is None else f" {'>' if strict else '>='} {minimum}"
        raise InvalidInputError(f"{name} must be a finite number{bound}, got {text!r}")
    return value


def parse_options(items) -> dict:
    """``--option KEY=VALUE`` flags -> dict; VALUE is read as JSON when it parses, else as text."""
    options = {}
    for item in items or ():
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(f"--option must be KEY=VALUE, got {item!r}")
        try:
            options[key.strip()] = json.loads(text)
        except ValueError:
            options[key.strip()] = text
    return options


def _range_option(text, name: str):
    """'LO,HI' -> (LO, HI) floats, or None."""
    if text is None:
        return None
    parts = str(text).split(",")
    if len(parts) != 2:
        raise InvalidInputError(f"{name} must be LO,HI (two numbers), got {text!r}")
    return tuple(_float_option(v, name) for v in parts)
