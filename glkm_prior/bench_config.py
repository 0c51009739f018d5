"""Configuration of one benchmark run (:func:`glkm_prior.bench.run_benchmark`): the options
of ``glkm eval`` as a dataclass, checked by :meth:`BenchConfig.validate`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import InvalidInputError

ORIENTATIONS = ("stored", "auto")


@dataclass
class BenchConfig:
    """One benchmark run (the options and outputs: :mod:`glkm_prior.bench`)."""

    dataset: str
    method: str
    out: str
    kernel_branch: str = "glkm"
    seeds: tuple = (0,)
    iters: int | None = None
    limit: int | None = None
    images: tuple | None = None   # only these image names (dataset order kept), before ``limit``
    weights: str | None = None
    revision: str | None = None
    grid_rows: int = 16
    trace_every: int = 1
    checkpoint_every: int = 100   # iterative methods that take ``checkpoint``: OUT/checkpoints/ (0: off)
    true_kernel_orientation: str = "auto"
    kernel_size: int | str | None = None  # None: the dataset's; "auto": estimated per image; or K
    options: dict = field(default_factory=dict)

    def validate(self) -> "BenchConfig":
        if self.limit is not None and (isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit <= 0):
            raise InvalidInputError(f"--limit must be a positive integer, got {self.limit!r}")
        if self.images is not None:
            if isinstance(self.images, str):
                self.images = tuple(n.strip() for n in self.images.split(","))
            self.images = tuple(self.images)
            if not self.images or not all(isinstance(n, str) and n for n in self.images):
                raise InvalidInputError(f"--images must be comma-separated image names, got {self.images!r}")
        if self.iters is not None and (isinstance(self.iters, bool) or not isinstance(self.iters, int) or self.iters < 0):
            raise InvalidInputError(f"--iters must be an integer >= 0, got {self.iters!r}")
        self.seeds = parse_seeds(self.seeds)
        if not isinstance(self.grid_rows, int) or self.grid_rows < 1:
            raise InvalidInputError(f"grid_rows must be a positive integer, got {self.grid_rows!r}")
        if not isinstance(self.trace_every, int) or self.trace_every < 1:
            raise InvalidInputError(f"trace_every must be a positive integer, got {self.trace_every!r}")
        if isinstance(self.checkpoint_every, bool) or not isinstance(self.checkpoint_every, int) or self.checkpoint_every < 0:
            raise InvalidInputError(f"--checkpoint-every must be an integer >= 0, got {self.checkpoint_every!r}")
        if not self.out:
            raise InvalidInputError("an output folder (--out) is required")
        if self.kernel_size is not None and self.kernel_size != "auto":
            from .prior import check_kernel_size

            check_kernel_size(self.kernel_size)
        if self.true_kernel_orientation not in ORIENTATIONS:
            raise InvalidInputError(f"true-kernel orientation must be one of {', '.join(ORIENTATIONS)}, "
                                    f"got {self.true_kernel_orientation!r}")
        return self


def parse_seeds(seeds) -> tuple:
    """``"0,1,2"`` (or an iterable of ints) -> ``(0, 1, 2)``; distinct integers >= 0."""
    if isinstance(seeds, str):
        parts = [p.strip() for p in seeds.split(",")]
        if not seeds.strip() or any(not p for p in parts):
            raise InvalidInputError(f"--seeds must be a comma-separated list of integers, got {seeds!r}")
        try:
            values = [int(p) for p in parts]
        except ValueError:
            raise InvalidInputError(f"--seeds must be a comma-separated list of integers, got {seeds!r}") from None
    else:
        try:
            values = list(seeds)
        except TypeError:
            raise InvalidInputError(f"seeds must be a list of integers, got {seeds!r}") from None
        if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in values):
            raise InvalidInputError(f"seeds must be integers, got {seeds!r}")
        values = [int(v) for v in values]
    if not values:
        raise InvalidInputError("at least one seed is needed")
    if any(v < 0 for v in values):
        raise InvalidInputError(f"seeds must be >= 0, got {values}")
    if len(set(values)) != len(values):
        raise InvalidInputError(f"seeds must be distinct, got {values}")
    return tuple(values)
