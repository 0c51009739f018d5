import math

import pytest
import torch
import torch.nn.functional as F

from glkm_prior.errors import InvalidInputError, KernelSizeError
from glkm_prior.physics import (
    BOUNDARIES,
    blur,
    blur_adjoint,
    center_kernel,
    delta_kernel,
    fast_fft_size,
    fit_kernel,
    flip_kernel,
    kernel_centroid,
    normalize_kernel,
)

SHAPES = [(5, 5), (4, 6), (7, 4), (15, 15), (1, 9)]


def _direct_reference(x, k, boundary):
    """Independent reference with plain loops over kernel taps (no conv2d)."""
    h, w = k.shape[-2:]
    if boundary == "same":
        x = F.pad(x, (w // 2, w - 1 - w // 2, h // 2, h - 1 - h // 2))
    elif boundary == "circular":
        x = F.pad(x, (w // 2, w - 1 - w // 2, h // 2, h - 1 - h // 2), mode="circular")
    H, W = x.shape[-2] - h + 1, x.shape[-1] - w + 1
    y = torch.zeros(*x.shape[:2], H, W, dtype=x.dtype)
    for a in range(h):
        for b in range(w):
            y += k[:, :, a : a + 1, b : b + 1] * x[:, :, a : a + H, b : b + W]
    return y


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("shape", SHAPES)
def test_fft_equals_direct_and_reference(boundary, shape):
    g = torch.Generator().manual_seed(0)
    # float64 (blur computes in the input's dtype): the paths agree to eps64 * log2(N) ~ 1e-15
    x = torch.rand(2, 3, 40, 37, generator=g, dtype=torch.float64)
    k = torch.rand(2, 1, *shape, generator=g, dtype=torch.float64)
    k = k / k.sum(dim=(-2, -1), keepdim=True)
    direct = blur(x, k, boundary, "direct")
    fft = blur(x, k, boundary, "fft")
    ref = _direct_reference(x, k.expand(2, 3, *shape), boundary)
    assert direct.shape == ref.shape
    assert torch.allclose(direct, ref, rtol=0, atol=1e-12)
    assert torch.allclose(fft, direct, rtol=0, atol=1e-12)


def test_valid_geometry_matches_selfdeblur_convention():
    x = torch.rand(1, 1, 30, 30, dtype=torch.float64)
    k = torch.rand(1, 1, 7, 7, dtype=torch.float64)
    y = blur(x, k, "valid")
    assert y.shape[-2:] == (24, 24)
    # cross-correlation, no flip; float64, so exact to eps64 * (sum of 49 terms <= 49)
    assert torch.allclose(y, F.conv2d(x, k), rtol=0, atol=1e-12)


def test_per_channel_kernels_and_batch_broadcast():
    # float64: FFT vs direct of unnormalised 9x9 kernels (values up to ~40) agree to ~1e-13
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    k = torch.rand(1, 3, 9, 9, dtype=torch.float64)
    y = blur(x, k, "same", "fft")
    for c in range(3):
        yc = blur(x[:, c : c + 1], k[:, c : c + 1], "same", "direct")
        assert torch.allclose(y[:, c : c + 1], yc, rtol=0, atol=1e-10)


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("shape", [(5, 5), (4, 6), (9, 8)])
def test_adjoint_identity(boundary, shape):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 2, 33, 29, generator=g, dtype=torch.float64)
    k = torch.rand(2, 1, *shape, generator=g, dtype=torch.float64)
    Ax = blur(x, k, boundary)
    y = torch.randn(Ax.shape, generator=g, dtype=torch.float64)
    lhs = (Ax * y).sum()
    rhs = (x * blur_adjoint(y, k, boundary)).sum()
    assert math.isclose(lhs.item(), rhs.item(), rel_tol=1e-10, abs_tol=1e-9)


def test_gradients_agree_between_paths():
    x = torch.rand(1, 1, 48, 48, dtype=torch.float64, requires_grad=True)
    k = torch.rand(1, 1, 11, 11, dtype=torch.float64, requires_grad=True)
    grads = []
    for method in ("direct", "fft"):
        x.grad = k.grad = None
        (blur(x, k, "valid", method) ** 2).sum().backward()
        grads.append((x.grad.clone(), k.grad.clone()))
    assert torch.allclose(grads[0][0], grads[1][0], atol=1e-8)
    assert torch.allclose(grads[0][1], grads[1][1], atol=1e-8)


def test_fast_fft_size():
    for n in [1, 7, 97, 255, 383, 1000, 1201]:
        m = fast_fft_size(n)
        assert m >= n
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        assert r == 1
        assert m < 1.25 * n + 2


def test_flip_turns_correlation_into_convolution():
    x = torch.rand(1, 1, 20, 20, dtype=torch.float64)
    k = torch.rand(1, 1, 5, 5, dtype=torch.float64)
    # true convolution = correlation with the flipped kernel
    conv = torch.zeros(1, 1, 16, 16, dtype=torch.float64)
    for i in range(16):
        for j in range(16):
            for a in range(5):
                for b in range(5):
                    conv[0, 0, i, j] += k[0, 0, a, b] * x[0, 0, i + 4 - a, j + 4 - b]
    assert torch.allclose(blur(x, flip_kernel(k), "valid"), conv, rtol=0, atol=1e-12)  # float64
    assert torch.equal(flip_kernel(flip_kernel(k)), k)


def test_center_kernel_moves_centroid_to_centre():
    k = torch.zeros(1, 1, 15, 15)
    k[0, 0, 2, 3] = 0.5
    k[0, 0, 4, 3] = 0.5
    c = center_kernel(k)
    assert torch.allclose(kernel_centroid(c)[0, 0], torch.tensor([7.0, 7.0]))
    assert math.isclose(c.sum().item(), 1.0, rel_tol=1e-6)


def test_fit_kernel_crop_pad_and_normalise():
    k = torch.zeros(1, 1, 9, 9)
    k[0, 0, 4, 4] = 0.6
    k[0, 0, 0, 0] = 0.4
    padded = fit_kernel(k, 13)
    assert padded.shape[-2:] == (13, 13) and padded[0, 0, 6, 6] == pytest.approx(0.6)
    cropped = fit_kernel(k, 5)
    assert cropped.shape[-2:] == (5, 5)
    assert cropped[0, 0, 2, 2] == pytest.approx(1.0)  # the corner mass was cropped away
    even = fit_kernel(k, 8)
    assert even[0, 0, 4, 4] == pytest.approx(0.6)  # centre index 8 // 2
    assert torch.equal(fit_kernel(padded, 9), k)


def test_delta_kernel_is_identity_for_same_and_circular():
    # float64 (the float32 FFT pair rounds by ~2 eps32 log2(256) = 1.9e-6, above the old 1e-6)
    x = torch.rand(1, 2, 16, 16, dtype=torch.float64)
    for boundary in ("same", "circular"):
        for method in ("direct", "fft"):
            k = delta_kernel(7, dtype=torch.float64)
            assert torch.allclose(blur(x, k, boundary, method), x, rtol=0, atol=1e-12)


def test_bad_inputs_raise_clear_errors():
    x = torch.rand(1, 1, 16, 16)
    k = torch.rand(1, 1, 5, 5)
    with pytest.raises(InvalidInputError, match="shape"):
        blur(x[0], k)
    bad = x.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(InvalidInputError, match="NaN"):
        blur(bad, k)
    with pytest.raises(KernelSizeError, match="larger than the image"):
        blur(x, torch.rand(1, 1, 17, 17))
    with pytest.raises(InvalidInputError, match="boundary"):
        blur(x, k, "reflect")
    with pytest.raises(InvalidInputError, match="channels"):
        blur(x, torch.rand(1, 2, 5, 5))
    with pytest.raises(InvalidInputError, match="mass"):
        normalize_kernel(torch.zeros(1, 1, 3, 3))
