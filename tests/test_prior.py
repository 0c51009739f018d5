import json
import shutil

import pytest
import torch

from glkm_prior import KernelPrior
from glkm_prior.errors import InvalidInputError, KernelSizeError, WeightsError
from glkm_prior.hub import CONFIG_NAME, WEIGHTS_NAME, load_component, save_component
from glkm_prior.models import KernelDiscriminator, KernelGenerator, KernelInitializer
from glkm_prior.prior import BUNDLE_SPECS, bundle_spec


@pytest.mark.parametrize("canvas", sorted(BUNDLE_SPECS))
def test_generator_kernels_are_normalised_on_every_canvas(canvas):
    G = KernelGenerator(**BUNDLE_SPECS[canvas]).eval()
    z = torch.randn(3, 100, 1, 1)
    w = G.head(z)
    assert w.shape == (3, *G.latent_shape)
    k = G.tail(w)
    assert k.shape == (3, 1, canvas, canvas)
    assert (k >= 0).all()
    assert torch.allclose(k.sum(dim=(1, 2, 3)), torch.ones(3), atol=1e-5)
    assert torch.allclose(G(z), k)
    assert KernelDiscriminator(canvas)(k).shape == (3,)


def test_every_supported_kernel_size_is_served(tiny_prior):
    w = tiny_prior.random_latent(2, seed=0)
    for size in range(11, 32, 2):
        k = tiny_prior.kernel(w, size)
        assert k.shape == (2, 1, size, size)
        assert torch.allclose(k.sum(dim=(1, 2, 3)), torch.ones(2), atol=1e-5)
    big = KernelPrior.untrained(75, seed=0)
    wb = big.random_latent(1, seed=0)
    for size in (33, 41, 51, 55, 64, 75):  # Lai, BIRD (41), BlindDPS (64, even)
        k = big.kernel(wb, size)
        assert k.shape == (1, 1, size, size) and k.sum().item() == pytest.approx(1.0, abs=1e-5)
    # the bundle picks a canvas for each baseline's size
    assert bundle_spec(27)["size"] == 31 and bundle_spec(41)["size"] == 75 and bundle_spec(75)["size"] == 75
    with pytest.raises(KernelSizeError):
        bundle_spec(77)
    with pytest.raises(KernelSizeError):
        tiny_prior.kernel(w, 1)


@pytest.mark.parametrize("hw", [(64, 64), (100, 77), (255, 255)])
def test_initializer_any_size(hw):
    E = KernelInitializer().eval()
    with torch.no_grad():
        z = E(torch.rand(2, 1, *hw))
    assert z.shape == (2, 100, 1, 1) and torch.isfinite(z).all()
    with pytest.raises(InvalidInputError, match="at least 64"):
        E(torch.rand(1, 1, 63, 80))
    with pytest.raises(InvalidInputError, match="luma"):
        E(torch.rand(1, 3, 64, 64))


def test_initial_latent_is_a_fresh_leaf(tiny_prior):
    y = torch.rand(1, 3, 80, 90)
    w = tiny_prior.initial_latent(y, init="initializer")
    assert w.is_leaf and w.requires_grad and w.grad is None
    k = tiny_prior.kernel(w, 21)
    k.sum().backward()
    assert w.grad is not None
    assert all(not p.requires_grad for p in tiny_prior.parameters())
    assert not tiny_prior.generator.training and not tiny_prior.initializer.training
    tiny_prior.train()  # stays frozen in eval mode
    assert not tiny_prior.generator.training
    # colour input is reduced to luma: same latent as the explicit luma image
    luma = (y * torch.tensor([0.299, 0.587, 0.114]).reshape(1, 3, 1, 1)).sum(1, keepdim=True)
    assert torch.allclose(tiny_prior.initial_latent(luma, init="initializer"), w, atol=1e-5)
    estimate = tiny_prior.initial_latent(y, kernel_size=21)  # the default start: a fresh leaf too
    assert estimate.is_leaf and estimate.requires_grad and estimate.grad is None


