"""Random camera-shake blur kernels from simulated camera trajectories.

The model follows Boracchi & Foi, "Modeling the performance of image restoration from
motion blur" (IEEE TIP 2012), i.e. the model behind their ``createTrajectory.m`` /
``createPSFs.m``, vectorised over a batch of kernels:

1. **Trajectory.**  A 2-D random walk of ``n_steps`` steps whose velocity has inertia.
   With ``u`` the unit heading, ``x`` the position (the start is the origin, the
   nominal path length is 1, each step is ``1 / n_steps`` long) and ``f`` a complex
   Gaussian steering force that is itself correlated in time (an AR(1) process whose
   correlation length is the family's ``inertia``), every step does::

       f <- rho * f + sqrt(1 - rho**2) * N(0, 1)         # smooth, random steering
       u <- normalise(u + (anxiety * f - centripetal * x) / n_steps)
       u <- u * exp(i * shake_angle)   with probability p  # abrupt shake (a kink)
       x <- x + u / n_steps

   The ``-centripetal * x`` term pulls the camera back towards where it started, the
   abrupt shakes are impulsive direction changes (``p = shakes / n_steps``, so
   ``shakes`` is the expected number of kinks per trajectory).
2. **Speed.**  The camera does not move at constant speed: it slows down where the
   path turns (a two-thirds-power-law-like factor ``(1 + curvature / turn_scale) **
   -turn_slowdown`` with the curvature averaged over a short window, so it also brakes
   before and accelerates after a kink) and its speed drifts smoothly (log-speed is a
   random smooth function with standard deviation ``speed_jitter``).  Positions are
   sampled *uniformly in time*, so slow parts dwell longer and come out brighter.
3. **Exposure.**  Only the first fraction ``T`` (drawn from ``exposure``) of the
   trajectory is recorded, as in ``createPSFs.m``.
4. **PSF.**  The recorded part is scaled so that its extent (see below) equals the
   extent drawn for that kernel, re-sampled by linear interpolation to at least
   ``2`` samples per pixel of path length (so the curve is continuous), shifted so
   that the weighted centroid of the samples sits on the centre pixel, and splatted
   with bilinear weights into the 4 neighbouring pixels (no other smoothing).

Conventions of the returned kernels
-----------------------------------
* ``float32`` numpy array of shape ``(n, K, K)``, ``K`` odd, ``11 <= K <= 75``.
* Non-negative, each kernel sums to 1 (float32 sum within ``1e-5``).
* Centred: the intensity centroid lies at pixel ``(K // 2, K // 2)`` (row, column).
  This is exact up to float rounding, because the trajectory samples are shifted by
  their own weighted centroid *before* splatting and bilinear splatting preserves the
  centroid; nothing is resampled afterwards.
* Nothing is cut by the border: the outermost 1-pixel ring of every kernel is zero.
* **Extent** = the side, in pixels, of the square that holds the kernel's support,
  i.e. ``max(width, height) + 1`` of the continuous trajectory's bounding box.  It is
  drawn uniformly per kernel from ``[min_extent, min(max_extent, K - 2)]`` (both ends
  clamped to ``K - 2`` when ``min_extent > K - 2``).  Because the kernel is centred on
  its centroid rather than on its bounding box, a trajectory whose centroid is far
  from the middle of its box would poke into the border at that extent; such a
  trajectory is shrunk about its centroid until it fits (so the realised extent is
  never larger than the drawn one, at least about ``min(drawn, K // 2)``, and equal to
  it whenever ``K >= 2 * extent + 1``).

Reproducibility: ``KernelSynthesizer(seed=s).sample(n, K)`` and ``sample(n, K,
seed=s)`` return the same array for the same ``(family, n, K, s)`` and numpy
version (the first kernels of a larger ``n`` are not the same kernels);
``seed=None`` in ``sample`` continues the synthesizer's own
:class:`numpy.random.Generator`.

Speed: trajectories of a chunk (up to 1024 kernels) are simulated together with a
Python loop over time steps only, and splatted with one ``np.bincount`` over the
chunk; see :func:`benchmark`.
"""

from __future__ import annotations

import math
import operator
import time
from dataclasses import dataclass

import numpy as np

