"""The one iterative driver (:mod:`glkm_prior.loop`) and the four methods on it: SelfDeblur
(``dip``), VDIP, BIRD and BlindDPS resume bit-for-bit after an interruption (1 thread)."""

import json

import pytest
import torch
from conftest import plugin_manager
from test_diffusion import SIZE, tiny
from test_dip import sharp_scene

from glkm_prior import blur
from glkm_prior.plugins import accepts_keyword
from glkm_prior.errors import InvalidInputError, WeightsError
from glkm_prior.loop import IterativeMethod, LoopState, identity_of, run_loop
from glkm_prior.context import RunContext

import glkm_adapters.bird as bird
import glkm_adapters.blinddps as blinddps
import glkm_adapters.dip as dip
import glkm_adapters.glkm_branch as glkm_branch
import glkm_adapters.native_branch as native_branch
import glkm_adapters.vdip as vdip

K = 9


class Interrupt(Exception):
    pass


def stop_at(step_to_stop, seen=None):
    """A callback that records the steps it sees and kills the run at ``step_to_stop``."""
    def callback(step, image, kernel):
        if seen is not None:
            seen.append(step)
        if step == step_to_stop:
            raise Interrupt
    return callback


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)  # conftest's autouse fixture gives the suite's count back


@pytest.fixture(scope="module")
def pm():
    return plugin_manager(glkm=glkm_branch, native=native_branch, dip=dip, vdip=vdip, bird=bird, blinddps=blinddps)


@pytest.fixture(scope="module")
def grey(tiny_prior):
    k = tiny_prior.kernel((tiny_prior.random_latent(seed=5) * 10).detach(), K).detach()
    return blur(sharp_scene(64 + K - 1), k, "valid")  # (1, 1, 64, 64)


@pytest.fixture(scope="module")
def rgb(grey):
    return (grey.repeat(1, 3, 1, 1) * torch.tensor([1.0, 0.8, 0.6]).reshape(1, 3, 1, 1)).clamp(0, 1)


# --------------------------------------------------------------------------- the four methods
def _dip(grey, rgb, tiny_prior, pm, branch):
    cfg = dip.make_config(iters=7, channels=(8, 8), skip_channels=(4, 4), mse_steps=3)
    return dip.SelfDeblur(grey, K, config=cfg, kernel_branch=branch, prior=tiny_prior, context=RunContext(pm=pm), seed=1)


def _vdip(grey, rgb, tiny_prior, pm, branch):
    cfg = vdip.make_config(vdip.VDIPConfig, iters=7, prefit_steps=2, elbo_steps=4, channels=(8, 8),
                           skip_channels=(4, 4))
    image = rgb if branch == "glkm" else rgb[..., :40, :40]
    return vdip.VDIP(image, 7, variant="extreme", config=cfg, kernel_branch=branch, prior=tiny_prior, context=RunContext(pm=pm), seed=2)


def _bird(grey, rgb, tiny_prior, pm, branch):
    return bird.BirdLoop(rgb[..., :SIZE, :SIZE], K, denoiser=tiny(), kernel_branch=branch, prior=tiny_prior, context=RunContext(pm=pm),
                         seed=3, config=bird.BirdConfig(iters=7, ddim_steps=3))


def _blinddps(grey, rgb, tiny_prior, pm, branch):
    if branch == "native":
        return blinddps.BlindDPSSampler(rgb[..., :SIZE, :SIZE], 8, denoiser=tiny(), kernel_branch="native",
                                        kernel_denoiser=tiny(channels=1, learned_sigma=True, seed=1), context=RunContext(pm=pm), seed=2,
                                        config=blinddps.BlindDPSConfig(steps=7))
    return blinddps.BlindDPSSampler(rgb[..., :SIZE, :SIZE], K, denoiser=tiny(learned_sigma=True), kernel_branch=branch,
                                    prior=tiny_prior, context=RunContext(pm=pm), seed=1, config=blinddps.BlindDPSConfig(steps=7))


METHODS = {"dip": _dip, "vdip": _vdip, "bird": _bird, "blinddps": _blinddps}


