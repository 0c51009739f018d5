import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from glkm_prior import KernelPrior
from glkm_prior.hub import load_component
from glkm_prior.imageio import write_image
from glkm_prior.models import KernelGenerator, KernelInitializer
from glkm_prior.training import (
    GeneratorConfig,
    InitializerConfig,
    collaborative_step,
    kernel_diversity,
    make_blurry_batch,
    train_generator,
    train_initializer,
)


def _log(folder):
    return [json.loads(line) for line in (folder / "train_log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def trained_generator(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    train_generator(GeneratorConfig(out=str(out), steps=3, batch=8, eval_every=1000, eval_kernels=2))
    return out


def test_generator_run_writes_prior_layout_and_resumes(trained_generator):
    G = load_component(trained_generator / "generator", "KernelGenerator")
    assert G.size == 31
    assert json.loads((trained_generator / "generator" / "config.json").read_text())["training"]["steps"] == 3
    before = _log(trained_generator)
    assert before[-1]["step"] == 3
    train_generator(GeneratorConfig(out=str(trained_generator), steps=5, batch=8, eval_every=1000, eval_kernels=2))
    after = _log(trained_generator)
    assert after[: len(before)] == before
    assert after[len(before)] == {"resumed_from": 3} and after[-1]["step"] == 5  # continued, not restarted


def test_initializer_run_produces_a_loadable_prior(tmp_path, trained_generator):
    rng = np.random.default_rng(0)
    data = tmp_path / "images"
    for i in range(3):
        write_image(data / f"{i}.png", rng.random((90, 100)).astype(np.float32))
    out = tmp_path / "prior"
    cfg = InitializerConfig(out=str(out), generator=str(trained_generator), data=[str(data)], val_data=[str(data)],
                            steps=2, batch=2, crop=64, inner_steps=2, eval_every=2)
    train_initializer(cfg)
    prior = KernelPrior.from_pretrained(out)
    assert prior.initializer is not None and prior.size == 31
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert "val_kernel_l1" in log[-1]


def test_blurry_batch_matches_the_forward_model():
    gen = torch.Generator().manual_seed(0)
    images = [torch.rand(80, 90)]
    k = torch.zeros(2, 1, 5, 5)
    k[:, 0, 2, 2] = 1.0  # delta kernel: blurry = centre crop of the sharp patch, quantised
    blurry, sharp = make_blurry_batch(images, k, 32, 0.0, gen)
    assert blurry.shape == (2, 1, 32, 32) and sharp.shape == (2, 1, 36, 36)
    assert torch.allclose(blurry, torch.round(sharp[..., 2:34, 2:34] * 255) / 255, atol=1e-6)


def test_collaborative_step_inner_inversion_moves_towards_the_kernel():
    torch.manual_seed(0)
    G = KernelGenerator().eval().requires_grad_(False)
    E = KernelInitializer()
    target = G(torch.randn(2, 100, 1, 1))
    y = torch.rand(2, 1, 64, 64)
    loss0, l1_0, mse_0 = collaborative_step(E, G, y, target, inner_steps=0, inner_lr=0.01, lam=0.1)
    assert mse_0.item() == 0  # no inner steps: z* = E(y)
    loss, l1, mse = collaborative_step(E, G, y, target, inner_steps=30, inner_lr=0.05, lam=0.1)
    assert mse.item() > 0 and torch.isclose(loss, l1 + 0.1 * mse)
    loss.backward()
    assert all(p.grad is not None for p in E.fc.parameters())


def test_kernel_diversity_detects_collapse():
    k = torch.rand(4, 1, 7, 7)
    k = k / k.sum(dim=(1, 2, 3), keepdim=True)
    assert kernel_diversity(k[:1].expand(4, -1, -1, -1)) == 0
    assert kernel_diversity(k) > 0


def test_torchrun_two_cpu_processes(tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "glkm_prior.cli", "train", "generator", "--out", str(out), "--steps", "3", "--batch", "4",
           "--eval-every", "1000"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((out / "train_config.json").read_text())["world"] == 2
    assert load_component(out / "generator", "KernelGenerator").size == 31
    assert _log(out)[-1]["step"] == 3
