"""Training the kernel prior on CPU (or GPUs): DCGAN generator, then the initializer.

* ``train_generator``: DCGAN (BCE with logits, Adam 2e-4, betas (0.5, 0.999)) on kernels
  synthesized on the fly (:mod:`glkm_prior.synthesis`), monitoring sample diversity and
  GAN-inversion error of held-out kernels, not only the losses. Pure DCGAN collapsed on
  thin softmax kernels within a CPU budget (diversity 0.08 vs 1.78 for real kernels after
  700 steps), so by default G also gets a VAE term (VAE-GAN, Larsen et al. 2016): a
  training-only encoder q(z|k) and ``rec_weight * L1(G(z_q), k) + kl_weight * KL(q || N(0, I))``
  next to ``adv_weight * BCE``. Reconstruction guarantees coverage of the kernel families
  (what GAN inversion needs); the KL keeps z ~ N(0, I) meaningful; BCE keeps samples sharp.
  ``--rec-weight 0`` gives the plain DCGAN.
* ``train_initializer``: ResNet-18 E with G frozen, by collaborative learning: per batch,
  ``inner_steps`` Adam steps on z from ``z0 = E(y).detach()`` against the true kernel (L1)
  give ``z*``; E then minimises ``L1(G(E(y)), k) + lam * ||E(y) - z*||^2``. Kernel L1 is the
  sum over pixels (in [0, 2] for two normalised kernels), averaged over the batch.
  Training pairs: random crops of sharp images (luma), 'valid'-blurred by FFT with a
  synthesized kernel, Gaussian noise with sigma ~ U(0, noise_max), 8-bit quantisation.

Both write a folder in the ``KernelPrior.from_pretrained`` layout (``generator/``,
``initializer/``), a ``checkpoint/`` every few minutes (resumed automatically) and a JSON-lines
log. The same command runs under ``torchrun --nproc_per_node=N`` (DistributedDataParallel;
gloo on CPU, nccl on GPU); only rank 0 writes. Every random draw derives from
``(seed, rank, step)``, so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from . import hub
from .checkpoint import load_checkpoint, save_checkpoint
from .errors import InvalidInputError
from .imageio import read_image
from .models import KernelDiscriminator, KernelGenerator, KernelInitializer
from .physics import blur
from .prior import bundle_spec
from .synthesis import KernelSynthesizer

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


# ------------------------------------------------------------------------ distributed
@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed() -> Dist:
    """Join the process group when started by torchrun (WORLD_SIZE > 1); else single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(device=torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu"))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank = dist.get_rank()
    device = torch.device("cpu")
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    return Dist(rank, dist.get_world_size(), device)


def _wrap(module: torch.nn.Module, d: Dist):
    if d.world == 1:
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, device_ids=[d.device.index] if d.device.type == "cuda" else None)


def _step_seed(seed: int, rank: int, step: int, stream: int) -> int:
    return (seed * 1_000_003 + rank * 7919 + step * 31 + stream) % (2**63 - 1)


class RunLog:
    """Rank-0 JSON-lines log plus a tqdm bar."""

    def __init__(self, folder: Path, d: Dist, total: int, start: int, desc: str):
        self.d = d
        self.path = folder / "train_log.jsonl"
        self.bar = tqdm(total=total, initial=start, desc=desc, disable=not d.main, dynamic_ncols=True)

    def write(self, record: dict) -> None:
        if self.d.main:
            with open(self.path, "a") as fh:
                fh.write(json.dumps(record) + "\n")

    def close(self) -> None:
        self.bar.close()


# ------------------------------------------------------------------------ generator
class KernelEncoder(torch.nn.Module):
    """Training-only VAE encoder q(z | k): kernels (B, 1, S, S) -> (mu, logvar), each (B, nz)."""

    def __init__(self, nz: int = 100, channels=(64, 128, 256)):
        super().__init__()
        layers, c_in = [], 1
        for c in channels:
            layers += [torch.nn.Conv2d(c_in, c, 4, 2, 1), torch.nn.LeakyReLU(0.2, True)]
            c_in = c
        self.features = torch.nn.Sequential(*layers, torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten())
        self.out = torch.nn.Linear(c_in * 4, 2 * nz)

    def forward(self, k: torch.Tensor):
        h = self.out(self.features(k * (k.shape[-1] * k.shape[-2]) ** 0.5))
        mu, logvar = h.chunk(2, dim=1)
        return mu, logvar.clamp(-10, 10)


