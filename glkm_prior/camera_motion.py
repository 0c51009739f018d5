"""Dense, spatially varying camera-shake blur (the synthetic non-uniform benchmark).

Model. During the exposure the camera takes ``T`` poses (uniform in time). Pose ``t`` maps a
pixel ``p = (row, col)`` of the blurry image to the sharp-image point ``p + d_t(p)``::

    d_t(p) = R(theta_t) (p - c) - (p - c)  +  s(p) tau_t

* an in-plane rotation (roll) by ``theta_t`` about the image centre ``c``: its displacement
  grows with the distance from ``c`` and turns with the position;
* a translation ``tau_t`` (a trajectory of the project's kernel families,
  :func:`glkm_prior.synthesis.camera_trajectory`) scaled by ``s(p)``, the inverse depth of a
  tilted scene plane: ``s = 1`` on its near side, ``s_far`` on its far side, linear in between
  along the direction ``phi``, so the blur length varies across the image.

The blurry image is the time average ``y(p) = 1/T sum_t x(p + d_t(p))`` with bilinear
interpolation of ``x``: a dense per-pixel model (every pixel has its own kernel), not a patch
approximation such as SVOLA. The kernel of pixel ``p`` is ``k_p = 1/T sum_t splat(K//2 + d_t(p))``
(bilinear splat on a K x K canvas), and ``y(p) = sum_a k_p[a] x_full[p + a]`` exactly: the
cross-correlation convention of :func:`glkm_prior.physics.blur`.

Geometry: 'valid', as ``physics.blur``: ``x_full`` is ``(H + K - 1, W + K - 1)``, ``y`` is
``(H, W)``, blurry pixel ``(i, j)`` sits over sharp pixel ``(i + K//2, j + K//2)``, and every
displacement is at most ``K//2 - 1`` px, so kernels never touch their canvas border.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .errors import InvalidInputError
from .svola import window_centres
from .synthesis import camera_trajectory

#: Default camera roll range of :func:`sample_camera_motion`, degrees peak to peak.
ROTATION_DEG = (1.5, 3.0)

#: Largest distance, in px, between the displacements of consecutive poses (smooth kernels).
MAX_SAMPLE_SPACING = 0.5


@dataclass(frozen=True)
class CameraMotion:
    """One exposure: ``theta`` (T,) radians, ``tau`` (T, 2) px as (down, right), the depth ramp
    (``s_far``, direction ``phi`` in radians), the blurry size ``(height, width)`` and the kernel
    canvas ``kernel_size`` (odd)."""

    theta: np.ndarray
    tau: np.ndarray
    s_far: float
    phi: float
    height: int
    width: int
    kernel_size: int

    def _depth(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """s(p) in [s_far, 1]: linear along (sin phi, cos phi), 1 at the near side."""
        u = math.sin(self.phi) * (rows / max(self.height - 1, 1) - 0.5) + math.cos(self.phi) * (cols / max(self.width - 1, 1) - 0.5)
        span = 0.5 * (abs(math.sin(self.phi)) + abs(math.cos(self.phi)))
        t = (u + span) / (2 * span)  # 0 at the far side, 1 at the near side
        return self.s_far + (1.0 - self.s_far) * t

    def displacements(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """d_t(p) for points p = (rows, cols) in blurry-image px (any equal shapes S, float64)
        -> (T, *S, 2) as (down, right)."""
        rows, cols = rows.double(), cols.double()
        cy, cx = (self.height - 1) / 2, (self.width - 1) / 2
        dy, dx = rows - cy, cols - cx
        th = torch.from_numpy(np.asarray(self.theta, dtype=np.float64)).reshape(-1, *([1] * rows.dim()))
        tau = torch.from_numpy(np.asarray(self.tau, dtype=np.float64))
        s = self._depth(rows, cols)
        cos, sin = torch.cos(th), torch.sin(th)
        down = cos * dy - sin * dx - dy + s * tau[:, 0].reshape(th.shape)
        right = sin * dy + cos * dx - dx + s * tau[:, 1].reshape(th.shape)
        return torch.stack([down, right], dim=-1)

    def max_displacement(self) -> float:
        """Largest |component| of any d_t(p) over the image: d_t is affine in p, so its extremes
        over the rectangle are at the corners."""
        rows = torch.tensor([0.0, 0.0, self.height - 1.0, self.height - 1.0])
        cols = torch.tensor([0.0, self.width - 1.0, 0.0, self.width - 1.0])
        return float(self.displacements(rows, cols).abs().max())

    def blur(self, x_full: torch.Tensor) -> torch.Tensor:
        """Dense blur: x_full (B, C, H + K - 1, W + K - 1) -> y (B, C, H, W), float64 inside."""
        K, H, W = self.kernel_size, self.height, self.width
        if x_full.dim() != 4 or tuple(x_full.shape[-2:]) != (H + K - 1, W + K - 1):
            raise InvalidInputError(f"sharp image must be (B, C, {H + K - 1}, {W + K - 1}) for this motion, got {tuple(x_full.shape)}")
        x = x_full.double()
        rows, cols = torch.meshgrid(torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64), indexing="ij")
        d = self.displacements(rows, cols)  # (T, H, W, 2)
        c = K // 2
        Hx, Wx = x.shape[-2:]
        acc = torch.zeros(x.shape[0], x.shape[1], H, W, dtype=torch.float64)
        for dt in d:
            gy = (rows + c + dt[..., 0]) * (2.0 / (Hx - 1)) - 1.0
            gx = (cols + c + dt[..., 1]) * (2.0 / (Wx - 1)) - 1.0
            grid = torch.stack([gx, gy], dim=-1)[None].expand(x.shape[0], H, W, 2)
            acc += F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
        return (acc / d.shape[0]).to(x_full.dtype)

    def kernels_at(self, rows, cols) -> np.ndarray:
        """Exact per-pixel kernels at blurry-image points -> float32 (N, K, K), each sums to 1."""
        rows = torch.as_tensor(rows, dtype=torch.float64).reshape(-1)
        cols = torch.as_tensor(cols, dtype=torch.float64).reshape(-1)
        K = self.kernel_size
        d = self.displacements(rows, cols).permute(1, 0, 2).numpy() + K // 2  # (N, T, 2)
        out = np.zeros((d.shape[0], K * K), dtype=np.float64)
        iy, ix = np.floor(d[..., 0]).astype(np.int64), np.floor(d[..., 1]).astype(np.int64)
        fy, fx = d[..., 0] - iy, d[..., 1] - ix
        for oy, ox, wgt in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
            np.add.at(out, (np.arange(d.shape[0])[:, None], (iy + oy) * K + ix + ox), wgt)
        out /= d.shape[1]
        return out.reshape(-1, K, K).astype(np.float32)

    def kernel_field(self, grid: tuple[int, int] = (3, 3)) -> np.ndarray:
        """Kernels at the centres of a P x Q grid spanning the image (as SVOLA's window centres)
        -> (P, Q, K, K)."""
        P, Q = grid
        rr, cc = np.meshgrid(window_centres(self.height, P), window_centres(self.width, Q), indexing="ij")
        return self.kernels_at(rr, cc).reshape(P, Q, self.kernel_size, self.kernel_size)

    def describe(self) -> dict:
        """JSON-friendly summary (for manifests)."""
        return {
            "poses": int(len(self.theta)), "rotation_deg": float(np.degrees(np.ptp(self.theta))),
            "translation_px": float(np.ptp(self.tau, axis=0).max()), "s_far": float(self.s_far),
            "depth_direction_deg": float(np.degrees(self.phi)), "max_displacement_px": self.max_displacement(),
        }


def _smooth_curve(rng: np.random.Generator, n: int, n_freq: int = 3) -> np.ndarray:
    """A random smooth zero-mean curve on n samples with max |value| 1."""
    t = np.linspace(0.0, 1.0, n)
    curve = sum(rng.standard_normal() * np.cos(math.pi * f * t) + rng.standard_normal() * np.sin(math.pi * f * t)
                for f in range(1, n_freq + 1))
    curve = curve - curve.mean()
    return curve / max(np.abs(curve).max(), 1e-12)


def sample_camera_motion(rng: np.random.Generator, height: int, width: int, kernel_size: int = 31, *,
                         family: str = "levin", rotation_deg=ROTATION_DEG, translation_px=(8.0, 20.0),
                         s_far=(0.4, 0.8)) -> CameraMotion:
    """Draw one exposure for a (height, width) blurry image: a rotation range (peak to peak,
    degrees), a translation extent (px, the near plane) and a far-side inverse depth, each
    uniform in the given ranges; scaled down together if any displacement would exceed
    ``kernel_size // 2 - 1``."""
    K = int(kernel_size)
    if K % 2 == 0 or K < 7:
        raise InvalidInputError(f"kernel_size must be odd and >= 7, got {kernel_size}")
    path = camera_trajectory(rng, family)
    path = path - path.mean()
    extent = max(np.ptp(path.real), np.ptp(path.imag), 1e-12)
    trans = rng.uniform(*translation_px) / extent
    rot = math.radians(rng.uniform(*rotation_deg)) / 2  # half the peak-to-peak range
    theta_shape = _smooth_curve(rng, len(path))
    phi = rng.uniform(0, 2 * math.pi)
    far = float(rng.uniform(*s_far))
    r_max = math.hypot(height, width) / 2

    # enough poses that consecutive displacements are <= MAX_SAMPLE_SPACING px apart anywhere
    step = np.abs(np.diff(path)).max() * trans + np.abs(np.diff(theta_shape)).max() * rot * r_max
    T = int(min(4096, max(64, math.ceil(len(path) * step / MAX_SAMPLE_SPACING))))
    t_old = np.linspace(0.0, 1.0, len(path))
    t_new = np.linspace(0.0, 1.0, T)
    tau = np.stack([np.interp(t_new, t_old, path.imag), np.interp(t_new, t_old, path.real)], axis=1) * trans
    theta = np.interp(t_new, t_old, theta_shape) * rot
    motion = CameraMotion(theta, tau, far, phi, int(height), int(width), K)
    limit = K // 2 - 1
    for _ in range(20):  # rotation is not exactly linear in theta: shrink until it fits
        peak = motion.max_displacement()
        if peak <= limit:
            break
        shrink = limit / peak * (1 - 1e-6)
        theta, tau = theta * shrink, tau * shrink
        motion = CameraMotion(theta, tau, far, phi, int(height), int(width), K)
    return motion
