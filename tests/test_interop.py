"""deepinv-style kernel generator (glkm_prior.interop): shapes, seeding, and the convolution
convention, checked against an independent true convolution (a numpy loop)."""

import numpy as np
import pytest
import torch

from glkm_prior import DeepinvKernelGenerator, InvalidInputError, KernelPrior, from_deepinv_filter, to_deepinv_filter
from glkm_prior.physics import blur


def true_convolution_valid(x: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Textbook 'valid' convolution of one image (H, W) with one filter (h, w), written out:
    out[i, j] = sum_{a, b} f[a, b] * x[i + h - 1 - a, j + w - 1 - b]."""
    h, w = f.shape
    H, W = x.shape
    out = np.zeros((H - h + 1, W - w + 1))
    for a in range(h):
        for b in range(w):
            out += f[a, b] * x[h - 1 - a : h - 1 - a + H - h + 1, w - 1 - b : w - 1 - b + W - w + 1]
    return out


def test_step_shape_range_and_seeding(tiny_prior):
    gen = DeepinvKernelGenerator(tiny_prior)
    f = gen.step(batch_size=3, seed=5)["filter"]
    assert set(gen.step(seed=5)) == {"filter"}
    assert f.shape == (3, 1, 31, 31) and f.dtype == torch.float32 and f.device.type == "cpu"
    assert f.min() >= 0
    torch.testing.assert_close(f.sum(dim=(1, 2, 3)), torch.ones(3), atol=1e-5, rtol=0)
    assert torch.equal(gen.step(batch_size=3, seed=5)["filter"], f)
    # a new generator object with the same seed, and the seed after other draws: the same kernels
    other = DeepinvKernelGenerator(tiny_prior)
    other.step(batch_size=2)
    assert torch.equal(other.step(batch_size=3, seed=5)["filter"], f)
    g = gen.step(batch_size=3, seed=6)["filter"]
    assert (g - f).abs().amax(dim=(1, 2, 3)).min() > 1e-4  # every kernel differs
    # seed=None continues the stream: two successive calls differ, and replay after reseeding
    a, b = gen.step(batch_size=2, seed=9)["filter"], gen.step(batch_size=2)["filter"]
    assert not torch.equal(a, b)
    gen.step(batch_size=2, seed=9)
    assert torch.equal(gen.step(batch_size=2)["filter"], b)
    # deepinv passes its keywords to every generator of a sum: extra ones are ignored
    assert torch.equal(gen.step(batch_size=3, seed=5, sigma=0.1)["filter"], f)


def test_cropped_kernel_size_and_dtype(tiny_prior):
    gen = DeepinvKernelGenerator(tiny_prior, kernel_size=15, dtype=torch.float64)
    f = gen.step(batch_size=2, seed=1)["filter"]
    assert f.shape == (2, 1, 15, 15) and f.dtype == torch.float64 and f.min() >= 0
    torch.testing.assert_close(f.sum(dim=(1, 2, 3)), torch.ones(2, dtype=torch.float64), atol=1e-6, rtol=0)
    # independently: the canvas kernel, centre-cropped to 15 (rows/cols 8..22) and renormalised
    full = DeepinvKernelGenerator(tiny_prior).step(batch_size=2, seed=1)["filter"].double()
    crop = full[..., 8:23, 8:23]
    torch.testing.assert_close(f, crop / crop.sum(dim=(-2, -1), keepdim=True), atol=1e-6, rtol=0)


def test_step_is_the_flipped_prior_kernel_for_the_same_seed(tiny_prior):
    gen = DeepinvKernelGenerator(tiny_prior, kernel_size=21)
    f = gen.step(batch_size=2, seed=3)["filter"]
    k = tiny_prior.kernel(tiny_prior.random_latent(2, seed=3), size=21).detach()
    assert torch.equal(f, torch.flip(k, dims=(-2, -1)))
    assert torch.equal(from_deepinv_filter(f), k) and torch.equal(to_deepinv_filter(k), f)


def test_a_true_convolution_with_the_filter_is_our_blur_with_the_prior_kernel(tiny_prior):
    """Feeding the filter to a true-convolution physics (deepinv's Blur) blurs exactly as this
    package's cross-correlation blur with the un-flipped prior kernel."""
    gen = DeepinvKernelGenerator(tiny_prior, kernel_size=15, dtype=torch.float64)
    f = gen.step(batch_size=1, seed=7)["filter"]
    k = tiny_prior.kernel(tiny_prior.random_latent(1, seed=7), size=15).detach().double()
    x = torch.rand(1, 1, 40, 36, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    expected = true_convolution_valid(x[0, 0].numpy(), f[0, 0].numpy())
    for method in ("direct", "fft"):
        ours = blur(x, k, "valid", method=method)[0, 0].numpy()
        np.testing.assert_allclose(ours, expected, atol=1e-12, rtol=0)
        np.testing.assert_allclose(blur(x, from_deepinv_filter(f), "valid", method)[0, 0].numpy(), expected, atol=1e-12)
    # the filter is not symmetric, so the convention matters: cross-correlating with f is different
    assert np.abs(blur(x, f, "valid")[0, 0].numpy() - expected).max() > 1e-4


def test_initial_is_the_flipped_kernel_of_the_initial_latent():
    prior = KernelPrior.from_pretrained(kernel_size=31)  # the bundled, trained prior (offline)
    y = torch.rand(2, 3, 64, 72, generator=torch.Generator().manual_seed(1))
    gen = DeepinvKernelGenerator(prior, kernel_size=27)
    f = gen.initial(y)["filter"]
    k = prior.kernel(prior.initial_latent(y, init="initializer"), size=27).detach()
    assert f.shape == (2, 1, 27, 27) and f.min() >= 0
    torch.testing.assert_close(f.sum(dim=(1, 2, 3)), torch.ones(2), atol=1e-5, rtol=0)
    assert torch.equal(f, torch.flip(k, dims=(-2, -1)))
    assert torch.equal(gen.initial(y)["filter"], f)  # deterministic


@pytest.mark.parametrize("kwargs", [dict(kernel_size=16), dict(kernel_size=33), dict(kernel_size=1),
                                    dict(kernel_size=15.0), dict(dtype=torch.int64), dict(rng="seed")])
def test_bad_construction_raises(tiny_prior, kwargs):
    with pytest.raises(InvalidInputError):
        DeepinvKernelGenerator(tiny_prior, **kwargs)


def test_bad_inputs_raise(tiny_prior):
    with pytest.raises(InvalidInputError):
        DeepinvKernelGenerator("not a prior")
    gen = DeepinvKernelGenerator(tiny_prior)
    for batch_size in (0, -1, 2.0, True, None):
        with pytest.raises(InvalidInputError, match="batch_size"):
            gen.step(batch_size=batch_size)
    for seed in (-1, 1.5, "0"):
        with pytest.raises(InvalidInputError, match="seed"):
            gen.step(seed=seed)
    for y in (torch.rand(32, 32), torch.rand(1, 32, 32), torch.rand(1, 2, 32, 32),
              torch.full((1, 1, 32, 32), float("nan")), torch.ones(1, 1, 32, 32, dtype=torch.int64), np.ones((1, 1, 32, 32))):
        with pytest.raises(InvalidInputError):
            gen.initial(y)
    with pytest.raises(InvalidInputError):
        from_deepinv_filter(torch.ones(5, 5))


def test_initial_can_start_from_the_estimate_for_one_image():
    """``init='estimate'`` gives the flipped kernel of GLKM's own default start (one image only)."""
    prior = KernelPrior.from_pretrained(kernel_size=31)
    y = torch.rand(1, 1, 80, 80, generator=torch.Generator().manual_seed(2))
    gen = DeepinvKernelGenerator(prior, kernel_size=15)
    f = gen.initial(y, init="estimate")["filter"]
    k = prior.kernel(prior.initial_latent(y, init="estimate", kernel_size=15), size=15).detach()
    assert torch.equal(f, torch.flip(k, dims=(-2, -1)))
    with pytest.raises(InvalidInputError, match="one image"):
        gen.initial(torch.rand(2, 1, 80, 80), init="estimate")
