"""The fast default method (adapters/fast.py): geometry, hooks, quality on the example, CLI."""

import json

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from glkm_adapters import fast, glkm_branch, native_branch, nonblind
from glkm_prior.scoring import score_image
from glkm_prior.branch import KernelBranch
from glkm_prior.cli import main
from glkm_prior.errors import InvalidInputError, KernelSizeError
from glkm_prior.physics import kernel_extent
from glkm_prior.imageio import read_image, to_tensor
from glkm_prior.plugins import hookimpl
from glkm_prior.context import RunContext

from conftest import plugin_manager

TINY = {"iters": 1, "kernel_steps": 2}


def _blurry(seed=0, size=96, K=9):
    g = torch.Generator().manual_seed(seed)
    x = F.avg_pool2d(torch.rand(1, 1, size + K - 1 + 3, size + K - 1 + 3, generator=g), 4, stride=1)
    k = torch.zeros(1, 1, K, K)
    k[0, 0, K // 2, 1:-1] = 1 / (K - 2)
    return x, k, F.conv2d(x, k)


def _check_kernel(k, K):
    assert k.shape == (1, 1, K, K)
    assert float(k.min()) >= 0 and float(k.sum()) == pytest.approx(1, abs=1e-5)


@pytest.mark.parametrize("branch, K", [("glkm", 9), ("glkm", 41), ("native", 9), ("native", 41)])
def test_coarse_to_fine_returns_a_normalised_kernel_of_the_requested_size(tiny_prior, branch, K):
    _, _, y = _blurry(size=100)
    out = fast.run_fast(y, kernel_size=K, kernel_branch=branch, prior=tiny_prior if branch == "glkm" else None, **TINY)
    _check_kernel(out["kernel"], K)
    assert out["image"].shape == y.shape and torch.isfinite(out["image"]).all()
    # 41 px exceeds the 31-px canvas: the branch works at 31 px, finer levels in pixel space
    assert out["info"]["branch_kernel_size"] == (min(K, 31) if branch == "glkm" else K)
    levels = {t["kernel_size"] for t in out["info"]["trace"]}
    if branch == "glkm" and K > 31:
        assert max(levels) == K  # pixel-space refinement up to the full size
        short = fast.run_fast(y, kernel_size=K, prior=tiny_prior, pixel_refine=False, **TINY)
        _check_kernel(short["kernel"], K)  # the branch's 31-px kernel, upsampled
        assert max(t["kernel_size"] for t in short["info"]["trace"]) == 31
        assert torch.allclose(short["kernel"], fast.clean_kernel(fast.resize_kernel(short["branch"]().detach(), K)), atol=1e-6)


def test_same_seed_same_result_and_branch_parameters_are_what_moves(tiny_prior):
    _, _, y = _blurry()
    a = fast.run_fast(y, kernel_size=9, kernel_branch="native", seed=3, **TINY)
    b = fast.run_fast(y, kernel_size=9, kernel_branch="native", seed=3, **TINY)
    assert torch.equal(a["kernel"], b["kernel"]) and torch.equal(a["image"], b["image"])


class _Recorder(KernelBranch):
    """A third-party branch: free logits; records that the loop optimised exactly its parameter."""

    name = "recorder"

    def __init__(self, K):
        super().__init__(K)
        self.logits = nn.Parameter(torch.zeros(K * K))
        self.start = self.logits.detach().clone()

    def forward(self):
        K = self.kernel_size
        return torch.softmax(self.logits, 0).reshape(1, 1, K, K)


def test_any_kernel_branch_plugs_in_through_the_hooks():
    made = []

    class Plugin:
        @hookimpl
        def glkm_kernel_branches(self, register):
            def factory(blurry, kernel_size, **_):
                made.append(_Recorder(kernel_size))
                return made[-1]

            register("recorder", factory, "test branch")

    pm = plugin_manager(fast=fast, nonblind=nonblind, plugin=Plugin())
    _, _, y = _blurry()
    out = fast.run_fast(y, kernel_size=9, kernel_branch="recorder", context=RunContext(pm=pm), **TINY)
    (branch,) = made
    assert not torch.equal(branch.logits.detach(), branch.start)  # the loop optimised it
    from glkm_prior.kernel_estimation import clean_kernel
    assert torch.allclose(out["kernel"], clean_kernel(branch().detach()), atol=1e-6)


def test_nonblind_step_with_the_true_kernel_recovers_the_image(example_dir):
    x = to_tensor(read_image(example_dir / "sharp.png", mode="gray"))
    k = torch.from_numpy(np.load(example_dir / "kernel.npy")).float()[None, None]
    y = F.conv2d(x, k)
    y = y + 0.002 * torch.randn(y.shape, generator=torch.Generator().manual_seed(1))
    est = nonblind.nonblind(y, k)
    c = k.shape[-1] // 2
    ref = x[..., c: c + y.shape[-2], c: c + y.shape[-1]]
    interior = (slice(None), slice(None), slice(10, -10), slice(10, -10))
    psnr = -10 * np.log10(float((est - ref)[interior].square().mean()))
    psnr_blurry = -10 * np.log10(float((y - ref)[interior].square().mean()))
    assert psnr > 32 and psnr > psnr_blurry + 4  # measured 33.6 vs 28.7 dB


def test_example_gets_sharper_with_the_trained_prior(example_dir):
    sharp = read_image(example_dir / "sharp.png")
    blurry = read_image(example_dir / "blurry.png")
    out = fast.run_fast(to_tensor(blurry), kernel_size=31, iters=2)
    result = out["image"][0].permute(1, 2, 0).numpy()
    assert score_image(result, sharp).psnr > score_image(blurry, sharp).psnr + 1.5


def test_bad_input_is_rejected_by_name(tiny_prior):
    with pytest.raises(InvalidInputError, match="too small"):
        fast.run_fast(torch.rand(1, 1, 40, 40), kernel_size=31, prior=tiny_prior)
    with pytest.raises(InvalidInputError, match="unknown option"):
        fast.run_fast(torch.rand(1, 1, 80, 80), kernel_size=9, prior=tiny_prior, kernel_stpes=3)
    with pytest.raises(KernelSizeError, match="canvas is 31 px"):
        glkm_branch.make_glkm_branch(torch.rand(1, 1, 80, 80), 41, prior=tiny_prior)


def test_cli_runs_colour_and_large_images(tmp_path, tiny_prior):
    tiny_prior.save_pretrained(tmp_path / "prior")
    rng = np.random.default_rng(0)
    colour = (rng.random((70, 90, 3)) * 255).astype(np.uint8)
    Image.fromarray(colour).save(tmp_path / "colour.png")
    large = np.kron(rng.random((150, 200)), np.ones((10, 10)))  # 1500 x 2000, blocky
    Image.fromarray((large * 255).astype(np.uint8)).save(tmp_path / "large.png")
    for name, K in (("colour", "9"), ("large", "15")):
        out = tmp_path / f"{name}_out.png"
        args = ["deblur", str(tmp_path / f"{name}.png"), "-o", str(out), "--method", "fast", "--iters", "1",
                "--kernel-size", K, "--weights", str(tmp_path / "prior")]
        assert main(args) == 0
        assert read_image(out).shape == read_image(tmp_path / f"{name}.png").shape
        report = json.loads(out.with_suffix(".json").read_text())
        assert report["method"] == "fast" and report["info"]["iters"] == 1
    assert report["info"]["estimation_crop"][2:] == [800, 800]  # the large image: kernel from a crop


def test_identity_baseline_returns_the_input_and_a_delta_kernel():
    y = torch.rand(1, 3, 20, 30)
    out = nonblind.run_identity(y, kernel_size=7)
    assert torch.equal(out["image"], y)
    _check_kernel(out["kernel"], 7)
    assert float(out["kernel"][0, 0, 3, 3]) == 1.0


# ------------------------------------------------------------------ kernel size estimation
def test_kernel_extent_against_hand_computed_windows():
    k = torch.zeros(1, 1, 21, 21)
    k[0, 0, 10, 10] = 1
    assert kernel_extent(k) == 1
    k = torch.zeros(1, 1, 21, 21)
    k[0, 0, 4, 3:12] = 1  # a 9-px line off the canvas centre: the window is centred on the line
    assert kernel_extent(k) == 9
    # 96 % of the mass in a 3-px core, 4 % spread 8 px away: 97 % needs the far part, 90 % does not
    k = torch.zeros(1, 1, 31, 31)
    k[0, 0, 15, 14:17] = 0.32
    k[0, 0, 15, 23] = 0.04
    assert kernel_extent(k, mass=0.90) == 3 and kernel_extent(k, mass=0.97) >= 17


def test_kernel_size_estimate_grows_with_the_blur(example_dir):
    sharp = to_tensor(read_image(example_dir / "sharp.png", "gray"))
    sizes = {}
    for L in (5, 35):  # horizontal box blurs of L px
        k = torch.zeros(1, 1, L + 2, L + 2)
        k[0, 0, (L + 2) // 2, 1:-1] = 1 / L
        report = fast.estimate_kernel_size(F.conv2d(sharp, k))
        sizes[L] = report["kernel_size"]
        assert report["kernel_size"] % 2 == 1 and 11 <= report["kernel_size"] <= report["max_size"] <= 75
    assert sizes[5] <= 21 and sizes[35] >= 35 and sizes[35] > sizes[5] + 10
    # too small an image for a coarse view: the largest size it allows, no estimation
    small = fast.estimate_kernel_size(torch.rand(1, 1, 60, 60))
    assert small["extent"] is None and small["kernel_size"] == small["max_size"] == 29  # odd(60 // 2 - 1)


def test_cli_auto_kernel_size_and_bench_auto(tmp_path, example_dir):
    out = tmp_path / "auto.png"
    assert main(["deblur", str(example_dir / "blurry.png"), "-o", str(out), "--iters", "1"]) == 0
    report = json.loads(out.with_suffix(".json").read_text())
    est = report["kernel_size_estimate"]
    kernel = np.load(tmp_path / "auto_kernel.npy")  # the default method (l0): at least the asked size
    assert report["kernel_size"] == est["kernel_size"] and kernel.shape == tuple(report["kernel_shape"])
    assert kernel.shape[0] == kernel.shape[1] >= est["kernel_size"]
    assert report["seconds"] >= est["seconds"] > 0
    from glkm_prior import bench

    folder = tmp_path / "photos"  # a folder of photos without ground truth (sizes unknown)
    folder.mkdir()
    Image.open(example_dir / "blurry.png").save(folder / "example.png")
    cfg = bench.BenchConfig(dataset=str(folder), method="fast", out=str(tmp_path / "run"), kernel_size="auto",
                            kernel_branch="native", options=dict(TINY))
    bench.run_benchmark(cfg, progress=False, log=lambda m: None)
    (row,) = json.loads((tmp_path / "run" / "results.json").read_text())["rows"]
    assert row["kernel_size"] == row["kernel_size_estimate"]["kernel_size"] and row["seconds"] >= row["kernel_size_estimate"]["seconds"]
    with pytest.raises(KernelSizeError):
        bench.BenchConfig(dataset=str(folder), method="fast", out=str(tmp_path / "bad"), kernel_size=500).validate()


def test_fast_uses_the_31px_member_of_the_bundle_for_large_kernels(tmp_path):
    from glkm_prior import KernelPrior

    KernelPrior.untrained(31, seed=0).save_pretrained(tmp_path / "bundle" / "k31")
    KernelPrior.untrained(75, seed=1).save_pretrained(tmp_path / "bundle" / "k75")
    KernelPrior.untrained(75, seed=2).save_pretrained(tmp_path / "alone75")
    big = KernelPrior.from_pretrained(tmp_path / "bundle", kernel_size=41)
    assert big.size == 75
    small = fast.branch_prior(big, 41)
    assert small.size == 31 and small.source == str(tmp_path / "bundle" / "k31")
    alone = KernelPrior.from_pretrained(tmp_path / "alone75")
    assert fast.branch_prior(alone, 41) is alone  # no bundle around it: used as it is
    untrained = KernelPrior.untrained(75)
    assert fast.branch_prior(untrained, 41) is untrained
    _, _, y = _blurry(size=100)
    out = fast.run_fast(y, kernel_size=41, prior=big, **TINY)
    assert out["info"]["prior"] == str(tmp_path / "bundle" / "k31") and out["info"]["branch_kernel_size"] == 31
    _check_kernel(out["kernel"], 41)


def test_eval_passes_method_options(tmp_path, example_dir, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.open(example_dir / "blurry.png").save(folder / "example.png")
    args = ["eval", str(folder), "--method", "fast", "--kernel-branch", "native", "--kernel-size", "9", "--no-progress",
            "--option", "iters=1", "--option", "kernel_steps=2", "--out", str(tmp_path / "run")]
    assert main(args) == 0
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["options"] == {"iters": 1, "kernel_steps": 2} and run["kernel_size"] == 9
    (row,) = json.loads((tmp_path / "run" / "results.json").read_text())["rows"]
    assert row["kernel_size"] == 9 and row["info"]["iters"] == 1
    assert main(args[:-2] + ["--option", "bogus", "--out", str(tmp_path / "bad")]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    with pytest.raises(InvalidInputError, match="branch_canvas"):
        fast.resolve_options({"branch_canvas": "75"})
    with pytest.raises(InvalidInputError, match="pixel_refine"):
        fast.resolve_options({"pixel_refine": "no"})