@dataclass
class GeneratorConfig:
    out: str
    size: int = 31
    family: str = "levin"
    steps: int = 20000
    batch: int = 64
    lr: float = 2e-4
    seed: int = 0
    checkpoint_minutes: float = 5.0
    eval_every: int = 1000
    eval_kernels: int = 32  # held-out kernels inverted at each evaluation
    init_from: str | None = None
    adv_weight: float = 0.05  # weight of the generator's BCE (adversarial) loss
    rec_weight: float = 1.0  # VAE reconstruction L1 (sum over pixels); 0 = plain DCGAN
    kl_weight: float = 0.005  # VAE KL (sum over latent dims)


def kernel_diversity(kernels: torch.Tensor) -> float:
    """Mean pairwise L1 distance between kernels (B, 1, K, K); 0 means mode collapse."""
    flat = kernels.reshape(kernels.shape[0], -1)
    d = torch.cdist(flat, flat, p=1)
    n = flat.shape[0]
    return float(d.sum() / (n * (n - 1)))


def inversion_error(G: KernelGenerator, targets: torch.Tensor, steps: int = 200, seed: int = 0) -> torch.Tensor:
    """Relative L2 error per kernel after inverting G onto ``targets`` (B, 1, S, S)."""
    from .prior import KernelPrior

    prior = KernelPrior(copy.deepcopy(G))  # KernelPrior freezes its generator: work on a copy
    w = prior.invert(targets, steps=steps, seed=seed)
    with torch.no_grad():
        k = prior.generator.tail(w)
        return ((k - targets).flatten(1).norm(dim=1) / targets.flatten(1).norm(dim=1))


def _generator_step(cfg: GeneratorConfig, models, opts, real: torch.Tensor, z: torch.Tensor,
                    gen: torch.Generator, device):
    """One optimisation step of :func:`train_generator`: the discriminator on ``[real; fake]``,
    then the generator (adversarial loss, plus the VAE terms through the encoder when
    ``cfg.rec_weight > 0``). ``models``: ``(D, Gd, Dd, Qd)`` (``Gd``/``Dd``/``Qd`` possibly
    DDP-wrapped, ``Qd`` None without the VAE); ``opts``: ``(opt_d, opt_g)``. Returns ``fake`` and
    the losses ``loss_d, loss_g, rec, kl`` (``rec``/``kl`` None without the VAE)."""
    D, Gd, Dd, Qd = models
    opt_d, opt_g = opts
    vae = cfg.rec_weight > 0
    rec = kl = None
    # discriminator: one forward on [real; fake] (DDP-friendly), labels 1 / 0
    fake = Gd(z)
    logits = Dd(torch.cat([real, fake.detach()]))
    # one-sided label smoothing (real = 0.9) keeps D from saturating early
    labels = torch.cat([torch.full((cfg.batch,), 0.9), torch.zeros(cfg.batch)]).to(device)
    loss_d = F.binary_cross_entropy_with_logits(logits, labels)
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    # generator: non-saturating loss through the unwrapped D (its grads are discarded)
    D.requires_grad_(False)
    loss_g = F.binary_cross_entropy_with_logits(D(fake), torch.ones(cfg.batch, device=device))
    total = cfg.adv_weight * loss_g if vae else loss_g
    if vae:
        mu, logvar = Qd(real)
        z_q = mu + torch.randn(mu.shape, generator=gen).to(device) * (0.5 * logvar).exp()
        rec = (Gd(z_q) - real).abs().sum(dim=(1, 2, 3)).mean()
        kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(dim=1).mean()
        total = total + cfg.rec_weight * rec + cfg.kl_weight * kl
    opt_g.zero_grad(set_to_none=True)
    total.backward()
    opt_g.step()
    D.requires_grad_(True)
    return fake, loss_d, loss_g, rec, kl


