"""Simulated camera trajectories (steps 1-3 of :mod:`glkm_prior.synthesis`): the random walk with
inertia, steering and abrupt shakes, the speed model and the exposure."""

from __future__ import annotations

import math

import numpy as np

from .families import KernelFamily, resolve_family

__all__ = ["camera_trajectory", "simulate_paths"]


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


def simulate_paths(rng: np.random.Generator, fam: KernelFamily, b: int):
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


def camera_trajectory(rng: np.random.Generator, family: str | KernelFamily = "levin") -> np.ndarray:
    """One simulated trajectory of ``family`` (steps 1-3 of :mod:`glkm_prior.synthesis`): the recorded
    positions, sampled uniformly in *time*, as a complex128 array (x + iy), nominal units
    (path length ~ 1, start at 0). Used by :mod:`glkm_prior.camera_motion`."""
    pos, n_rec = simulate_paths(rng, resolve_family(family), 1)
    return pos[0, : int(n_rec[0]) + 1].copy()
