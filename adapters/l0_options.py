"""``l0``'s options dataclass (:mod:`glkm_prior.options`), built from the defaults the method
uses (:data:`glkm_prior.estimation.L0_DEFAULTS` less ``iters``, and ``glkm_adapters.l0``'s
``MAX_SIDE``, ``REFINE`` and ``SELECT``), so they keep one source (an option added to those dicts
is an option here); ``refine`` and ``select`` are choices, ``candidates`` a list of option dicts."""

from __future__ import annotations

from typing import Literal

from glkm_prior.errors import InvalidInputError
from glkm_prior.estimation import L0_DEFAULTS
from glkm_prior.options import options_dataclass


def _check_l0(self) -> None:
    if self.select == "prior" and self.refine != "none":
        raise InvalidInputError("select='prior' and refine cannot be combined")
    if self.max_side < 1:
        raise InvalidInputError(f"max_side must be > 0, got {self.max_side}")


def l0_options(max_side: int, refine: dict, select: dict) -> type:
    """The ``L0Options`` dataclass of ``l0`` (module docstring), from its crop side and its
    ``REFINE`` and ``SELECT`` defaults."""
    return options_dataclass(
        "L0Options", L0_DEFAULTS, {"max_side": max_side}, refine, select, exclude=("iters",), check=_check_l0,
        typed={"refine": Literal["none", "project", "glkm", "levels"], "select": Literal["none", "prior"],
               "candidates": tuple[dict, ...]},
        extra=(("nonblind", dict | None, None), ("deconvolve", bool, True)), module="glkm_adapters.l0")