def train_generator(cfg: GeneratorConfig) -> Path:
    d = setup_distributed()
    out = Path(cfg.out)
    ckpt = out / "checkpoint"
    torch.manual_seed(cfg.seed + d.rank)
    spec = bundle_spec(cfg.size)
    if spec["size"] != cfg.size:
        raise InvalidInputError(f"--size must be a generator canvas (31 or 75), got {cfg.size}")
    # channels_last: transposed convolutions run ~2.5x faster on CPU in this layout
    G = KernelGenerator(**spec).to(d.device, memory_format=torch.channels_last)
    critic_channels = (64, 128, 256) if cfg.size <= 31 else (32, 64, 128)  # 75 px: 3x cheaper per step
    D = KernelDiscriminator(cfg.size, critic_channels).to(d.device, memory_format=torch.channels_last)
    Q = KernelEncoder(G.nz, critic_channels).to(d.device, memory_format=torch.channels_last)
    vae = cfg.rec_weight > 0
    opt_g = torch.optim.Adam(list(G.parameters()) + (list(Q.parameters()) if vae else []), lr=cfg.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    start = 0
    if (ckpt / "state.json").exists():
        start = load_checkpoint(ckpt, {"G": G, "D": D, "Q": Q}, {"G": opt_g, "D": opt_d})["step"]
    elif cfg.init_from:
        G.load_state_dict(hub.load_component(Path(cfg.init_from) / "generator", "KernelGenerator").state_dict())
    Gd, Dd, Qd = _wrap(G, d), _wrap(D, d), (_wrap(Q, d) if vae else None)
    synth = KernelSynthesizer(cfg.family, seed=cfg.seed)
    held_out = torch.from_numpy(KernelSynthesizer(cfg.family).sample(cfg.eval_kernels, cfg.size, seed=10**6 + cfg.seed))[:, None]
    held_out = held_out.to(d.device)
    if d.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "train_config.json").write_text(json.dumps({"stage": "generator", **asdict(cfg), "world": d.world}, indent=2))
    log = RunLog(out, d, cfg.steps, start, f"generator {cfg.size}px")
    if start:
        log.write({"resumed_from": start})
    last_ckpt = time.time()
    t0 = time.time()
    for step in range(start, cfg.steps):
        real = torch.from_numpy(synth.sample(cfg.batch, cfg.size, seed=_step_seed(cfg.seed, d.rank, step, 0)))
        real = real[:, None].to(d.device)
        gen = torch.Generator().manual_seed(_step_seed(cfg.seed, d.rank, step, 1))
        z = torch.randn(cfg.batch, G.nz, 1, 1, generator=gen).to(d.device)
        fake, loss_d, loss_g, rec, kl = _generator_step(cfg, (D, Gd, Dd, Qd), (opt_d, opt_g), real, z, gen, d.device)
        log.bar.update(1)
        record = {"step": step + 1, "loss_d": round(loss_d.item(), 4), "loss_g": round(loss_g.item(), 4)}
        if vae:
            record.update(rec_l1=round(rec.item(), 4), kl=round(kl.item(), 2))
        if (step + 1) % 50 == 0:
            record["diversity_fake"] = round(kernel_diversity(fake.detach()), 4)
            record["diversity_real"] = round(kernel_diversity(real), 4)
            record["seconds"] = round(time.time() - t0, 1)
            log.bar.set_postfix(ld=record["loss_d"], lg=record["loss_g"], rec=record.get("rec_l1"), div=f"{record['diversity_fake']:.2f}/{record['diversity_real']:.2f}")
        if d.main and ((step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps):
            G.eval()
            err = inversion_error(G, held_out, seed=step)
            G.train()
            record["inversion_rel_l2_median"] = round(float(err.median()), 4)
            record["inversion_rel_l2_mean"] = round(float(err.mean()), 4)
            tqdm.write(f"step {step + 1}: held-out inversion rel. L2 median {record['inversion_rel_l2_median']}")
        if (step + 1) % 50 == 0 or "inversion_rel_l2_median" in record:
            log.write(record)
        if d.main and (time.time() - last_ckpt > 60 * cfg.checkpoint_minutes or step + 1 == cfg.steps):
            save_checkpoint(ckpt, {"G": G, "D": D, "Q": Q}, {"G": opt_g, "D": opt_d}, {"step": step + 1})
            hub.save_component(G, out / "generator", extra={"training": {"steps": step + 1, "family": cfg.family}})
            last_ckpt = time.time()
    log.close()
    if d.main:
        G.eval()
        hub.save_component(G, out / "generator", extra={"training": {"steps": cfg.steps, "family": cfg.family}})
    return out


# ------------------------------------------------------------------------ initializer
@dataclass
class InitializerConfig:
    out: str
    generator: str
    data: list
    family: str = "levin"
    steps: int = 5000
    batch: int = 16
    crop: int = 128
    lr: float = 3e-4
    inner_steps: int = 10
    inner_lr: float = 0.01
    lam: float = 0.1
    noise_max: float = 0.02
    seed: int = 0
    checkpoint_minutes: float = 5.0
    eval_every: int = 500
    val_data: list | None = None
    init_from: str | None = None


def list_images(folders) -> list[Path]:
    files = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise InvalidInputError(f"training image folder not found: {folder}")
        files += sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InvalidInputError(f"no images in {', '.join(map(str, folders))}")
    return files


def load_luma_images(folders) -> list[torch.Tensor]:
    """All images of ``folders`` as luma tensors (H, W) in [0, 1], kept in memory."""
    return [torch.from_numpy(read_image(p, mode="gray")) for p in list_images(folders)]


def make_blurry_batch(images, kernels: torch.Tensor, crop: int, noise_max: float, gen: torch.Generator):
    """Random crops of ``images`` (augmented by flips/transposes), blurred 'valid' with
    ``kernels`` (B, 1, K, K), plus noise ~ U(0, noise_max) and 8-bit quantisation.
    Returns (blurry (B, 1, crop, crop), sharp crops (B, 1, crop+K-1, crop+K-1))."""
    B, K = kernels.shape[0], kernels.shape[-1]
    big = crop + K - 1
    sharp = []
    for _ in range(B):
        img = images[int(torch.randint(len(images), (1,), generator=gen))]
        if min(img.shape) < big:
            img = F.interpolate(img[None, None], scale_factor=big / min(img.shape) + 1e-3, mode="bilinear")[0, 0]
        r = int(torch.randint(img.shape[0] - big + 1, (1,), generator=gen))
        c = int(torch.randint(img.shape[1] - big + 1, (1,), generator=gen))
        patch = img[r : r + big, c : c + big]
        flips = torch.randint(2, (3,), generator=gen)
        if flips[0]:
            patch = patch.flip(0)
        if flips[1]:
            patch = patch.flip(1)
        if flips[2]:
            patch = patch.t()
        sharp.append(patch)
    sharp = torch.stack(sharp)[:, None].to(kernels.device)
    blurry = blur(sharp, kernels, "valid", "fft")
    sigma = torch.rand(B, 1, 1, 1, generator=gen).to(kernels.device) * noise_max
    noise = torch.randn(blurry.shape, generator=gen).to(kernels.device)
    blurry = torch.round((blurry + sigma * noise).clamp(0, 1) * 255) / 255
    return blurry, sharp


def collaborative_step(E, G, blurry, kernels, inner_steps: int, inner_lr: float, lam: float):
    """One collaborative-learning loss: returns (loss, kernel L1, latent MSE)."""
    z_e = E(blurry)
    z0 = z_e.detach().clone().requires_grad_(True)
    inner = torch.optim.Adam([z0], lr=inner_lr)
    for _ in range(inner_steps):
        inner.zero_grad(set_to_none=True)
        (G(z0) - kernels).abs().sum(dim=(1, 2, 3)).mean().backward()
        inner.step()
    z_star = z0.detach()
    l1 = (G(z_e) - kernels).abs().sum(dim=(1, 2, 3)).mean()
    mse = ((z_e - z_star) ** 2).mean()
    return l1 + lam * mse, l1, mse


def train_initializer(cfg: InitializerConfig) -> Path:
    d = setup_distributed()
    out = Path(cfg.out)
    ckpt = out / "checkpoint_initializer"
    G = hub.load_component(Path(cfg.generator) / "generator", "KernelGenerator").to(d.device).eval()
    G.requires_grad_(False)
    torch.manual_seed(cfg.seed + d.rank)
    E = KernelInitializer(nz=G.nz).to(d.device)
    opt = torch.optim.Adam(E.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.steps, 1), eta_min=cfg.lr * 0.05)
    start = 0
    if (ckpt / "state.json").exists():
        start = load_checkpoint(ckpt, {"E": E}, {"E": opt})["step"]
        sched.last_epoch = start
    elif cfg.init_from:
        E.load_state_dict(hub.load_component(Path(cfg.init_from) / "initializer", "KernelInitializer").state_dict())
    Ed = _wrap(E, d)
    images = load_luma_images(cfg.data)
    synth = KernelSynthesizer(cfg.family, seed=cfg.seed)
    val = None
    if cfg.val_data and d.main:
        val_images = load_luma_images(cfg.val_data)
        gen = torch.Generator().manual_seed(12345)
        vk = torch.from_numpy(KernelSynthesizer(cfg.family).sample(64, G.size, seed=777))[:, None]
        vb, _ = make_blurry_batch(val_images, vk, cfg.crop, cfg.noise_max, gen)
        val = (vb.to(d.device), vk.to(d.device))
    if d.main:
        out.mkdir(parents=True, exist_ok=True)
        if out.resolve() != Path(cfg.generator).resolve():  # make out/ a complete prior folder
            note = hub.read_config(Path(cfg.generator) / "generator").get("training")
            hub.save_component(G, out / "generator", extra={"training": note} if note else None)
        (out / "train_config_initializer.json").write_text(json.dumps({"stage": "initializer", **asdict(cfg), "world": d.world}, indent=2))
    log = RunLog(out, d, cfg.steps, start, "initializer")
    if start:
        log.write({"resumed_from": start})
    last_ckpt = time.time()
    t0 = time.time()
    E.train()
    for step in range(start, cfg.steps):
        gen = torch.Generator().manual_seed(_step_seed(cfg.seed, d.rank, step, 2))
        kernels = torch.from_numpy(synth.sample(cfg.batch, G.size, seed=_step_seed(cfg.seed, d.rank, step, 3)))[:, None]
        blurry, _ = make_blurry_batch(images, kernels.to(d.device), cfg.crop, cfg.noise_max, gen)
        loss, l1, mse = collaborative_step(Ed, G, blurry, kernels.to(d.device), cfg.inner_steps, cfg.inner_lr, cfg.lam)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(E.parameters(), 5.0)
        opt.step()
        sched.step()
        log.bar.update(1)
        log.bar.set_postfix(l1=f"{l1.item():.3f}", mse=f"{mse.item():.3f}")
        record = {"step": step + 1, "loss": round(loss.item(), 4), "kernel_l1": round(l1.item(), 4), "latent_mse": round(mse.item(), 4)}
        if val is not None and ((step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps):
            E.eval()
            with torch.no_grad():
                k = G(E(val[0]))
                rel = ((k - val[1]).flatten(1).norm(dim=1) / val[1].flatten(1).norm(dim=1))
                record["val_kernel_l1"] = round(float((k - val[1]).abs().sum(dim=(1, 2, 3)).mean()), 4)
                record["val_rel_l2_median"] = round(float(rel.median()), 4)
            E.train()
            tqdm.write(f"step {step + 1}: val kernel L1 {record['val_kernel_l1']}, rel. L2 median {record['val_rel_l2_median']}")
        if (step + 1) % 10 == 0 or "val_kernel_l1" in record:
            record["seconds"] = round(time.time() - t0, 1)
            log.write(record)
        if d.main and (time.time() - last_ckpt > 60 * cfg.checkpoint_minutes or step + 1 == cfg.steps):
            save_checkpoint(ckpt, {"E": E}, {"E": opt}, {"step": step + 1})
            E.eval()
            hub.save_component(E, out / "initializer", extra={"training": {"steps": step + 1, "family": cfg.family}})
            E.train()
            last_ckpt = time.time()
    log.close()
    if d.main:
        E.eval()
        hub.save_component(E, out / "initializer", extra={"training": {"steps": cfg.steps, "family": cfg.family}})
    return out
