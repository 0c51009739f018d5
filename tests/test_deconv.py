"""Tests of glkm_prior.deconv (non-blind deconvolution), CPU only.

PSNR figures are printed (run with ``-s`` to see them).
"""

import math

import pytest
import torch
import torch.nn.functional as F

from glkm_prior.deconv import boundary, hyper_laplacian, operators, tiling
from glkm_prior.deconv import edgetaper, hyper_laplacian_deconv, wiener_deconv
from glkm_prior.errors import InvalidInputError, KernelSizeError
from glkm_prior.physics import circular_correlate, fast_fft_size, kernel_otf


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """Run single-threaded: the problems here are small, and on a shared 2-core machine torch's
    intra-op thread pool is slowed down 10x or more by other processes competing for the cores."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)



def motion_kernel(size=15):
    """A motion-like kernel: a quadratic Bezier curve splatted bilinearly, sum 1."""
    t = torch.linspace(0.0, 1.0, 500, dtype=torch.float64)
    s = (size - 1) / 14.0
    p0 = torch.tensor([1.0, 1.0]) * s
    p1 = torch.tensor([14.0, 3.0]) * s
    p2 = torch.tensor([4.0, 13.0]) * s
    pts = ((1 - t) ** 2)[:, None] * p0 + (2 * (1 - t) * t)[:, None] * p1 + (t ** 2)[:, None] * p2
    k = torch.zeros(size, size, dtype=torch.float64)
    r, c = pts[:, 0], pts[:, 1]
    r0 = r.floor().long().clamp(0, size - 2)
    c0 = c.floor().long().clamp(0, size - 2)
    fr, fc = r - r0, c - c0
    for dr, dc, wgt in ((0, 0, (1 - fr) * (1 - fc)), (1, 0, fr * (1 - fc)),
                        (0, 1, (1 - fr) * fc), (1, 1, fr * fc)):
        k.index_put_((r0 + dr, c0 + dc), wgt, accumulate=True)
    return (k / k.sum()).float()


def scene(H, W, seed=0):
    """Piecewise-smooth test image: smooth background + random discs, boxes and diamonds."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(H, dtype=torch.float32),
                            torch.arange(W, dtype=torch.float32), indexing="ij")
    img = 0.35 + 0.25 * xx / W + 0.1 * torch.sin(yy / 23.0 + xx / 41.0)
    for i in range(max(4, int(H * W / 1500))):
        cy = float(torch.rand(1, generator=g)) * H
        cx = float(torch.rand(1, generator=g)) * W
        r = 4 + float(torch.rand(1, generator=g)) * 14
        val = float(torch.rand(1, generator=g))
        if i % 3 == 0:
            m = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        elif i % 3 == 1:
            m = ((yy - cy).abs() < r) & ((xx - cx).abs() < 0.6 * r)
        else:
            m = ((yy - cy) + (xx - cx)).abs() + 2 * ((yy - cy) - (xx - cx)).abs() < 1.5 * r
        img = torch.where(m, torch.full_like(img, val), img)
    return img.clamp(0, 1)


