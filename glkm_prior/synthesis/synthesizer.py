"""The user-facing synthesizer: :class:`KernelSynthesizer` (chunked, seeded), the
:func:`synthesize_kernels` wrapper, the size bounds and :func:`benchmark`. See
:mod:`glkm_prior.synthesis` for the model and the conventions of the returned kernels."""

from __future__ import annotations

import operator
import time

import numpy as np

from glkm_prior.errors import InvalidInputError, KernelSizeError

from .families import KernelFamily, resolve_family
from .psf import render_chunk

__all__ = ["MAX_KERNEL_SIZE", "MIN_KERNEL_SIZE", "KernelSynthesizer", "benchmark", "synthesize_kernels"]

MIN_KERNEL_SIZE = 11
MAX_KERNEL_SIZE = 75

#: Kernels per chunk, bounded by soft budgets on a chunk's memory.  1024 measured
#: fastest (the bincount accumulator stays in cache; 4096 is ~2x slower at K = 75)
#: and keeps a chunk's working memory near 100 MiB.
_CHUNK_MAX = 1024
_CHUNK_MIN = 64
_CHUNK_TRAJ_BUDGET = 2**20  # kernels * trajectory steps
_CHUNK_PIXEL_BUDGET = 2**22  # kernels * K * K (float64 accumulator: 32 MiB)


def _check_size(size) -> int:
    msg = f"kernel size must be an odd int in [{MIN_KERNEL_SIZE}, {MAX_KERNEL_SIZE}], got {size!r}"
    if isinstance(size, bool):
        raise KernelSizeError(msg)
    try:
        k = operator.index(size)
    except TypeError:
        raise KernelSizeError(msg) from None
    if not MIN_KERNEL_SIZE <= k <= MAX_KERNEL_SIZE or k % 2 == 0:
        raise KernelSizeError(msg)
    return k


def _check_count(n) -> int:
    if isinstance(n, bool):
        raise InvalidInputError(f"number of kernels must be an int >= 0, got {n!r}")
    try:
        n = operator.index(n)
    except TypeError:
        raise InvalidInputError(f"number of kernels must be an int >= 0, got {n!r}") from None
    if n < 0:
        raise InvalidInputError(f"number of kernels must be >= 0, got {n}")
    return n


def _chunk_size(fam: KernelFamily, k: int) -> int:
    c = min(_CHUNK_MAX, _CHUNK_TRAJ_BUDGET // fam.n_steps, _CHUNK_PIXEL_BUDGET // (k * k))
    return max(_CHUNK_MIN, c)


class KernelSynthesizer:
    """Draws random camera-shake kernels of one :class:`KernelFamily`.

    ``family``: a key of :data:`FAMILIES` (``"levin"``, ``"lai"``, ``"mixed"``) or a
    :class:`KernelFamily`.  ``seed``: seed of the synthesizer's own generator
    (``None``: fresh OS entropy).
    """

    def __init__(self, family: str | KernelFamily = "levin", seed: int | None = 0):
        self.family = resolve_family(family)
        self._rng = np.random.default_rng(seed)

    def __repr__(self) -> str:
        return f"KernelSynthesizer(family={self.family.name!r})"

    def sample(self, n: int, size: int, *, seed: int | None = None) -> np.ndarray:
        """Return ``n`` kernels as a float32 array of shape ``(n, size, size)``.

        ``size`` must be odd and in ``[11, 75]`` (:class:`KernelSizeError` otherwise).
        ``seed=None`` continues the synthesizer's generator; an int makes this call
        reproducible on its own (the synthesizer's generator is then left untouched).
        """
        k = _check_size(size)
        n = _check_count(n)
        rng = self._rng if seed is None else np.random.default_rng(seed)
        out = np.empty((n, k, k), dtype=np.float32)
        chunk = _chunk_size(self.family, k)
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            out[start:stop] = render_chunk(rng, self.family, stop - start, k)
        return out


def synthesize_kernels(n: int, size: int, family: str = "levin", seed: int = 0) -> np.ndarray:
    """Convenience wrapper: ``KernelSynthesizer(family, seed).sample(n, size)``."""
    return KernelSynthesizer(family, seed=seed).sample(n, size)


def benchmark(n: int = 10000, size: int = 31, family: str = "levin", seed: int = 0) -> float:
    """Synthesize ``n`` kernels of side ``size`` and return the rate in kernels per second."""
    synth = KernelSynthesizer(family, seed=seed)
    synth.sample(min(n, 64), size)  # warm-up
    t0 = time.perf_counter()
    synth.sample(n, size)
    dt = time.perf_counter() - t0
    return n / dt if dt > 0 else float("inf")