from glkm_prior.errors import InvalidInputError, KernelSizeError

__all__ = [
    "KernelFamily",
    "FAMILIES",
    "KernelSynthesizer",
    "synthesize_kernels",
    "camera_trajectory",
    "benchmark",
    "MIN_KERNEL_SIZE",
    "MAX_KERNEL_SIZE",
]

MIN_KERNEL_SIZE = 11
MAX_KERNEL_SIZE = 75

#: Largest distance, in pixels, between consecutive splatted samples (>= 2 per px).
_MAX_SAMPLE_SPACING = 0.5
#: Upper bound of the re-sampling factor (a safety net; typical factors are 1-3).
_MAX_UPSAMPLE = 64
#: Kernels per chunk, bounded by soft budgets on a chunk's memory.  1024 measured
#: fastest (the bincount accumulator stays in cache; 4096 is ~2x slower at K = 75)
#: and keeps a chunk's working memory near 100 MiB.
_CHUNK_MAX = 1024
_CHUNK_MIN = 64
_CHUNK_TRAJ_BUDGET = 2**20  # kernels * trajectory steps
_CHUNK_PIXEL_BUDGET = 2**22  # kernels * K * K (float64 accumulator: 32 MiB)


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


def _resolve_family(family) -> KernelFamily:
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


def _uniform(rng: np.random.Generator, rng_pair, n: int) -> np.ndarray:
    lo, hi = float(rng_pair[0]), float(rng_pair[1])
    return lo + (hi - lo) * rng.random(n)


def _box_mean(a: np.ndarray, half: int) -> np.ndarray:
    """Centred moving average along axis 1 with window ``2 * half + 1`` (edges shrink)."""
    if half <= 0:
        return a
    b, n = a.shape
    c = np.zeros((b, n + 1), dtype=a.dtype)
    np.cumsum(a, axis=1, out=c[:, 1:])
    idx = np.arange(n)
    lo = np.clip(idx - half, 0, n)
    hi = np.clip(idx + half + 1, 0, n)
    return (c[:, hi] - c[:, lo]) / (hi - lo)


def _speed_basis(n: int, n_freq: int = 6) -> np.ndarray:
    """(2 * n_freq, n) cosine/sine basis, 0.5 .. n_freq / 2 cycles per trajectory."""
    tau = (np.arange(n) + 0.5) / n
    k = np.arange(1, n_freq + 1)[:, None]
    return np.concatenate([np.cos(np.pi * k * tau), np.sin(np.pi * k * tau)]) / math.sqrt(n_freq)


