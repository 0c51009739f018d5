"""No-reference metrics (glkm_prior.noref): NIQE, PIQE and their building blocks.

Behaviour (blur and noise make scores worse, invariances) and hand-checked values on tiny
inputs. Heavy dependencies are avoided: the blur is a small numpy Gaussian filter here, and
scipy is only used (if installed) as an independent root finder for the AGGD fit.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from glkm_prior import noref
from glkm_prior.noref import niqe_metric, piqe_metric
from glkm_prior.colour import MATLAB_RGB2GRAY
from glkm_prior.matlab import gaussian_window
from glkm_prior.errors import GLKMError, InvalidInputError
from glkm_prior.imageio import read_image

# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur (truncated at 4 sigma, symmetric borders) of each channel."""
    if sigma == 0:
        return img.copy()
    radius = int(math.ceil(4 * sigma))
    t = np.arange(-radius, radius + 1)
    g = np.exp(-(t**2) / (2 * sigma**2))
    g /= g.sum()
    out = img.astype(np.float64)
    for axis in (0, 1):
        pad = [(0, 0)] * out.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="symmetric")
        n = out.shape[axis]
        out = sum(g[k] * np.take(padded, np.arange(k, k + n), axis=axis) for k in range(t.size))
    return out


def add_noise(img: np.ndarray, std: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(img + std * rng.standard_normal(img.shape), 0, 1)


def pink_noise_image(n: int = 256, seed: int = 0) -> np.ndarray:
    """A 1/f ("natural image like") grey texture in [0, 1], quantised to 8 bits."""
    rng = np.random.default_rng(seed)
    f = np.fft.fftfreq(n)
    r = np.hypot(f[:, None], f[None, :])
    r[0, 0] = np.inf
    spec = (rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))) / r
    x = np.real(np.fft.ifft2(spec))
    x = (x - x.min()) / (x.max() - x.min())
    return np.round(x * 255) / 255


@pytest.fixture(scope="module")
def sharp(example_dir) -> np.ndarray:
    return read_image(example_dir / "sharp.png").astype(np.float64)


@pytest.fixture(scope="module")
def synthetic() -> np.ndarray:
    return pink_noise_image()


def strictly_increasing(values) -> bool:
    return all(b > a for a, b in zip(values, values[1:]))


# ----------------------------------------------------------------------------------------------
# (a), (b) behaviour: blur and noise make both scores worse
# ----------------------------------------------------------------------------------------------


def test_more_blur_gives_worse_niqe(sharp, synthetic):
    # sharp.png carries 2% i.i.d. grain that NIQE reads as noise, so light blur (a denoiser)
    # improves it; heavier blur is worse. The 1/f texture is monotone from the start.
    scores = [noref.niqe(gaussian_blur(sharp, s)) for s in (0, 4, 8)]
    assert strictly_increasing(scores), scores
    scores = [noref.niqe(gaussian_blur(synthetic, s)) for s in (0, 1, 2, 3)]
    assert strictly_increasing(scores), scores


def test_more_blur_gives_worse_piqe(sharp, synthetic):
    scores = [noref.piqe(gaussian_blur(sharp, s)) for s in (0, 1.5, 3)]
    assert strictly_increasing(scores), scores
    scores = [noref.piqe(gaussian_blur(synthetic, s)) for s in (0, 2, 4)]
    assert strictly_increasing(scores), scores
    assert scores[-1] == pytest.approx(100.0)  # no spatially active block left


def test_more_noise_gives_worse_scores(sharp, synthetic):
    for img in (sharp, synthetic):
        noisy = [img] + [add_noise(img, s) for s in (0.02, 0.1)]
        niqe_scores = [noref.niqe(x) for x in noisy]
        piqe_scores = [noref.piqe(x) for x in noisy]
        assert strictly_increasing(niqe_scores), niqe_scores
        assert strictly_increasing(piqe_scores), piqe_scores


# ----------------------------------------------------------------------------------------------
# (c) invariances
# ----------------------------------------------------------------------------------------------


