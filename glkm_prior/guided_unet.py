"""The UNet of OpenAI's guided-diffusion (``UNetModel`` in ``guided_diffusion/unet.py``, which
BlindDPS copies), written for this project so that guided-diffusion checkpoints such as BlindDPS'
``ffhq_10m.pt`` and ``kernel_checkpoint.pt`` load with ``load_state_dict(..., strict=True)``.

Module names, parameter names, shapes and state-dict order follow upstream exactly (e.g.
``input_blocks.1.0.in_layers.0.weight``), and so do the numerics: GroupNorm with 32 groups
computed in (at least) float32, sinusoidal timestep embedding ``[cos | sin]``, attention with the
legacy (per-head q|k|v) or the new (q|k|v of all heads) channel order, zero-initialised output
convolutions. 2-D, unconditional, no fp16 conversion.

``model(x, t)``: images x (B, C, H, W) in [-1, 1], timesteps t (B,) or a scalar (training steps
0..T-1) -> (B, C_out, H, W): the predicted noise epsilon, followed by C variance channels
(guided-diffusion's learned range) when the model was built with ``learn_sigma``.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import InvalidInputError

# BlindDPS' image model: configs/model_config.yaml of github.com/BlindDPS/blind-dps (commit 4c0af91),
# weights models/ffhq_10m.pt. 3 channels in, 6 out (epsilon + learned variance).
BLINDDPS_FFHQ_CONFIG: dict[str, Any] = dict(
    image_size=256, num_channels=128, num_res_blocks=1, channel_mult="", learn_sigma=True, class_cond=False,
    use_checkpoint=False, attention_resolutions=16, num_heads=4, num_head_channels=64, num_heads_upsample=-1,
    use_scale_shift_norm=True, dropout=0.0, resblock_updown=True, use_fp16=False, use_new_attention_order=False)
# BlindDPS' kernel model: configs/kernel_model_config.yaml (same commit), weights models/kernel_checkpoint.pt.
# grayscale: 1 channel in, 2 out (BlindDPS' create_model); 64x64 kernels.
BLINDDPS_KERNEL_CONFIG: dict[str, Any] = dict(BLINDDPS_FFHQ_CONFIG, image_size=64, num_channels=64, grayscale=True)
GUIDED_UNET_CONFIGS: dict[str, dict[str, Any]] = {
    "ffhq": BLINDDPS_FFHQ_CONFIG, "blinddps-ffhq": BLINDDPS_FFHQ_CONFIG, "blinddps-kernel": BLINDDPS_KERNEL_CONFIG}
# channel_mult used by create_model when the config leaves it empty ("")
DEFAULT_CHANNEL_MULT = {512: (0.5, 1, 1, 2, 2, 4, 4), 256: (1, 1, 2, 2, 4, 4), 128: (1, 1, 2, 3, 4), 64: (1, 2, 3, 4)}


def timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """(B,) timesteps -> (B, dim) float32 ``[cos(t f_j) | sin(t f_j)]`` with
    ``f_j = max_period ** (-j / (dim // 2))``, zero-padded when ``dim`` is odd."""
    half = dim // 2
    exponents = -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=timesteps.device) / half
    angles = timesteps.reshape(-1, 1).float() * torch.exp(exponents)[None]
    emb = torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)
    return F.pad(emb, (0, 1)) if dim % 2 else emb


