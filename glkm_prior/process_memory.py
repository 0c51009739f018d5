"""The process's peak memory, for the reports of ``glkm deblur`` and the benchmark rows."""

from __future__ import annotations

import sys


def peak_rss_mb() -> float | None:
    """The process's peak RSS (ru_maxrss) in MB; None where ``resource`` is unavailable."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0
