"""Kernel families: the parameter ranges of the synthetic camera shakes (:class:`KernelFamily`),
the bundled :data:`FAMILIES` and :func:`resolve_family`. See :mod:`glkm_prior.synthesis`."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from glkm_prior.errors import InvalidInputError

__all__ = ["FAMILIES", "KernelFamily", "Range", "resolve_family"]

Range = tuple[float, float]


@dataclass(frozen=True)
class KernelFamily:
    """Parameters of one family of synthetic camera-shake kernels.

    Every ``(lo, hi)`` range is sampled uniformly and independently per kernel.
    """

    name: str
    #: Smallest blur extent (side of the support's bounding square), px.
    min_extent: int
    #: Largest blur extent, px.
    max_extent: int
    #: Time steps of the simulated trajectory (before the >= 2 samples/px re-sampling).
    n_steps: int = 192
    #: Strength of the random steering force: standard deviation of the path's
    #: curvature, in radians per unit of path length (0: straight lines).
    anxiety: Range = (1.0, 6.0)
    #: Inertia: correlation length of the steering force, as a fraction of the path
    #: length.  Long = smooth arcs of nearly constant curvature; short = wiggly.
    inertia: Range = (0.15, 0.5)
    #: Pull back towards the starting point (curvature per unit of distance from it,
    #: in path-length units); makes the camera come back, giving hooks and loops.
    centripetal: Range = (0.0, 3.0)
    #: Expected number of abrupt shakes (impulsive direction changes) per trajectory;
    #: the per-step probability is ``shakes / n_steps``.
    shakes: Range = (0.0, 1.5)
    #: Magnitude of an abrupt shake's direction change, degrees (sign is random).
    shake_angle: Range = (45.0, 150.0)
    #: Exposure fraction T: only the first T of the trajectory is recorded.
    exposure: Range = (0.5, 1.0)
    #: Standard deviation of the smooth random log-speed modulation.
    speed_jitter: float = 0.35
    #: Exponent of the slow-down at turns, ``speed ~ (1 + curvature / turn_scale) **
    #: -turn_slowdown`` (1/3 is the two-thirds power law of human hand movement).
    turn_slowdown: float = 0.5
    #: Curvature (radians per unit path length) at which turns start to slow the camera.
    turn_scale: float = 2.0 * math.pi
    #: Width of the window, as a fraction of the path, over which curvature is averaged
    #: for the slow-down (the camera brakes before and accelerates after a kink).
    turn_window: float = 0.03
    #: Fraction of nearly linear kernels (tiny anxiety, no pull, no shakes).
    linear_fraction: float = 0.05

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.name, str) or not self.name:
            problems.append("name must be a non-empty string")
        for f in ("min_extent", "max_extent", "n_steps"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                problems.append(f"{f} must be an int, got {v!r}")
        if not problems:
            if not 2 <= self.min_extent <= self.max_extent:
                problems.append(
                    f"need 2 <= min_extent <= max_extent, got {self.min_extent}, {self.max_extent}"
                )
            if self.n_steps < 16:
                problems.append(f"n_steps must be >= 16, got {self.n_steps}")
        for f in ("anxiety", "inertia", "centripetal", "shakes", "shake_angle", "exposure"):
            v = getattr(self, f)
            try:
                lo, hi = (float(a) for a in v)
            except (TypeError, ValueError):
                problems.append(f"{f} must be a (lo, hi) pair, got {v!r}")
                continue
            if not (math.isfinite(lo) and math.isfinite(hi) and 0.0 <= lo <= hi):
                problems.append(f"{f} must satisfy 0 <= lo <= hi, got {v!r}")
        if not problems:
            if self.inertia[0] <= 0:
                problems.append(f"inertia must be > 0, got {self.inertia!r}")
            if not 0.0 < self.exposure[0] <= self.exposure[1] <= 1.0:
                problems.append(f"exposure must lie in (0, 1], got {self.exposure!r}")
        for f in ("speed_jitter", "turn_slowdown", "turn_scale", "turn_window", "linear_fraction"):
            v = getattr(self, f)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                problems.append(f"{f} must be a finite number >= 0, got {v!r}")
        if not problems:
            if self.turn_scale <= 0:
                problems.append("turn_scale must be > 0")
            if self.linear_fraction > 1:
                problems.append("linear_fraction must be <= 1")
        if problems:
            raise InvalidInputError(f"invalid KernelFamily {self.name!r}: " + "; ".join(problems))


FAMILIES: dict[str, KernelFamily] = {
    # Small shakes like Levin et al. 2009 (13..27 px): smooth curved strokes, a hook or
    # a kink now and then, rarely a loop.
    "levin": KernelFamily(
        name="levin",
        min_extent=11,
        max_extent=27,
        n_steps=192,
        anxiety=(1.0, 6.0),
        inertia=(0.15, 0.5),
        centripetal=(0.0, 3.0),
        shakes=(0.0, 1.5),
        shake_angle=(45.0, 150.0),
        exposure=(0.5, 1.0),
        speed_jitter=0.35,
        turn_slowdown=0.5,
        linear_fraction=0.05,
    ),
    # Large shakes like Lai et al. 2016 (31..75 px): longer, more erratic paths with
    # several direction changes and loops.
    "lai": KernelFamily(
        name="lai",
        min_extent=31,
        max_extent=75,
        n_steps=384,
        anxiety=(3.0, 14.0),
        inertia=(0.05, 0.25),
        centripetal=(1.0, 8.0),
        shakes=(0.5, 4.0),
        shake_angle=(60.0, 170.0),
        exposure=(0.5, 1.0),
        speed_jitter=0.45,
        turn_slowdown=0.5,
        linear_fraction=0.02,
    ),
    # Both regimes: every extent 11..75 with the union of the two parameter ranges.
    "mixed": KernelFamily(
        name="mixed",
        min_extent=11,
        max_extent=75,
        n_steps=320,
        anxiety=(0.5, 14.0),
        inertia=(0.05, 0.5),
        centripetal=(0.0, 8.0),
        shakes=(0.0, 4.0),
        shake_angle=(45.0, 170.0),
        exposure=(0.5, 1.0),
        speed_jitter=0.4,
        turn_slowdown=0.5,
        linear_fraction=0.04,
    ),
}


def resolve_family(family) -> KernelFamily:
    """``family`` as a :class:`KernelFamily`: a key of :data:`FAMILIES` or a family itself."""
    if isinstance(family, KernelFamily):
        return family
    if isinstance(family, str):
        try:
            return FAMILIES[family]
        except KeyError:
            raise InvalidInputError(
                f"unknown kernel family {family!r}; known: {', '.join(sorted(FAMILIES))}"
            ) from None
    raise InvalidInputError(f"family must be a name or a KernelFamily, got {type(family).__name__}")

