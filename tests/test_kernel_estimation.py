"""Sub-problems of the fast method: closed-form image step, kernel data term, resampling."""

import pytest
import torch
import torch.nn.functional as F

from glkm_prior.errors import InvalidInputError
from glkm_prior.kernel_estimation import (CircularImageSolver, KernelDataTerm, clean_kernel, l0_image_step, odd,
                                          resize_image, resize_kernel)


def _kernel(K, seed):
    g = torch.Generator().manual_seed(seed)
    k = torch.rand(1, 1, K, K, generator=g) ** 4
    return k / k.sum()


def _circular_correlate(x, k):
    K = k.shape[-1]
    c = K // 2
    return F.conv2d(F.pad(x, (c, K - 1 - c, c, K - 1 - c), mode="circular"), k)


def test_closed_form_image_step_matches_a_slow_iterative_solve():
    torch.manual_seed(0)
    b = torch.rand(1, 1, 20, 24, dtype=torch.float64)
    k = _kernel(5, 1).double()
    gx, gy = torch.randn(2, 1, 1, 20, 24, dtype=torch.float64) * 0.1
    beta = 0.3
    fast = CircularImageSolver(b.float(), k.float()).solve(beta, gx.float(), gy.float()).double()

    def objective(x):
        dx = torch.roll(x, -1, dims=-1) - x
        dy = torch.roll(x, -1, dims=-2) - x
        return ((_circular_correlate(x, k) - b) ** 2).sum() + beta * (((dx - gx) ** 2).sum() + ((dy - gy) ** 2).sum())

    x = torch.zeros_like(b, requires_grad=True)
    opt = torch.optim.LBFGS([x], max_iter=2000, tolerance_grad=1e-12, tolerance_change=1e-15, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = objective(x)
        loss.backward()
        return loss

    opt.step(closure)
    assert torch.allclose(fast, x.detach(), atol=2e-4)
    assert objective(fast) <= objective(x.detach()) + 1e-6


def test_l0_image_step_geometry_and_near_exact_recovery():
    """Piecewise-constant x (what the L0 prior favours), 'valid' blur, no noise: the step returns
    x_full of size y + K - 1 aligned so that blurring it reproduces y."""
    K = 7
    x = torch.zeros(1, 1, 80 + K - 1, 90 + K - 1)
    x[..., 20:50, 15:60] = 0.8
    x[..., 40:75, 50:85] = 0.3
    k = _kernel(K, 2)
    y = F.conv2d(x, k)
    est = l0_image_step(y, k, 1e-3)
    assert est.shape == x.shape
    m = K  # away from the frame, where the periodic model is exact enough
    assert (F.conv2d(est, k) - y)[..., m:-m, m:-m].abs().max() < 0.02
    assert (est - x)[..., 2 * m:-2 * m, 2 * m:-2 * m].abs().mean() < 0.02


def test_data_term_toeplitz_is_exact_for_compact_images_and_close_otherwise():
    torch.manual_seed(0)
    K, H, W = 9, 50, 60
    x = torch.zeros(1, 1, H + K - 1, W + K - 1)
    x[..., K:-K, K:-K] = torch.rand(1, 1, H + K - 1 - 2 * K, W + K - 1 - 2 * K)
    k_true, k_other = _kernel(K, 3), _kernel(K, 4)
    y = F.conv2d(x, k_true) + 0.01 * torch.randn(1, 1, H, W)
    term = KernelDataTerm(x, y, K)
    # independent reference: blur first, then differences of the residual
    r = F.conv2d(x, k_other) - y
    num = (r[..., :, 1:] - r[..., :, :-1]).square().sum() + (r[..., 1:, :] - r[..., :-1, :]).square().sum()
    den = (y[..., :, 1:] - y[..., :, :-1]).square().sum() + (y[..., 1:, :] - y[..., :-1, :]).square().sum()
    assert float(term(k_other, exact=True)) == pytest.approx(float(num / den), rel=1e-4)
    assert float(term(k_other)) == pytest.approx(float(num / den), rel=1e-4)
    assert float(term(k_true)) < float(term(k_other))
    # a generic image: the Toeplitz Gram matrix is off by O(K/H) only
    x = torch.rand(1, 1, H + K - 1, W + K - 1)
    y = F.conv2d(x, k_true)
    term = KernelDataTerm(x, y, K)
    assert float(term(k_other)) == pytest.approx(float(term(k_other, exact=True)), rel=0.05)
    assert float(term(k_true, exact=True)) < 1e-8


def test_data_term_gradient_matches_exact_gradient():
    torch.manual_seed(1)
    K = 7
    x = torch.zeros(1, 1, 40 + K - 1, 40 + K - 1)
    x[..., K:-K, K:-K] = torch.rand(1, 1, 40 - K - 1, 40 - K - 1)
    y = F.conv2d(x, _kernel(K, 5))
    term = KernelDataTerm(x, y, K)
    k = _kernel(K, 6).requires_grad_(True)
    (g_fast,) = torch.autograd.grad(term(k), k)
    (g_exact,) = torch.autograd.grad(term(k, exact=True), k)
    assert torch.allclose(g_fast, g_exact, atol=1e-5 * float(g_exact.abs().max()) + 1e-7)


def test_resampling_keeps_kernels_normalised_and_centred():
    k = torch.zeros(1, 1, 31, 31)
    k[..., 15, 15] = 1
    for size in (5, 15, 45):
        r = resize_kernel(k, size)
        assert r.shape[-1] == size and float(r.min()) >= 0 and float(r.sum()) == pytest.approx(1, abs=1e-6)
        assert int(r[0, 0].flatten().argmax()) == (size // 2) * size + size // 2
    assert resize_image(torch.rand(1, 3, 100, 60), 0.5).shape == (1, 3, 50, 30)
    c = clean_kernel(torch.tensor([[[[0.5, 0.01], [-0.1, 0.49]]]]))
    assert torch.allclose(c, torch.tensor([[[[0.5, 0.0], [0.0, 0.49]]]]) / 0.99)
    assert [odd(v) for v in (4, 5, 5.9, 0.2)] == [5, 5, 5, 1]


def test_bad_shapes_are_rejected():
    with pytest.raises(InvalidInputError, match="K odd"):
        l0_image_step(torch.rand(1, 1, 30, 30), torch.rand(1, 1, 4, 4), 1e-3)
    with pytest.raises(InvalidInputError, match="smaller than the kernel"):
        l0_image_step(torch.rand(1, 1, 5, 30), _kernel(7, 0), 1e-3)
    with pytest.raises(InvalidInputError, match="must be y"):
        KernelDataTerm(torch.rand(1, 1, 30, 30), torch.rand(1, 1, 30, 30), 5)