class GroupNorm32(nn.GroupNorm):
    """GroupNorm computed in float32 (or wider) and returned in the input's dtype."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        work = torch.promote_types(x.dtype, torch.float32)
        return F.group_norm(x.to(work), self.num_groups, self.weight.to(work), self.bias.to(work), self.eps).to(x.dtype)


def _norm(channels: int) -> GroupNorm32:
    return GroupNorm32(32, channels)


def _zeroed(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class Upsample(nn.Module):
    """Nearest-neighbour x2, then a 3x3 conv when ``use_conv``."""

    def __init__(self, channels: int, use_conv: bool):
        super().__init__()
        self.use_conv = use_conv
        if use_conv:
            self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv(x) if self.use_conv else x


class Downsample(nn.Module):
    """/2: a stride-2 3x3 conv when ``use_conv``, else 2x2 average pooling."""

    def __init__(self, channels: int, use_conv: bool):
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1) if use_conv else nn.AvgPool2d(2, 2)

    def forward(self, x):
        return self.op(x)


class ResBlock(nn.Module):
    """norm-SiLU-conv, add the timestep projection (or FiLM ``norm(h) (1 + scale) + shift`` with
    ``use_scale_shift_norm``), norm-SiLU-dropout-conv (zero-initialised), plus the skip (identity,
    or a 1x1 conv when the width changes). ``up`` / ``down`` resample inside the block."""

    def __init__(self, channels: int, emb_channels: int, dropout: float, out_channels: int | None = None,
                 use_scale_shift_norm: bool = False, up: bool = False, down: bool = False):
        super().__init__()
        out = out_channels or channels
        self.use_scale_shift_norm = use_scale_shift_norm
        self.in_layers = nn.Sequential(_norm(channels), nn.SiLU(), nn.Conv2d(channels, out, 3, padding=1))
        self.resample = up or down
        make = (lambda: Upsample(channels, False)) if up else (lambda: Downsample(channels, False)) if down else nn.Identity
        self.h_upd, self.x_upd = make(), make()
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, 2 * out if use_scale_shift_norm else out))
        self.out_layers = nn.Sequential(_norm(out), nn.SiLU(), nn.Dropout(dropout), _zeroed(nn.Conv2d(out, out, 3, padding=1)))
        self.skip_connection = nn.Identity() if out == channels else nn.Conv2d(channels, out, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        if self.resample:  # resample between the activation and the conv, and on the skip path
            h = self.in_layers[2](self.h_upd(self.in_layers[1](self.in_layers[0](x))))
            x = self.x_upd(x)
        else:
            h = self.in_layers(x)
        e = self.emb_layers(emb).to(h.dtype)[:, :, None, None]
        if self.use_scale_shift_norm:
            scale, shift = e.chunk(2, dim=1)
            h = self.out_layers[1:](self.out_layers[0](h) * (1 + scale) + shift)
        else:
            h = self.out_layers(h + e)
        return self.skip_connection(x) + h


class AttentionBlock(nn.Module):
    """Self-attention over all positions: ``x + proj_out(attention(qkv(norm(x))))``, heads of
    ``num_head_channels`` channels (or ``num_heads`` heads when that is -1). The 3C qkv channels
    are ordered per head [q|k|v] (legacy) or [q of all heads | k | v] (``new_order``)."""

    def __init__(self, channels: int, num_heads: int = 1, num_head_channels: int = -1, new_order: bool = False):
        super().__init__()
        self.num_heads = num_heads if num_head_channels == -1 else channels // max(num_head_channels, 1)
        if self.num_heads < 1 or channels % self.num_heads or (num_head_channels != -1 and channels % num_head_channels):
            raise InvalidInputError(f"attention over {channels} channels cannot use num_heads={num_heads}, "
                                    f"num_head_channels={num_head_channels}: the channels must split evenly into heads")
        self.new_order = new_order
        self.norm = _norm(channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj_out = _zeroed(nn.Conv1d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        flat = x.reshape(b, c, -1)
        qkv = self.qkv(self.norm(flat))
        heads, d, n = self.num_heads, c // self.num_heads, flat.shape[-1]
        if self.new_order:
            q, k, v = (part.reshape(b * heads, d, n) for part in qkv.chunk(3, dim=1))
        else:
            q, k, v = qkv.reshape(b * heads, 3 * d, n).split(d, dim=1)
        s = 1.0 / math.sqrt(math.sqrt(d))  # scale q and k each by d**-1/4 (upstream's order of operations)
        logits = (q * s).transpose(1, 2) @ (k * s)                       # (b*heads, query, key)
        weights = torch.softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), dim=-1).to(v.dtype)
        attended = (v @ weights.transpose(1, 2)).reshape(b, c, n)       # (b, c, query)
        return (flat + self.proj_out(attended)).reshape(x.shape)


class TimestepSequential(nn.Sequential):
    """A plain sequence of layers; ResBlocks also receive the timestep embedding."""

    def forward(self, h, emb):
        for layer in self:
            h = layer(h, emb) if isinstance(layer, ResBlock) else layer(h)
        return h


class GuidedUNet(nn.Module):
    """guided-diffusion's ``UNetModel`` (2-D, unconditional). ``attention_resolutions`` are
    downsample factors (1 = full resolution); ``channel_mult`` multiplies ``model_channels`` per
    level; ``num_res_blocks`` per level on the way down (one more on the way up)."""

    def __init__(self, image_size: int, in_channels: int, model_channels: int, out_channels: int, num_res_blocks: int,
                 attention_resolutions: Iterable[int], dropout: float = 0.0, channel_mult=(1, 2, 4, 8),
                 conv_resample: bool = True, num_heads: int = 1, num_head_channels: int = -1,
                 num_heads_upsample: int = -1, use_scale_shift_norm: bool = False, resblock_updown: bool = False,
                 use_new_attention_order: bool = False):
        super().__init__()
        widths = [int(m * model_channels) for m in channel_mult]
        if not widths or num_res_blocks < 1 or any(w < 32 or w % 32 for w in widths):
            raise InvalidInputError(f"every level width (model_channels x channel_mult = {widths}) must be a positive "
                                    f"multiple of 32 (GroupNorm with 32 groups), with num_res_blocks >= 1")
        self.image_size, self.in_channels, self.out_channels = image_size, in_channels, out_channels
        self.model_channels, self.num_levels = model_channels, len(widths)
        attention_at = set(attention_resolutions)
        heads_up = num_heads if num_heads_upsample == -1 else num_heads_upsample
        emb_dim = 4 * model_channels

        def res(cin, cout=None, **updown):
            return ResBlock(cin, emb_dim, dropout, cout, use_scale_shift_norm, **updown)

        def attention(width, heads):
            return AttentionBlock(width, heads, num_head_channels, use_new_attention_order)

        self.time_embed = nn.Sequential(nn.Linear(model_channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        ch, factor = widths[0], 1
        self.input_blocks = nn.ModuleList([TimestepSequential(nn.Conv2d(in_channels, ch, 3, padding=1))])
        skip_widths = [ch]
        for level, width in enumerate(widths):
            for _ in range(num_res_blocks):
                layers = [res(ch, width)]
                ch = width
                if factor in attention_at:
                    layers.append(attention(ch, num_heads))
                self.input_blocks.append(TimestepSequential(*layers))
                skip_widths.append(ch)
            if level < len(widths) - 1:
                down = res(ch, ch, down=True) if resblock_updown else Downsample(ch, conv_resample)
                self.input_blocks.append(TimestepSequential(down))
                skip_widths.append(ch)
                factor *= 2
        self.middle_block = TimestepSequential(res(ch), attention(ch, num_heads), res(ch))
        self.output_blocks = nn.ModuleList()
        for level in reversed(range(len(widths))):
            for i in range(num_res_blocks + 1):
                layers = [res(ch + skip_widths.pop(), widths[level])]
                ch = widths[level]
                if factor in attention_at:
                    layers.append(attention(ch, heads_up))
                if level > 0 and i == num_res_blocks:
                    layers.append(res(ch, ch, up=True) if resblock_updown else Upsample(ch, conv_resample))
                    factor //= 2
                self.output_blocks.append(TimestepSequential(*layers))
        self.out = nn.Sequential(_norm(ch), nn.SiLU(), _zeroed(nn.Conv2d(ch, out_channels, 3, padding=1)))

    def forward(self, x: torch.Tensor, timesteps, y: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C_in, H, W), timesteps (B,) or scalar -> (B, C_out, H, W) in the dtype of ``x``."""
        if y is not None:
            raise InvalidInputError("class-conditional guided-diffusion models are not supported (y must be None)")
        stride = 2 ** (self.num_levels - 1)
        if x.dim() != 4 or x.shape[1] != self.in_channels or x.shape[2] % stride or x.shape[3] % stride:
            raise InvalidInputError(f"the UNet takes (B, {self.in_channels}, H, W) with H and W multiples of {stride}; "
                                    f"got {tuple(x.shape)}")
        t = torch.as_tensor(timesteps, device=x.device)
        t = t.expand(x.shape[0]) if t.dim() == 0 else t
        dtype = self.out[2].weight.dtype
        emb = self.time_embed(timestep_embedding(t, self.model_channels).to(dtype))
        h, skips = x.to(dtype), []
        for block in self.input_blocks:
            h = block(h, emb)
            skips.append(h)
        h = self.middle_block(h, emb)
        for block in self.output_blocks:
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
        return self.out(h).to(x.dtype)