@pytest.mark.parametrize("branch", ["glkm", "native"])
@pytest.mark.parametrize("method", list(METHODS))
def test_an_interrupted_run_resumes_bit_for_bit(tmp_path, grey, rgb, tiny_prior, pm, method, branch):
    """7 iterations, checkpoints after 2 and 4, killed in iteration 5 (in the callback, after
    its update); the resumed run redoes iterations 5, 6, 7 and ends with the same image, kernel
    and losses as the straight run, whatever the global RNG did in between."""
    make = METHODS[method]
    straight = make(grey, rgb, tiny_prior, pm, branch).run(progress=False)
    folder = tmp_path / "ckpt"
    with pytest.raises(Interrupt):
        make(grey, rgb, tiny_prior, pm, branch).run(progress=False, callback=stop_at(5), trace_every=1,
                                                    checkpoint=folder, checkpoint_every=2)
    assert json.loads((folder / "latest.json").read_text()) == {"step": 4, "folder": "step_0000004"}
    torch.manual_seed(12345)  # the global RNG is part of the checkpoint
    seen = []
    resumed = make(grey, rgb, tiny_prior, pm, branch).run(progress=False, callback=stop_at(None, seen), trace_every=1,
                                                          checkpoint=folder, checkpoint_every=2)
    assert seen == [5, 6, 7] and resumed["info"]["resumed_from"] == 4 and straight["info"]["resumed_from"] == 0
    assert torch.equal(resumed["image"], straight["image"]) and torch.equal(resumed["kernel"], straight["kernel"])
    assert resumed["info"]["losses"] == straight["info"]["losses"] and len(straight["info"]["losses"]) == 7
    assert resumed["info"]["seconds_before_resume"] > 0


@pytest.mark.parametrize("run", [dip.run_dip, vdip.run_vdip_sparse, bird.run_bird, blinddps.run_blinddps])
def test_every_iterative_method_takes_checkpoint_for_the_runner_and_the_cli(run):
    """``glkm eval`` / ``glkm deblur --checkpoint`` checkpoint the methods whose factory names
    ``checkpoint`` (``accepts_keyword(..., explicit_only=True)``)."""
    assert accepts_keyword(run, "checkpoint", explicit_only=True)
    assert accepts_keyword(run, "checkpoint_every", explicit_only=True)


def test_a_checkpoint_of_another_method_or_run_is_refused(tmp_path, grey, rgb, tiny_prior, pm):
    folder = tmp_path / "ckpt"
    with pytest.raises(Interrupt):
        _bird(grey, rgb, tiny_prior, pm, "native").run(progress=False, callback=stop_at(3), trace_every=1,
                                                       checkpoint=folder, checkpoint_every=2)
    with pytest.raises(InvalidInputError, match=r"belongs to a different run \(loop: saved 'bird', now 'blinddps'"):
        _blinddps(grey, rgb, tiny_prior, pm, "native").run(progress=False, checkpoint=folder)
    other = bird.BirdLoop(rgb[..., :SIZE, :SIZE], K, denoiser=tiny(), kernel_branch="native", context=RunContext(pm=pm), seed=3,
                          config=bird.BirdConfig(iters=7, ddim_steps=4))
    with pytest.raises(InvalidInputError, match="ddim_steps"):
        other.run(progress=False, checkpoint=folder)
    with pytest.raises(InvalidInputError, match="checkpoint_every"):
        _bird(grey, rgb, tiny_prior, pm, "native").run(progress=False, checkpoint=tmp_path / "x", checkpoint_every=0)


# --------------------------------------------------------------------------- the driver alone
class NoisyFit(IterativeMethod):
    """A toy method with every kind of state: a module, Adam, a scheduler, a generator, a loose
    tensor (a running sum) and JSON loop state; ``before_loop`` counts its calls."""

    name = "toy"

    def __init__(self, iters=6, seed=0):
        self.iters = iters
        self.net = torch.nn.Linear(3, 1)
        torch.nn.init.zeros_(self.net.weight)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=0.1)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, 2, gamma=0.5)
        self.gen = torch.Generator().manual_seed(seed)
        self.total = torch.zeros(3)
        self.prepared = 0
        self.seed = seed

    def before_loop(self, progress):
        self.prepared += 1

    def step(self, step):
        x = torch.randn(8, 3, generator=self.gen) + torch.randn(8, 3)  # private and global RNG
        loss = (self.net(x) - x.sum(1, keepdim=True)).square().mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        self.total += x.mean(0)
        return loss.detach()

    def trace(self):
        return self.total.clone(), self.net.weight.detach().clone()

    def state(self):
        return LoopState(modules={"net": self.net}, optimizers={"adam": self.optimizer},
                         schedulers={"lr": self.scheduler}, generators={"gen": self.gen}, tensors={"total": self.total})

    def identity(self):
        return identity_of(self.name, None, 1, self.seed, torch.ones(2, 2), {"iters": self.iters})

    def loop_state(self):
        return {"prepared": self.prepared}

    def load_loop_state(self, state):
        self.prepared = state["prepared"]


class Recorder:
    """A callback with state that a checkpoint carries (as the benchmark's trace recorder)."""

    def __init__(self, stop=None):
        self.steps, self.stop = [], stop

    def __call__(self, step, image, kernel):
        self.steps.append(step)
        if step == self.stop:
            raise Interrupt

    def state_dict(self):
        return {"steps": list(self.steps)}

    def load_state_dict(self, state):
        self.steps = list(state["steps"])


