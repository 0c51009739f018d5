"""Tests of glkm_prior.metrics (pure numpy benchmark metrics)."""

import math

import numpy as np
import pytest

from glkm_prior import metrics as M
from glkm_prior.metrics import alignment
from glkm_prior.errors import InvalidInputError


def smooth_field(shape, dy=0.0, dx=0.0, seed=0, n=8):
    """Analytic smooth image F(y - dy, x - dx) in about [0, 1] (sum of low-frequency waves)."""
    rng = np.random.default_rng(seed)
    y, x = np.meshgrid(np.arange(shape[0], dtype=float), np.arange(shape[1], dtype=float),
                       indexing="ij")
    out = np.zeros(shape)
    for _ in range(n):
        wy, wx = rng.uniform(-0.35, 0.35, size=2)
        ph = rng.uniform(0, 2 * np.pi)
        out += np.cos(wy * (y - dy) + wx * (x - dx) + ph)
    return 0.5 + out / (2.5 * n ** 0.5)


# ------------------------------------------------------------------------------------- PSNR


def test_psnr_hand_computation():
    x = np.zeros((4, 4))
    ref = np.zeros((4, 4))
    ref[1, 2] = 0.5
    mse = 0.25 / 16
    assert M.psnr(x, ref) == pytest.approx(10 * math.log10(1.0 / mse), rel=1e-14)
    assert M.psnr(x * 255, ref * 255, peak=255) == pytest.approx(10 * math.log10(64.0), rel=1e-14)
    # colour: the mean runs over all channels
    xc = np.zeros((2, 2, 3))
    rc = np.zeros((2, 2, 3))
    rc[0, 0, 1] = 0.1
    assert M.psnr(xc, rc) == pytest.approx(10 * math.log10(12 / 0.01), rel=1e-12)


def test_psnr_identical_is_inf():
    x = np.random.default_rng(0).random((8, 9))
    assert M.psnr(x, x.copy()) == math.inf


# ------------------------------------------------------------------------------------- SSIM


def test_ssim_identical_is_one():
    rng = np.random.default_rng(1)
    for shape in [(11, 11), (40, 57), (600, 520)]:
        x = rng.random(shape)
        assert M.ssim(x, x.copy()) == pytest.approx(1.0, abs=1e-12)


def test_ssim_constant_images_hand_computed():
    c1v, c2v = 0.3, 0.7
    a = np.full((32, 40), c1v)
    b = np.full((32, 40), c2v)
    C1 = (0.01 * 1.0) ** 2
    expected = (2 * c1v * c2v + C1) / (c1v ** 2 + c2v ** 2 + C1)
    assert M.ssim(a, b) == pytest.approx(expected, rel=1e-10)
    # with peak=255 on the 8-bit scale the value is the same
    assert M.ssim(a * 255, b * 255, peak=255) == pytest.approx(expected, rel=1e-10)
    assert M.ssim_map(a, b).shape == (32 - 10, 40 - 10)


def _naive_ssim_valid(a, b, peak):
    """Direct 2-D implementation: fspecial('gaussian', 11, 1.5) window, filter2 'valid'."""
    t = np.arange(11) - 5.0
    yy, xx = np.meshgrid(t, t, indexing="ij")
    w = np.exp(-(xx ** 2 + yy ** 2) / (2 * 1.5 ** 2))
    w[w < np.finfo(float).eps * w.max()] = 0
    w /= w.sum()

    def filt(img):
        win = np.lib.stride_tricks.sliding_window_view(img, (11, 11))
        return np.einsum("ijkl,kl->ij", win, w)

    C1, C2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    mu1, mu2 = filt(a), filt(b)
    s1 = filt(a * a) - mu1 ** 2
    s2 = filt(b * b) - mu2 ** 2
    s12 = filt(a * b) - mu1 * mu2
    m = ((2 * mu1 * mu2 + C1) * (2 * s12 + C2)) / ((mu1 ** 2 + mu2 ** 2 + C1) * (s1 + s2 + C2))
    return m.mean()


def test_ssim_matches_naive_2d_valid_window():
    rng = np.random.default_rng(2)
    a = rng.random((37, 50))
    b = np.clip(a + 0.15 * rng.standard_normal(a.shape), 0, 1)
    assert M.ssim(a, b) == pytest.approx(_naive_ssim_valid(a, b, 1.0), abs=1e-13)


