"""The ``glkm`` command line: ``glkm plugins``, ``glkm deblur``, ``glkm train``, ``glkm eval``.
Errors print one line ``glkm: error: ...`` and exit with status 2.

One module per subcommand (``plugin_list``, ``deblur``, ``train``, ``evaluate``: each has its
``add_parser(sub)`` and its ``cmd_*`` functions); ``common`` holds the shared argument types and
option parsing. The command line sits on top: nothing in the library imports this package."""

from __future__ import annotations

import argparse
import sys

from .. import __version__
# load_prior and estimate_kernel_size were importable from here before glkm_prior.api held them
from ..api import estimate_kernel_size, load_prior
from ..errors import GLKMError
from . import deblur, evaluate, plugin_list, train

__all__ = ["main", "build_parser", "load_prior", "estimate_kernel_size"]


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
