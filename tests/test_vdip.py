"""VDIP (methods ``vdip-std``, ``vdip-extreme``, ``vdip-sparse``): the ELBO terms against
hand computations of upstream's formulas, the variants' schedules and short runs."""

import math

import numpy as np
import pytest
import torch

from glkm_prior import blur
from glkm_prior.plugins import get_method
from glkm_prior.ssim_loss import SSIM
from glkm_prior.context import RunContext

from conftest import plugin_manager

import glkm_adapters.glkm_branch as glkm_branch
import glkm_adapters.native_branch as native_branch
import glkm_adapters.vdip as vdip

K = 7


@pytest.fixture(scope="module")
def pm():
    return plugin_manager(glkm=glkm_branch, native=native_branch, vdip=vdip)


@pytest.fixture(scope="module")
def rgb():
    g = torch.Generator().manual_seed(1)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    base = 0.5 + 0.3 * torch.sin(7 * xx + 3 * yy)
    img = torch.stack([base, base * 0.8, 1 - base]) + 0.05 * torch.rand(3, 64, 64, generator=g)
    return img.clamp(0, 1)[None]


# --------------------------------------------------------------------------- hand computations
def corr_valid(x, k):
    """(C, H, W) correlated with (kh, kw), 'valid', by explicit sums."""
    C, H, W = x.shape
    kh, kw = k.shape
    out = np.zeros((C, H - kh + 1, W - kw + 1))
    for c in range(C):
        for i in range(H - kh + 1):
            for j in range(W - kw + 1):
                out[c, i, j] = np.sum(k * x[c, i : i + kh, j : j + kw])
    return out


def dv(z):
    return z[:, 1:, :] - z[:, :-1, :]


def dh(z):
    return z[:, :, 1:] - z[:, :, :-1]


def ssq(z):
    return float(np.sum(z**2))


@pytest.fixture(scope="module")
def tiny_maps():
    rng = np.random.default_rng(0)
    C = 3
    mean = rng.uniform(0, 1, (C, 6, 6))
    std = rng.uniform(0.01, 0.3, (C, 6, 6))
    k = rng.uniform(0, 1, (3, 3))
    k /= k.sum()
    y = rng.uniform(0, 1, (C, 4, 4))
    eps = rng.standard_normal((C, 6, 6))
    eps_d = rng.standard_normal((C, 6, 6))
    eps_b = rng.standard_normal((C, 6, 6))
    return mean, std, k, y, eps, eps_d, eps_b


def t(a):
    return torch.from_numpy(np.ascontiguousarray(a))[None]


def test_data_term_matches_upstream_sampling_expectation(tiny_maps):
    mean, std, k, y, eps, _, _ = tiny_maps
    C, H, W = mean.shape
    x = mean + std * eps                     # one reparameterised sample
    out = corr_valid(x, k)
    zero = -ssq(out - y) / 2
    first = -ssq(dv(out) - dv(y)) / 4 - ssq(dh(out) - dh(y)) / 4
    second = -(ssq(dv(dv(out)) - dv(dv(y))) + ssq(dh(dv(out)) - dh(dv(y)))
               + ssq(dh(dh(out)) - dh(dh(y))) + ssq(dv(dh(out)) - dv(dh(y)))) / 8
    # upstream's "loss on gradient": the kernel applied to the sample's differences
    gradient = -ssq(corr_valid(dv(x), k) - dv(y)) / 4 - ssq(corr_valid(dh(x), k) - dh(y)) / 4
    expected = (zero + first + second + gradient) / (H * W * C)
    got = vdip.data_term(t(mean), t(std), torch.from_numpy(k)[None, None], t(y), t(eps))
    assert math.isfinite(float(got)) and float(got) == pytest.approx(expected, rel=1e-10)


def test_sparse_kl_terms_match_a_hand_computation(tiny_maps):
    mean, std, k, _, _, _, _ = tiny_maps
    C, H, W = mean.shape
    entropy = float(np.sum(2 * np.log(np.maximum(std, 1e-45))) / 2)
    pen_v = dv(mean) ** 2 + std[:, 1:, :] ** 2 + std[:, :-1, :] ** 2
    pen_h = dh(mean) ** 2 + std[:, :, 1:] ** 2 + std[:, :, :-1] ** 2
    prior = float(np.sum(pen_v / (pen_v + 1e-6)) / 4 + np.sum(pen_h / (pen_h + 1e-6)) / 4)
    k_l2 = float(np.sum(k**2) / 2)
    total = entropy / (H * W * C) - prior / ((H - 1) * (W - 1) * C) - 10 * k_l2
    got = vdip.negative_kl(t(mean), t(std), torch.from_numpy(k).reshape(-1), "sparse")
    assert all(math.isfinite(float(v)) for v in got.values())
    assert float(got["entropy"]) == pytest.approx(entropy, rel=1e-12)
    assert float(got["prior"]) == pytest.approx(prior, rel=1e-12)
    assert float(got["kernel_l2"]) == pytest.approx(k_l2, rel=1e-12)
    assert float(got["total"]) == pytest.approx(total, rel=1e-12)
    none = vdip.negative_kl(t(mean), t(std), torch.from_numpy(k).reshape(-1), None)
    assert float(none["total"]) == pytest.approx(entropy / (H * W * C) - 10 * k_l2, rel=1e-12)