def test_mscn_invariant_to_mean_shift_and_equivariant_to_scaling():
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 200, (40, 50))
    base = noref.mscn(x)
    np.testing.assert_allclose(noref.mscn(x + 37.0), base, rtol=0, atol=1e-9)
    # contrast: scaling the image and the constant C together changes nothing
    np.testing.assert_allclose(noref.mscn(3.0 * x, c=3.0), base, rtol=0, atol=1e-12)
    # with C fixed the invariance is only approximate where sigma >> C
    assert np.abs(noref.mscn(3.0 * x) - base).max() < 0.05


def test_scores_invariant_to_grey_offset(synthetic):
    # values are multiples of 1/255, so the 0-255 grey image is shifted by exactly 10
    img = np.round(synthetic * 230) / 255
    shifted = img + 10 / 255
    assert noref.niqe(shifted) == pytest.approx(noref.niqe(img), abs=1e-6)
    assert noref.piqe(shifted) == pytest.approx(noref.piqe(img), abs=1e-6)


# ----------------------------------------------------------------------------------------------
# (d) hand-checked building blocks
# ----------------------------------------------------------------------------------------------


def test_mscn_matches_direct_loop():
    rng = np.random.default_rng(0)
    img = np.round(rng.uniform(0, 255, (9, 9)))
    w = gaussian_window(7, 7 / 6)
    expected = np.empty_like(img)
    for y in range(9):
        for x in range(9):
            mu = s2 = 0.0
            for i in range(7):
                for j in range(7):
                    v = img[min(max(y + i - 3, 0), 8), min(max(x + j - 3, 0), 8)]  # replicate
                    mu += w[i, j] * v
                    s2 += w[i, j] * v * v
            expected[y, x] = (img[y, x] - mu) / (math.sqrt(abs(s2 - mu * mu)) + 1.0)
    np.testing.assert_allclose(noref.mscn(img), expected, rtol=0, atol=1e-10)


def test_gaussian_window_is_the_packaged_one():
    np.testing.assert_allclose(gaussian_window(7, 7 / 6), noref.load_niqe_params().window, atol=1e-15)


def test_imresize_half_matches_hand_weights():
    # MATLAB imresize(x, 0.5) on a length-4 axis: antialiased kernel 0.5 * cubic(0.5 d), taps at
    # input positions -2..5 (1-based) around u = 1.5 and 0..7 around u = 3.5, mirrored
    # symmetrically: index -2, -1, 0 -> 3, 2, 1 and 5, 6, 7 -> 4, 3, 2. Weights per tap
    # (d = 3.5 .. -3.5): [-3, -9, 29, 111, 111, 29, -9, -3] / 256, which gather to:
    a = np.array([[35 / 64, 51 / 128, 13 / 128, -3 / 64], [-3 / 64, 13 / 128, 51 / 128, 35 / 64]])
    x = np.arange(16, dtype=np.float64).reshape(4, 4) ** 1.5
    np.testing.assert_allclose(noref.imresize_bicubic(x, 0.5), a @ x @ a.T, rtol=0, atol=1e-12)
    # odd sizes: ceil(n / 2) outputs; a constant stays constant (weights sum to 1)
    out = noref.imresize_bicubic(np.full((7, 5), 3.25), 0.5)
    assert out.shape == (4, 3)
    np.testing.assert_allclose(out, 3.25, atol=1e-12)


def _aggd_brute_force(x: np.ndarray) -> tuple[float, float, float]:
    """Straight transcription of the moment-matching fit with a Python loop over the grid."""
    left = math.sqrt(np.mean(x[x < 0] ** 2))
    right = math.sqrt(np.mean(x[x > 0] ** 2))
    g = left / right
    rhat = np.mean(np.abs(x)) ** 2 / np.mean(x**2)
    target = rhat * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
    best, best_err = None, math.inf
    for k in range(9801):
        a = 0.2 + 0.001 * k
        r = math.gamma(2 / a) ** 2 / (math.gamma(1 / a) * math.gamma(3 / a))
        if (r - target) ** 2 < best_err:
            best, best_err = a, (r - target) ** 2
    scale = math.sqrt(math.gamma(1 / best) / math.gamma(3 / best))
    return best, left * scale, right * scale