def test_ssim_matches_skimage_without_downsampling():
    skm = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(3)
    # min side < 384 -> f = round(min/256) = 1, no downsampling; skimage's gaussian_weights
    # map ('reflect' padding) cropped by (11-1)//2 = 5 px equals the 'valid' map
    for shape in [(11, 11), (64, 80), (200, 383)]:
        a = rng.random(shape)
        b = np.clip(a + 0.2 * rng.standard_normal(shape), 0, 1)
        for peak in (1.0, 255.0):
            x, y = a * peak, b * peak
            ref = skm.structural_similarity(x, y, gaussian_weights=True, sigma=1.5,
                                            use_sample_covariance=False, data_range=peak)
            assert M.ssim(x, y, peak=peak) == pytest.approx(ref, abs=1e-12)


def test_ssim_downsample_factor_uses_matlab_rounding():
    assert M.ssim_downsample_factor((255, 255)) == 1
    assert M.ssim_downsample_factor((383, 1000)) == 1
    assert M.ssim_downsample_factor((384, 384)) == 2  # 1.5 -> 2
    assert M.ssim_downsample_factor((600, 600)) == 2
    assert M.ssim_downsample_factor((640, 900)) == 3  # 2.5 -> 3 (Python round() gives 2)


def test_ssim_downsampling_branch_f2():
    rng = np.random.default_rng(4)
    a = rng.random((600, 600))
    b = np.clip(a + 0.1 * rng.standard_normal(a.shape), 0, 1)

    def down2(x):  # 2x2 box average starting at pixel 0, then every 2nd pixel
        return (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2]) / 4

    da, db = down2(a), down2(b)
    assert da.shape == (300, 300)  # 300 px -> no further downsampling
    assert M.ssim(a, b) == pytest.approx(M.ssim(da, db), abs=1e-12)
    assert M.ssim(a, b) != pytest.approx(_naive_ssim_valid(a, b, 1.0), abs=1e-6)


def test_ssim_downsampling_branch_f3_symmetric_padding():
    rng = np.random.default_rng(5)
    a = rng.random((700, 770))  # f = round(700/256) = 3; 770 is not a multiple of 3
    b = np.clip(a + 0.1 * rng.standard_normal(a.shape), 0, 1)

    def down3(x):  # imfilter(x, ones(3)/9, 'symmetric', 'same'), then x(1:3:end, 1:3:end)
        p = np.pad(x, 1, mode="symmetric")
        acc = sum(p[i:i + x.shape[0], j:j + x.shape[1]] for i in range(3) for j in range(3)) / 9
        return acc[::3, ::3]

    da, db = down3(a), down3(b)
    assert da.shape == (234, 257)
    assert M.ssim(a, b) == pytest.approx(_naive_ssim_valid(da, db, 1.0), abs=1e-12)


# ------------------------------------------------------------------------------- colour / Y


def test_rgb_to_y():
    img = np.zeros((2, 3, 3))
    img[0, 0] = 1.0  # white
    img[0, 1] = (1.0, 0.0, 0.0)
    y = M.rgb_to_y(img)
    assert y.shape == (2, 3)
    assert y[0, 0] == pytest.approx(235 / 255, abs=1e-12)
    assert y[1, 2] == pytest.approx(16 / 255, abs=1e-12)
    assert y[0, 1] == pytest.approx((16 + 65.481) / 255, abs=1e-12)
    assert M.rgb_to_y(img * 255, peak=255)[0, 0] == pytest.approx(235.0, abs=1e-9)
    plain = M.rgb_to_y(img, matlab=False)
    assert plain[0, 0] == pytest.approx(1.0, abs=1e-12)
    assert plain[0, 1] == pytest.approx(0.299, abs=1e-12)


# -------------------------------------------------------------------------------- alignment


def _bilinear_bruteforce(est, border, hc, wc, sy, sx):
    """Generic bilinear sampling at (border + i + sy, border + j + sx), one shift at a time."""
    e = np.pad(est, ((0, 1), (0, 1)) + (((0, 0),) if est.ndim == 3 else ()), mode="edge")
    yy = border + np.arange(hc) + sy
    xx = border + np.arange(wc) + sx
    y0 = np.floor(yy).astype(int)
    x0 = np.floor(xx).astype(int)
    fy = (yy - y0)[:, None]
    fx = (xx - x0)[None, :]
    if est.ndim == 3:
        fy, fx = fy[..., None], fx[..., None]
    Y0, X0 = y0[:, None], x0[None, :]
    top = (1 - fx) * e[Y0, X0] + fx * e[Y0, X0 + 1]
    bot = (1 - fx) * e[Y0 + 1, X0] + fx * e[Y0 + 1, X0 + 1]
    return (1 - fy) * top + fy * bot