def guided_unet(image_size: int, num_channels: int, num_res_blocks: int, channel_mult="", learn_sigma: bool = False,
                class_cond: bool = False, use_checkpoint: bool = False, attention_resolutions="16", num_heads: int = 1,
                num_head_channels: int = -1, num_heads_upsample: int = -1, use_scale_shift_norm: bool = False,
                dropout: float = 0.0, resblock_updown: bool = False, use_fp16: bool = False,
                use_new_attention_order: bool = False, grayscale: bool = False, twochan: bool = False,
                model_path: str | None = None) -> GuidedUNet:
    """A :class:`GuidedUNet` from a guided-diffusion / BlindDPS model config (``create_model``'s
    arguments). ``channel_mult=""`` takes the default for ``image_size`` (512, 256, 128, 64);
    ``attention_resolutions`` are resolutions (an int or a comma string, e.g. "32,16,8"), turned
    into downsample factors ``image_size // r``. Channels: 3 in (1 with ``grayscale``, 2 with
    ``twochan``), twice that out with ``learn_sigma``. ``use_checkpoint`` only saves memory upstream
    and is ignored; ``model_path`` is ignored (load weights with ``glkm_prior.diffusion``)."""
    if class_cond:
        raise InvalidInputError("class_cond=True: class-conditional guided-diffusion models are not supported")
    if use_fp16:
        raise InvalidInputError("use_fp16=True is not supported: build the model in float32 (the checkpoints load into it)")
    if channel_mult in ("", None):
        if image_size not in DEFAULT_CHANNEL_MULT:
            raise InvalidInputError(f"no default channel_mult for image_size={image_size} (defaults exist for "
                                    f"{sorted(DEFAULT_CHANNEL_MULT)}); give channel_mult, e.g. '1,2,2'")
        channel_mult = DEFAULT_CHANNEL_MULT[image_size]
    elif isinstance(channel_mult, str):
        try:
            channel_mult = tuple(int(m) for m in channel_mult.split(","))
        except ValueError:
            raise InvalidInputError(f"channel_mult must be comma-separated integers, got {channel_mult!r}") from None
    parts = (attention_resolutions.split(",") if isinstance(attention_resolutions, str) else
             [attention_resolutions] if isinstance(attention_resolutions, int) else list(attention_resolutions))
    resolutions = [int(r) for r in parts if str(r).strip().isdigit()]
    possible = {image_size // 2 ** level for level in range(len(channel_mult))}
    if len(resolutions) != len(parts) or any(r not in possible or image_size % r for r in resolutions):
        raise InvalidInputError(f"attention_resolutions {attention_resolutions!r} must be among the UNet's resolutions "
                                f"{sorted(possible, reverse=True)} for image_size={image_size}")
    in_channels = 1 if grayscale else 2 if twochan else 3
    return GuidedUNet(image_size, in_channels, num_channels, in_channels * (2 if learn_sigma else 1), num_res_blocks,
                      tuple(image_size // r for r in resolutions), dropout, tuple(channel_mult), num_heads=num_heads,
                      num_head_channels=num_head_channels, num_heads_upsample=num_heads_upsample,
                      use_scale_shift_norm=use_scale_shift_norm, resblock_updown=resblock_updown,
                      use_new_attention_order=use_new_attention_order)


def build_guided_unet(config: str | dict[str, Any]) -> GuidedUNet:
    """:func:`guided_unet` from a config dict or a name in :data:`GUIDED_UNET_CONFIGS`
    ('ffhq' / 'blinddps-ffhq': BlindDPS' ``ffhq_10m.pt``; 'blinddps-kernel': ``kernel_checkpoint.pt``)."""
    if isinstance(config, str):
        if config not in GUIDED_UNET_CONFIGS:
            raise InvalidInputError(f"unknown guided-diffusion model config {config!r}; known: {sorted(GUIDED_UNET_CONFIGS)}")
        config = GUIDED_UNET_CONFIGS[config]
    unknown = sorted(set(config) - set(inspect.signature(guided_unet).parameters))
    if unknown:
        raise InvalidInputError(f"bad guided-diffusion model config: unknown option(s) {unknown}")
    return guided_unet(**config)


__all__ = ["BLINDDPS_FFHQ_CONFIG", "BLINDDPS_KERNEL_CONFIG", "GUIDED_UNET_CONFIGS", "GuidedUNet", "AttentionBlock",
           "ResBlock", "timestep_embedding", "guided_unet", "build_guided_unet"]