def test_aggd_fit_matches_brute_force_on_a_small_sample():
    x = np.array([-2.0, -1.0, -0.25, 0.0, 0.5, 1.0, 2.0, 3.0, 0.75])
    got = noref.aggd_fit(x)
    want = _aggd_brute_force(x)
    assert got[0] == pytest.approx(want[0], abs=1e-9)
    assert got[1:] == pytest.approx(want[1:], rel=1e-9)


def test_aggd_alpha_is_the_nearest_grid_point_to_the_exact_root():
    optimize = pytest.importorskip("scipy.optimize")
    x = np.random.default_rng(5).laplace(size=2000)
    left = math.sqrt(np.mean(x[x < 0] ** 2))
    right = math.sqrt(np.mean(x[x > 0] ** 2))
    g = left / right
    target = np.mean(np.abs(x)) ** 2 / np.mean(x**2) * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2

    def r(a):
        return math.gamma(2 / a) ** 2 / (math.gamma(1 / a) * math.gamma(3 / a)) - target

    root = optimize.brentq(r, 0.2, 10.0)
    assert abs(noref.aggd_fit(x)[0] - root) <= 0.0005 + 1e-9


def _aggd_sample(alpha, beta_l, beta_r, n, seed):
    """AGGD samples: side chosen with prob beta_side / (beta_l + beta_r), |x| = beta G^(1/alpha)."""
    rng = np.random.default_rng(seed)
    mag = rng.gamma(1 / alpha, 1.0, n) ** (1 / alpha)
    left = rng.random(n) < beta_l / (beta_l + beta_r)
    return np.where(left, -beta_l * mag, beta_r * mag)


@pytest.mark.parametrize(
    "alpha, beta_l, beta_r", [(2.0, 1.0, 1.0), (1.2, 0.5, 1.5), (0.7, 2.0, 1.0)]
)
def test_aggd_fit_recovers_known_parameters(alpha, beta_l, beta_r):
    a, bl, br = noref.aggd_fit(_aggd_sample(alpha, beta_l, beta_r, 200_000, seed=11))
    assert a == pytest.approx(alpha, rel=0.03)
    assert bl == pytest.approx(beta_l, rel=0.03)
    assert br == pytest.approx(beta_r, rel=0.03)


def test_aggd_fit_one_sided_sample_has_nan_betas():
    a, bl, br = noref.aggd_fit(np.array([0.5, 1.0, 2.0]))
    assert a == pytest.approx(0.2) and math.isnan(bl) and not math.isnan(br)


def _checkerboard() -> np.ndarray:
    return np.where((np.add.outer(np.arange(16), np.arange(16)) % 2) == 0, 1.0, -1.0)


def test_piqe_block_logic_on_crafted_mscn():
    board = _checkerboard()
    a = np.zeros((16, 16))  # inactive (variance 0)
    b = board.copy()  # active, noisy: contributes its variance 256/255
    c = board.copy()  # active, flat top border (noticeable artifact), centre columns 8-9 zero:
    c[:, 7:9] = 0  # centre/surround ratio 0 -> beta = 1 > sigma / 2 -> not noisy
    c[0, :] = 0  # -> contributes 1 - variance = 1 - 210/255 = 3/17
    d = board.copy()  # active, no flat border segment, not noisy: contributes 0
    d[:, 7:9] = 0
    coeffs = np.block([[a, b], [c, d]])
    score, active, artifact, noise = piqe_metric._piqe_from_mscn(coeffs)
    np.testing.assert_array_equal(active, [[False, True], [True, True]])
    np.testing.assert_array_equal(artifact, [[False, False], [True, False]])
    np.testing.assert_array_equal(noise, [[False, True], [False, False]])
    expected = (256 / 255 + 3 / 17 + 0 + 1) / (1 + 3) * 100  # = 54.5098...
    assert score == pytest.approx(expected, abs=1e-10)