def _bruteforce_align(est, gt, maxshift, step, border):
    H, W = gt.shape[:2]
    ref = gt[border:H - border, border:W - border]
    shifts = np.arange(-maxshift, maxshift + step / 2, step)
    ssd = np.empty((shifts.size, shifts.size))
    for i, sy in enumerate(shifts):
        for j, sx in enumerate(shifts):
            t = _bilinear_bruteforce(est, border, ref.shape[0], ref.shape[1], sy, sx)
            ssd[i, j] = np.sum((t - ref) ** 2)
    i, j = np.unravel_index(np.argmin(ssd), ssd.shape)
    aligned = _bilinear_bruteforce(est, border, ref.shape[0], ref.shape[1], shifts[i], shifts[j])
    return ssd, (shifts[i], shifts[j]), aligned, ref


@pytest.mark.parametrize("step,maxshift", [(0.25, 2.0), (0.5, 3.0)])
def test_align_equals_bruteforce_grid(step, maxshift):
    rng = np.random.default_rng(6)
    gt = rng.random((36, 41))
    est = smooth_field((36, 41), 0.6, -1.1, seed=3) * 0.3 + 0.7 * np.roll(gt, (1, -1), (0, 1))
    border = 4
    ssd_bf, shift_bf, aligned_bf, ref_bf = _bruteforce_align(est, gt, maxshift, step, border)
    ssd_fast, _ = alignment._ssd_grid(est, ref_bf, alignment._shift_grid(maxshift, step), border)
    # closed-form grid: rounding of about 1e-12 of the energies (see test_align_closed_form_grid...)
    np.testing.assert_allclose(ssd_fast, ssd_bf, rtol=0, atol=1e-12 * (np.sum(est ** 2) + np.sum(ref_bf ** 2)))
    res = M.align_upto_shift(est, gt, maxshift=maxshift, step=step, border=border)
    assert res.shift == (float(shift_bf[0]), float(shift_bf[1]))
    np.testing.assert_allclose(res.aligned, aligned_bf, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(res.reference, ref_bf)
    assert res.ssd == pytest.approx(ssd_bf.min(), rel=1e-12)


@pytest.mark.parametrize("channels", [0, 3])
def test_align_closed_form_grid_equals_resampling_at_10_px(channels):
    """The closed-form SSD grid (integral images + one FFT) against resampling shift by shift,
    on the +-10 px search of the Lai protocol, grey and colour; rounding bound: 1e-12 of the
    energies (float64 cumulative sums over ~1e4 px)."""
    rng = np.random.default_rng(12)
    shape = (60, 64) + ((channels,) if channels else ())
    gt = smooth_field(shape[:2], 0.5, -1.2, seed=4)[..., None] * np.ones(channels or 1) if channels else smooth_field(shape, 0.5, -1.2, seed=4)
    est = np.roll(gt, (7, -6), (0, 1)) + 0.02 * rng.standard_normal(gt.shape)
    ssd_bf, shift_bf, aligned_bf, ref_bf = _bruteforce_align(est, gt, 10, 0.5, 12)
    ssd, _ = alignment._ssd_grid(est, ref_bf, alignment._shift_grid(10, 0.5), 12)
    np.testing.assert_allclose(ssd, ssd_bf, rtol=0, atol=1e-12 * (np.sum(est ** 2) + np.sum(ref_bf ** 2)))
    res = M.align_upto_shift(est, gt, maxshift=10, step=0.5, border=12)
    assert res.shift == (float(shift_bf[0]), float(shift_bf[1])) == (7.0, -6.0)
    np.testing.assert_allclose(res.aligned, aligned_bf, rtol=0, atol=1e-15)


def test_align_ties_go_to_the_first_shift():
    """A constant estimate fits every shift equally: MATLAB's ``find`` order picks the first
    (smallest dy, then smallest dx), as the shift-by-shift search did."""
    gt = np.random.default_rng(3).random((30, 30))
    res = M.align_upto_shift(np.full((30, 30), 0.5), gt, maxshift=2, step=0.5, border=4)
    assert res.shift == (-2.0, -2.0)


def test_align_bruteforce_matches_scipy_map_coordinates():
    ndi = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(7)
    gt = rng.random((30, 30))
    est = rng.random((30, 30))
    border, sy, sx = 3, -1.75, 2.5
    t = _bilinear_bruteforce(est, border, 24, 24, sy, sx)
    yy, xx = np.meshgrid(border + np.arange(24) + sy, border + np.arange(24) + sx, indexing="ij")
    ref = ndi.map_coordinates(est, [yy, xx], order=1, mode="nearest")
    np.testing.assert_allclose(t, ref, atol=1e-13)


def test_align_colour_equals_bruteforce():
    rng = np.random.default_rng(8)
    gt = rng.random((30, 32, 3))
    est = np.roll(gt, (1, 0), (0, 1)) + 0.05 * rng.standard_normal(gt.shape)
    ssd_bf, shift_bf, aligned_bf, _ = _bruteforce_align(est, gt, 2.0, 0.5, 3)
    res = M.align_upto_shift(est, gt, maxshift=2, step=0.5, border=3)
    assert res.shift == (1.0, 0.0) == (float(shift_bf[0]), float(shift_bf[1]))
    np.testing.assert_allclose(res.aligned, aligned_bf, atol=1e-15)
    y_al = M.rgb_to_y(res.aligned)
    y_ref = M.rgb_to_y(res.reference)
    assert res.ssim == pytest.approx(M.ssim(y_al, y_ref), abs=1e-15)


def test_align_integer_shift_sign_convention():
    big = smooth_field((90, 90), seed=1)
    gt = big[10:80, 10:80]
    # estimate content moved down by 2 and left by 3: est[y, x] = gt[y - 2, x + 3]
    est = big[8:78, 13:83]
    res = M.align_upto_shift(est, gt, maxshift=5, border=15)
    assert res.shift == (2.0, -3.0)
    assert res.ssd == 0.0 and res.psnr == math.inf
    assert res.ssim == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_array_equal(res.aligned, res.reference)
    assert res.aligned.shape == (40, 40)


def test_align_shift_at_grid_corner_with_border_equal_maxshift():
    big = smooth_field((60, 60), seed=2)
    gt = big[5:55, 5:55]
    est = big[9:59, 1:51]  # est[y, x] = gt[y + 4, x - 4] -> shift (-4, 4)
    res = M.align_upto_shift(est, gt, maxshift=4, step=0.5, border=4)
    assert res.shift == (-4.0, 4.0)
    assert res.ssd == 0.0


def test_align_recovers_subpixel_shift():
    shape = (96, 96)
    gt = smooth_field(shape, seed=4)
    est = smooth_field(shape, dy=1.25, dx=-2.5, seed=4)  # content moved by (+1.25, -2.5)
    res = M.align_upto_shift(est, gt)  # default maxshift 5, step 0.25, border 15
    assert res.shift == (1.25, -2.5)
    assert res.psnr > 45
    assert res.ssim > 0.99
    assert res.aligned.shape == res.reference.shape == (66, 66)
    assert M.psnr(res.aligned, res.reference) == pytest.approx(res.psnr)


def test_align_recovers_bilinear_shift_of_smooth_random_image():
    rng = np.random.default_rng(11)
    big = rng.random((130, 130))
    for _ in range(3):  # smooth: separable 5-tap box blur, three times
        big = sum(np.roll(big, k, 0) for k in range(-2, 3)) / 5
        big = sum(np.roll(big, k, 1) for k in range(-2, 3)) / 5
    off = 10
    gt = big[off:off + 100, off:off + 100]
    # est[y, x] = big(off + y - 1.25, off + x + 2.5), bilinear: content moved by (1.25, -2.5)
    est = _bilinear_bruteforce(big, off, 100, 100, -1.25, 2.5)
    res = M.align_upto_shift(est, gt)
    assert res.shift == (1.25, -2.5)
    assert res.psnr > 40


def test_center_crop_to():
    img = np.arange(100.0).reshape(10, 10)
    out = M.center_crop_to(img, (7, 8))
    np.testing.assert_array_equal(out, img[1:8, 1:9])
    out = M.center_crop_to(np.zeros((12, 14, 3)), (8, 8))
    assert out.shape == (8, 8, 3)
    with pytest.raises(InvalidInputError):
        M.center_crop_to(img, (11, 5))


def test_error_ratio():
    gt = smooth_field((70, 70), seed=5)
    rng = np.random.default_rng(9)
    a = gt + 0.02 * rng.standard_normal(gt.shape)
    b = gt + 0.01 * rng.standard_normal(gt.shape)
    assert M.error_ratio(a, a.copy(), gt) == 1.0
    assert M.error_ratio(gt, gt.copy(), gt) == 1.0
    r = M.error_ratio(a, b, gt, maxshift=2, step=0.5)
    ra = M.align_upto_shift(a, gt, maxshift=2, step=0.5)
    rb = M.align_upto_shift(b, gt, maxshift=2, step=0.5)
    assert r == pytest.approx(ra.ssd / rb.ssd, rel=1e-12)
    assert 2.5 < r < 6
    assert M.error_ratio(a, b, gt, squared=False, maxshift=2, step=0.5) == pytest.approx(
        math.sqrt(r), rel=1e-12)
    assert M.error_ratio(a, gt, gt) == math.inf


# ---------------------------------------------------------------------------------- kernels


def _line_kernel():
    k = np.zeros((9, 11))
    k[2, 1:5] = 1.0
    k[3, 5:8] = 2.0
    k[6, 8] = 0.5
    return k / k.sum()


def test_kernel_error_shifted_copy():
    k = _line_kernel()
    est = np.zeros((15, 15))
    est[1:10, 3:14] = 3.0 * k  # shifted, different size, not normalised
    r = M.kernel_error(est, k)
    assert r.rel_l2 < 1e-12
    assert r.psnr == math.inf or r.psnr > 200
    assert not r.flipped
    # common canvas 15x15; k is centred at offset (3, 2); est placed at (1, 3): content sits
    # 2 rows higher and 1 column right -> aligned[y, x] = est[y + dy, x + dx] with (-2, 1)
    assert r.shift == (-2, 1)


def test_kernel_error_delta_shift_convention_and_hand_psnr():
    t = np.zeros((11, 11))
    t[5, 5] = 1
    e = np.zeros((11, 11))
    e[7, 4] = 1
    r = M.kernel_error(e, t)
    assert r.shift == (2, -1) and r.rel_l2 == 0.0
    # delta vs a two-pixel kernel: residual^2 = 0.5^2 + 0.5^2, ||t||^2 = 0.5 -> rel_l2 = 1
    r = M.kernel_error(np.ones((1, 1)), np.array([[0.5, 0.5]]))
    assert r.rel_l2 == pytest.approx(1.0, rel=1e-12)
    # canvas 1x2 -> mse = 0.5 / 2, peak 0.5 -> psnr = 10 log10(0.25 / 0.25) = 0
    assert r.psnr == pytest.approx(0.0, abs=1e-9)


def test_kernel_error_flip():
    k = _line_kernel()
    flipped = np.rot90(k, 2)
    r0 = M.kernel_error(flipped, k)
    assert r0.rel_l2 > 0.3 and not r0.flipped
    r1 = M.kernel_error(flipped, k, allow_flip=True)
    assert r1.rel_l2 < 1e-12 and r1.flipped
    # a symmetric kernel never reports a flip
    sym = np.outer([1, 2, 1], [1, 2, 1]).astype(float)
    r2 = M.kernel_error(sym, sym, allow_flip=True)
    assert r2.rel_l2 == 0.0 and not r2.flipped and r2.shift == (0, 0)


# ------------------------------------------------------------------------------------ LPIPS


def test_lpips_available_reports_reason(monkeypatch):
    ok, reason = M.lpips_available()
    assert isinstance(ok, bool) and isinstance(reason, str) and reason
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    ok, reason = M.lpips_available()
    assert ok is False and "lpips" in reason
    assert M.lpips_available("nonsense")[0] is False


# ------------------------------------------------------------------------------- bad inputs


def test_bad_inputs_raise():
    good = np.random.default_rng(10).random((40, 40))
    nan = good.copy()
    nan[3, 3] = np.nan
    inf = good.copy()
    inf[0, 0] = np.inf
    cases = [
        lambda: M.psnr(nan, good),
        lambda: M.psnr(good, inf),
        lambda: M.psnr(good, good[:39]),
        lambda: M.psnr(good[0], good[0]),  # 1-D
        lambda: M.psnr(good[None, None], good[None, None]),  # 4-D
        lambda: M.psnr(good, good, peak=0),
        lambda: M.psnr(good, good, peak=float("nan")),
        lambda: M.psnr(np.array([["a"]]), np.array([["a"]])),
        lambda: M.psnr(good + 1j, good),
        lambda: M.psnr(np.zeros((0, 3)), np.zeros((0, 3))),
        lambda: M.ssim(np.stack([good] * 3, -1), np.stack([good] * 3, -1)),  # colour
        lambda: M.ssim(good[:10, :10], good[:10, :10]),  # smaller than the window
        lambda: M.ssim(nan, good),
        lambda: M.ssim(good, good[:, :30]),
        lambda: M.rgb_to_y(np.zeros((4, 4, 4))),
        lambda: M.rgb_to_y(good),
        lambda: M.align_upto_shift(good, good[:38, :38], border=5, maxshift=2),
        lambda: M.align_upto_shift(good, good, border=3, maxshift=5),  # maxshift > border
        lambda: M.align_upto_shift(good, good, border=5, maxshift=2, step=0),
        lambda: M.align_upto_shift(good, good, border=-1, maxshift=0),
        lambda: M.align_upto_shift(good, good, border="x", maxshift=0),
        lambda: M.align_upto_shift(good, good, border=5.5, maxshift=2),
        lambda: M.align_upto_shift(good, good, border=5, maxshift="a"),
        lambda: M.align_upto_shift(good, good, border=15, maxshift=5),  # 10x10 window
        lambda: M.align_upto_shift(inf, good, border=5, maxshift=2),
        lambda: M.align_upto_shift(np.zeros((40, 40, 2)), np.zeros((40, 40, 2)), border=5,
                                   maxshift=2),
        lambda: M.kernel_error(np.zeros((5, 5)), np.ones((5, 5))),
        lambda: M.kernel_error(np.ones((5, 5)), -np.ones((5, 5))),
        lambda: M.kernel_error(np.ones((5, 5, 1)), np.ones((5, 5))),
        lambda: M.kernel_error(np.full((3, 3), np.nan), np.ones((5, 5))),
        lambda: M.error_ratio(good, good, good[:30, :30]),
        lambda: M.center_crop_to(good, (0, 4)),
    ]
    for i, case in enumerate(cases):
        with pytest.raises(InvalidInputError):
            case()
            pytest.fail(f"case {i} did not raise")


def test_error_messages_name_the_problem():
    good = np.ones((20, 20))
    bad = good.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InvalidInputError, match="ref.*NaN"):
        M.psnr(good, bad)
    with pytest.raises(InvalidInputError, match="shape mismatch"):
        M.ssim(good, np.ones((20, 21)))
    with pytest.raises(InvalidInputError, match="grayscale"):
        M.ssim(np.ones((20, 20, 3)), np.ones((20, 20, 3)))


