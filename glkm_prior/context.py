"""One run's surroundings, passed as one object (``context=``) instead of the separate keywords
``pm``, ``weights``, ``revision``, ``local_files_only`` and ``warn``: the API
(:func:`glkm_prior.api.deblur`), the benchmark runner and the CLI build one
:class:`RunContext`; methods, their loops and helpers read what they need from it.

    from glkm_prior.context import RunContext
    ctx = RunContext(weights="weights/k75", warn=lambda m: None)   # the rest: the defaults
    ctx.plugin_manager()   # ctx.pm, else the process-wide manager (plugins.get_plugin_manager)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class RunContext:
    """``pm``: the plugin manager (None: the process-wide one); ``weights``, ``revision``,
    ``local_files_only``: where the learned prior comes from (a folder, a bundle or a Hub repo
    id; None: the bundled ``weights/``) and how it is fetched; ``warn``: where warnings go (one
    line each, e.g. 'no trained prior')."""

    pm: Any = None
    weights: Any = None
    revision: str | None = None
    local_files_only: bool | None = None
    warn: Callable[[str], Any] = print

    def plugin_manager(self):
        """``pm``, else :func:`glkm_prior.plugins.get_plugin_manager` (plugins loaded once)."""
        if self.pm is not None:
            return self.pm
        from .plugins import get_plugin_manager

        return get_plugin_manager()

    def prior_source(self) -> dict:
        """``KernelPrior.from_pretrained``'s source keywords: ``{"revision": ...}`` plus
        ``local_files_only`` when set (the source itself is :attr:`weights`)."""
        found = {"revision": self.revision}
        if self.local_files_only is not None:
            found["local_files_only"] = self.local_files_only
        return found

    def with_(self, **changes) -> RunContext:
        """A copy with ``changes`` (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)


def as_context(context: RunContext | None = None) -> RunContext:
    """``context``, or the default :class:`RunContext` for None."""
    if context is None:
        return RunContext()
    if not isinstance(context, RunContext):
        from .errors import InvalidInputError

        raise InvalidInputError(f"context must be a RunContext, got {type(context).__name__}")
    return context