def _piqe_loop(coeffs: np.ndarray) -> float:
    """Block-by-block transcription of MATLAB piqe's pooling (including its surround quirk)."""
    total, active = 0.0, 0
    for i in range(0, coeffs.shape[0], 16):
        for j in range(0, coeffs.shape[1], 16):
            blk = coeffs[i : i + 16, j : j + 16]
            var = np.var(blk, ddof=1)
            if var <= 0.1:
                continue
            active += 1
            edges = [blk[0, :], blk[:, 15], blk[15, :], blk[:, 0]]
            impaired = any(np.std(e[k : k + 6], ddof=1) < 0.1 for e in edges for k in range(11))
            centre = np.concatenate([blk[:, 7], blk[:, 8]])
            surround = np.delete(np.delete(blk, 7, axis=1), 8, axis=1)  # MATLAB deletes 8 then 9
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = np.std(centre, ddof=1) / np.std(surround, ddof=1)
            ratio = 0.0 if np.isnan(ratio) else ratio
            sigma = math.sqrt(var)
            with np.errstate(invalid="ignore", divide="ignore"):
                beta = abs(sigma - ratio) / max(sigma, ratio)
            total += impaired * (1 - var) + (sigma > 2 * beta) * var
    return (total + 1) / (1 + active) * 100


def test_piqe_vectorised_pooling_matches_block_loop(sharp):
    gray = noref.to_gray255(sharp, "gray")
    gray = np.pad(gray, ((0, 1), (0, 1)), mode="edge")  # 256 x 256
    coeffs = noref.mscn(gray)
    assert piqe_metric._piqe_from_mscn(coeffs)[0] == pytest.approx(_piqe_loop(coeffs), abs=1e-9)
    assert noref.piqe(sharp) == pytest.approx(_piqe_loop(coeffs), abs=1e-9)


def test_piqe_uniform_image_scores_100_and_masks_have_image_size():
    assert noref.piqe(np.full((40, 70), 0.3)) == 100.0
    res = noref.piqe_details(np.full((5, 5, 3), 0.7))  # padded to one 16x16 block
    assert res.score == 100.0 and res.activity_mask.shape == (5, 5) and not res.activity_mask.any()


def test_piqe_masks_are_consistent(sharp):
    res = noref.piqe_details(sharp)
    assert res.activity_mask.shape == res.noise_mask.shape == sharp.shape[:2]
    assert not (res.noise_mask & ~res.activity_mask).any()
    assert not (res.noticeable_artifacts_mask & ~res.activity_mask).any()
    assert 0 < res.score < 100


# ----------------------------------------------------------------------------------------------
# (e) NIQE distance, grey conversion
# ----------------------------------------------------------------------------------------------


def test_niqe_distance_is_zero_at_the_pristine_mean_and_matches_formula():
    params = noref.load_niqe_params()
    rng = np.random.default_rng(2)
    e = rng.normal(size=36)
    feats = np.stack([params.mu + e, params.mu - e])
    assert niqe_metric._niqe_distance(feats, params) == pytest.approx(0.0, abs=1e-9)
    d = rng.normal(size=36) * 0.1
    feats = np.stack([params.mu + d + e, params.mu + d - e])  # mean mu + d, covariance 2 e e^T
    expected = math.sqrt(d @ np.linalg.solve((params.cov + 2 * np.outer(e, e)) / 2, d))
    assert niqe_metric._niqe_distance(feats, params) == pytest.approx(expected, rel=1e-8)