def test_random_latent_is_seeded(tiny_prior):
    assert torch.equal(tiny_prior.random_latent(1, seed=3), tiny_prior.random_latent(1, seed=3))
    assert not torch.equal(tiny_prior.random_latent(1, seed=3), tiny_prior.random_latent(1, seed=4))


def test_invert_recovers_a_kernel_the_generator_can_make(tiny_prior):
    target = tiny_prior.kernel(tiny_prior.random_latent(1, seed=11)).detach()
    w = tiny_prior.invert(target, steps=200, restarts=2)
    k = tiny_prior.kernel(w)
    rel = ((k - target).norm() / target.norm()).item()
    start = ((tiny_prior.kernel(tiny_prior.random_latent(1, seed=5)) - target).norm() / target.norm()).item()
    assert rel < 0.5 * start
    assert w.is_leaf and w.requires_grad


def test_save_load_round_trip_is_bit_exact(tmp_path, tiny_prior):
    tiny_prior.save_pretrained(tmp_path / "p")
    for name in ("generator", "initializer"):
        cfg = json.loads((tmp_path / "p" / name / CONFIG_NAME).read_text())
        assert cfg["format_version"] == 1 and cfg["dtype"] == "float32"
    loaded = KernelPrior.from_pretrained(tmp_path / "p")
    for (ka, va), (kb, vb) in zip(tiny_prior.state_dict().items(), loaded.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    y = torch.rand(1, 1, 64, 64)
    assert torch.equal(tiny_prior.kernel(tiny_prior.initial_latent(y, init="initializer")),
                       loaded.kernel(loaded.initial_latent(y, init="initializer")))


def test_float16_storage_round_trip(tmp_path, tiny_prior):
    save_component(tiny_prior.generator, tmp_path / "g16", dtype="float16")
    g = load_component(tmp_path / "g16", "KernelGenerator")
    assert next(g.parameters()).dtype == torch.float32
    save_component(g, tmp_path / "g16b", dtype="float16")
    assert (tmp_path / "g16" / WEIGHTS_NAME).read_bytes() == (tmp_path / "g16b" / WEIGHTS_NAME).read_bytes()


def test_bundle_selects_canvas_by_kernel_size(tmp_path, tiny_prior):
    tiny_prior.save_pretrained(tmp_path / "bundle" / "k31")
    big = KernelPrior(KernelGenerator(**BUNDLE_SPECS[75]), KernelInitializer())
    big.save_pretrained(tmp_path / "bundle" / "k75")
    assert KernelPrior.from_pretrained(tmp_path / "bundle").size == 31
    assert KernelPrior.from_pretrained(tmp_path / "bundle", kernel_size=19).size == 31
    assert KernelPrior.from_pretrained(tmp_path / "bundle", kernel_size=55).size == 75
    with pytest.raises(KernelSizeError):
        KernelPrior.from_pretrained(tmp_path / "bundle", kernel_size=200)


def _seed_hub_cache(cache, repo_id, commit, prior):
    repo_dir = cache / f"models--{repo_id.replace('/', '--')}"
    prior.save_pretrained(repo_dir / "snapshots" / commit / "k31")
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(commit)


def test_hub_repo_id_loads_offline_from_a_pinned_cache(tmp_path, tiny_prior, monkeypatch):
    import huggingface_hub.constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    _seed_hub_cache(tmp_path / "hub", "glkm/kernel-prior", commit, tiny_prior)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    p = KernelPrior.from_pretrained("glkm/kernel-prior", revision=commit, cache_dir=tmp_path / "hub", kernel_size=27)
    assert torch.equal(p.generator.head[0].weight, tiny_prior.generator.head[0].weight)
    # explicit local_files_only, branch name resolved through refs/main
    p2 = KernelPrior.from_pretrained("glkm/kernel-prior", cache_dir=tmp_path / "hub", local_files_only=True)
    assert p2.size == 31
    with pytest.raises(WeightsError, match="not in the local cache"):
        KernelPrior.from_pretrained("glkm/other-repo", cache_dir=tmp_path / "hub", local_files_only=True)


def test_missing_or_corrupt_weights_are_named(tmp_path, tiny_prior):
    tiny_prior.save_pretrained(tmp_path / "p")
    with pytest.raises(WeightsError, match="does not exist"):
        KernelPrior.from_pretrained(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsError, match="no trained prior"):
        KernelPrior.from_pretrained(tmp_path / "empty")
    broken = tmp_path / "broken"
    shutil.copytree(tmp_path / "p", broken)
    (broken / "generator" / WEIGHTS_NAME).write_bytes(b"not a safetensors file")
    with pytest.raises(WeightsError, match="corrupt weights"):
        KernelPrior.from_pretrained(broken)
    (broken / "generator" / WEIGHTS_NAME).unlink()
    with pytest.raises(WeightsError, match="missing model.safetensors"):
        KernelPrior.from_pretrained(broken)
    (broken / "generator" / CONFIG_NAME).write_text("{not json")
    with pytest.raises(WeightsError, match="corrupt"):
        KernelPrior.from_pretrained(broken)


def test_config_weights_mismatch_names_the_keys(tmp_path, tiny_prior):
    tiny_prior.save_pretrained(tmp_path / "p")
    cfg_path = tmp_path / "p" / "generator" / CONFIG_NAME
    cfg = json.loads(cfg_path.read_text())
    cfg["config"]["channels"] = [256, 128, 64, 32]  # one more layer than the weights hold
    cfg["config"]["head_size"] = 2
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(WeightsError, match="missing keys"):
        KernelPrior.from_pretrained(tmp_path / "p")
    cfg["config"] = {"size": 31, "nz": 100, "head_size": 4, "channels": [128, 128, 64]}
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(WeightsError, match="shape"):
        KernelPrior.from_pretrained(tmp_path / "p")
    cfg["model_type"] = "Pickle"
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(WeightsError, match="known model"):
        KernelPrior.from_pretrained(tmp_path / "p")


def test_nan_weights_rejected(tmp_path):
    G = KernelGenerator()
    with torch.no_grad():
        G.head[0].weight[0, 0, 0, 0] = float("nan")
    save_component(G, tmp_path / "g")
    with pytest.raises(WeightsError, match="NaN"):
        load_component(tmp_path / "g")


def test_initializer_pads_small_images_instead_of_refusing(tiny_prior):
    """An image below the initializer's MIN_SIZE is edge-replicated to it (same blur scale)."""
    import torch.nn.functional as F

    small = torch.rand(1, 1, 40, 50, generator=torch.Generator().manual_seed(0))
    m = tiny_prior.initializer.MIN_SIZE
    padded = F.pad(small, ((m - 50) // 2, m - 50 - (m - 50) // 2, (m - 40) // 2, m - 40 - (m - 40) // 2), mode="replicate")
    assert torch.equal(tiny_prior.predict_z(small), tiny_prior.predict_z(padded))


def test_invert_keeps_the_best_restart_of_each_kernel(tiny_prior):
    """Restarts run as one batch: restart 0 of each kernel is the restarts=1 run (same first draws),
    so two restarts end no worse than one, per kernel; and a batch inverts like its kernels alone."""
    targets = tiny_prior.kernel(tiny_prior.random_latent(2, seed=3)).detach()

    def l1(w):
        return (tiny_prior.kernel(w) - targets).abs().sum(dim=(1, 2, 3))

    one, two = tiny_prior.invert(targets, steps=60, restarts=1), tiny_prior.invert(targets, steps=60, restarts=2)
    # batched convolutions may round differently from unbatched ones: allow float32 noise of the L1 sum
    assert torch.all(l1(two) <= l1(one) + 1e-4)
    assert two.shape == one.shape == (2, *tiny_prior.generator.latent_shape)