def test_driver_resumes_every_kind_of_state(tmp_path):
    torch.manual_seed(0)
    straight = NoisyFit()
    record = run_loop(straight, 6, progress=False, callback=Recorder(), trace_every=2)
    assert record.resumed_from == 0 and len(record.losses) == 6 and straight.prepared == 1
    assert record.info()["loss_last"] == record.losses[-1]

    torch.manual_seed(0)
    with pytest.raises(Interrupt):
        run_loop(NoisyFit(), 6, progress=False, callback=Recorder(stop=4), trace_every=1, checkpoint=tmp_path,
                 checkpoint_every=3)
    torch.manual_seed(99)
    resumed, recorder = NoisyFit(), Recorder()
    again = run_loop(resumed, 6, progress=False, callback=recorder, trace_every=1, checkpoint=tmp_path,
                     checkpoint_every=3)
    assert again.resumed_from == 3 and again.losses == record.losses
    assert recorder.steps == [1, 2, 3, 4, 5, 6]  # the callback's state came back with the checkpoint
    assert resumed.prepared == 1  # before_loop ran in the first run only; its loop_state came back
    assert torch.equal(resumed.total, straight.total) and torch.equal(resumed.net.weight, straight.net.weight)
    assert resumed.optimizer.param_groups[0]["lr"] == straight.optimizer.param_groups[0]["lr"] == 0.1 * 0.5 ** 3


def test_driver_refuses_a_checkpoint_without_the_method_state(tmp_path):
    with pytest.raises(Interrupt):
        run_loop(NoisyFit(), 6, progress=False, callback=Recorder(stop=3), trace_every=1, checkpoint=tmp_path,
                 checkpoint_every=2)

    class MoreState(NoisyFit):
        def state(self):
            st = super().state()
            st.tensors["other"] = torch.zeros(2)
            return st

    with pytest.raises(WeightsError, match="inconsistent.*tensor_other.*delete"):
        run_loop(MoreState(), 6, progress=False, checkpoint=tmp_path)
    with pytest.raises(InvalidInputError, match="config"):
        run_loop(NoisyFit(iters=7), 7, progress=False, checkpoint=tmp_path)


# --------------------------------------------------------------------------- through the CLI
@pytest.mark.parametrize("method, cls", [("bird", bird.BirdLoop), ("blinddps", blinddps.BlindDPSSampler)])
def test_cli_deblur_resumes_the_diffusion_methods(tmp_path, rgb, monkeypatch, capsys, method, cls):
    """``glkm deblur --method bird|blinddps --checkpoint DIR``: killed after the checkpoint at
    step 2, the same command resumes and writes the straight run's kernel and losses."""
    diffusers = pytest.importorskip("diffusers")
    import numpy as np
    from test_diffusion import tiny_diffusers_unet

    from glkm_prior.cli import main
    from glkm_prior.imageio import write_image

    model = tmp_path / "model"
    tiny_diffusers_unet().save_pretrained(model / "unet")
    diffusers.DDIMScheduler(clip_sample=True).save_pretrained(model / "scheduler")
    src = tmp_path / "blurry.png"
    write_image(src, rgb[0, :, :SIZE, :SIZE].permute(1, 2, 0).numpy())
    steps = ["--option", "ddim_steps=2"] if method == "bird" else []
    base = ["deblur", str(src), "--method", method, "--iters", "4", "--kernel-size", "7", "--kernel-branch",
            "native" if method == "bird" else "glkm", "--option", f"denoiser={model}", *steps]
    if method == "blinddps":
        weights = tmp_path / "prior"
        from glkm_prior import KernelPrior
        KernelPrior.untrained(31, seed=0).save_pretrained(weights)
        base += ["--weights", str(weights)]
    assert main([*base, "-o", str(tmp_path / "straight.png")]) == 0
    ckpt = tmp_path / "ckpt"
    run = cls.run

    def killed_in_step_3(self, **kwargs):
        return run(self, **{**kwargs, "callback": stop_at(3), "trace_every": 1})

    monkeypatch.setattr(cls, "run", killed_in_step_3)
    with pytest.raises(Interrupt):
        main([*base, "-o", str(tmp_path / "resumed.png"), "--checkpoint", str(ckpt), "--checkpoint-every", "2"])
    assert (ckpt / "latest.json").is_file() and not (tmp_path / "resumed.png").exists()
    monkeypatch.undo()
    assert main([*base, "-o", str(tmp_path / "resumed.png"), "--checkpoint", str(ckpt), "--checkpoint-every", "2"]) == 0
    assert "resuming from the checkpoint" in capsys.readouterr().err
    a = json.loads((tmp_path / "straight.json").read_text())["info"]
    b = json.loads((tmp_path / "resumed.json").read_text())["info"]
    assert b["resumed_from"] == 2 and a["resumed_from"] == 0 and b["losses"] == a["losses"]
    assert np.array_equal(np.load(tmp_path / "resumed_kernel.npy"), np.load(tmp_path / "straight_kernel.npy"))
    assert not ckpt.exists()  # removed once the result was written
