"""SelfDeblur (method ``dip``), its skip network, the SSIM loss and the drop-in kernel network.

Everything runs on tiny images (64 x 64: the GLKM initializer's minimum) for a few iterations.
"""

import json
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from glkm_prior import blur, hookimpl
from glkm_prior.branch import KernelBranch
from glkm_prior.cli import main
from glkm_prior.imageio import write_image
from glkm_prior.plugins import get_method
from glkm_prior.ssim_loss import SSIM, SSIMToReference, gaussian_window_2d, ssim_loss
from glkm_prior.context import RunContext

import glkm_adapters.dip as dip
from conftest import plugin_manager

import glkm_adapters.glkm_branch as glkm_branch
import glkm_adapters.native_branch as native_branch
from glkm_adapters.selfdeblur_dropin import GLKMKernelNet

K = 9


@pytest.fixture(scope="module")
def pm():
    return plugin_manager(glkm=glkm_branch, native=native_branch, dip=dip)


def sharp_scene(size: int, seed: int = 0) -> torch.Tensor:
    """A smooth shaded background with a few flat discs, (1, 1, size, size) in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    img = 0.3 + 0.2 * torch.sin(6 * xx) * torch.cos(4 * yy)
    for _ in range(6):
        cx, cy, r = torch.rand(3, generator=g)
        img = torch.where((xx - cx) ** 2 + (yy - cy) ** 2 < (0.05 + 0.15 * r) ** 2, torch.rand(1, generator=g), img)
    return img.clamp(0, 1)[None, None]


@pytest.fixture(scope="module")
def truth(tiny_prior):
    """A structured kernel of the (untrained) generator, its latent, and the blurry image."""
    w_true = (tiny_prior.random_latent(seed=5) * 10).detach()  # x10: a peaked, not near-uniform kernel
    k_true = tiny_prior.kernel(w_true, K).detach()
    blurry = blur(sharp_scene(64 + K - 1), k_true, "valid")
    return w_true, k_true, blurry


# --------------------------------------------------------------------------- hook swap
@pytest.mark.parametrize("branch", ["glkm", "native"])
def test_hook_swap_changes_only_the_kernel_branch(pm, tiny_prior, truth, branch):
    blurry = truth[2]
    cfg = dip.make_config(iters=2)
    loop = dip.SelfDeblur(blurry, K, config=cfg, kernel_branch=branch, prior=tiny_prior, context=RunContext(pm=pm), seed=3)
    groups = loop.optimizer.param_groups
    assert len(groups) == 2
    assert [id(p) for p in groups[0]["params"]] == [id(p) for p in loop.net.parameters()]
    if branch == "glkm":
        assert isinstance(loop.branch, glkm_branch.GLKMKernelBranch)
        assert [id(p) for p in groups[1]["params"]] == [id(loop.branch.w)]
    else:
        assert isinstance(loop.branch, native_branch.NativeMLPKernelBranch)
        mlp = list(loop.branch.net.parameters())
        assert len(mlp) == 4 and [id(p) for p in groups[1]["params"]] == [id(p) for p in mlp]
    assert groups[0]["lr"] == 1e-2 and groups[1]["lr"] == loop.branch.default_lr
    assert loop.branch.default_lr == {"glkm": 5e-4, "native": 1e-4}[branch]
    # the image half is the same whatever the branch: same seed -> same noise input and net
    other = dip.SelfDeblur(blurry, K, config=cfg, kernel_branch="native" if branch == "glkm" else "glkm",
                           prior=tiny_prior, context=RunContext(pm=pm), seed=3)
    assert torch.equal(loop.input_saved, other.input_saved)
    assert all(torch.equal(a, b) for a, b in zip(loop.net.state_dict().values(), other.net.state_dict().values()))
    out = loop.run(progress=False)
    assert out["info"]["kernel_branch"] == branch and out["image"].shape == blurry.shape


def test_any_registered_branch_plugs_in(pm, truth):
    class Fixed(KernelBranch):
        name = "fixed-gauss"
        default_lr = 0.03

        def __init__(self, size):
            super().__init__(size)
            self.logits = torch.nn.Parameter(torch.zeros(size * size))

        def forward(self):
            return self.logits.softmax(0).reshape(1, 1, self.kernel_size, self.kernel_size)

    class Plugin:
        @hookimpl
        def glkm_kernel_branches(self, register):
            register("fixed-gauss", lambda blurry, kernel_size, **_: Fixed(kernel_size))

    pm.register(Plugin(), name="fixed")
    try:
        loop = dip.SelfDeblur(truth[2], K, config=dip.make_config(iters=1), kernel_branch="fixed-gauss", context=RunContext(pm=pm))
        assert [id(p) for p in loop.optimizer.param_groups[1]["params"]] == [id(loop.branch.logits)]
        assert loop.optimizer.param_groups[1]["lr"] == 0.03
    finally:
        pm.unregister(name="fixed")


# --------------------------------------------------------------------------- the loop
def test_short_run_fits_the_data_and_keeps_the_true_latent(pm, tiny_prior, truth):
    w_true, k_true, blurry = truth
    seen = []
    res = dip.run_dip(blurry, kernel_size=K, kernel_branch="glkm", iters=20, prior=tiny_prior, context=RunContext(pm=pm),
                      progress=False, init_latent=w_true, trace_every=5,
                      callback=lambda step, image, kernel: seen.append((step, image.shape, kernel.shape)))
    losses = res["info"]["losses"]
    assert len(losses) == 20 and all(np.isfinite(losses))
    assert losses[-1] < 0.6 * losses[0]  # MSE phase: the data loss goes down
    rel = float((res["kernel"] - k_true).norm() / k_true.norm())
    assert rel < 0.1, rel  # started from the truth, 20 steps at lr 5e-4 keep it there
    uniform = torch.full_like(k_true, 1 / K**2)
    assert float((uniform - k_true).norm() / k_true.norm()) > 0.5  # (the truth is far from trivial)
    assert [s for s, _, _ in seen] == [5, 10, 15, 20]
    assert seen[0][1] == blurry.shape and seen[0][2] == (1, 1, K, K)
    assert res["image"].shape == blurry.shape and 0 <= res["image"].min() and res["image"].max() <= 1
    assert res["kernel"].min() >= 0 and abs(float(res["kernel"].sum()) - 1) < 1e-5


def test_loss_schedule_noise_and_lr_follow_upstream(pm, truth):
    blurry = truth[2]
    cfg = dip.make_config(iters=5, mse_steps=2, milestones=(2, 4))
    loop = dip.SelfDeblur(blurry, K, config=cfg, kernel_branch="native", context=RunContext(pm=pm))
    assert dip.make_config().milestones == (2000, 3000, 4000) and dip.make_config().iters == 5000
    assert dip.DIPConfig().resolve_mse_steps(False, 27) == 1000   # Levin script
    assert dip.DIPConfig().resolve_mse_steps(True, 27) == 500     # colour / Lai scripts
    assert dip.DIPConfig().resolve_mse_steps(False, 31) == 500
    lrs = []
    for step in range(5):
        loss, out_x, k = loop.loss(step)
        with torch.no_grad():
            out_y = blur(out_x, k, "valid")
            expected = F.mse_loss(out_y, blurry) if step < 2 else 1 - SSIM()(out_y, blurry)
        assert torch.allclose(loss.detach(), expected, rtol=1e-5, atol=1e-6)
        # the input is the saved noise plus a fresh N(0, 0.001^2) perturbation
        delta = loop.net_input - loop.input_saved
        assert 0.0007 < float(delta.std()) < 0.0013
        loop.optimise(loss, step)
        loop.scheduler.step()
        lrs.append([g["lr"] for g in loop.optimizer.param_groups])
    assert lrs[0] == [1e-2, 1e-4] and lrs[1] == [5e-3, 5e-5] and lrs[3] == [2.5e-3, 2.5e-5]
    assert loop.input_saved.min() >= 0 and loop.input_saved.max() < 0.1 and loop.input_saved.shape[1] == 8


def test_colour_ycbcr_keeps_chroma_and_rgb_shares_the_kernel(pm, truth):
    grey = truth[2]
    rgb = torch.cat([grey, grey * 0.8, grey * 0.6 + 0.1], dim=1)
    res = dip.run_dip(rgb, kernel_size=K, kernel_branch="native", iters=1, context=RunContext(pm=pm), progress=False)
    assert res["info"]["colour"] == "ycbcr" and res["image"].shape == rgb.shape
    change = res["image"] - rgb  # only the luma changed: the same offset in R, G and B (where not clipped)
    inside = ((res["image"] > 0.01) & (res["image"] < 0.99)).all(dim=1, keepdim=True)
    spread = (change.amax(1, keepdim=True) - change.amin(1, keepdim=True))[inside]
    assert float(spread.max()) < 1e-5
    loop = dip.SelfDeblur(rgb, K, config=dip.make_config(iters=1, colour="rgb"), kernel_branch="native", context=RunContext(pm=pm))
    assert loop.net.head[-2].out_channels == 3 and loop.y.shape == rgb.shape


# --------------------------------------------------------------------------- network
def test_skip_network_matches_the_upstream_layout():
    net = dip.SkipNet()
    x = torch.rand(1, 8, 70, 75)
    out = net(x)
    assert out.shape == (1, 1, 70, 75) and 0 < out.min() and out.max() < 1
    mods = list(net.modules())
    assert sum(isinstance(m, dip.NonLocalBlock) for m in mods) == 3         # scales 3, 4, 5
    assert sum(isinstance(m, torch.nn.ReflectionPad2d) for m in mods) == 15  # every 3x3 conv, 3 per scale
    convs = [m for m in mods if isinstance(m, torch.nn.Conv2d)]
    assert sum(c.kernel_size == (3, 3) and c.stride == (2, 2) for c in convs) == 5
    assert sum(c.kernel_size == (1, 1) for c in convs) == 5 + 5 + 1 + 3 * 4  # skips, 1x1 ups, head, non-local
    ups = [m for m in mods if isinstance(m, torch.nn.Upsample)]
    assert len(ups) == 5 and all(u.mode == "bilinear" for u in ups)
    assert all(m.negative_slope == 0.2 for m in mods if isinstance(m, torch.nn.LeakyReLU))


def test_nonlocal_block_equals_the_textbook_product():
    torch.manual_seed(0)
    block = dip.NonLocalBlock(8).double()
    torch.nn.init.normal_(block.W[1].weight)  # make the block non-trivial
    x = torch.rand(2, 8, 10, 12, dtype=torch.float64)
    theta = block.theta(x).flatten(2).transpose(1, 2)
    phi = block.phi(x).flatten(2)
    g = block.g(x).flatten(2).transpose(1, 2)
    f = theta @ phi / phi.shape[-1]
    y = (f @ g).transpose(1, 2).reshape(2, 4, 10, 12)
    assert torch.allclose(block(x), x + block.W(y), atol=1e-10)


# --------------------------------------------------------------------------- SSIM
def _ssim_upstream(a, b):
    C = a.shape[1]
    win = gaussian_window_2d(11, 1.5, torch.float64).expand(C, 1, 11, 11)
    f = lambda t: F.conv2d(t, win, padding=5, groups=C)  # noqa: E731
    mu1, mu2 = f(a), f(b)
    s1, s2, s12 = f(a * a) - mu1**2, f(b * b) - mu2**2, f(a * b) - mu1 * mu2
    c1, c2 = 0.01**2, 0.03**2
    return (((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s1 + s2 + c2))).mean()


@pytest.mark.parametrize("channels", [1, 3])
def test_ssim_matches_the_2d_gaussian_definition(channels):
    g = torch.Generator().manual_seed(channels)
    a = torch.rand(1, channels, 23, 31, generator=g, dtype=torch.float64)
    b = (a + 0.1 * torch.randn(a.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    ref = _ssim_upstream(a, b)
    assert torch.allclose(SSIM().double()(a, b), ref, atol=1e-12)
    assert torch.allclose(SSIMToReference(b).double()(a), ref, atol=1e-12)
    assert torch.allclose(ssim_loss(a, b), 1 - ref, atol=1e-12)
    assert float(SSIM().double()(a, a)) == pytest.approx(1.0)
    x = a.clone().requires_grad_(True)
    SSIMToReference(b).double().loss(x).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


# --------------------------------------------------------------------------- drop-in
def test_dropin_kernel_net_contract(tiny_prior, truth):
    blurry = truth[2]
    net = GLKMKernelNet(blurry, [K, K], prior=tiny_prior)
    out = net(torch.rand(200))
    assert out.shape == (K * K,) and out.min() >= 0 and abs(float(out.detach().sum()) - 1) < 1e-5
    assert torch.equal(out, net("anything"))  # the input is ignored
    assert list(net.parameters()) == [net.w] and net.w.requires_grad
    assert GLKMKernelNet.default_lr == 5e-4
    # upstream's reshape gives the branch's kernel
    assert torch.equal(out.view(-1, 1, K, K), net.kernel())
    clone = pickle.loads(pickle.dumps(net))
    assert torch.equal(clone(None), out)
    net.type(torch.float64)
    out64 = net(None)
    assert out64.dtype == torch.float64 and torch.allclose(out64.float(), out, atol=1e-6)
    assert next(tiny_prior.generator.parameters()).dtype == torch.float32  # the caller's prior is untouched
    net.to(torch.float32)
    # upstream numpy y (1, H, W) works too
    y_np = blurry[0].numpy()
    assert GLKMKernelNet(y_np, K, prior=tiny_prior)(None).shape == (K * K,)
    # it trains: one Adam step on a kernel loss moves only w
    opt = torch.optim.Adam(net.parameters(), lr=GLKMKernelNet.default_lr)
    w0 = net.w.detach().clone()
    (net(None) ** 2).sum().backward()
    opt.step()
    assert not torch.equal(w0, net.w.detach())


# --------------------------------------------------------------------------- CLI
@pytest.mark.parametrize("branch", ["glkm", "native"])
def test_cli_deblur_with_dip(tmp_path, truth, branch, capsys):
    src = tmp_path / "tiny.png"
    write_image(src, truth[2][0, 0].numpy())
    out = tmp_path / "out" / "res.png"
    assert main(["deblur", str(src), "-o", str(out), "--method", "dip", "--iters", "3", "--kernel-size", "7",
                 "--kernel-branch", branch]) == 0
    report = json.loads((tmp_path / "out" / "res.json").read_text())
    assert report["method"] == "dip" and report["kernel_branch"] == branch and report["info"]["iters"] == 3
    assert np.load(tmp_path / "out" / "res_kernel.npy").shape == (7, 7)
    assert (tmp_path / "out" / "res.png").is_file()


def test_cli_colour_and_preset_flags(tmp_path, truth, capsys):
    grey = truth[2][0, 0].numpy()
    src = tmp_path / "colour.png"
    write_image(src, np.stack([grey, grey * 0.8, grey * 0.6], axis=-1))
    out = tmp_path / "c.png"
    assert main(["deblur", str(src), "-o", str(out), "--method", "dip", "--iters", "1", "--kernel-size", "7",
                 "--kernel-branch", "native", "--colour", "rgb", "--preset", "paper"]) == 0
    report = json.loads((tmp_path / "c.json").read_text())
    assert report["info"]["colour"] == "rgb" and report["info"]["preset"] == "paper" and report["colour"] == "rgb"
    assert main(["deblur", str(src), "-o", str(tmp_path / "d.png"), "--colour", "rgb"]) == 2
    assert "has no --colour setting" in capsys.readouterr().err


def test_cli_option_reaches_the_loop_and_bad_options_are_refused(tmp_path, truth, capsys):
    src = tmp_path / "tiny.png"
    write_image(src, truth[2][0, 0].numpy())
    base = ["deblur", str(src), "--method", "dip", "--iters", "1", "--kernel-size", "7", "--kernel-branch", "native"]
    assert main([*base, "-o", str(tmp_path / "a.png"), "--option", "lr_kernel=5e-3", "--option", "lr_image=0.02"]) == 0
    report = json.loads((tmp_path / "a.json").read_text())
    assert report["options"] == {"lr_kernel": 5e-3, "lr_image": 0.02}
    assert report["info"]["lr_kernel"] == 5e-3 and report["info"]["lr_image"] == 0.02
    for option, message in [("typo=1", "unknown option(s) typo"), ("iters=3", "cannot set iters"),
                            ("lr_kernel", "must be KEY=VALUE")]:
        out = tmp_path / "bad" / "b.png"
        assert main([*base, "-o", str(out), "--option", option]) == 2
        assert message in capsys.readouterr().err and not out.parent.exists()
    assert main(["deblur", str(src), "-o", str(tmp_path / "f.png"), "--kernel-size", "7", "--option", "lr_kernel=1"]) == 2
    err = capsys.readouterr().err
    assert "method 'l0'" in err and "lr_kernel" in err  # the default method (l0) names itself and the option


def test_dip_is_registered_through_the_hook():
    reg = get_method("dip")
    assert reg.factory is dip.run_dip and reg.plugin == "dip"


def test_benchmark_runner_records_the_convergence_of_dip(tmp_path, tiny_prior, capsys):
    from glkm_prior.synthetic_set import build_synthetic_set
    from test_datasets import write_photos

    src = write_photos(tmp_path / "photos", 1, (92, 92, 3))
    build_synthetic_set(src, tmp_path / "set", family="levin", kernel_size=11, noise=0.01, seed=0)
    tiny_prior.save_pretrained(tmp_path / "prior")
    for branch in ("glkm", "native"):
        out = tmp_path / f"run_{branch}"
        assert main(["eval", str(tmp_path / "set"), "--method", "dip", "--kernel-branch", branch, "--iters", "4",
                     "--weights", str(tmp_path / "prior"), "--out", str(out), "--no-progress"]) == 0
        row = json.loads((out / "results.json").read_text())["rows"][0]
        assert row["iters"] == 4 and row["kernel_branch"] == branch and np.isfinite(row["psnr"])
        assert [p["step"] for p in row["trace"]][:4] == [1, 2, 3, 4]  # the loop's callback, then the final point
        assert (out / "convergence.png").is_file()


@pytest.fixture(scope="module")
def study():
    """The study plugin of examples/study_dip_oracle_init.py (method ``dip-oracle-init``),
    imported from its file; it is not a built-in."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / "study_dip_oracle_init.py"
    spec = importlib.util.spec_from_file_location("study_dip_oracle_init", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_the_oracle_method_is_a_study_plugin_not_a_user_facing_method(study):
    from glkm_prior import plugins

    assert "dip-oracle-init" not in plugins.methods(plugins.make_plugin_manager())
    assert not hasattr(dip, "run_dip_oracle_init")
    pm = study.register(plugin_manager(glkm=glkm_branch, dip=dip))
    assert study.register(pm) is pm  # registering twice is a no-op
    assert plugins.get_method("dip-oracle-init", pm).factory is study.run_dip_oracle_init
    # declared, not read from the signature: it needs the true kernel and only runs the glkm branch
    assert plugins.get_method("dip-oracle-init", pm).spec == plugins.MethodSpec(
        needs_true_kernel=True, iterative=True, checkpointable=True, progress=True, branches=("glkm",))


def test_oracle_init_starts_from_the_inverted_true_kernel(pm, tiny_prior, truth, study):
    from glkm_prior.errors import InvalidInputError

    w_true, k_true, blurry = truth
    frozen = dict(iters=1, lr_kernel=0.0, prior=tiny_prior, context=RunContext(pm=pm), progress=False)  # the kernel stays at its start
    oracle = study.run_dip_oracle_init(blurry, kernel_size=K, true_kernel=k_true, invert_steps=300, **frozen)
    # independently: the inversion the method promises, and the generator's kernel of that latent
    w = tiny_prior.invert(k_true, steps=300, restarts=4)
    expected = tiny_prior.kernel(w, K).detach()
    assert torch.allclose(oracle["kernel"], expected, atol=1e-6)
    start_from_e = dip.run_dip(blurry, kernel_size=K, kernel_branch="glkm", branch_options={"init": "initializer"},
                               **frozen)["kernel"]
    err = lambda k: float((k - k_true).norm() / k_true.norm())  # noqa: E731
    assert err(oracle["kernel"]) < 0.7 * err(start_from_e), (err(oracle["kernel"]), err(start_from_e))  # (0.44 vs 0.69)
    with pytest.raises(InvalidInputError, match="ground-truth kernel"):
        study.run_dip_oracle_init(blurry, kernel_size=K, **frozen)
    with pytest.raises(InvalidInputError, match="kernel branch 'native'"):
        study.run_dip_oracle_init(blurry, kernel_size=K, true_kernel=k_true, kernel_branch="native", **frozen)


def test_benchmark_passes_the_true_kernel_to_the_oracle_method(tmp_path, tiny_prior, study, capsys):
    from glkm_prior import plugins
    from glkm_prior.synthetic_set import build_synthetic_set
    from test_datasets import write_photos

    src = write_photos(tmp_path / "photos", 1, (92, 92, 3))
    build_synthetic_set(src, tmp_path / "set", family="levin", kernel_size=11, noise=0.01, seed=0)
    tiny_prior.save_pretrained(tmp_path / "prior")
    out = tmp_path / "run"
    argv = ["eval", str(tmp_path / "set"), "--method", "dip-oracle-init", "--iters", "2", "--option",
            "invert_steps=20", "--weights", str(tmp_path / "prior"), "--out", str(out), "--no-progress"]
    assert main(argv) == 2  # plain `glkm` does not offer it
    assert "unknown method 'dip-oracle-init'" in capsys.readouterr().err
    try:
        assert study.main(argv) == 0  # the study script: `glkm` with its plugin registered
    finally:
        plugins.get_plugin_manager().unregister(name=study.PLUGIN_NAME)
    row = json.loads((out / "results.json").read_text())["rows"][0]
    assert row["method"] == "dip-oracle-init" and row["iters"] == 2 and np.isfinite(row["psnr"])
    from glkm_prior.plugins import accepts_keyword  # long oracle runs are checkpointed by `glkm eval` like dip's
    assert accepts_keyword(study.run_dip_oracle_init, "checkpoint", explicit_only=True)


# --------------------------------------------------------------------------- checkpoints
class _Interrupt(Exception):
    pass


def _interrupt_at(step_to_stop):
    def callback(step, image, kernel):
        if step == step_to_stop:
            raise _Interrupt
    return callback


def _small_loop(blurry, branch, prior, pm, seed=1, iters=8):
    cfg = dip.make_config(iters=iters, channels=(8, 8), skip_channels=(4, 4), mse_steps=4)  # SSIM from step 4
    return dip.SelfDeblur(blurry, K, config=cfg, kernel_branch=branch, prior=prior, context=RunContext(pm=pm), seed=seed)


@pytest.mark.parametrize("branch", ["glkm", "native"])
def test_an_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path, pm, tiny_prior, truth, branch):
    blurry = truth[2]
    straight = _small_loop(blurry, branch, tiny_prior, pm).run(progress=False)
    folder = tmp_path / "ckpt"
    with pytest.raises(_Interrupt):  # checkpoints after steps 3 and 6, killed during step 7
        _small_loop(blurry, branch, tiny_prior, pm).run(progress=False, callback=_interrupt_at(7), trace_every=1,
                                                         checkpoint=folder, checkpoint_every=3)
    assert json.loads((folder / "latest.json").read_text()) == {"step": 6, "folder": "step_0000006"}
    assert [p.name for p in folder.glob("step_*")] == ["step_0000006"]  # the older one was removed
    seen = []
    resumed = _small_loop(blurry, branch, tiny_prior, pm).run(
        progress=False, checkpoint=folder, checkpoint_every=3, trace_every=1,
        callback=lambda step, image, kernel: seen.append(step))
    assert seen == [7, 8] and resumed["info"]["resumed_from"] == 6
    # bit-identical: weights, Adam moments and step, scheduler, RNG of the input perturbation
    assert torch.equal(resumed["image"], straight["image"]) and torch.equal(resumed["kernel"], straight["kernel"])
    assert resumed["info"]["losses"] == straight["info"]["losses"]
    assert resumed["info"]["seconds_before_resume"] > 0 and straight["info"]["resumed_from"] == 0


