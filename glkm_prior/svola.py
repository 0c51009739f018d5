"""Space-variant overlap-add (SVOLA) blur: one kernel per cell of a P x Q grid, blended by windows.

Model (Hirsch et al., "Efficient filter flow", CVPR 2010; the GLKM paper's non-uniform model)::

    y = sum_p  blur(w_p . x_full, k_p, 'valid')

* ``x_full`` (B, C, H + K - 1, W + K - 1) is the sharp image, ``y`` (B, C, H, W) the blurry one
  ('valid' cross-correlation as physics.blur; all kernels K x K, >= 0, sum 1).
* The windows ``w_p`` (P*Q, Hx, Wx) live on the **sharp** image's grid and are applied **before**
  the blur: every source pixel's light is split among the kernels of the cells around it and
  each part is spread by its own kernel. Because the windows sum to one at every pixel, light is
  conserved (each sharp pixel sends out exactly its value in total) and identical kernels give
  exactly the uniform blur. (Windowing after the blur would mix kernels at the *observed* pixel
  instead, which is not how a moving camera spreads the light of one scene point.)
* Windows: separable Bartlett (triangular "hat") functions, the linear-interpolation basis on a
  P x Q grid of centres spanning the image: neighbouring cells overlap by one cell spacing and
  the windows form a partition of unity.
* All cells are blurred in one batched call (FFT for kernels of 5 x 5 px and more): memory is
  P*Q windowed copies of the image.
"""

from __future__ import annotations

import torch

from .errors import InvalidInputError
from .physics import blur, blur_adjoint


def parse_grid(grid) -> tuple[int, int]:
    """(P, Q) from a pair or a 'PxQ' string; both >= 1."""
    if isinstance(grid, str):
        parts = grid.lower().split("x")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise InvalidInputError(f"grid must look like 3x3, got {grid!r}")
        grid = tuple(int(p) for p in parts)
    P, Q = (int(g) for g in grid)
    if P < 1 or Q < 1 or P * Q < 2:
        raise InvalidInputError(f"a non-uniform grid needs at least 2 cells, got {P}x{Q}")
    return P, Q


def window_centres(n: int, cells: int) -> list[float]:
    """Centres of the ``cells`` windows along an axis of ``n`` samples: spread from the first
    sample to the last (one cell: the middle)."""
    return [i * (n - 1) / (cells - 1) for i in range(cells)] if cells > 1 else [(n - 1) / 2]


def window_profiles(n: int, cells: int, dtype=torch.float32) -> torch.Tensor:
    """(cells, n) triangular windows on ``n`` samples, summing to 1 at every sample; the 2-D
    windows are products of a row and a column profile."""
    if cells == 1:
        return torch.ones(1, n, dtype=dtype)
    t = torch.arange(n, dtype=torch.float64)
    centres = torch.tensor(window_centres(n, cells), dtype=torch.float64)
    spacing = (n - 1) / (cells - 1)
    return (1 - (t[None, :] - centres[:, None]).abs() / spacing).clamp_min(0).to(dtype)


def svola_windows(height: int, width: int, grid: tuple[int, int] = (3, 3)) -> torch.Tensor:
    """Partition-of-unity windows (P*Q, height, width), row-major over the P x Q grid."""
    P, Q = (int(g) for g in grid)
    if P < 1 or Q < 1:
        raise InvalidInputError(f"grid must be positive, got {grid!r}")
    if P > height or Q > width:
        raise InvalidInputError(f"a {P}x{Q} grid does not fit a {height}x{width} image")
    rows, cols = window_profiles(height, P), window_profiles(width, Q)
    return (rows[:, None, :, None] * cols[None, :, None, :]).reshape(P * Q, height, width)


def _check(x: torch.Tensor, kernels: torch.Tensor, windows: torch.Tensor) -> None:
    if kernels.dim() != 4 or kernels.shape[1] != 1:
        raise InvalidInputError(f"kernels must be (P*Q, 1, K, K), got {tuple(kernels.shape)}")
    if windows.dim() != 3 or windows.shape[0] != kernels.shape[0]:
        raise InvalidInputError(f"windows must be (P*Q, H, W) with P*Q = {kernels.shape[0]}, got {tuple(windows.shape)}")


def svola_blur(x_full: torch.Tensor, kernels: torch.Tensor, windows: torch.Tensor) -> torch.Tensor:
    """SVOLA forward model: x_full (B, C, Hx, Wx), kernels (N, 1, K, K), windows (N, Hx, Wx)
    -> y (B, C, Hx - K + 1, Wx - K + 1). Differentiable in x and the kernels."""
    _check(x_full, kernels, windows)
    if windows.shape[-2:] != x_full.shape[-2:]:
        raise InvalidInputError(f"windows {tuple(windows.shape[-2:])} must match the sharp image {tuple(x_full.shape[-2:])}")
    B, C, Hx, Wx = x_full.shape
    N = kernels.shape[0]
    cells = (windows.to(x_full.dtype)[None, :, None] * x_full[:, None]).reshape(B * N, C, Hx, Wx)
    out = blur(cells, kernels.repeat(B, 1, 1, 1).to(x_full.dtype), "valid")
    return out.reshape(B, N, C, *out.shape[-2:]).sum(dim=1)


def svola_adjoint(y: torch.Tensor, kernels: torch.Tensor, windows: torch.Tensor) -> torch.Tensor:
    """Adjoint of :func:`svola_blur` in x: y (B, C, H, W) -> (B, C, H + K - 1, W + K - 1)."""
    _check(y, kernels, windows)
    B, C, H, W = y.shape
    N = kernels.shape[0]
    spread = blur_adjoint(y[:, None].expand(B, N, C, H, W).reshape(B * N, C, H, W),
                          kernels.repeat(B, 1, 1, 1).to(y.dtype), "valid")
    spread = spread.reshape(B, N, C, *spread.shape[-2:])
    return (windows.to(y.dtype)[None, :, None] * spread).sum(dim=1)