def _simulate_paths(rng: np.random.Generator, fam: KernelFamily, b: int):
    """Simulate ``b`` trajectories.

    Returns ``(pos, n_rec)``: ``pos`` (b, N + 1) complex128 positions at the uniform
    times ``0..N`` (path-length units, start at 0); ``n_rec`` (b,) the number of
    recorded steps (exposure), so positions ``0..n_rec`` are recorded.
    """
    n = fam.n_steps
    ell = 1.0 / n

    anxiety = _uniform(rng, fam.anxiety, b)
    corr = _uniform(rng, fam.inertia, b)
    centripetal = _uniform(rng, fam.centripetal, b)
    p_shake = _uniform(rng, fam.shakes, b) / n
    exposure = _uniform(rng, fam.exposure, b)
    linear = rng.random(b) < fam.linear_fraction
    anxiety = np.where(linear, 0.05 * anxiety, anxiety)
    centripetal = np.where(linear, 0.0, centripetal)
    p_shake = np.where(linear, 0.0, p_shake)

    rho = np.exp(-ell / corr)
    sq = np.sqrt(1.0 - rho * rho)

    xi = rng.standard_normal((n, b, 2)).view(np.complex128)[..., 0]  # (n, b)
    # Abrupt shakes: a rotation of the heading by +-shake_angle at random steps.
    rot = np.ones((n, b), dtype=np.complex128)
    t_idx, b_idx = np.nonzero(rng.random((n, b)) < p_shake)
    if t_idx.size:
        lo, hi = np.deg2rad(fam.shake_angle[0]), np.deg2rad(fam.shake_angle[1])
        ang = lo + (hi - lo) * rng.random(t_idx.size)
        ang *= np.where(rng.random(t_idx.size) < 0.5, -1.0, 1.0)
        rot[t_idx, b_idx] = np.exp(1j * ang)

    u = np.exp(2j * np.pi * rng.random(b))
    f = xi[0].copy()  # stationary start of the steering process
    x = np.zeros(b, dtype=np.complex128)
    a_anx = anxiety * ell
    a_cen = centripetal * ell
    heading = np.empty((n, b), dtype=np.complex128)
    for t in range(n):
        f *= rho
        f += sq * xi[t]
        u += a_anx * f - a_cen * x
        u /= np.maximum(np.abs(u), 1e-12)
        u *= rot[t]
        heading[t] = u
        x += ell * u
    heading = np.ascontiguousarray(heading.T)  # (b, n)

    # Speed: slow down at turns (curvature averaged over a short window) ...
    turn = np.zeros((b, n))
    turn[:, 1:] = np.abs(np.angle(heading[:, 1:] * np.conj(heading[:, :-1])))
    half = max(1, int(round(fam.turn_window * n / 2)))
    curvature = _box_mean(turn, half) / ell
    speed = (1.0 + curvature / fam.turn_scale) ** (-fam.turn_slowdown)
    # ... and drift smoothly (random low-frequency log-speed, std speed_jitter).
    if fam.speed_jitter > 0:
        basis = _speed_basis(n)
        coef = rng.standard_normal((b, basis.shape[0])) * fam.speed_jitter
        speed *= np.exp(coef @ basis)

    pos = np.zeros((b, n + 1), dtype=np.complex128)
    np.cumsum(heading * (speed * ell), axis=1, out=pos[:, 1:])
    n_rec = np.maximum(1, np.floor(exposure * n).astype(np.int64))
    return pos, n_rec


def _splat(xs: np.ndarray, ys: np.ndarray, kid: np.ndarray, n_samp: np.ndarray, b: int, k: int,
           total: int) -> np.ndarray:
    """Bilinear splat of the whole chunk with one bincount: the ``total`` samples ``(xs, ys)``
    (pixel units, inside the 1-px outer ring) of kernel ``kid``, each of weight
    ``1 / n_samp[kid]``; returns the ``(b, k, k)`` kernels normalised to sum 1."""
    ix = xs.astype(np.int64)  # == floor, xs >= 1
    iy = ys.astype(np.int64)
    fx = xs - ix
    fy = ys - iy
    w = (1.0 / n_samp)[kid]
    base = kid * (k * k) + iy * k + ix
    idx = (base[:, None] + np.array([0, 1, k, k + 1], dtype=np.int64)).ravel()
    wy0 = (1.0 - fy) * w
    wy1 = fy * w
    vals = np.empty((total, 4), dtype=np.float64)
    vals[:, 0] = wy0 * (1.0 - fx)
    vals[:, 1] = wy0 * fx
    vals[:, 2] = wy1 * (1.0 - fx)
    vals[:, 3] = wy1 * fx
    acc = np.bincount(idx, weights=vals.ravel(), minlength=b * k * k).reshape(b, k, k)
    acc /= acc.sum(axis=(1, 2), keepdims=True)
    return acc.astype(np.float32)