def blur_valid(big, k, noise, seed):
    """'valid' blur of a larger sharp image (conv2d convention) + Gaussian noise.

    Returns (sharp, blurry) of the same size: blurry = k * sharp in 'same' geometry with the
    true content outside the frame (no periodicity, realistic boundaries)."""
    Kh, Kw = k.shape
    y = F.conv2d(big, k[None, None])
    x = big[..., Kh // 2:Kh // 2 + y.shape[-2], Kw // 2:Kw // 2 + y.shape[-1]]
    y = y + noise * torch.randn(y.shape, generator=torch.Generator().manual_seed(seed))
    return x, y


def psnr(a, b, mask=None):
    e = (a - b) ** 2
    if mask is not None:
        e = e[..., mask]
    return float(10 * torch.log10(1.0 / e.mean()))


def border_mask(H, W, lo, hi):
    """Pixels whose distance to the nearest image border is in [lo, hi)."""
    yy, xx = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    d = torch.minimum(torch.minimum(yy, H - 1 - yy), torch.minimum(xx, W - 1 - xx))
    return (d >= lo) & (d < hi)


def conv2d_circular(x, k):
    """Reference circular cross-correlation with F.conv2d ('same' size, centre K // 2)."""
    Kh, Kw = k.shape
    B, C, H, W = x.shape
    xp = F.pad(x.reshape(B * C, 1, H, W), (Kw // 2, Kw - 1 - Kw // 2, Kh // 2, Kh - 1 - Kh // 2),
               mode="circular")
    return F.conv2d(xp, k[None, None].to(x.dtype)).reshape(B, C, H, W)


EPS32 = torch.finfo(torch.float32).eps  # 1.19e-7


def assert_same_up_to_rounding(a, b, fn, n_fft):
    """``a`` and ``b`` are the same deconvolution computed by two float32 code paths (batched vs
    separate FFTs, whose rounding differs between CPUs: 4e-7 with AVX2, 1.2e-5 with AVX-512).

    One FFT pass on an ``n_fft``-point working domain rounds values <= 1 by about
    ``delta = eps32 * log2(n_fft)`` (1.8e-6 on the 160x160 domain of the 128-px problem).
    * Wiener is linear and continuous: delta amplified by at most the filter gain
      ``max |K| / (|K|^2 + reg |D|^2)`` (~10 here), x 5 margin for the CG iterations -> max < 50 delta.
    * hyper-Laplacian: the w-step's hard threshold can flip isolated pixels, each moving x by up to the
      jump of the minimiser at the threshold (0.07 at beta = 22.6) -> max loose (0.1); the mean stays at
      rounding level plus a few flips (each ~0.03 of total |diff| over >= 16k pixels, ~2e-6) -> mean < 4
      delta (a 1 % change of lam moves the mean by 8e-5; a wrong kernel or mixed-up channel by > 1e-2).
    """
    delta = EPS32 * math.log2(n_fft)
    d = (a - b).abs()
    if fn is wiener_deconv:
        assert d.max().item() < 50 * delta, (d.max().item(), 50 * delta)
    else:
        assert d.mean().item() < 4 * delta, (d.mean().item(), 4 * delta)
        assert d.max().item() < 0.1, d.max().item()


def _working_domain_pixels(n, K):
    """Pixels of the padded FFT working domain of an n x n frame and a K x K kernel (as in deconv)."""
    return fast_fft_size(n + 2 * K) ** 2


def cg_minimise(obj, shape, iters=3000, tol=1e-13):
    """Minimise a convex quadratic ``obj`` (float64) by plain conjugate gradients, with
    gradients and Hessian-vector products from autograd (an independent slow solver)."""

    def grad(v):
        v = v.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(obj(v), v)
        return g

    zero = torch.zeros(shape, dtype=torch.float64)
    g0 = grad(zero)
    x = zero.clone()
    r = -g0
    p = r.clone()
    rr = (r * r).sum()
    for _ in range(iters):
        hp = grad(p) - g0
        a = rr / (p * hp).sum()
        x = x + a * p
        r = r - a * hp
        rr_new = (r * r).sum()
        if rr_new.sqrt() < tol:
            break
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


# --------------------------------------------------------------------------------------------
# FFT correlation helper (conv2d convention, odd and even kernels)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ks", [(15, 15), (5, 7), (1, 1), (4, 4), (6, 8), (14, 14), (2, 3)])
def test_fft_correlate_matches_conv2d_circular(ks):
    g = torch.Generator().manual_seed(sum(ks))
    x = torch.rand(2, 3, 24, 29, generator=g)
    k = torch.rand(*ks, generator=g)
    k = k / k.sum()
    ref = conv2d_circular(x, k)
    out = circular_correlate(x, k)
    assert out.shape == x.shape and out.dtype == torch.float32
    # float32: FFT pair on 24x29 points + a conv2d sum of Kh*Kw terms, values <= 1, x 2 margin
    tol32 = 2 * EPS32 * (2 * math.log2(24 * 29) + math.log2(ks[0] * ks[1]) + 1)
    assert (out - ref).abs().max().item() < tol32
    # the same in float64 (the helper computes in the input's dtype): exact up to eps64 * log2(N)
    x64, k64 = x.double(), k.double()
    ref64, out64 = conv2d_circular(x64, k64), circular_correlate(x64, k64)
    assert (out64 - ref64).abs().max().item() < 1e-12
    # the symmetric padding of the brief, (K//2,)*4, gives the same result on the first H x W
    # outputs (for even kernels it produces one extra row/column at the end)
    Kh, Kw = ks
    ref2 = F.conv2d(F.pad(x64.reshape(6, 1, 24, 29), (Kw // 2,) * 2 + (Kh // 2,) * 2, mode="circular"),
                    k64[None, None])
    assert (out64 - ref2[..., :24, :29].reshape(x.shape)).abs().max().item() < 1e-12
    # the quadratic solver's forward operator is the same correlation (float32 OTF: bound as above)
    solver = operators._QuadraticSolver(x, k)
    assert (solver.blur(torch.fft.rfft2(x)) - ref).abs().max().item() < tol32


def test_otf_centre_convention():
    # a delta at the kernel centre (K//2, K//2) is the identity, for odd and even sizes
    for K in (5, 6):
        k = torch.zeros(K, K)
        k[K // 2, K // 2] = 1.0
        otf = kernel_otf(k, (16, 20))
        assert otf.shape == (16, 11)
        assert torch.allclose(otf, torch.ones_like(otf))
    # a delta one pixel right of the centre reads x[i, j + 1] (correlation, no flip)
    k = torch.zeros(4, 4)
    k[2, 3] = 1.0
    x = torch.rand(1, 1, 10, 12, dtype=torch.float64)
    # float64 (float32 rounding of the FFT pair is ~2 eps32 log2(120) = 1.6e-6, above the old 1e-6)
    assert torch.allclose(circular_correlate(x, k), torch.roll(x, -1, dims=-1), rtol=0, atol=1e-12)


# --------------------------------------------------------------------------------------------
# closed-form x-step vs a slow iterative solve
# --------------------------------------------------------------------------------------------


def _small_problem(seed=0, ks=(5, 5), n=24):
    g = torch.Generator().manual_seed(seed)
    y = torch.rand(1, 1, n, n, generator=g, dtype=torch.float64)
    k = torch.rand(*ks, generator=g, dtype=torch.float64) ** 3
    k = k / k.sum()
    wx = 0.1 * torch.randn(1, 1, n, n, generator=g, dtype=torch.float64)
    wy = 0.1 * torch.randn(1, 1, n, n, generator=g, dtype=torch.float64)
    return y, k, wx, wy


@pytest.mark.parametrize("ks", [(5, 5), (4, 6)])
def test_quadratic_xstep_matches_iterative_solve(ks):
    y, k, wx, wy = _small_problem(1, ks)
    weight = 0.05

    def obj(x):  # 1/2 ||k*x - y||^2 + weight/2 (||Dx x - wx||^2 + ||Dy x - wy||^2)
        dx = torch.roll(x, -1, dims=-1) - x
        dy = torch.roll(x, -1, dims=-2) - x
        return 0.5 * ((conv2d_circular(x, k) - y) ** 2).sum() + 0.5 * weight * (
            ((dx - wx) ** 2).sum() + ((dy - wy) ** 2).sum())

    ref = cg_minimise(obj, y.shape)
    solver = operators._QuadraticSolver(y.float(), k.float(), grad_reg=True)
    out = solver.solve(weight, operators.circular_gradient_adjoint(wx.float(), wy.float()))
    assert (out.double() - ref).abs().max().item() < 1e-4

    # identity regulariser: 1/2 ||k*x - y||^2 + weight/2 ||x - w||^2
    def obj_id(x):
        return 0.5 * ((conv2d_circular(x, k) - y) ** 2).sum() + 0.5 * weight * ((x - wx) ** 2).sum()

    ref = cg_minimise(obj_id, y.shape)
    out = operators._QuadraticSolver(y.float(), k.float(), grad_reg=False).solve(weight, wx.float())
    assert (out.double() - ref).abs().max().item() < 1e-4


@pytest.mark.parametrize("grad_reg", [True, False])
def test_wiener_periodic_matches_iterative_solve(grad_reg):
    y, k, _, _ = _small_problem(2)
    reg = 0.02

    def obj(x):  # ||k*x - y||^2 + reg * R(x)
        if grad_reg:
            r = ((torch.roll(x, -1, dims=-1) - x) ** 2).sum() + ((torch.roll(x, -1, dims=-2) - x) ** 2).sum()
        else:
            r = (x ** 2).sum()
        return ((conv2d_circular(x, k) - y) ** 2).sum() + reg * r

    ref = cg_minimise(obj, y.shape)
    out = wiener_deconv(y.float(), k.float(), reg=reg, grad_reg=grad_reg, boundary="periodic", clip=False)
    assert (out.double() - ref).abs().max().item() < 1e-4


def test_wiener_valid_matches_iterative_masked_solve():
    """boundary='valid': data term only on the observed frame of the padded working domain."""
    y, k, _, _ = _small_problem(3, (5, 5), n=20)
    reg = 0.05
    dom = boundary._Domain(y.float(), k.float(), "valid")
    Hp, Wp = dom.y.shape[-2:]
    m = dom.mask().double()
    y_full = torch.zeros(1, 1, Hp, Wp, dtype=torch.float64)
    y_full[..., dom.top:dom.top + 20, dom.left:dom.left + 20] = y

    def obj(x):
        r = ((torch.roll(x, -1, dims=-1) - x) ** 2).sum() + ((torch.roll(x, -1, dims=-2) - x) ** 2).sum()
        return ((m * (conv2d_circular(x, k) - y_full)) ** 2).sum() + reg * r

    ref = cg_minimise(obj, (1, 1, Hp, Wp), iters=20000, tol=1e-12)
    ref = ref[..., dom.top:dom.top + 20, dom.left:dom.left + 20]
    out = wiener_deconv(y.float(), k.float(), reg=reg, clip=False, cg_iters=2000, cg_tol=1e-7)
    assert (out.double() - ref).abs().max().item() < 2e-4


# --------------------------------------------------------------------------------------------
# hyper-Laplacian w-step vs brute force
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.5, 2.0 / 3.0, 0.8, 1.0])
@pytest.mark.parametrize("beta", [1.0, 8.0, 181.0])
def test_wstep_matches_bruteforce(alpha, beta):
    tau = hyper_laplacian._hl_threshold(beta, alpha)
    v = torch.linspace(0.0, 1.2, 61, dtype=torch.float64)
    v = v[(v - tau).abs() > 1e-3]                        # no exact ties at the threshold
    v = v.float().double()                               # exactly representable in float32
    w = hyper_laplacian._hl_wstep(v.float(), beta, alpha).double()
    # odd symmetry: w(-v) = -w(v)
    assert torch.equal(hyper_laplacian._hl_wstep(-v.float(), beta, alpha).double(), -w)

    def f(ww, vv):
        return ww.abs() ** alpha + 0.5 * beta * (ww - vv) ** 2

    # for v >= 0 the minimiser lies in [0, v]; brute force on a 1e-5 grid over [-0.1, 1.3]
    grid = torch.linspace(-0.1, 1.3, 140001, dtype=torch.float64)
    best = grid[f(grid[None], v[:, None]).argmin(dim=1)]
    assert (w - best).abs().max().item() < 2e-5
    assert (f(w, v) - f(best, v)).max().item() < 1e-9      # never worse than the grid optimum


@pytest.mark.parametrize("alpha", [0.5, 2.0 / 3.0, 0.8])
def test_wstep_threshold_is_exact(alpha):
    beta = 8.0
    tau = hyper_laplacian._hl_threshold(beta, alpha)
    v = torch.tensor([tau * (1 - 1e-4), tau * (1 + 1e-4), -tau * (1 + 1e-4)], dtype=torch.float64)
    w = hyper_laplacian._hl_wstep(v, beta, alpha, newton_iters=30)
    assert w[0] == 0 and w[1] > 0 and w[2] == -w[1]
    # at v = tau, w = 0 and the non-zero stationary point are equally good
    w_tau = hyper_laplacian._hl_wstep(torch.tensor([tau * (1 + 1e-12)], dtype=torch.float64), beta, alpha, newton_iters=30)
    f = lambda ww: ww.abs() ** alpha + 0.5 * beta * (ww - tau) ** 2  # noqa: E731
    assert abs(float(f(w_tau)) - float(f(torch.zeros(1, dtype=torch.float64)))) < 1e-9


# --------------------------------------------------------------------------------------------
# end-to-end with the true kernel: PSNR, boundary handling
# --------------------------------------------------------------------------------------------

_N, _P, _K = 128, 48, 15


@pytest.fixture(scope="module")
def problem():
    """128x128 frame cut from a larger blurred scene ('valid'-style), 15x15 motion kernel, 1 %
    noise.  Also returns the larger observation (for an 'oracle' without frame boundaries)."""
    k = motion_kernel(_K)
    big = scene(_N + 2 * _P + _K - 1, _N + 2 * _P + _K - 1, seed=0)[None, None]
    xb, yb = blur_valid(big, k, noise=0.01, seed=1)
    x = xb[..., _P:_P + _N, _P:_P + _N]
    y = yb[..., _P:_P + _N, _P:_P + _N]
    return x, y, k, yb


@pytest.fixture(scope="module")
def results(problem):
    x, y, k, yb = problem
    crop = (Ellipsis, slice(_P, _P + _N), slice(_P, _P + _N))
    out = {
        "blurry": y.clamp(0, 1),
        "wiener": wiener_deconv(y, k),
        "wiener_taper": wiener_deconv(y, k, boundary="taper"),
        "wiener_periodic": wiener_deconv(y, k, boundary="periodic"),
        "hl": hyper_laplacian_deconv(y, k),
        "hl_taper": hyper_laplacian_deconv(y, k, boundary="taper"),
        "hl_periodic": hyper_laplacian_deconv(y, k, boundary="periodic"),
        "hl_oracle": hyper_laplacian_deconv(yb, k)[crop],
        "wiener_oracle": wiener_deconv(yb, k)[crop],
    }
    band = border_mask(_N, _N, 0, 16)
    ring = border_mask(_N, _N, 8, 16)
    table = {name: dict(all=psnr(r, x), band=psnr(r, x, band), interior=psnr(r, x, ~band),
                        ring8_16=psnr(r, x, ring)) for name, r in out.items()}
    print("\nPSNR [dB] on the 128x128 frame (band = 16-px border band, ring8_16 = 8..16 px in):")
    for name, row in table.items():
        print(f"  {name:16s} " + "  ".join(f"{key} {val:6.2f}" for key, val in row.items()))
    return out, table


def test_deconvolution_recovers_image(results):
    _, t = results
    blurry = t["blurry"]["all"]
    assert t["wiener"]["all"] >= blurry + 5.0
    assert t["hl"]["all"] >= blurry + 8.0
    # the sparse-gradient prior wins on this piecewise-smooth image
    assert t["hl"]["all"] >= t["wiener"]["all"] + 1.5
    assert t["hl_taper"]["all"] >= blurry + 8.0


def test_boundary_handling_prevents_ringing(results):
    _, t = results
    for name in ("hl", "wiener"):
        ok, periodic, oracle = t[name], t[name + "_periodic"], t[name + "_oracle"]
        # the border band is not much worse than the interior ...
        assert ok["band"] >= ok["interior"] - 4.0
        # ... while without boundary handling it is ruined by ringing
        assert periodic["band"] <= periodic["interior"] - 6.0
        assert ok["band"] >= periodic["band"] + 8.0
        # 8..16 px from the border the result is as good as with the frame cut from a larger
        # observation (what remains at 0..8 px is the intrinsic loss of partial observation)
        assert ok["ring8_16"] >= oracle["ring8_16"] - 1.5
        assert periodic["ring8_16"] <= oracle["ring8_16"] - 4.0
    # edgetaper alone also helps a lot, the exact 'valid' model a bit more
    for name in ("hl", "wiener"):
        assert t[name + "_taper"]["band"] >= t[name + "_periodic"]["band"] + 8.0
        assert t[name]["band"] >= t[name + "_taper"]["band"] - 0.2


def test_even_kernel_end_to_end():
    # identity and one-pixel-shift kernels of even size: the centre is K // 2
    x = scene(64, 64, seed=5)[None, None]
    k = torch.zeros(4, 4)
    k[2, 2] = 1.0
    out = wiener_deconv(x, k, reg=1e-4)
    assert (out - x).abs().max().item() < 2e-3
    k = torch.zeros(4, 4)
    k[3, 3] = 1.0                                       # y[i, j] = x[i + 1, j + 1]
    y = torch.roll(x, (-1, -1), dims=(-2, -1))
    out = hyper_laplacian_deconv(y, k, boundary="periodic", lam=1e-5)
    assert (out - x).abs().max().item() < 2e-2
    # a 14x14 motion kernel
    k = motion_kernel(14)
    big = scene(96 + 13, 96 + 13, seed=6)[None, None]
    x, y = blur_valid(big, k, noise=0.01, seed=7)
    assert psnr(hyper_laplacian_deconv(y, k), x) >= psnr(y.clamp(0, 1), x) + 6.0


# --------------------------------------------------------------------------------------------
# colour / batch
# --------------------------------------------------------------------------------------------


def test_grey_stays_grey_in_colour(problem, monkeypatch):
    _, y, k, _ = problem
    y3 = y.expand(1, 3, _N, _N).contiguous()
    n_fft = _working_domain_pixels(_N, _K)
    for fn in (hyper_laplacian_deconv, wiener_deconv):
        out = fn(y3, k)
        assert out.shape == (1, 3, _N, _N)
        # the channels differ only by rounding of the batched float32 FFTs (1.2e-5 on AVX-512)
        assert_same_up_to_rounding(out, out[:, :1].expand_as(out), fn, n_fft)
        # the per-channel path used for large images gives the same result
        monkeypatch.setattr(tiling, "_CHANNEL_CHUNK_PIXELS", 0)
        out_pc = fn(y3, k)
        monkeypatch.undo()
        assert_same_up_to_rounding(out_pc, out, fn, n_fft)


def test_batch_uses_one_kernel_per_element(problem):
    _, y, k, _ = problem
    k2 = motion_kernel(15).flip(0)
    yy = torch.cat([y.expand(1, 2, _N, _N), y.expand(1, 2, _N, _N).flip(-1)], 0)
    kb = torch.stack([k, k2])[:, None]
    out = hyper_laplacian_deconv(yy, kb)
    assert out.shape == (2, 2, _N, _N)
    # same up to float32 rounding of the FFTs (a view vs a fresh tensor may take another SIMD path);
    # a wrong kernel for an element changes the mean by > 1e-2
    n_fft = _working_domain_pixels(_N, _K)
    assert_same_up_to_rounding(out[0:1], hyper_laplacian_deconv(yy[0:1], k), hyper_laplacian_deconv, n_fft)
    assert_same_up_to_rounding(out[1:2], hyper_laplacian_deconv(yy[1:2], k2), hyper_laplacian_deconv, n_fft)
    # a single 2-D kernel is shared by the batch
    out = wiener_deconv(yy, k)
    assert_same_up_to_rounding(out[1:2], wiener_deconv(yy[1:2], k), wiener_deconv, n_fft)


# --------------------------------------------------------------------------------------------
# tiling
# --------------------------------------------------------------------------------------------


def _tile_interior(H, W, rows, cols, d):
    """Pixels at least d px away from every tile edge that is not an image border."""
    m = torch.zeros(H, W, dtype=torch.bool)
    for r0, r1 in rows:
        for c0, c1 in cols:
            a0, a1 = r0 + (d if r0 > 0 else 0), r1 - (d if r1 < H else 0)
            b0, b1 = c0 + (d if c0 > 0 else 0), c1 - (d if c1 < W else 0)
            m[a0:a1, b0:b1] = True
    return m


def test_tiling_matches_untiled():
    H, W = 600, 500
    k = motion_kernel(15)
    big = scene(H + 14, W + 14, seed=3)[None, None]
    x, y = blur_valid(big, k, noise=0.01, seed=4)
    ov = tiling._default_overlap(k.shape)
    rows, cols = tiling._tile_spans(H, 256, ov), tiling._tile_spans(W, 256, ov)
    assert len(rows) > 1 and len(cols) > 1
    # tile interiors: >= overlap px from tile edges inside the image, >= 32 px from the frame
    inner = _tile_interior(H, W, rows, cols, ov) & border_mask(H, W, 32, 10 ** 6)
    print(f"\ntiles rows {rows} cols {cols}, overlap {ov}")
    # tolerances on the max and 99.9th percentile of |diff| in tile interiors and on the mean
    # |diff| over the whole image
    for name, fn, tol_max, tol_q, tol_mean in (
            ("wiener", wiener_deconv, 5e-3, 3e-3, 1.5e-3),
            ("wiener_taper", lambda *a, **kw: wiener_deconv(*a, boundary="taper", **kw), 5e-2, 3e-2, 8e-3),
            ("hl", hyper_laplacian_deconv, 8e-2, 1.5e-2, 2e-3)):
        full = fn(y, k, tile=None)
        tiled = fn(y, k, tile=256)
        d = (full - tiled).abs()[0, 0]
        p_full, p_tiled = psnr(full, x), psnr(tiled, x)
        q = torch.quantile(d[inner], 0.999).item()
        print(f"  {name:12s} max|diff| {d.max():.2e}, in tile interiors {d[inner].max():.2e} "
              f"(99.9th pct {q:.1e}), mean {d.mean():.1e}; PSNR untiled {p_full:.2f} tiled {p_tiled:.2f}")
        assert d[inner].max().item() < tol_max
        assert d.mean().item() < tol_mean
        assert q < tol_q
        assert abs(p_full - p_tiled) < 0.15
    # for scale: how much the (non-convex, 6-iteration) hyper-Laplacian result itself moves when
    # the data is perturbed by 1e-4 -- isolated pixels whose thresholding decision flips
    full = hyper_laplacian_deconv(y, k, tile=None)
    pert = hyper_laplacian_deconv(y + 1e-4 * torch.randn(y.shape, generator=torch.Generator().manual_seed(5)),
                                  k, tile=None)
    print(f"  hl sensitivity: max|HL(y + 1e-4 noise) - HL(y)| = {(pert - full).abs().max():.2e}")


def test_tile_spans_and_weights_cover_image():
    for n, tile, ov in ((600, 256, 64), (500, 256, 64), (4000, 2048, 300), (1000, 300, 150), (257, 256, 64)):
        spans = tiling._tile_spans(n, tile, ov)
        assert spans[0][0] == 0 and spans[-1][1] == n
        assert all(e - s <= tile for s, e in spans)
        assert all(s1 < e0 and e0 - s1 >= ov - 1 for (s0, e0), (s1, e1) in zip(spans, spans[1:]))
        total = torch.zeros(n)
        for s, e in spans:
            total[s:e] += tiling._tile_ramp(s, e, n, ov, 7)
        assert total.min().item() > 0.0


def test_auto_tiling_threshold(monkeypatch):
    assert tiling._resolve_tile("auto", 2048, 2048, 64) is None
    assert tiling._resolve_tile("auto", 3000, 4000, 64) == tiling.AUTO_TILE_SIZE
    assert tiling._resolve_tile(None, 3000, 4000, 64) is None
    assert tiling._resolve_tile(256, 200, 250, 64) is None
    # 'auto' really tiles above the threshold (shrunk here to keep the test fast)
    monkeypatch.setattr(tiling, "AUTO_TILE_PIXELS", 100 * 100)
    monkeypatch.setattr(tiling, "AUTO_TILE_SIZE", 160)
    y = scene(150, 200, seed=8)[None, None]
    k = motion_kernel(9)
    auto = hyper_laplacian_deconv(y, k)
    assert torch.equal(auto, hyper_laplacian_deconv(y, k, tile=160))
    assert not torch.equal(auto, hyper_laplacian_deconv(y, k, tile=None))


# --------------------------------------------------------------------------------------------
# edgetaper
# --------------------------------------------------------------------------------------------


def test_edgetaper():
    y = scene(60, 70, seed=9)[None, None]
    k = motion_kernel(9)
    out = edgetaper(y, k)
    assert out.shape == y.shape
    # unchanged where the weights reach 1 (more than K - 1 px from the frame) ...
    assert torch.allclose(out[..., 9:-9, 9:-9], y[..., 9:-9, 9:-9], atol=1e-6)
    # ... and equal to the circular blur on the frame itself, so the wrap-around is smooth
    blurred = circular_correlate(y, k)
    assert torch.allclose(out[..., 0, :], blurred[..., 0, :], atol=1e-6)
    assert torch.allclose(out[..., :, -1], blurred[..., :, -1], atol=1e-6)
    jump = lambda im: (im[..., 0, :] - im[..., -1, :]).abs().mean()  # noqa: E731
    assert jump(out) < 0.5 * jump(y)
    with pytest.raises(KernelSizeError):
        edgetaper(y, torch.ones(60, 5))


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------


def _bad_calls():
    y = torch.rand(1, 1, 32, 32)
    k = motion_kernel(9)
    nan_y = y.clone()
    nan_y[0, 0, 3, 4] = float("nan")
    inf_k = k.clone()
    inf_k[4, 4] = float("inf")
    neg_k = k.clone()
    neg_k[0, 0] = -0.5
    return [
        ("non-4D", lambda f: f(y[0], k), "4-D"),
        ("2D", lambda f: f(y[0, 0], k), "4-D"),
        ("not a tensor", lambda f: f(y.numpy(), k), "torch.Tensor"),
        ("integer image", lambda f: f((y * 255).to(torch.uint8), k), "floating"),
        ("NaN in y", lambda f: f(nan_y, k), "NaN"),
        ("Inf in y", lambda f: f(y.masked_fill(y > 0.5, float("inf")), k), "NaN or Inf"),
        ("Inf in k", lambda f: f(y, inf_k), "NaN or Inf"),
        ("kernel larger than image", lambda f: f(y, torch.ones(33, 5) / 165), "larger than the image"),
        ("negative kernel", lambda f: f(y, neg_k), "non-negative"),
        ("zero kernel", lambda f: f(y, torch.zeros(5, 5)), "positive sum"),
        ("kernel 3-D", lambda f: f(y, k[None]), "shape"),
        ("kernel batch mismatch", lambda f: f(y.expand(2, 1, 32, 32), k.expand(3, 1, 9, 9)), "batch"),
        ("bad boundary", lambda f: f(y, k, boundary="zero"), "boundary"),
        ("bad tile", lambda f: f(y, k, tile="big"), "tile"),
        ("tile too small", lambda f: f(torch.rand(1, 1, 100, 100), k, tile=40), "tile"),
        ("overlap too small", lambda f: f(y, k, overlap=3), "overlap"),
    ]


@pytest.mark.parametrize("fn", [wiener_deconv, hyper_laplacian_deconv], ids=["wiener", "hl"])
@pytest.mark.parametrize("case", range(len(_bad_calls())))
def test_bad_inputs_raise(fn, case):
    name, call, words = _bad_calls()[case]
    with pytest.raises(InvalidInputError, match=words):
        call(fn)


@pytest.mark.parametrize("kwargs", [dict(lam=0), dict(lam=float("nan")), dict(alpha=1.5), dict(alpha=0),
                                    dict(beta_rate=1.0), dict(beta_max=0.5), dict(iters_per_beta=0)])
def test_bad_hl_parameters_raise(kwargs):
    with pytest.raises(InvalidInputError):
        hyper_laplacian_deconv(torch.rand(1, 1, 32, 32), motion_kernel(9), **kwargs)


@pytest.mark.parametrize("kwargs", [dict(reg=0), dict(reg=-1e-3), dict(cg_iters=-1), dict(cg_tol=-1.0)])
def test_bad_wiener_parameters_raise(kwargs):
    with pytest.raises(InvalidInputError):
        wiener_deconv(torch.rand(1, 1, 32, 32), motion_kernel(9), **kwargs)


def test_kernel_larger_than_image_is_kernel_size_error():
    with pytest.raises(KernelSizeError):
        hyper_laplacian_deconv(torch.rand(1, 1, 20, 20), torch.ones(21, 21))


def test_output_contract():
    y = torch.rand(2, 3, 40, 50, dtype=torch.float64)
    k = motion_kernel(7).double() * 3.0                   # unnormalised kernels are normalised
    for fn in (wiener_deconv, hyper_laplacian_deconv):
        out = fn(y, k)
        assert out.shape == y.shape and out.dtype == torch.float32
        assert out.min() >= 0 and out.max() <= 1
        assert torch.isfinite(out).all()


def test_noise_estimate_reads_white_noise_on_a_smooth_image_and_sets_the_prior_weight():
    from glkm_adapters.nonblind import NONBLIND, NOISE_GAIN, noise_adapted_lam
    from glkm_prior.deconv import estimate_noise

    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 200), torch.linspace(0, 1, 240), indexing="ij")
    smooth = (0.5 + 0.3 * torch.sin(3 * xx) * torch.cos(2 * yy))[None, None]
    assert estimate_noise(smooth) < 1e-3
    for sigma in (0.01, 0.03):
        noisy = smooth + sigma * torch.randn(smooth.shape, generator=g)
        assert estimate_noise(noisy) == pytest.approx(sigma, rel=0.05)
        assert noise_adapted_lam(noisy) == pytest.approx(max(NONBLIND["lam"], NOISE_GAIN * estimate_noise(noisy) ** 2))
    # independent noise per colour channel: the channel mean has sigma / sqrt(3)
    rgb = smooth.expand(1, 3, 200, 240) + 0.03 * torch.randn(1, 3, 200, 240, generator=g)
    assert estimate_noise(rgb) == pytest.approx(0.03 / 3 ** 0.5, rel=0.05)
    assert noise_adapted_lam(smooth) == NONBLIND["lam"]  # clean input keeps the Levin setting


def test_clipped_highlight_does_not_ring_when_saturated_pixels_leave_the_data_term():
    """A bright light (4x white) blurred and clipped at 1: with saturation handling the error
    around it (the halo ring) drops to less than half of the same run without it."""
    from glkm_prior.physics import blur

    g = torch.Generator().manual_seed(0)
    K, H, W = 15, 120, 120
    x = 0.2 + 0.4 * F.avg_pool2d(torch.rand(1, 1, H + K - 1 + 5, W + K - 1 + 5, generator=g), 6, stride=1)
    yy, xx = torch.meshgrid(torch.arange(x.shape[-2]), torch.arange(x.shape[-1]), indexing="ij")
    spot = ((yy - 60) ** 2 + (xx - 70) ** 2) <= 9
    x = torch.where(spot, torch.full_like(x, 4.0), x)
    k = torch.zeros(1, 1, K, K)
    k[0, 0, K // 2, 2:-2] = 1
    k[0, 0, 3: K // 2, K - 3] = 1
    k /= k.sum()
    y = (blur(x, k, "valid") + 0.005 * torch.randn(1, 1, H, W, generator=g)).clamp(0, 1)
    assert float((y >= 0.98).float().mean()) > 0.001  # the light is clipped
    truth = x[..., K // 2: K // 2 + H, K // 2: K // 2 + W].clamp(0, 1)
    s = spot[None, None, K // 2: K // 2 + H, K // 2: K // 2 + W].float()
    ring = F.max_pool2d(s, 31, stride=1, padding=15).bool() & ~F.max_pool2d(s, 5, stride=1, padding=2).bool()
    settings = dict(lam=2e-4, alpha=0.8, beta_max=1024, iters_per_beta=6)
    plain = hyper_laplacian_deconv(y, k, **settings)
    handled = hyper_laplacian_deconv(y, k, saturation=0.98, **settings)
    halo = lambda d: float(((d - truth) ** 2)[ring].mean().sqrt())  # noqa: E731
    assert halo(handled) < 0.5 * halo(plain)
    # without clipped pixels the option changes nothing
    y2 = y * 0.9
    assert torch.equal(hyper_laplacian_deconv(y2, k, saturation=0.98, **settings), hyper_laplacian_deconv(y2, k, **settings))
    with pytest.raises(InvalidInputError, match="saturation"):
        hyper_laplacian_deconv(y, k, saturation=1.5)
