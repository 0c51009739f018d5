"""guided-diffusion's UNet (glkm_prior.guided_unet) and loading BlindDPS checkpoints by config name.

The key/shape lists in glkm_prior/data/guided_unet_keys.json were produced by upstream's
UNetModel (BlindDPS' create_model) for BlindDPS' two configs: matching them means the real
checkpoints load with strict=True. Numerics are checked against hand computations here (the
output equality with upstream itself was verified outside the repository). Tiny models only,
except the full configs built on the meta device (no memory, no init).
"""

import json
import math
from importlib import resources

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

import glkm_prior.guided_unet as gu
from glkm_prior.diffusion import Denoiser, load_guided_diffusion, load_guided_diffusion_state
from glkm_prior.errors import InvalidInputError, WeightsError
from glkm_prior.guided_unet import (BLINDDPS_FFHQ_CONFIG, BLINDDPS_KERNEL_CONFIG, AttentionBlock, ResBlock,
                                    build_guided_unet, guided_unet, timestep_embedding)
from glkm_prior.context import RunContext

TINY = dict(image_size=16, num_channels=32, num_res_blocks=1, channel_mult="1,2", learn_sigma=True,
            attention_resolutions="8", num_heads=4, num_head_channels=16, use_scale_shift_norm=True,
            resblock_updown=True)