def _render_chunk(rng: np.random.Generator, fam: KernelFamily, b: int, k: int) -> np.ndarray:
    pos, n_rec = _simulate_paths(rng, fam, b)
    n = fam.n_steps
    rec = np.arange(n + 1)[None, :] <= n_rec[:, None]  # (b, n+1) recorded positions

    # Extent drawn per kernel; the continuous bounding box side is extent - 1.
    hi_e = min(fam.max_extent, k - 2)
    lo_e = min(fam.min_extent, hi_e)
    extent = lo_e + (hi_e - lo_e) * rng.random(b)

    xr, yi = pos.real, pos.imag
    width = np.where(rec, xr, -np.inf).max(1) - np.where(rec, xr, np.inf).min(1)
    height = np.where(rec, yi, -np.inf).max(1) - np.where(rec, yi, np.inf).min(1)
    scale = (extent - 1.0) / np.maximum(np.maximum(width, height), 1e-12)

    # Pixel-unit positions relative to the start.
    px = ((xr - xr[:, :1]) * scale[:, None]).astype(np.float32)
    py = ((yi - yi[:, :1]) * scale[:, None]).astype(np.float32)

    # Per-kernel re-sampling factor so that consecutive samples (uniform in time) are at
    # most _MAX_SAMPLE_SPACING px apart: m - 1 points are interpolated in every step.
    seg = np.hypot(np.diff(px, axis=1), np.diff(py, axis=1))
    seg = np.where(rec[:, 1:], seg, 0.0)
    m = np.ceil(seg.max(1) / _MAX_SAMPLE_SPACING).astype(np.int64)
    np.clip(m, 1, _MAX_UPSAMPLE, out=m)

    # Flat, ragged list of the recorded samples of all kernels of the chunk.
    n_samp = n_rec * m + 1
    starts = np.zeros(b, dtype=np.int64)
    np.cumsum(n_samp[:-1], out=starts[1:])
    total = int(starts[-1] + n_samp[-1])
    kid = np.repeat(np.arange(b, dtype=np.int64), n_samp)
    j = np.arange(total, dtype=np.int64) - starts[kid]
    mk = m[kid]
    t = j // mk
    frac = ((j - t * mk) / mk).astype(np.float32)
    g = kid * (n + 1) + t
    g1 = np.minimum(g + 1, b * (n + 1) - 1)  # frac == 0 wherever g + 1 leaves the row
    pxf, pyf = px.ravel(), py.ravel()
    x0 = pxf[g]
    y0 = pyf[g]
    xs = x0 + frac * (pxf[g1] - x0)
    ys = y0 + frac * (pyf[g1] - y0)

    # Centre on the weighted centroid (exact: bilinear splatting preserves it), then
    # shrink about it if needed so the 1-px outer ring stays empty.
    cx = np.add.reduceat(xs, starts, dtype=np.float64) / n_samp
    cy = np.add.reduceat(ys, starts, dtype=np.float64) / n_samp
    xs -= cx.astype(np.float32)[kid]
    ys -= cy.astype(np.float32)[kid]
    off = np.maximum(
        np.maximum.reduceat(np.abs(xs), starts), np.maximum.reduceat(np.abs(ys), starts)
    )
    limit = (k // 2 - 1) - 1e-3
    shrink = np.minimum(1.0, limit / np.maximum(off, 1e-12)).astype(np.float32)
    c = np.float32(k // 2)
    sk = shrink[kid]
    xs *= sk
    ys *= sk
    xs += c
    ys += c
    np.clip(xs, 1.0, k - 2.0 - 1e-3, out=xs)  # no-op up to rounding; guards indices
    np.clip(ys, 1.0, k - 2.0 - 1e-3, out=ys)

    return _splat(xs, ys, kid, n_samp, b, k, total)


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
        self.family = _resolve_family(family)
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
            out[start:stop] = _render_chunk(rng, self.family, stop - start, k)
        return out


def synthesize_kernels(n: int, size: int, family: str = "levin", seed: int = 0) -> np.ndarray:
    """Convenience wrapper: ``KernelSynthesizer(family, seed).sample(n, size)``."""
    return KernelSynthesizer(family, seed=seed).sample(n, size)


def camera_trajectory(rng: np.random.Generator, family: str | KernelFamily = "levin") -> np.ndarray:
    """One simulated trajectory of ``family`` (step 1-3 of the module doc): the recorded
    positions, sampled uniformly in *time*, as a complex128 array (x + iy), nominal units
    (path length ~ 1, start at 0). Used by :mod:`glkm_prior.camera_motion`."""
    pos, n_rec = _simulate_paths(rng, _resolve_family(family), 1)
    return pos[0, : int(n_rec[0]) + 1].copy()


def benchmark(n: int = 10000, size: int = 31, family: str = "levin", seed: int = 0) -> float:
    """Synthesize ``n`` kernels of side ``size`` and return the rate in kernels per second."""
    synth = KernelSynthesizer(family, seed=seed)
    synth.sample(min(n, 64), size)  # warm-up
    t0 = time.perf_counter()
    synth.sample(n, size)
    dt = time.perf_counter() - t0
    return n / dt if dt > 0 else float("inf")

