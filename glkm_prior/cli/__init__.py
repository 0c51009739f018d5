"""The ``glkm`` command line: ``glkm plugins``, ``glkm deblur``, ``glkm train``, ``glkm eval``.
Errors print one line ``glkm: error: ...`` and exit with status 2.

One module per subcommand (``plugin_list``, ``deblur``, ``train``, ``evaluate``: each has its
``add_parser(sub)`` and its ``cmd_*`` functions); ``common`` holds the shared argument types and
option parsing; ``app`` the parser and :func:`main`. The command line sits on top: nothing in the
library imports this package."""

from __future__ import annotations

# load_prior and estimate_kernel_size were importable from here before glkm_prior.api held them
from ..api import estimate_kernel_size, load_prior
from .app import build_parser, main

__all__ = ["main", "build_parser", "load_prior", "estimate_kernel_size"]
