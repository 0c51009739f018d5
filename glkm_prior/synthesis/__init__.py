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

Modules: :mod:`.families` (:class:`KernelFamily`, :data:`FAMILIES`), :mod:`.trajectory` (steps
1-3), :mod:`.psf` (step 4), :mod:`.synthesizer` (:class:`KernelSynthesizer`, the size bounds,
the chunking, :func:`benchmark`).
"""

from __future__ import annotations

from .families import FAMILIES, KernelFamily
from .synthesizer import MAX_KERNEL_SIZE, MIN_KERNEL_SIZE, KernelSynthesizer, benchmark, synthesize_kernels
from .trajectory import camera_trajectory

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