def test_a_checkpoint_of_another_run_or_a_corrupt_one_is_refused(tmp_path, pm, truth):
    from glkm_prior.errors import InvalidInputError, WeightsError

    blurry = truth[2]
    folder = tmp_path / "ckpt"
    with pytest.raises(_Interrupt):
        _small_loop(blurry, "native", None, pm, seed=1).run(progress=False, callback=_interrupt_at(3), trace_every=1,
                                                             checkpoint=folder, checkpoint_every=2)
    with pytest.raises(InvalidInputError, match=r"belongs to a different run \(seed: saved 1, now 2\)"):
        _small_loop(blurry, "native", None, pm, seed=2).run(progress=False, checkpoint=folder)
    with pytest.raises(InvalidInputError, match="iters"):
        _small_loop(blurry, "native", None, pm, seed=1, iters=9).run(progress=False, checkpoint=folder)
    other_size = dip.SelfDeblur(blurry, K - 2, config=_small_loop(blurry, "native", None, pm).cfg,
                                kernel_branch="native", context=RunContext(pm=pm), seed=1)
    with pytest.raises(InvalidInputError, match="kernel_size: saved 9, now 7"):  # checked before any tensor
        other_size.run(progress=False, checkpoint=folder)
    state = folder / "step_0000002" / "state.safetensors"
    state.write_bytes(state.read_bytes()[:100])  # truncated
    with pytest.raises(WeightsError, match="cannot read checkpoint.*delete .* to start over"):
        _small_loop(blurry, "native", None, pm, seed=1).run(progress=False, checkpoint=folder)
    (folder / "latest.json").write_text("{not json")
    with pytest.raises(WeightsError, match="cannot read checkpoint pointer"):
        _small_loop(blurry, "native", None, pm, seed=1).run(progress=False, checkpoint=folder)
    with pytest.raises(InvalidInputError, match="checkpoint_every"):
        _small_loop(blurry, "native", None, pm).run(progress=False, checkpoint=tmp_path / "x", checkpoint_every=0)


