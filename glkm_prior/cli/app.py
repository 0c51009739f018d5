"""The ``glkm`` parser and entry point: one subparser per subcommand module; errors print one line
``glkm: error: ...`` and exit with status 2."""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..errors import GLKMError
from . import deblur, evaluate, plugin_list, train


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="glkm",
        description="GLKM: a learned blur-kernel prior for blind motion deblurring.",
    )
    parser.add_argument("--version", action="version", version=f"glkm_prior {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    plugin_list.add_parser(sub)
    deblur.add_parser(sub)
    train.add_parser(sub)
    evaluate.add_parser(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except GLKMError as exc:
        print(f"glkm: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("glkm: interrupted", file=sys.stderr)
        return 130