@pytest.mark.parametrize("bias", [1e-45, 0.5])
def test_extreme_channel_terms_match_a_hand_computation(tiny_maps, bias):
    mean, std, k, _, _, eps_d, eps_b = tiny_maps
    C, H, W = mean.shape
    win = 3  # upstream uses 35; the formula is the same for any window

    def channel_min(z):
        out = np.zeros((H - win + 1, W - win + 1))
        for i in range(out.shape[0]):
            for j in range(out.shape[1]):
                out[i, j] = z[:, i : i + win, j : j + win].min()
        return out

    m2, s2 = mean**2, std**2
    dark = channel_min(m2 + s2 + eps_d * np.sqrt(4 * m2 * s2 + 2 * s2 * s2 + 1e-32))
    bright = channel_min((1 - mean) ** 2 + s2 + eps_b * np.sqrt(4 * s2 + 4 * m2 * s2 + 2 * s2 * s2 + 1e-32))
    prior = float(np.sum(dark / (dark + bias)) / 4 + np.sum(bright / (bright + bias)) / 4)
    got = vdip.extreme_prior_term(t(mean), t(std), t(eps_d), t(eps_b), window=win, bias=bias)
    assert float(got) == pytest.approx(prior, rel=1e-10)
    if bias == 1e-45:
        full = vdip.negative_kl(t(mean), t(std), torch.from_numpy(k).reshape(-1), "extreme", t(eps_d), t(eps_b),
                                window=win)
        entropy = float(np.sum(np.log(std)))
        expected = entropy / (H * W * C) - prior / ((H - win + 1) * (W - win + 1)) - 10 * float(np.sum(k**2) / 2)
        assert float(full["total"]) == pytest.approx(expected, rel=1e-10)


def test_kl_weight_schedule_and_variants():
    assert vdip.kl_weight(0.1, 0) == 0.1 and vdip.kl_weight(0.1, 999) == 0.1
    assert vdip.kl_weight(0.1, 1000) == pytest.approx(0.01) and vdip.kl_weight(0.1, 1999) == pytest.approx(0.01)
    assert vdip.kl_weight(1e-4, 2500) == pytest.approx(1e-6)
    v = vdip.VARIANTS
    assert (v["sparse"].kl_weight, v["sparse"].prefit_steps, v["sparse"].prior) == (0.1, 500, "sparse")
    assert (v["extreme"].kl_weight, v["extreme"].prefit_steps, v["extreme"].skip_nan) == (1e-4, 5, True)
    assert v["std"].prior is None and not v["std"].kl
    cfg = vdip.make_config(vdip.VDIPConfig)
    assert (cfg.iters, cfg.elbo_steps, cfg.milestones, cfg.lr_image, cfg.input_depth, cfg.colour) == (
        5000, 2000, (2000, 3000, 4000), 1e-2, 3, "rgb")


# --------------------------------------------------------------------------- the loop
@pytest.mark.parametrize("branch", ["glkm", "native"])
def test_vdip_loop_swaps_only_the_branch_and_follows_the_elbo_schedule(pm, tiny_prior, rgb, branch):
    cfg = vdip.make_config(vdip.VDIPConfig, iters=3, prefit_steps=2)
    loop = vdip.VDIP(rgb, K, variant="sparse", config=cfg, kernel_branch=branch, prior=tiny_prior, context=RunContext(pm=pm))
    groups = loop.optimizer.param_groups
    assert [id(p) for p in groups[0]["params"]] == [id(p) for p in loop.net.parameters()]
    assert [id(p) for p in groups[1]["params"]] == [id(p) for p in loop.branch.parameters()]
    assert groups[1]["lr"] == loop.branch.default_lr and groups[0]["lr"] == 1e-2
    assert loop.net.head[-2].out_channels == 6  # mean and std of R, G, B
    # pre-fit: the kernel is pulled to uniform only for the native branch
    assert loop.kernel_prefit == (branch == "native")
    uniform = torch.full((K * K,), 1 / K**2)
    k0 = loop.kernel().detach().reshape(-1)
    loop.before_loop(progress=False)
    k1 = loop.kernel().detach().reshape(-1)
    if branch == "glkm":
        assert torch.equal(k0, k1)
    else:
        assert (k1 - uniform).norm() < (k0 - uniform).norm()
    # -ELBO with KL weight 0.1, then 0.01 after 1000 iterations, then 1 - SSIM on the mean
    loss, mean, k = loop.loss(0)
    terms = loop.last_terms
    assert all(math.isfinite(float(v)) for v in terms.values())
    assert loss.item() == pytest.approx(-(float(terms["data"]) + 0.1 * float(terms["kl_total"])), rel=1e-5)
    loss, mean, k = loop.loss(1000)
    terms = loop.last_terms
    assert loss.item() == pytest.approx(-(float(terms["data"]) + 0.01 * float(terms["kl_total"])), rel=1e-5)
    loss, mean, k = loop.loss(2000)
    with torch.no_grad():
        expected = 1 - SSIM()(blur(mean, k, "valid"), rgb)
    assert loss.item() == pytest.approx(float(expected), rel=1e-5)