def test_niqe_matches_basicsr_on_the_examples(example_dir):
    # BasicSR calculate_niqe(img, 0, convert_to='y') with its imresize switched to float64
    # gives 11.540214823040 and 8.224189651551 (with its stock float32 imresize: 11.540206 and
    # 8.223982). Note the "blurry" example scores better: see test_more_blur_gives_worse_niqe.
    sharp = read_image(example_dir / "sharp.png")
    blurry = read_image(example_dir / "blurry.png")
    assert noref.niqe(sharp) == pytest.approx(11.5402148230, abs=1e-8)
    assert noref.niqe(blurry) == pytest.approx(8.2241896516, abs=1e-8)


def test_grey_conversions():
    rgb = np.zeros((2, 2, 3))
    rgb[0, 0] = 1.0  # white
    rgb[0, 1] = (1.0, 0.0, 0.0)
    np.testing.assert_array_equal(noref.to_gray255(rgb, "y"), [[235, 16 + 65], [16, 16]])
    # MATLAB rgb2gray weights are the first row of inv(YIQ matrix)
    yiq = np.array([[1.0, 0.956, 0.621], [1.0, -0.272, -0.647], [1.0, -1.106, 1.703]])
    np.testing.assert_allclose(MATLAB_RGB2GRAY, np.linalg.inv(yiq)[0], rtol=1e-12)
    np.testing.assert_array_equal(noref.to_gray255(rgb, "gray"), [[255, 76], [0, 0]])
    # grey input: round(255 x), halves away from zero as MATLAB (numpy's round gives 0 and 2)
    grey = np.array([[0.5 / 255, 2.5 / 255, 1.0]])
    np.testing.assert_array_equal(noref.to_gray255(grey), [[1, 3, 255]])


def test_niqe_minimum_size_and_crop_border(synthetic):
    small = synthetic[:96, :192]
    assert math.isfinite(noref.niqe(small))
    with pytest.raises(InvalidInputError, match="96x192"):
        noref.niqe(synthetic[:96, :150])
    with pytest.raises(InvalidInputError, match="after cropping 40 px"):
        noref.niqe(synthetic, crop_border=40)  # 176 x 176 -> one block
    assert noref.niqe(synthetic, crop_border=10) == pytest.approx(
        noref.niqe(synthetic[10:-10, 10:-10])
    )


# ----------------------------------------------------------------------------------------------
# (f) bad input, (g) BRISQUE
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", [noref.niqe, noref.piqe])
def test_bad_input_raises_clear_errors(metric):
    good = np.full((200, 200), 0.5)
    bad_nan = good.copy()
    bad_nan[3, 3] = np.nan
    with pytest.raises(InvalidInputError, match="non-finite"):
        metric(bad_nan)
    with pytest.raises(InvalidInputError, match=r"\(H, W\) grey or \(H, W, 3\) RGB"):
        metric(np.zeros((200, 200, 2)))
    with pytest.raises(InvalidInputError, match=r"\(H, W\) grey or \(H, W, 3\) RGB"):
        metric(np.zeros(200))
    with pytest.raises(InvalidInputError, match="divide 8-bit data by 255"):
        metric(np.zeros((200, 200), dtype=np.uint8))
    with pytest.raises(InvalidInputError, match=r"8-bit data\? divide by 255"):
        metric(good * 255)
    with pytest.raises(InvalidInputError, match="empty"):
        metric(np.zeros((0, 200)))


def test_niqe_rejects_featureless_images_and_bad_options():
    with pytest.raises(InvalidInputError, match="NIQE is undefined"):
        noref.niqe(np.full((200, 200), 0.5))
    with pytest.raises(InvalidInputError, match="crop_border"):
        noref.niqe(pink_noise_image(), crop_border=-1)
    with pytest.raises(InvalidInputError, match="convert_to"):
        noref.niqe(pink_noise_image(), convert_to="lab")


def test_available_metrics_offers_no_brisque():
    """BRISQUE is not offered (no trained model is bundled): no function, not listed."""
    assert not hasattr(noref, "brisque")
    assert issubclass(noref.MetricUnavailableError, GLKMError)
    assert noref.available_metrics() == {"niqe": True, "piqe": True}
