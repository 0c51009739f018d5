"""SelfDeblur (Ren et al., CVPR 2020: a DIP image network + a kernel network, optimised jointly
on one blurry image) as the glkm_prior method ``dip``.

The kernel half comes through the hook ``glkm_kernel_branches``: the loop asks
``make_kernel_branch(name, ...)`` for ``"glkm"`` (only the latent ``w`` of the frozen GLKM
generator is optimised, started from ``init``: by default the classical estimate projected onto G) or ``"native"`` (SelfDeblur's own
MLP 200 -> 1000 -> K^2 with softmax); nothing else differs between the two runs.

Facts of the upstream code (``csdwren/SelfDeblur``: ``selfdeblur_levin.py``,
``selfdeblur_lai.py``, ``selfdeblur_ycbcr.py``, ``networks/skip.py``, ``networks/common.py``,
``networks/non_local_dot_product.py``, ``SSIM.py``, ``utils/common_utils.py``) reproduced here
(the code is this project's own):

* image network ``skip``: 8-channel input of uniform noise in [0, 0.1) at (H+K-1) x (W+K-1),
  5 scales of 128 channels down and up, 16-channel skip connections (1x1 conv), 3x3
  convolutions with reflection padding, stride-2 convolutions to go down, bilinear x2
  upsampling, BatchNorm after every convolution and after each skip concatenation,
  LeakyReLU(0.2), a 1x1 convolution after each up block, a final 1x1 convolution and a
  sigmoid; an embedded dot-product non-local block (Wang et al. 2018) after the first
  convolution of scales 3, 4 and 5 (``if i > 1`` in ``skip.py``). The network stays in training
  mode (BatchNorm on batch statistics) for the whole run, as upstream.
* blur: valid cross-correlation ``conv2d(x, k)``, so the sharp estimate is K-1 larger than the
  blurry image (here :func:`glkm_prior.physics.blur` with ``'valid'``, FFT for large kernels).
* Adam with two parameter groups: image network lr 1e-2, kernel branch lr 1e-4 upstream
  (here ``branch.default_lr``: 1e-4 native, 5e-4 GLKM); ``MultiStepLR`` milestones
  2000/3000/4000, gamma 0.5 (stepped once per iteration); 5000 iterations.
* loss: MSE for the first 1000 iterations (Levin script) or 500 (Lai and colour scripts), then
  ``1 - SSIM`` (11x11 Gaussian window, sigma 1.5; :mod:`glkm_prior.ssim_loss`).
* input regularisation: each step the network sees ``input + 0.001 * N(0, 1)`` (fresh noise).
* result: the network output of the last iteration, centre-cropped to the blurry size
  (``out_x[pad//2 : pad//2 + H, pad//2 : pad//2 + W]``), and the kernel of that iteration.
* colour (``selfdeblur_ycbcr.py``): deblur the luma Y and put the original chroma back.
  ``colour='ycbcr'`` does that exactly in floating point (BT.601, the coefficients OpenCV's
  YCrCb uses: replacing Y while keeping Cb and Cr is ``rgb + (Y_new - Y_blurry)``);
  ``colour='rgb'`` runs a 3-channel image network with one kernel shared by the channels.

Where this differs from upstream (on purpose, documented): seeds (upstream reseeds the global
RNG with 0 for every noise map; here one ``torch.Generator`` seeded from ``seed`` draws the
input noise and its per-step perturbation, and ``seed`` also seeds the network initialisation
and the native MLP); the SSIM is computed with a separable window and precomputed statistics
of the blurry image (same value, fewer operations); the non-local block multiplies
``theta (phi^T g)`` instead of ``(theta phi^T) g`` (same value, ~8x fewer operations).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch.optim.lr_scheduler import MultiStepLR

from glkm_prior.branch import check_blurry
from glkm_prior.context import as_context
from glkm_prior.errors import InvalidInputError
from glkm_prior.loop import IterativeMethod, LoopState, identity_of, run_loop
from glkm_prior.options import options_dataclass, positive
from glkm_prior.physics import blur
from glkm_prior.plugins import build_kernel_branch, hookimpl
from glkm_prior.prior import check_kernel_size, to_luma
from glkm_prior.ssim_loss import SSIMToReference

from .dip_network import NonLocalBlock, SkipNet

PRESETS = ("default", "paper")
COLOURS = ("ycbcr", "rgb")


# ============================================================================ colour
def split_colour(blurry: torch.Tensor, colour: str):
    """The image the loop deblurs and what ``merge_colour`` needs to rebuild the output.

    grey input -> (blurry, None); ``'ycbcr'`` -> (luma Y, rgb - Y); ``'rgb'`` -> (blurry, None).
    """
    if colour not in COLOURS:
        raise InvalidInputError(f"colour must be one of {COLOURS}, got {colour!r}")
    if blurry.shape[1] == 1 or colour == "rgb":
        return blurry, None
    luma = to_luma(blurry)
    return luma, blurry - luma


def merge_colour(image: torch.Tensor, chroma: torch.Tensor | None) -> torch.Tensor:
    """Put the original chroma back on a deblurred luma (no-op for grey or RGB runs)."""
    if chroma is None:
        return image
    return (image + chroma).clamp_(0, 1)


# ============================================================================ configuration
@dataclass
class DIPConfig:
    """Settings of one SelfDeblur run (``preset`` 'paper' = the authors' scripts)."""

    iters: int = 5000
    lr_image: float = 1e-2
    lr_kernel: float | None = None          # None: the kernel branch's default_lr
    milestones: tuple = (2000, 3000, 4000)
    gamma: float = 0.5
    mse_steps: int | None = None            # None: 1000 (Levin script) or 500 (Lai / colour scripts)
    reg_noise_std: float = 1e-3
    input_depth: int = 8
    input_scale: float = 0.1                # get_noise(..., var=1/10): uniform [0, 1) * 0.1
    channels: tuple = (128, 128, 128, 128, 128)
    skip_channels: tuple = (16, 16, 16, 16, 16)
    colour: str = "ycbcr"
    preset: str = "default"
    channels_last: bool = True              # CPU speed (same result up to float rounding)
    extra: dict = field(default_factory=dict)

    def resolve_mse_steps(self, colour_input: bool, kernel_size: int) -> int:
        if self.mse_steps is not None:
            return int(self.mse_steps)
        # selfdeblur_levin.py (grey, kernels 11..27): 1000; selfdeblur_lai.py / _ycbcr.py: 500
        return 500 if colour_input or kernel_size > 27 else 1000


def make_config(cls=DIPConfig, *, preset: str | None = "default", iters: int | None = None, **options) -> DIPConfig:
    preset = preset or "default"
    if preset not in PRESETS:
        raise InvalidInputError(f"preset must be one of {PRESETS}, got {preset!r}")
    # 'default' and 'paper' are the authors' settings (CPU cost: RESULTS.md, "Deep-prior baselines")
    cfg = cls(preset=preset)
    names = set(cls.__dataclass_fields__) - {"extra", "preset"}
    unknown = sorted(set(options) - names)
    if unknown:
        raise InvalidInputError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    options = {k: v for k, v in options.items() if v is not None}  # None: the preset's value
    if "milestones" in options:
        options["milestones"] = tuple(int(m) for m in options["milestones"])
    cfg = replace(cfg, **options)
    if iters is not None:
        if int(iters) < 0:
            raise InvalidInputError(f"iters must be >= 0, got {iters}")
        cfg.iters = int(iters)
    if cfg.colour not in COLOURS:
        raise InvalidInputError(f"colour must be one of {COLOURS}, got {cfg.colour!r}")
    return cfg


def _check_dip(self) -> None:
    positive(self, "lr_image", "lr_kernel", "gamma", "input_depth")
    positive(self, "mse_steps", "reg_noise_std", "trace_every", allow_zero=True)


def config_options(name: str, config: type, *, extra=(), exclude=()) -> type:
    """The options dataclass of a loop configured by ``config`` (:class:`DIPConfig` or a subclass):
    its fields (less ``iters``, the host's own, ``extra`` and ``exclude``) with their defaults,
    ``preset`` and ``colour`` as choices, plus ``extra`` rows (the run function's keywords)."""
    return options_dataclass(name, config, extra=extra, exclude=("iters", "extra", *exclude), check=_check_dip,
                             typed={"preset": Literal[PRESETS], "colour": Literal[COLOURS]}, module=config.__module__)


#: ``dip``'s options: :class:`DIPConfig`'s fields and :func:`run_dip`'s keywords.
RUN_OPTIONS = (("trace_every", int | None, None), ("init_latent", Any, None), ("branch_options", dict | None, None))
DIPOptions = config_options("DIPOptions", DIPConfig, extra=RUN_OPTIONS)


# ============================================================================ the loop
class DeepPriorLoop(IterativeMethod):
    """Shared machinery of the DIP-family loops: image network on fixed noise + a kernel branch
    from the hook, Adam with one group each, MultiStepLR; iterations, progress, trace callback
    and checkpoints by :func:`glkm_prior.loop.run_loop` (this class is its step function and
    state).

    Subclasses set ``net_outputs_per_channel`` / ``noise_before_net`` and implement :meth:`loss`
    (and, where their authors do, :meth:`before_loop`, :meth:`grads_ok`, :meth:`final`).
    ``self.optimizer.param_groups`` is ``[image network params, kernel branch params]``.
    """

    name = "deep-prior"
    net_outputs_per_channel = 1
    noise_before_net = True  # SelfDeblur draws the input noise, then builds the net; VDIP the reverse

    def __init__(self, blurry: torch.Tensor, kernel_size: int, *, kernel_branch="glkm", seed: int = 0, prior=None,
                 context=None, config: DIPConfig, init_latent: torch.Tensor | None = None,
                 branch_options: dict | None = None):
        check_blurry(blurry)
        if blurry.shape[0] != 1:
            raise InvalidInputError(f"{self.name} deblurs one image at a time, got a batch of {blurry.shape[0]}")
        self.cfg = config
        self.context = as_context(context)
        self.seed = int(seed)
        self.K = check_kernel_size(int(kernel_size))
        blurry = blurry.detach().float()
        self.colour_input = blurry.shape[1] == 3
        self.y, self.chroma = split_colour(blurry, config.colour)
        self.C = self.y.shape[1]
        self.H, self.W = self.y.shape[-2:]
        self.pad = self.K - 1
        self.gen = torch.Generator().manual_seed(self.seed)

        # image network and its fixed noise input (H+K-1) x (W+K-1), drawn as upstream does
        # (its get_noise reseeds with 0): with seed 0 both equal upstream's initial state
        shape = (1, config.input_depth, self.H + self.pad, self.W + self.pad)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            if self.noise_before_net:
                self.input_saved = torch.zeros(shape).uniform_()
            self.net = SkipNet(config.input_depth, self.C * self.net_outputs_per_channel, down=config.channels,
                               up=config.channels, skip=config.skip_channels)
            if not self.noise_before_net:
                torch.manual_seed(self.seed)
                self.input_saved = torch.zeros(shape).uniform_()
        self.input_saved.mul_(config.input_scale)
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        self.net = self.net.to(memory_format=self.memory_format)
        self.input_saved = self.input_saved.contiguous(memory_format=self.memory_format)
        self.net.train()

        # kernel branch through the hook (or a branch built by the caller)
        opts = dict(branch_options or {})
        if init_latent is not None:
            opts["init_latent"] = init_latent
        self.branch, self.branch_name = build_kernel_branch(kernel_branch, self.y, self.K, context=self.context,
                                                            seed=self.seed, prior=prior, branch_options=opts)
        if init_latent is not None:
            w = getattr(self.branch, "w", None)
            if not isinstance(w, torch.Tensor):
                raise InvalidInputError(f"init_latent needs a kernel branch with a latent w (glkm), not {self.branch_name!r}")
            if isinstance(kernel_branch, torch.nn.Module):  # a ready-made branch: set its latent here
                with torch.no_grad():
                    w.copy_(init_latent.detach().reshape(w.shape))
        self.lr_kernel = float(config.lr_kernel if config.lr_kernel is not None else self.branch.default_lr)
        self.optimizer = torch.optim.Adam(
            [{"params": list(self.net.parameters())}, {"params": list(self.branch.parameters()), "lr": self.lr_kernel}],
            lr=config.lr_image)
        self.scheduler = MultiStepLR(self.optimizer, milestones=list(config.milestones), gamma=config.gamma)
        self.ssim = SSIMToReference(self.y)
        self.skipped = 0                      # updates skipped by grads_ok
        self.last_out = self.last_k = None    # the last iteration's network output and kernel

    # -------------------------------------------------------------- pieces
    def crop(self, out: torch.Tensor) -> torch.Tensor:
        """Net output (H+K-1) -> blurry size, offset pad // 2 (as upstream's saved images)."""
        p = self.pad // 2
        return out[..., p : p + self.H, p : p + self.W]

    def kernel(self) -> torch.Tensor:
        return self.branch().reshape(1, 1, self.K, self.K)

    def optimise(self, loss: torch.Tensor, step: int) -> bool:
        """zero_grad, backward, Adam step, the branch's per-step ``project_``. True if stepped."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if not self.grads_ok():
            return False
        self.optimizer.step()
        self.branch.project_(step)
        return True

    def grads_ok(self) -> bool:
        return True

    def loss(self, step: int):  # pragma: no cover - abstract
        """-> (loss, image for the trace (1, C, H+K-1, W+K-1), kernel (1, 1, K, K))."""
        raise NotImplementedError

    def before_loop(self, progress: bool) -> None:
        """Hook for work before the main iterations (VDIP's pre-fit)."""

    def final(self, last_out, last_kernel):
        """Final (image (1, C, H+K-1, W+K-1), kernel): by default the last iteration's outputs."""
        if last_out is None:  # iters == 0
            with torch.no_grad():
                return self.image_of(self.net(self.input_saved)), self.kernel()
        return last_out, last_kernel

    def image_of(self, out: torch.Tensor) -> torch.Tensor:
        return out[:, : self.C]

    def output_image(self, out: torch.Tensor) -> torch.Tensor:
        return merge_colour(self.crop(out).detach().float().clone(), self.chroma)

    # -------------------------------------------------------------- one iteration
    def step(self, step: int) -> torch.Tensor:
        """Iteration ``step``: loss, update (skipped if :meth:`grads_ok` says so), scheduler."""
        loss, out, k = self.loss(step)
        if not self.optimise(loss, step):
            self.skipped += 1
        self.scheduler.step()
        self.last_out, self.last_k = out.detach(), k.detach()
        return loss.detach()

    def trace(self):
        return self.output_image(self.last_out), self.last_k

    # -------------------------------------------------------------- run
    def run(self, *, progress: bool = True, callback=None, trace_every: int | None = None, checkpoint=None,
            checkpoint_every: int = 100) -> dict:
        """Run the iterations; ``callback(step, image, kernel)`` every ``trace_every`` steps.

        ``checkpoint``: a folder (:class:`glkm_prior.checkpoint.RunCheckpoint`) where the whole
        state (networks, optimiser, scheduler, RNG, losses so far, the callback's
        ``state_dict()`` if it has one) is saved every ``checkpoint_every`` iterations; a run
        started with a folder that holds a checkpoint of the same run resumes from it and ends
        exactly as the uninterrupted run would (:func:`glkm_prior.loop.run_loop`). The caller
        removes the folder when done.
        """
        cfg = self.cfg
        record = run_loop(self, cfg.iters, progress=progress, callback=callback, trace_every=trace_every,
                          checkpoint=checkpoint, checkpoint_every=checkpoint_every)
        out, kernel = self.final(self.last_out, self.last_k)
        image = self.output_image(out)
        kernel = kernel.detach().float().reshape(-1, 1, self.K, self.K).clone()  # (1 or cells, 1, K, K)
        info = {
            "iters": cfg.iters,
            "preset": cfg.preset,
            "colour": "grey" if not self.colour_input else cfg.colour,
            "kernel_branch": self.branch_name,
            "lr_image": cfg.lr_image,
            "lr_kernel": self.lr_kernel,
            **record.info(),
            "skipped_steps": self.skipped,
            "losses": record.losses,
        }
        info.update(self.extra_info())
        return {"image": image, "kernel": kernel, "info": info}

    # -------------------------------------------------------------- checkpoints
    def identity(self) -> dict:
        """What a checkpoint must match to be resumed by this loop (JSON types)."""
        cfg = {k: v for k, v in asdict(self.cfg).items() if k != "channels_last"}
        return identity_of(self.name, self.branch_name, self.K, self.seed, self.y, cfg)

    def state(self) -> LoopState:
        return LoopState(modules={"net": self.net, "branch": self.branch}, optimizers={"adam": self.optimizer},
                         schedulers={"scheduler": self.scheduler}, generators={"loop": self.gen})

    def loop_state(self) -> dict:
        """State outside the modules (JSON), saved with each checkpoint (subclasses extend it)."""
        return {"skipped": self.skipped}

    def load_loop_state(self, state: dict) -> None:
        """Restore :meth:`loop_state`."""
        self.skipped = int(state.get("skipped", 0))

    def extra_info(self) -> dict:
        return {}


class SelfDeblur(DeepPriorLoop):
    """SelfDeblur's loop (see the module docstring)."""

    name = "dip"

    def __init__(self, blurry, kernel_size, *, config: DIPConfig | None = None, **kwargs):
        config = config or make_config()
        super().__init__(blurry, kernel_size, config=config, **kwargs)
        self.mse_steps = config.resolve_mse_steps(self.colour_input, self.K)
        self.noise = torch.empty_like(self.input_saved)
        self.net_input = torch.empty_like(self.input_saved)

    def loss(self, step: int):
        # input regularisation: fresh N(0, 0.001^2) perturbation of the fixed noise input
        self.noise.normal_(generator=self.gen)
        torch.add(self.input_saved, self.noise, alpha=self.cfg.reg_noise_std, out=self.net_input)
        out_x = self.net(self.net_input)
        k = self.kernel()
        out_y = self.forward_model(out_x, k)
        if step < self.mse_steps:
            loss = F.mse_loss(out_y, self.y)
        else:
            loss = self.ssim.loss(out_y)
        return loss, out_x, k

    def forward_model(self, out_x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """The blur the loop fits: 'valid' cross-correlation (the SVOLA adapter overrides it)."""
        return blur(out_x, k, "valid")

    def data_loss(self, out_x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """MSE between the re-blurred estimate and the blurry image (for monitoring)."""
        return F.mse_loss(self.forward_model(out_x, k), self.y)

    def extra_info(self) -> dict:
        return {"mse_steps": self.mse_steps, "reg_noise_std": self.cfg.reg_noise_std}


def run_dip(blurry, *, kernel_size, kernel_branch="glkm", iters=None, seed=0, progress=True, prior=None,
            callback=None, context=None, preset="default", colour="ycbcr", trace_every=None, init_latent=None,
            branch_options=None, checkpoint=None, checkpoint_every=100, **options):
    """Method ``dip``: SelfDeblur with the kernel branch ``kernel_branch`` ('glkm' or 'native',
    or a :class:`KernelBranch` instance). Returns ``{"image", "kernel", "info"}``.

    ``options`` override :class:`DIPConfig` fields (``lr_image``, ``lr_kernel``, ``milestones``,
    ``gamma``, ``mse_steps``, ``reg_noise_std``, ...). ``init_latent`` starts a GLKM branch from
    a given latent w (e.g. the true kernel's, for tests). ``checkpoint`` / ``checkpoint_every``:
    resumable runs (:meth:`DeepPriorLoop.run`).
    """
    cfg = make_config(DIPConfig, preset=preset, iters=iters, colour=colour, **options)
    loop = SelfDeblur(blurry, kernel_size, config=cfg, kernel_branch=kernel_branch, seed=seed, prior=prior,
                      context=context, init_latent=init_latent, branch_options=branch_options)
    return loop.run(progress=progress, callback=callback, trace_every=trace_every, checkpoint=checkpoint,
                    checkpoint_every=checkpoint_every)


def seconds_per_iteration(size: int = 255, kernel_size: int = 27, iters: int = 5, kernel_branch="native",
                          threads: int | None = None, warmup: int = 1, prior=None, **options) -> float:
    """Seconds per SelfDeblur iteration on a random grey ``size`` x ``size`` image, averaged
    over ``iters`` iterations after ``warmup`` (the cost figures in RESULTS.md, "Deep-prior
    baselines")."""
    if threads is not None:
        torch.set_num_threads(int(threads))
    blurry = torch.rand(1, 1, size, size, generator=torch.Generator().manual_seed(0))
    cfg = make_config(DIPConfig, iters=warmup + iters, **options)
    loop = SelfDeblur(blurry, kernel_size, config=cfg, kernel_branch=kernel_branch, seed=0, prior=prior)
    times = []
    for step in range(warmup + iters):
        t0 = time.perf_counter()
        loss, _, _ = loop.loss(step)
        loop.optimise(loss, step)
        loop.scheduler.step()
        times.append(time.perf_counter() - t0)
    return sum(times[warmup:]) / max(1, iters)


@hookimpl
def glkm_methods(register):
    register("dip", run_dip, "SelfDeblur (DIP skip net + kernel branch, MSE then 1-SSIM, 5000 its); "
             "--kernel-branch glkm|native", iterative=True, checkpointable=True, progress=True, options=DIPOptions)


__all__ = ["SkipNet", "NonLocalBlock", "DIPConfig", "DIPOptions", "config_options", "DeepPriorLoop", "SelfDeblur", "run_dip", "make_config",
           "split_colour", "merge_colour", "seconds_per_iteration"]
