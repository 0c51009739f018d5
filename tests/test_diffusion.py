"""Diffusion priors (glkm_prior.diffusion) and the BIRD / BlindDPS adapters.

Mechanics only, never quality: the denoisers are tiny and randomly initialised, built here (a
pure-torch one always; diffusers' UNet2DModel where diffusers is installed).
"""

import copy
import math
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from conftest import REPO, boxed_branch_plugin, mass_outside_centre, plugin_manager

from glkm_prior import blur, plugins
from glkm_prior.diffusion import (DDPMChain, Denoiser, alphas_cumprod_from, as_denoiser, ddim_step, ddim_timesteps,
                                  ddim_trajectory, linear_alphas_cumprod, load_diffusers_unet, load_guided_diffusion,
                                  load_guided_diffusion_state, project_to_sphere_, respaced_timesteps)
from glkm_prior.errors import InvalidInputError, WeightsError
from glkm_prior.context import RunContext

import glkm_adapters.bird as bird
import glkm_adapters.blinddps as blinddps
import glkm_adapters.glkm_branch as glkm_branch
import glkm_adapters.native_branch as native_branch

K = 9      # odd kernel for the GLKM / BIRD runs (the tiny prior's canvas is 31)
KN = 8     # the native kernel diffusion runs on a K x K "image": even for the tiny net
SIZE = 64  # the GLKM initializer's minimum image size


class TinyDenoiser(nn.Module):
    """A minimal epsilon network: conv stem + sinusoidal time embedding, one stride-2 level and a
    skip; ``learned_sigma`` doubles the output channels as guided-diffusion does."""

    def __init__(self, channels=3, width=16, learned_sigma=False, seed=0):
        super().__init__()
        self.in_channels = channels
        self.width = width
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.stem = nn.Conv2d(channels, width, 3, padding=1)
            self.temb = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
            self.down = nn.Conv2d(width, width, 3, stride=2, padding=1)
            self.mid = nn.Conv2d(width, width, 3, padding=1)
            self.up = nn.ConvTranspose2d(width, width, 2, stride=2)
            self.head = nn.Conv2d(2 * width, channels * (2 if learned_sigma else 1), 3, padding=1)

    def forward(self, x, t):
        half = self.width // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=x.dtype) / half)
        angles = t.to(x.dtype)[:, None] * freqs[None]
        emb = self.temb(torch.cat([angles.sin(), angles.cos()], dim=1))[:, :, None, None]
        h = F.silu(self.stem(x) + emb)
        u = self.up(F.silu(self.mid(F.silu(self.down(h)))))
        return self.head(torch.cat([h, u], dim=1))


def tiny(channels=3, learned_sigma=False, seed=0, **kw):
    return Denoiser(TinyDenoiser(channels, learned_sigma=learned_sigma, seed=seed), linear_alphas_cumprod(1000), **kw)


def tiny_diffusers_unet(sample_size=SIZE):
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    return diffusers.UNet2DModel(sample_size=sample_size, in_channels=3, out_channels=3, block_out_channels=(16, 32),
                                 layers_per_block=1, norm_num_groups=8,
                                 down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                                 up_block_types=("AttnUpBlock2D", "UpBlock2D"))


@pytest.fixture(scope="module")
def pm():
    return plugin_manager(glkm=glkm_branch, native=native_branch, bird=bird, blinddps=blinddps)


