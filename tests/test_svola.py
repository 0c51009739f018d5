"""SVOLA forward model: partition of unity, uniform limit, adjoint, light conservation."""

import pytest
import torch

from glkm_prior.errors import InvalidInputError
from glkm_prior.physics import blur
from glkm_prior.svola import svola_adjoint, svola_blur, svola_windows


def _kernels(n, K, seed=0):
    g = torch.Generator().manual_seed(seed)
    k = torch.rand(n, 1, K, K, generator=g, dtype=torch.float64) ** 3
    return k / k.sum(dim=(-2, -1), keepdim=True)


@pytest.mark.parametrize("grid", [(1, 1), (3, 3), (2, 4)])
def test_windows_are_a_partition_of_unity(grid):
    w = svola_windows(37, 52, grid)
    assert w.shape == (grid[0] * grid[1], 37, 52)
    assert float(w.min()) >= 0 and torch.allclose(w.sum(0), torch.ones(37, 52), atol=1e-6)
    if grid == (3, 3):  # the centre cell peaks in the image centre
        assert int(w[4].flatten().argmax()) == 18 * 52 + 25 or float(w[4, 18, 25]) > 0.95


def test_identical_kernels_equal_the_uniform_blur():
    K = 7
    x = torch.rand(2, 3, 40 + K - 1, 50 + K - 1, dtype=torch.float64)
    k = _kernels(1, K)
    w = svola_windows(*x.shape[-2:], grid=(3, 3)).double()
    y = svola_blur(x, k.repeat(9, 1, 1, 1), w)
    assert torch.allclose(y, blur(x, k, "valid"), atol=1e-12)


def test_adjoint_identity_and_light_conservation():
    K = 9
    x = torch.rand(1, 1, 30 + K - 1, 34 + K - 1, dtype=torch.float64)
    r = torch.rand(1, 1, 30, 34, dtype=torch.float64)
    k = _kernels(6, K, seed=1)
    w = svola_windows(*x.shape[-2:], grid=(2, 3)).double()
    lhs = (svola_blur(x, k, w) * r).sum()
    rhs = (x * svola_adjoint(r, k, w)).sum()
    assert float(lhs) == pytest.approx(float(rhs), rel=1e-12)
    # light conservation: every sharp pixel sends out exactly its own value in total
    # (the adjoint maps ones to ones wherever the whole kernel footprint is observed)
    out = svola_adjoint(torch.ones_like(r), k, w)[..., K - 1: -(K - 1), K - 1: -(K - 1)]
    assert torch.allclose(out, torch.ones_like(out), atol=1e-12)


def test_kernels_act_where_their_windows_are():
    """A point source in the top-left cell is spread by that cell's kernel only."""
    K = 5
    x = torch.zeros(1, 1, 40 + K - 1, 40 + K - 1, dtype=torch.float64)
    x[..., 2, 2] = 1
    k = torch.zeros(4, 1, K, K, dtype=torch.float64)
    for i in range(4):
        k[i, 0, i, 0] = 1  # a different one-pixel shift per cell
    w = svola_windows(*x.shape[-2:], grid=(2, 2)).double()
    y = svola_blur(x, k, w)
    weight = float(w[0, 2, 2])
    assert weight > 0.9 and float(y[0, 0, 2, 2]) == pytest.approx(weight)  # k_0 = delta at (0, 0)


def test_shape_errors_name_the_problem():
    with pytest.raises(InvalidInputError, match="does not fit"):
        svola_windows(2, 50, (3, 3))
    x = torch.rand(1, 1, 20, 20)
    with pytest.raises(InvalidInputError, match="P\\*Q"):
        svola_blur(x, _kernels(4, 3).float(), svola_windows(20, 20, (3, 3)))