def randomised(module, seed=0, scale=0.2):
    """Fill every parameter with random values (the zero-initialised convs would hide bugs)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)
    return module.eval()


def tiny(seed=0, **changes):
    return randomised(guided_unet(**dict(TINY, **changes)), seed)


def inputs(channels=3, size=16, batch=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, channels, size, size, generator=g) * 2 - 1, torch.tensor([0, 777])[:batch]


# ------------------------------------------------------------------ checkpoint format
@pytest.mark.parametrize("name, config, channels", [("ffhq", BLINDDPS_FFHQ_CONFIG, (3, 6)),
                                                    ("blinddps-kernel", BLINDDPS_KERNEL_CONFIG, (1, 2))])
def test_blinddps_configs_give_upstream_keys_and_shapes(name, config, channels):
    recorded = json.loads(resources.files("glkm_prior").joinpath("data/guided_unet_keys.json").read_text())[name]
    with torch.device("meta"):
        model = build_guided_unet(name)
        assert [(k, list(v.shape)) for k, v in guided_unet(**config).state_dict().items()] == [tuple(e) for e in recorded]
    assert [(k, list(v.shape)) for k, v in model.state_dict().items()] == [tuple(e) for e in recorded]  # order too
    assert (model.in_channels, model.out_channels, model.image_size) == (*channels, config["image_size"])


def test_blinddps_config_values():  # read from BlindDPS' configs/model_config.yaml and kernel_model_config.yaml
    ffhq, kernel = BLINDDPS_FFHQ_CONFIG, BLINDDPS_KERNEL_CONFIG
    assert (ffhq["image_size"], ffhq["num_channels"], kernel["image_size"], kernel["num_channels"]) == (256, 128, 64, 64)
    for cfg in (ffhq, kernel):
        assert (cfg["num_res_blocks"], cfg["attention_resolutions"], cfg["num_heads"], cfg["num_head_channels"]) == (1, 16, 4, 64)
        assert cfg["learn_sigma"] and cfg["use_scale_shift_norm"] and cfg["resblock_updown"]
        assert not (cfg["use_new_attention_order"] or cfg["class_cond"] or cfg["use_fp16"])
    assert kernel["grayscale"] and not ffhq.get("grayscale", False)


# ------------------------------------------------------------------ forward
@pytest.mark.parametrize("changes", [{}, dict(resblock_updown=False, use_scale_shift_norm=False,
                                              use_new_attention_order=True, num_head_channels=-1, num_heads=2)])
def test_tiny_forward_shape_determinism_and_gradient(changes):
    model = tiny(**changes)
    x, t = inputs()
    out = model(x, t)
    assert out.shape == (2, 6, 16, 16) and torch.isfinite(out).all() and out.abs().max() > 0
    assert torch.equal(out, model(x, t))  # deterministic (eval mode)
    assert torch.equal(model(x, 5)[1], model(x, torch.tensor([5, 5]))[1])  # a scalar timestep broadcasts
    plain = tiny(**dict(changes, learn_sigma=False))
    assert plain(x, t).shape == (2, 3, 16, 16)
    x.requires_grad_(True)
    model(x, t).square().sum().backward()
    assert torch.isfinite(x.grad).all() and (x.grad.abs().sum(dim=(1, 2, 3)) > 0).all()


def test_fresh_model_outputs_zero_and_grayscale_channels():
    model = guided_unet(**dict(TINY, grayscale=True))  # zero-initialised output conv, as upstream
    x, t = inputs(channels=1)
    assert model(x, t).shape == (2, 2, 16, 16) and not model(x, t).any()


def test_timestep_embedding_formula():
    t = torch.tensor([0, 1, 17, 999])
    emb = timestep_embedding(t, 9).double()
    half = 4
    freqs = torch.tensor([10000 ** (-j / half) for j in range(half)], dtype=torch.float64)
    angles = t.double()[:, None] * freqs
    expected = torch.cat([angles.cos(), angles.sin(), torch.zeros(4, 1, dtype=torch.float64)], dim=1)
    assert emb.shape == (4, 9) and torch.allclose(emb, expected, atol=1e-3)


@pytest.mark.parametrize("new_order", [False, True])
def test_attention_block_against_direct_softmax(new_order):
    block = randomised(AttentionBlock(64, num_heads=1, num_head_channels=16, new_order=new_order), seed=3)
    # in float64 (the block runs in its parameters' dtype), so the reference agrees to ~1e-14
    block = block.double()
    x = torch.randn(2, 64, 4, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    got = block(x)
    heads, d, n = 4, 16, 12
    xd = x.double().reshape(2, 64, n)
    normed = F.group_norm(xd, 32, block.norm.weight.double(), block.norm.bias.double(), 1e-5)
    qkv = torch.einsum("oc,bcn->bon", block.qkv.weight.double()[:, :, 0], normed) + block.qkv.bias.double()[:, None]
    out = torch.empty_like(xd)
    for h in range(heads):
        if new_order:  # [q of all heads | k of all heads | v of all heads]
            q, k, v = (qkv[:, part * 64 + h * d: part * 64 + (h + 1) * d] for part in range(3))
        else:          # per head [q | k | v]
            q, k, v = qkv[:, 3 * d * h: 3 * d * (h + 1)].split(d, dim=1)
        weights = torch.softmax(q.transpose(1, 2) @ k / math.sqrt(d), dim=-1)  # (b, query, key)
        out[:, h * d:(h + 1) * d] = (weights @ v.transpose(1, 2)).transpose(1, 2)
    proj = torch.einsum("oc,bcn->bon", block.proj_out.weight.double()[:, :, 0], out) + block.proj_out.bias.double()[:, None]
    assert torch.allclose(got, (xd + proj).reshape(2, 64, 4, 3), rtol=0, atol=1e-10)


@pytest.mark.parametrize("kind", ["scale_shift_wider", "add_down"])
def test_resblock_against_hand_computation(kind):
    scale_shift, down = kind == "scale_shift_wider", kind == "add_down"
    cin, cout = (32, 64) if scale_shift else (32, 32)
    block = randomised(ResBlock(cin, 16, 0.0, cout, use_scale_shift_norm=scale_shift, down=down), seed=5).double()
    g = torch.Generator().manual_seed(6)
    # float64: a float32 3x3 conv over 32-64 channels rounds by ~eps32 log2(576) |h| ~ 1e-6 |h|, at the old
    # 1e-5 for |h| of a few; in float64 the block and the hand computation agree to ~1e-14
    x = torch.randn(2, cin, 8, 8, generator=g, dtype=torch.float64)
    emb = torch.randn(2, 16, generator=g, dtype=torch.float64)
    gn = lambda z, norm: F.group_norm(z, 32, norm.weight, norm.bias, 1e-5)  # noqa: E731
    conv = lambda z, c: F.conv2d(z, c.weight, c.bias, padding=c.padding)  # noqa: E731
    h = F.silu(gn(x, block.in_layers[0]))
    if down:
        h, skip = F.avg_pool2d(h, 2), F.avg_pool2d(x, 2)
    else:
        skip = F.conv2d(x, block.skip_connection.weight, block.skip_connection.bias)  # 1x1: width changes
    h = conv(h, block.in_layers[2])
    e = F.linear(F.silu(emb), block.emb_layers[1].weight, block.emb_layers[1].bias)[:, :, None, None]
    if scale_shift:
        h = gn(h, block.out_layers[0]) * (1 + e[:, :cout]) + e[:, cout:]
    else:
        h = gn(h + e, block.out_layers[0])
    expected = skip + conv(F.silu(h), block.out_layers[3])
    assert torch.allclose(block(x, emb), expected, rtol=0, atol=1e-10)


# ------------------------------------------------------------------ loading
def test_round_trip_through_the_safe_loader(tmp_path):
    model = tiny(seed=7)
    st, pt = tmp_path / "tiny.safetensors", tmp_path / "tiny.pt"
    save_file(model.state_dict(), str(st))
    torch.save(model.state_dict(), pt)  # the format of BlindDPS' .pt checkpoints
    x, t = inputs()
    for path in (st, pt):
        fresh = load_guided_diffusion_state(path, guided_unet(**TINY))
        assert torch.equal(fresh(x, t), model(x, t))
    with pytest.raises(WeightsError, match="other shapes"):
        load_guided_diffusion_state(st, guided_unet(**dict(TINY, learn_sigma=False)))
    with pytest.raises(WeightsError, match="missing key"):
        load_guided_diffusion_state(st, guided_unet(**dict(TINY, num_res_blocks=2)))


def test_load_by_config_name(tmp_path, monkeypatch):
    model = tiny(seed=8)
    path = tmp_path / "tiny.safetensors"
    save_file(model.state_dict(), str(path))
    monkeypatch.setitem(gu.GUIDED_UNET_CONFIGS, "tiny", TINY)
    den = load_guided_diffusion(path, "tiny")
    assert isinstance(den, Denoiser) and (den.image_size, den.channels) == (16, 3)
    x, t = inputs()
    assert torch.equal(den(x, t), model(x, t)[:, :3]) and den.output(x, t).shape == (2, 6, 16, 16)
    with pytest.raises(WeightsError, match="does not match the GuidedUNet"):
        load_guided_diffusion_state(path, "blinddps-kernel")  # the tiny file is not the kernel model
    with pytest.raises(InvalidInputError, match="unknown guided-diffusion model config 'nope'"):
        load_guided_diffusion(path, "nope")


# ------------------------------------------------------------------ clear errors
@pytest.mark.parametrize("changes, message", [
    (dict(class_cond=True), "class-conditional"),
    (dict(use_fp16=True), "use_fp16"),
    (dict(channel_mult=""), "no default channel_mult for image_size=16"),
    (dict(channel_mult="1,x"), "comma-separated integers"),
    (dict(attention_resolutions="4"), "must be among the UNet's resolutions"),
    (dict(attention_resolutions="8,x"), "must be among the UNet.s resolutions"),
    (dict(num_channels=48), "multiple of 32"),
    (dict(num_head_channels=24), "split evenly into heads"),
])
def test_bad_configs_are_clear_errors(changes, message):
    with pytest.raises(InvalidInputError, match=message):
        guided_unet(**dict(TINY, **changes))


def test_bad_calls_are_clear_errors():
    with pytest.raises(InvalidInputError, match=r"unknown option\(s\) \[.not_an_option.\]"):
        build_guided_unet(dict(TINY, not_an_option=1))
    model = guided_unet(**TINY)
    x, t = inputs()
    with pytest.raises(InvalidInputError, match="class-conditional"):
        model(x, t, y=torch.zeros(2, dtype=torch.long))
    with pytest.raises(InvalidInputError, match=r"\(B, 3, H, W\) with H and W multiples of 2"):
        model(x[:, :, :15, :15], t)


def test_blinddps_takes_checkpoint_files(tmp_path, monkeypatch):
    """A path to a guided-diffusion checkpoint *file* is loaded with the BlindDPS architecture:
    'ffhq' for the image model, 'blinddps-kernel' for the kernel model (tiny stand-ins here)."""
    import glkm_adapters.blinddps as blinddps
    import glkm_adapters.native_branch as native_branch
    from glkm_prior.diffusion import as_denoiser
    from conftest import plugin_manager

    image_cfg = dict(TINY, image_size=32, attention_resolutions="16")
    kernel_cfg = dict(TINY, image_size=8, grayscale=True, attention_resolutions="4")
    image_net = randomised(guided_unet(**image_cfg), 3)
    kernel_net = randomised(guided_unet(**kernel_cfg), 4)
    image_path, kernel_path = tmp_path / "ffhq_10m.pt", tmp_path / "kernel_checkpoint.safetensors"
    torch.save(image_net.state_dict(), image_path)
    save_file(kernel_net.state_dict(), str(kernel_path))
    monkeypatch.setitem(gu.GUIDED_UNET_CONFIGS, "ffhq", image_cfg)
    monkeypatch.setitem(gu.GUIDED_UNET_CONFIGS, "blinddps-kernel", kernel_cfg)
    den = as_denoiser(str(image_path))
    x, t = inputs(size=32)
    assert isinstance(den.unet, gu.GuidedUNet) and torch.equal(den.unet(x, t), image_net(x, t))
    blurry = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    pm = plugin_manager(native=native_branch, blinddps=blinddps)
    out = blinddps.run_blinddps(blurry, kernel_size=8, kernel_branch="native", iters=2, context=RunContext(pm=pm), denoiser=str(image_path),
                                kernel_denoiser=str(kernel_path), progress=False)
    k = out["kernel"]
    assert k.shape == (1, 1, 8, 8) and (k >= 0).all() and k.sum().item() == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(WeightsError, match="other shapes than the model"):  # the image file is not a kernel model
        as_denoiser(str(image_path), guided_config="blinddps-kernel")