def test_benchmark_runner_resumes_an_interrupted_pair(tmp_path, tiny_prior, monkeypatch):
    from glkm_prior.bench_runner import TraceRecorder
    from glkm_prior.synthetic_set import build_synthetic_set
    from test_datasets import write_photos

    src = write_photos(tmp_path / "photos", 1, (92, 92, 3))
    build_synthetic_set(src, tmp_path / "set", family="levin", kernel_size=11, noise=0.01, seed=0)
    tiny_prior.save_pretrained(tmp_path / "prior")
    args = ["eval", str(tmp_path / "set"), "--method", "dip", "--kernel-branch", "native", "--iters", "6",
            "--option", "channels=[8,8]", "--option", "skip_channels=[4,4]", "--checkpoint-every", "2",
            "--weights", str(tmp_path / "prior"), "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "straight")]) == 0
    record = TraceRecorder.__call__

    def interrupted(self, step, image, kernel):
        if step == 5:
            raise _Interrupt
        return record(self, step, image, kernel)

    monkeypatch.setattr(TraceRecorder, "__call__", interrupted)
    out = tmp_path / "resumed"
    with pytest.raises(_Interrupt):
        main([*args, "--out", str(out)])
    name = json.loads((tmp_path / "straight" / "results.json").read_text())["rows"][0]["name"]
    assert (out / "checkpoints" / f"{name}__s0" / "latest.json").is_file() and not (out / "results").exists()
    monkeypatch.undo()
    assert main([*args, "--out", str(out)]) == 0
    a, b = (json.loads((tmp_path / run / "results.json").read_text())["rows"][0] for run in ("straight", "resumed"))
    assert b["info"]["resumed_from"] == 4 and a["info"]["resumed_from"] == 0
    assert b["psnr"] == a["psnr"] and b["kernel_rel_l2"] == a["kernel_rel_l2"]
    assert b["trace"] == a["trace"] and [p["step"] for p in b["trace"]] == [1, 2, 3, 4, 5, 6]  # trace kept across
    assert np.array_equal(np.load(out / b["kernel"]), np.load(tmp_path / "straight" / a["kernel"]))
    assert not (out / "checkpoints" / f"{name}__s0").exists()  # removed once the result was written


def test_cli_deblur_resumes_from_its_checkpoint_and_clears_only_its_files(tmp_path, truth, monkeypatch, capsys):
    src = tmp_path / "tiny.png"
    write_image(src, truth[2][0, 0].numpy())
    base = ["deblur", str(src), "--method", "dip", "--iters", "5", "--kernel-size", "7", "--kernel-branch", "native",
            "--option", "channels=[8,8]", "--option", "skip_channels=[4,4]"]
    assert main([*base, "-o", str(tmp_path / "straight.png")]) == 0
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "notes.txt").write_text("the user's own file")
    run = dip.DeepPriorLoop.run

    def killed_after_step_4(self, **kwargs):
        def stop(step, image, kernel):
            if step == 5:
                raise _Interrupt
        return run(self, **{**kwargs, "callback": stop, "trace_every": 1})

    monkeypatch.setattr(dip.DeepPriorLoop, "run", killed_after_step_4)
    with pytest.raises(_Interrupt):
        main([*base, "-o", str(tmp_path / "resumed.png"), "--checkpoint", str(ckpt), "--checkpoint-every", "2"])
    assert not (tmp_path / "resumed.png").exists() and (ckpt / "latest.json").is_file()
    monkeypatch.undo()
    assert main([*base, "-o", str(tmp_path / "resumed.png"), "--checkpoint", str(ckpt), "--checkpoint-every", "2"]) == 0
    assert "resuming from the checkpoint" in capsys.readouterr().err
    report = json.loads((tmp_path / "resumed.json").read_text())
    a, b = json.loads((tmp_path / "straight.json").read_text())["info"], report["info"]
    assert b["resumed_from"] == 4 and b["losses"] == a["losses"]
    assert report["seconds"] >= round(b["seconds_before_resume"], 3) > 0  # the time before the interruption counts
    assert np.array_equal(np.load(tmp_path / "resumed_kernel.npy"), np.load(tmp_path / "straight_kernel.npy"))
    assert sorted(p.name for p in ckpt.iterdir()) == ["notes.txt"]  # ours removed, the user's file kept
    assert main([*base, "-o", str(tmp_path / "x.png"), "--checkpoint", str(ckpt), "--checkpoint-every", "0"]) == 2
    assert main(["deblur", str(src), "-o", str(tmp_path / "y.png"), "--kernel-size", "7", "--checkpoint",
                 str(ckpt)]) == 2
    assert "cannot checkpoint" in capsys.readouterr().err