@pytest.mark.parametrize("method", ["vdip-std", "vdip-extreme", "vdip-sparse"])
def test_short_runs_are_finite(pm, tiny_prior, rgb, method):
    run = get_method(method, pm).factory
    res = run(rgb, kernel_size=K, kernel_branch="native", iters=3, prior=tiny_prior, context=RunContext(pm=pm), progress=False)
    info = res["info"]
    assert info["variant"] == method.split("-")[1] and info["prefit_steps"] == 1  # 500 or 5 scaled to 3 its
    assert all(math.isfinite(v) for v in info["losses"])
    assert all(math.isfinite(v) for k, v in info.items() if k.startswith("last_"))
    assert ("last_kl_total" in info) == (method != "vdip-std")  # upstream's Std drops the KL
    assert res["image"].shape == rgb.shape and res["kernel"].shape == (1, 1, K, K)
    assert res["kernel"].min() >= 0 and abs(float(res["kernel"].sum()) - 1) < 1e-5


def test_prefit_length_and_nan_skip(pm, rgb):
    full = vdip.VDIP(rgb, K, variant="extreme", config=vdip.make_config(vdip.VDIPConfig), kernel_branch="native", context=RunContext(pm=pm))
    assert full.prefit_steps == 5 and full.cfg.iters == 5000
    short = vdip.VDIP(rgb, K, variant="sparse", config=vdip.make_config(vdip.VDIPConfig, iters=20),
                      kernel_branch="native", context=RunContext(pm=pm))
    assert short.prefit_steps == 2
    # Extreme skips an update whose gradients hold NaN (upstream checkNaN)
    before = [p.detach().clone() for p in full.net.parameters()]
    bad = full.net(full.input_saved).sum() * float("nan")
    assert full.optimise(bad, 0) is False
    assert all(torch.equal(a, b) for a, b in zip(before, full.net.parameters()))


def test_std_variant_can_add_the_entropy_and_kernel_terms(pm, rgb):
    cfg = vdip.make_config(vdip.VDIPConfig, iters=1, prefit_steps=0, kl=True)
    loop = vdip.VDIP(rgb, K, variant="std", config=cfg, kernel_branch="native", context=RunContext(pm=pm))
    loop.loss(0)
    assert float(loop.last_terms["kl_prior"]) == 0 and "kl_entropy" in loop.last_terms


def test_grey_and_ycbcr_inputs(pm, rgb):
    grey = rgb[:, :1]
    res = vdip.run_vdip_sparse(grey, kernel_size=K, kernel_branch="native", iters=1, context=RunContext(pm=pm), progress=False,
                               prefit_steps=0)
    assert res["image"].shape == grey.shape and res["info"]["colour"] == "grey"
    res = vdip.run_vdip_sparse(rgb, kernel_size=K, kernel_branch="native", iters=1, context=RunContext(pm=pm), progress=False,
                               prefit_steps=0, colour="ycbcr")
    assert res["image"].shape == rgb.shape and res["info"]["colour"] == "ycbcr"


@pytest.mark.parametrize("variant", ["extreme", "sparse"])
def test_an_interrupted_vdip_run_resumes_to_the_uninterrupted_result(tmp_path, pm, rgb, variant):
    """Pre-fit, ELBO (with its noise draws) then SSIM: a run killed after its checkpoint at step
    4 and resumed ends bit-identical to the straight run, with the same last ELBO terms."""

    class Interrupt(Exception):
        pass

    def loop():
        cfg = vdip.make_config(vdip.VDIPConfig, iters=7, prefit_steps=2, elbo_steps=5, channels=(8, 8),
                               skip_channels=(4, 4))
        return vdip.VDIP(rgb[..., :40, :40], K, variant=variant, config=cfg, kernel_branch="native", context=RunContext(pm=pm), seed=2)

    def stop(step, image, kernel):
        if step == 6:
            raise Interrupt

    straight = loop().run(progress=False)
    with pytest.raises(Interrupt):
        loop().run(progress=False, callback=stop, trace_every=1, checkpoint=tmp_path / "c", checkpoint_every=4)
    resumed = loop().run(progress=False, checkpoint=tmp_path / "c", checkpoint_every=4)
    assert resumed["info"]["resumed_from"] == 4
    assert torch.equal(resumed["image"], straight["image"]) and torch.equal(resumed["kernel"], straight["kernel"])
    same = ("losses", "prefit_loss_last", "last_elbo", "last_data")
    assert {k: resumed["info"][k] for k in same} == {k: straight["info"][k] for k in same}