@pytest.fixture(scope="module")
def blurry():
    """(1, 3, 64, 64) in [0, 1]: smooth colour pattern blurred by a small box kernel."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, SIZE), torch.linspace(0, 1, SIZE), indexing="ij")
    sharp = torch.stack([0.5 + 0.4 * torch.sin(7 * xx), 0.5 + 0.4 * torch.cos(5 * yy), (xx + yy) / 2])[None]
    k = torch.zeros(1, 1, 5, 5)
    k[0, 0, 2, :] = 0.2
    return blur(sharp, k, "same").clamp(0, 1)


def frozen_and_untouched(den: Denoiser):
    params = list(den.unet.parameters())
    return not den.unet.training and all(not p.requires_grad and p.grad is None for p in params)


# =========================================================================== schedules and math
def test_schedules():
    assert ddim_timesteps(1000, 10) == [900, 800, 700, 600, 500, 400, 300, 200, 100, 0]  # BIRD: delta_t = 100
    steps = respaced_timesteps(1000, 5)
    assert steps[0] == 0 and steps[-1] == 999 and len(steps) == 5 and steps == sorted(steps)
    assert respaced_timesteps(1000, 1000) == list(range(1000))
    ac = linear_alphas_cumprod(1000)
    assert ac.dtype == torch.float64 and ac[0] == pytest.approx(1 - 1e-4) and ac[-1] == pytest.approx(4.04e-5, rel=0.01)
    with pytest.raises(InvalidInputError, match="non-increasing"):
        alphas_cumprod_from([0.5, 0.9])
    with pytest.raises(InvalidInputError, match=r"\(0, 1\]"):
        alphas_cumprod_from([1.0, 0.0])
    with pytest.raises(InvalidInputError):
        ddim_timesteps(1000, 0)
    # the full chain has the original betas; its last step (t = 0) returns x0
    chain = DDPMChain(ac)
    assert torch.allclose(chain.betas, torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64))
    assert chain.coef_x0[0].item() == pytest.approx(1.0) and chain.coef_xt[0].item() == pytest.approx(0.0, abs=1e-12)
    short = DDPMChain(ac, respaced_timesteps(1000, 5))
    assert torch.allclose(torch.cumprod(1 - short.betas, 0), ac[short.timesteps])
    lo, hi = short.posterior_log_variance_clipped[3].item(), math.log(short.betas[3].item())
    v = torch.tensor([-1.0, 1.0])
    assert torch.allclose(short.log_variance(3, v), torch.tensor([lo, hi], dtype=v.dtype))


def test_diffusers_scheduler_schedule_matches():
    diffusers = pytest.importorskip("diffusers")
    ac = alphas_cumprod_from(diffusers.DDPMScheduler())
    assert torch.allclose(ac, linear_alphas_cumprod(1000), atol=1e-6)


def test_ddim_step_without_clipping_is_linear_in_x_t():
    x, e = torch.randn(2, 3, 4, 4, dtype=torch.float64), torch.randn(2, 3, 4, 4, dtype=torch.float64)
    a, ap = 0.3, 0.7
    out, x0 = ddim_step(x, e, a, ap, clip=False)
    assert torch.allclose(out, math.sqrt(ap / a) * x + (math.sqrt(1 - ap) - math.sqrt(ap * (1 - a) / a)) * e)
    out_c, x0_c = ddim_step(x * 10, e, a, ap, clip=True)
    assert x0_c.abs().max() <= 1


def test_ddim_trajectory_is_deterministic():
    den = tiny()
    x_T = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    steps = ddim_timesteps(1000, 10)
    a = ddim_trajectory(x_T, den, steps, den.alphas_cumprod)
    b = ddim_trajectory(x_T.clone(), den, steps, den.alphas_cumprod)
    assert torch.equal(a, b) and a.shape == x_T.shape and a.abs().max() <= 1
    with pytest.raises(InvalidInputError, match="strictly decreasing"):
        ddim_trajectory(x_T, den, [0, 100], den.alphas_cumprod)


class Recorder:
    """Wraps a denoiser: records its outputs (checking it runs without grad), then replays them
    whatever x is: the replayed trajectory is exactly the function autograd differentiates."""

    def __init__(self, den):
        self.den, self.record, self.replay, self.calls = den, {}, False, 0

    def __call__(self, x, t):
        assert not torch.is_grad_enabled(), "BIRD evaluates the denoiser without gradient"
        self.calls += 1
        key = int(t[0])
        if not self.replay:
            self.record[key] = self.den(x, t)
        return self.record[key]


@pytest.mark.parametrize("clip", [False, True])
def test_ddim_trajectory_gradient_flows_through_the_updates_only(clip):
    torch.manual_seed(0)
    den = Denoiser(TinyDenoiser(3).double(), linear_alphas_cumprod(1000))
    steps = ddim_timesteps(1000, 4)
    x_T = torch.randn(1, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    rec = Recorder(den)
    out = ddim_trajectory(x_T, rec, steps, den.alphas_cumprod, clip=clip)
    assert rec.calls == len(steps)
    v = torch.randn_like(out)
    (g,) = torch.autograd.grad((out * v).sum(), x_T)
    assert torch.isfinite(g).all() and g.abs().sum() > 0
    if not clip:  # linear in x_T: d out / d x_T = prod sqrt(a_prev / a_t) = 1 / sqrt(alpha_bar[first])
        assert torch.allclose(g, v / math.sqrt(den.alphas_cumprod[steps[0]].item()))
    # finite differences of the trajectory with the denoiser outputs held fixed (float64)
    rec.replay = True
    assert torch.autograd.gradcheck(lambda z: ddim_trajectory(z, rec, steps, den.alphas_cumprod, clip=clip),
                                    (x_T,), eps=1e-6, atol=1e-5)
    assert all(p.grad is None for p in den.unet.parameters())


def test_project_to_sphere_keeps_direction_and_sets_the_norm():
    # float64 (the projection works in x's dtype): norms and cosines of 768 entries are exact to ~1e-15
    # (float32 rounds them by ~eps32 log2(768) = 1.1e-6, the old cosine tolerance); the norm's eps = 1e-9
    # shifts it by eps / (2 |x|^2) <= 7e-13, hence rtol 1e-10
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64) * 3
    x.requires_grad_(True)
    before = x.detach().clone()
    project_to_sphere_(x)
    norms = x.detach().reshape(2, -1).norm(dim=1)
    assert torch.allclose(norms, torch.full((2,), math.sqrt(3 * 16 * 16), dtype=torch.float64), rtol=1e-10)
    cos = F.cosine_similarity(x.detach().reshape(2, -1), before.reshape(2, -1), dim=1)
    assert torch.allclose(cos, torch.ones(2, dtype=torch.float64), rtol=0, atol=1e-12)
    project_to_sphere_(x, radius=2.0)
    assert torch.allclose(x.detach().reshape(2, -1).norm(dim=1), torch.full((2,), 2.0, dtype=torch.float64), rtol=1e-10)


def test_denoiser_wraps_without_copy_and_freezes():
    net = TinyDenoiser(3)
    net.train()
    den = Denoiser(net, linear_alphas_cumprod(1000))
    assert den.unet is net and frozen_and_untouched(den) and den.channels == 3
    holder = type("Holder", (), {"unet": net, "alphas_cumprod": linear_alphas_cumprod(1000)})()
    assert as_denoiser(holder).unet is net and as_denoiser(den) is den
    assert as_denoiser((net, linear_alphas_cumprod(1000))).unet is net
    with pytest.raises(InvalidInputError, match="no kernel_denoiser"):
        as_denoiser(None, default=None, what="kernel_denoiser")
    with pytest.raises(InvalidInputError, match="trained on 32x32"):
        Denoiser(net, linear_alphas_cumprod(1000), image_size=32).check_image((1, 3, 64, 64))


# =========================================================================== BIRD
@pytest.mark.parametrize("branch", ["glkm", "native"])
def test_bird_runs_five_steps_with_either_branch(blurry, tiny_prior, branch):
    pm = plugin_manager(glkm=glkm_branch, native=native_branch, bird=bird)
    den = tiny()
    loop = bird.BirdLoop(blurry, K, denoiser=den, kernel_branch=branch, prior=tiny_prior, context=RunContext(pm=pm), seed=3,
                         config=bird.BirdConfig(iters=5))
    groups = loop.optimizer.param_groups
    assert len(groups) == 2 and [id(p) for p in groups[0]["params"]] == [id(loop.x_T)] and groups[0]["lr"] == 3e-3
    if branch == "glkm":
        assert isinstance(loop.branch, glkm_branch.GLKMKernelBranch)
        assert [id(p) for p in groups[1]["params"]] == [id(loop.branch.w)] and groups[1]["lr"] == 2e-2
        w0 = loop.branch.w.detach().clone()
    else:
        assert isinstance(loop.branch, bird.BirdNativeKernelBranch) and loop.branch_name == "bird-native"
        mlp = list(loop.branch.net.parameters())
        assert len(mlp) == 4 and [id(p) for p in groups[1]["params"]] == [id(p) for p in mlp]
        assert groups[1]["lr"] == 2e-4
    n_params = sum(p.numel() for g in groups for p in g["params"])
    assert n_params == loop.x_T.numel() + sum(p.numel() for p in loop.branch.parameters())
    assert not any(p is q for g in groups for p in g["params"] for q in den.unet.parameters())
    x_T0 = loop.x_T.detach().clone()

    kernels, projected = [], []
    loop.branch.project_ = projected.append  # a spy on the branch's per-step projection
    out = loop.run(callback=lambda step, image, k: kernels.append(k), trace_every=1)
    assert projected == [0, 1, 2, 3, 4]  # branch.project_(step) after every step
    assert len(kernels) == 5 and all((k >= 0).all() and abs(k.sum().item() - 1) < 1e-5 for k in kernels)
    assert out["image"].shape == blurry.shape and 0 <= out["image"].min() and out["image"].max() <= 1
    k = out["kernel"]
    assert k.shape == (1, 1, K, K) and (k >= 0).all() and k.sum().item() == pytest.approx(1.0, abs=1e-5)
    info = out["info"]
    assert info["iters"] == 5 and info["ddim_steps"] == 10 and len(info["losses"]) == 5
    assert all(math.isfinite(v) for v in info["losses"]) and info["denoiser_evaluations"] == 50
    assert loop.x_T.detach().norm().item() == pytest.approx(math.sqrt(loop.x_T.numel()), rel=1e-5)
    assert not torch.equal(loop.x_T.detach(), x_T0)
    if branch == "glkm":
        assert not torch.equal(loop.branch.w.detach(), w0)
    assert loop.denoiser.unet is den.unet and frozen_and_untouched(den)


def test_bird_method_and_grey_input(pm, blurry, tiny_prior):
    assert {"bird", "blinddps"} <= set(plugins.methods(pm)) and "bird-native" in plugins.kernel_branches(pm)
    grey = blurry.mean(dim=1, keepdim=True)
    run = plugins.get_method("bird", pm).factory
    out = run(grey, kernel_size=K, kernel_branch="glkm", iters=2, ddim_steps=3, seed=0, progress=False, prior=tiny_prior,
              context=RunContext(pm=pm), denoiser=tiny())
    assert out["image"].shape == grey.shape and out["info"]["timesteps"] == [666, 333, 0]
    with pytest.raises(InvalidInputError, match="trained on 32x32"):
        run(blurry, kernel_size=K, iters=1, progress=False, prior=tiny_prior, context=RunContext(pm=pm), denoiser=tiny(image_size=32))


# =========================================================================== BlindDPS
def test_blinddps_glkm_updates_only_w(pm, blurry, tiny_prior):
    den = tiny(learned_sigma=True)  # guided-diffusion style: epsilon + learned-range variance
    s = blinddps.BlindDPSSampler(blurry, K, denoiser=den, kernel_branch="glkm", prior=tiny_prior, context=RunContext(pm=pm), seed=1,
                                 config=blinddps.BlindDPSConfig(steps=5))
    assert isinstance(s.branch, glkm_branch.GLKMKernelBranch) and s.kernel_denoiser is None
    assert [[id(p) for p in g["params"]] for g in s.optimizer.param_groups] == [[id(s.branch.w)]]
    w0 = s.branch.w.detach().clone()
    kernels = []
    out = s.run(callback=lambda step, image, k: kernels.append(k), trace_every=1)
    assert len(kernels) == 5 and all((k >= 0).all() and abs(k.sum().item() - 1) < 1e-5 for k in kernels)
    k = out["kernel"]
    assert k.shape == (1, 1, K, K) and (k >= 0).all() and k.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert out["image"].shape == blurry.shape and 0 <= out["image"].min() and out["image"].max() <= 1
    assert not torch.equal(s.branch.w.detach(), w0)
    info = out["info"]
    assert info["steps"] == 5 and len(info["losses"]) == 5 and info["kernel_optimizer"] == "adam"
    assert all(math.isfinite(v) for v in info["losses"])
    # the last rate is lr * sqrt(alpha_bar) at t = 0
    assert s.optimizer.param_groups[0]["lr"] == pytest.approx(5e-3 * math.sqrt(1 - 1e-4))
    assert frozen_and_untouched(den) and s.denoiser is den


def test_blinddps_native_kernel_diffusion(pm, blurry, tiny_prior):
    den, kden = tiny(), tiny(channels=1, learned_sigma=True, seed=1)
    s = blinddps.BlindDPSSampler(blurry, KN, denoiser=den, kernel_branch="native", kernel_denoiser=kden, context=RunContext(pm=pm), seed=2,
                                 config=blinddps.BlindDPSConfig(steps=5))
    assert s.optimizer is None and s.branch is None
    k0 = s.k.clone()
    out = s.run()
    k = out["kernel"]
    assert k.shape == (1, 1, KN, KN) and (k >= 0).all() and k.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert not torch.equal(s.k, k0) and out["info"]["reg"] == [1, 1.0]
    assert frozen_and_untouched(den) and frozen_and_untouched(kden)
    # the constant step of the paper; L0 regulariser (no gradient, a value only)
    out = blinddps.run_blinddps(blurry, kernel_size=KN, kernel_branch="native", iters=3, context=RunContext(pm=pm), denoiser=den,
                                kernel_denoiser=kden, scale=0.3, reg_ord=0, reg_scale=0.1, progress=False)
    assert out["info"]["scale"] == 0.3 and out["kernel"].sum().item() == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(InvalidInputError, match="kernel_denoiser"):
        blinddps.run_blinddps(blurry, kernel_size=KN, kernel_branch="native", iters=2, context=RunContext(pm=pm), denoiser=den, progress=False)
    with pytest.raises(InvalidInputError, match="trained on 16x16 kernels; got 8x8: use kernel_size=16"):
        blinddps.run_blinddps(blurry, kernel_size=KN, kernel_branch="native", iters=2, context=RunContext(pm=pm), denoiser=den,
                              kernel_denoiser=tiny(channels=1, image_size=16), progress=False)


@pytest.mark.parametrize("method", ["bird", "blinddps"])
def test_a_branch_projection_supplied_by_a_plugin_shapes_the_result(blurry, method):
    """BIRD and BlindDPS call ``branch.project_(step)`` after each kernel step: a plugin's branch
    confined to the central 3x3 by its projection gives such kernels, its unprojected twin not."""
    plugin = boxed_branch_plugin()
    pm = plugin_manager(bird=bird, blinddps=blinddps, boxed=plugin)
    run = plugins.get_method(method, pm).factory
    steps = {"iters": 3, "ddim_steps": 2} if method == "bird" else {"iters": 3}
    results = {name: run(blurry, kernel_size=K, kernel_branch=name, seed=0, progress=False, context=RunContext(pm=pm), denoiser=tiny(),
                         **steps)["kernel"] for name in ("boxed", "unboxed")}
    assert [b.steps for b in plugin.made] == [[0, 1, 2], [0, 1, 2]]
    assert float(mass_outside_centre(results["boxed"]).max()) < 1e-6
    assert float(mass_outside_centre(results["unboxed"]).min()) > 0.05


# =========================================================================== loaders
def test_guided_checkpoint_loader_round_trip_and_key_check(tmp_path):
    from safetensors.torch import save_file

    src = TinyDenoiser(3, learned_sigma=True, seed=4)
    st, pt, dp = tmp_path / "m.safetensors", tmp_path / "m.pt", tmp_path / "dp.pt"
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(st))
    torch.save(src.state_dict(), pt)
    torch.save({f"module.{k}": v for k, v in src.state_dict().items()}, dp)  # DataParallel
    x, t = torch.randn(1, 3, 16, 16), torch.tensor([10])
    for path in (st, pt, dp):
        model = load_guided_diffusion_state(path, TinyDenoiser(3, learned_sigma=True, seed=9))
        assert torch.equal(model(x, t), src(x, t)) and not model.training
        assert all(not p.requires_grad for p in model.parameters())
    den = load_guided_diffusion(pt, TinyDenoiser(3, learned_sigma=True))
    assert den.num_train_timesteps == 1000 and den.output(x, 5).shape[1] == 6

    class Other(TinyDenoiser):
        def __init__(self):
            super().__init__(3, learned_sigma=True)
            self.extra = nn.Conv2d(3, 3, 1)
            del self.mid

    with pytest.raises(WeightsError, match=r"2 missing key\(s\) \[extra.bias, extra.weight\], 2 unexpected key\(s\) \[mid.bias, mid.weight\]"):
        load_guided_diffusion_state(pt, Other())
    with pytest.raises(WeightsError, match="other shapes"):
        load_guided_diffusion_state(st, TinyDenoiser(3, learned_sigma=False))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match=r"not loaded: torch.load\(weights_only=True\).*refused it"):
        load_guided_diffusion_state(bad, TinyDenoiser(3))
    with pytest.raises(WeightsError, match="not found"):
        load_guided_diffusion_state(tmp_path / "missing.pt", TinyDenoiser(3))


class _NotATensor:
    pass


def test_guided_checkpoint_loader_refuses_pickled_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"weight": _NotATensor()}, path)  # unpickling it would construct an arbitrary object
    with pytest.raises(WeightsError, match=r"weights_only=True.*refused it \(Unsupported global: GLOBAL "):
        load_guided_diffusion_state(path, TinyDenoiser(3))


def test_missing_diffusers_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "diffusers", None)  # import diffusers -> ImportError
    with pytest.raises(WeightsError, match=r"optional dependency diffusers: pip install 'glkm-prior\[diffusion\]'"):
        load_diffusers_unet("google/ddpm-celebahq-256")


def test_uncached_hub_model_offline_is_a_clear_error(tmp_path):
    pytest.importorskip("diffusers")
    with pytest.raises(WeightsError, match="not in the local cache"):
        load_diffusers_unet("glkm-test/no-such-diffusion-model", local_files_only=True, cache_dir=tmp_path)
    with pytest.raises(WeightsError, match="does not exist"):
        load_diffusers_unet(str(tmp_path / "nowhere" / "x" / "y"))


def test_diffusers_folder_loads_and_runs_bird(tmp_path, pm, blurry, tiny_prior):
    diffusers = pytest.importorskip("diffusers")
    unet = tiny_diffusers_unet()
    assert 100_000 < sum(p.numel() for p in unet.parameters()) < 1_000_000
    unet.save_pretrained(tmp_path / "unet")
    diffusers.DDIMScheduler(clip_sample=True).save_pretrained(tmp_path / "scheduler")
    pipe = diffusers.DDPMPipeline(unet=unet, scheduler=diffusers.DDPMScheduler())
    assert as_denoiser(pipe).unet is unet and as_denoiser((unet, pipe.scheduler)).image_size == SIZE
    den = load_diffusers_unet(tmp_path)
    assert den.image_size == SIZE and den.channels == 3 and den.variance_type == "fixed_small"
    assert torch.allclose(den.alphas_cumprod, linear_alphas_cumprod(1000), atol=1e-6)
    x = torch.randn(1, 3, SIZE, SIZE, dtype=torch.float64)
    with torch.no_grad():  # float64 copies: in float32 the tensor vs int timestep alone rounds differently (1.5e-6)
        den64, unet64 = copy.deepcopy(den), copy.deepcopy(unet).double()
        den64.unet.double()
        assert torch.allclose(den64(x, 500), unet64(x, 500).sample, rtol=0, atol=1e-10)
    assert frozen_and_untouched(den)
    (tmp_path / "notunet").mkdir()
    (tmp_path / "notunet" / "config.json").write_text('{"_class_name": "AutoencoderKL"}')
    with pytest.raises(WeightsError, match="UNet2DModel"):
        load_diffusers_unet(tmp_path / "notunet")
    for branch in ("glkm", "native"):
        out = bird.run_bird(blurry, kernel_size=K, kernel_branch=branch, iters=5, ddim_steps=4, prior=tiny_prior, context=RunContext(pm=pm),
                            denoiser=den, progress=False)
        k = out["kernel"]
        assert (k >= 0).all() and k.sum().item() == pytest.approx(1.0, abs=1e-5)
    out = blinddps.run_blinddps(blurry, kernel_size=K, iters=5, prior=tiny_prior, context=RunContext(pm=pm), denoiser=den, progress=False)
    assert out["kernel"].sum().item() == pytest.approx(1.0, abs=1e-5) and frozen_and_untouched(den)


# =========================================================================== packaging and example
def test_adapters_import_without_diffusers():
    code = ("import sys; sys.modules['diffusers'] = None; import glkm_adapters.bird, glkm_adapters.blinddps, "
            "glkm_prior.diffusion; print('ok')")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr


def test_example_script_says_clearly_when_the_model_is_unavailable(tmp_path):
    res = subprocess.run([sys.executable, str(REPO / "examples" / "bird_hub.py"), "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert "bird_hub:" in res.stderr