def test_shared_conventions_colour_and_matlab():
    """One definition each: BT.601 luma (numpy and torch alike), MATLAB round and fspecial."""
    import torch

    from glkm_prior.colour import luma, studio_y
    from glkm_prior.matlab import gaussian_window, matlab_round
    from glkm_prior.prior import to_luma

    rgb = np.random.default_rng(1).random((5, 6, 3))
    np.testing.assert_array_equal(M.rgb_to_y(rgb, matlab=False), luma(rgb[..., 0], rgb[..., 1], rgb[..., 2]))
    np.testing.assert_array_equal(M.rgb_to_y(rgb), studio_y(rgb[..., 0], rgb[..., 1], rgb[..., 2]))
    t = torch.from_numpy(rgb).permute(2, 0, 1)[None].float()
    assert torch.equal(to_luma(t)[0, 0], luma(t[0, 0], t[0, 1], t[0, 2]))
    assert studio_y(1.0, 1.0, 1.0) == pytest.approx(235 / 255) and luma(1.0, 1.0, 1.0) == pytest.approx(1.0)
    np.testing.assert_array_equal(matlab_round(np.array([-2.5, -0.5, 0.5, 1.5, 2.4999])), [-3, -1, 1, 2, 2])
    w2, w1 = gaussian_window(11, 1.5), gaussian_window(11, 1.5, ndim=1)
    assert w2.shape == (11, 11) and w2.sum() == pytest.approx(1) and np.allclose(w2, np.outer(w1, w1), atol=1e-17)
    assert gaussian_window(4, 1.0, ndim=1, centre=2).argmax() == 2
