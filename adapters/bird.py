"""BIRD (Chihaoui, Lemkhenter and Favaro 2024: *Blind Image Restoration via Fast Diffusion
Inversion*) as the glkm_prior method ``bird``, with its kernel branch from the hooks.

The image is the end of a short deterministic DDIM trajectory started from a latent x_T; x_T is
optimised so that the re-blurred image matches the blurry one. The kernel half comes through
``glkm_kernel_branches``: ``"glkm"`` (only the latent ``w`` of the frozen GLKM generator,
started from ``init``: by default the classical estimate projected onto G) or ``"native"`` (here the branch ``bird-native``: BIRD's
own kernel MLP). Nothing else differs between the two runs.

Facts of the upstream code (``hamadichihaoui/BIRD``: ``blind_deblurring.py``,
``ddim_inversion_utils.py``, ``utils.py``, ``configs/blind_deblurring.yml``) reproduced here (the
code is this project's own):

* x_T ~ N(0, I) of the model's image shape is an Adam parameter (lr 3e-3, ``lr_img``); after
  every step it is projected back to the sphere of radius sqrt(numel)
  (:func:`glkm_prior.diffusion.project_to_sphere_`).
* DDIM with ``delta_t = 100`` over the model's 1000 training steps, i.e. 10 steps at timesteps
  900, 800, ..., 0, eta 0, the last step to alpha-bar 1; the predicted x0 is clipped to [-1, 1]
  and the noise re-derived from the clipped x0 (``clip_sample``, ``use_clipped_model_output``);
  the network is evaluated under ``no_grad``, so gradients reach x_T only through the DDIM
  updates (:func:`glkm_prior.diffusion.ddim_trajectory`) and no activation is kept.
* blur: each colour channel cross-correlated with one K x K kernel, zero padding, output the
  size of the image (``conv2d(..., padding='same')``); loss MSE against the blurry image, both
  in [-1, 1]. Here :func:`glkm_prior.physics.blur` with ``'same'``: the diffusion model makes an
  image of its own fixed size (256 for CelebA-HQ), the size of the blurry image, so the
  'valid' convention of the DIP loops (sharp image K-1 larger) does not apply. For odd K both
  paddings are identical; for even K this project centres the kernel at index K//2 (PyTorch's
  'same' at (K-1)//2), a one-pixel shift of the estimated kernel, nothing else.
* native kernel: ``fcn(200, K*K)``: Linear 200 -> 1000, ReLU6, Linear -> K^2, softmax, on a
  fixed uniform [0, 0.1) input; Adam lr 2e-4 (``lr_blur``). The softmax is the kernel's
  normalisation: it is >= 0 and sums to 1 after every step by construction, and BIRD applies no
  other projection to it (so ``bird-native`` keeps the default no-op ``project_``; the loop
  still calls ``branch.project_(step)`` after every step, as every loop does).
* 100 optimisation steps (``Optimization_steps``); the result is the x0 of the last iteration.

Iterations, progress, trace and checkpoints (``checkpoint`` / ``checkpoint_every``: x_T, the
kernel branch, Adam's state, the RNG) are :func:`glkm_prior.loop.run_loop`'s; a resumed run
ends bit-for-bit as the uninterrupted one.

GLKM branch: Adam on ``w`` in the same optimiser (second group) at 2e-2. Not tuned (no
pretrained diffusion model could be run while this was written): chosen so that BIRD's 100
steps allow ``w`` a total Adam step length (~2) comparable to the DIP loop's 5000 x 5e-4.

Images enter and leave in [0, 1] (converted to [-1, 1] inside); a grey image is repeated over
the model's three channels and the result averaged back. The image must have the model's size.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

from glkm_prior.branch import check_blurry
from glkm_prior.context import as_context
from glkm_prior.diffusion import Denoiser, as_denoiser, ddim_timesteps, ddim_trajectory, project_to_sphere_
from glkm_prior.errors import InvalidInputError
from glkm_prior.loop import IterativeMethod, LoopState, identity_of, run_loop
from glkm_prior.options import options_dataclass, positive
from glkm_prior.physics import blur
from glkm_prior.plugins import build_kernel_branch, hookimpl
from glkm_prior.prior import check_kernel_size, to_luma

from glkm_adapters.native_branch import NativeMLPKernelBranch

BOUNDARY = "same"  # see the module docstring
LOOP = "bird"  # the name under which kernel branches give this loop's rate (KernelBranch.loop_lr)


# ============================================================================ native branch
class BirdNativeKernelBranch(NativeMLPKernelBranch):
    """BIRD's kernel network ``fcn(200, K*K)``: the SelfDeblur MLP with softmax (>= 0, sum 1 by
    construction), on a fixed uniform [0, 0.1) input, at BIRD's learning rate."""

    name = "bird-native"
    default_lr = 2e-4  # configs/blind_deblurring.yml: lr_blur
    loop_lr = {}  # default_lr in every loop (not the native MLP's)


def make_bird_native_branch(blurry, kernel_size, *, seed=None, **_):
    check_blurry(blurry)
    return BirdNativeKernelBranch(kernel_size, seed=seed)


# ============================================================================ shared helpers
def to_model_image(blurry: torch.Tensor, channels: int | None) -> tuple[torch.Tensor, bool]:
    """(1, 1|3, H, W) in [0, 1] -> (1, channels, H, W) in [-1, 1]; True if a grey image was
    repeated over three channels."""
    y = blurry.detach().to(torch.float32)
    repeated = False
    if channels is not None and y.shape[1] != channels:
        if y.shape[1] == 1 and channels == 3:
            y, repeated = y.repeat(1, 3, 1, 1), True
        elif y.shape[1] == 3 and channels == 1:
            y = to_luma(y)
        else:
            raise InvalidInputError(f"the diffusion model takes {channels}-channel images, got {y.shape[1]} channels")
    return y * 2.0 - 1.0, repeated


def from_model_image(x: torch.Tensor, repeated: bool) -> torch.Tensor:
    """[-1, 1] model image -> [0, 1] (channels averaged back for a repeated grey input)."""
    x = ((x.detach().float() + 1.0) / 2.0).clamp(0.0, 1.0)
    return x.mean(dim=1, keepdim=True) if repeated else x


# ============================================================================ the loop
@dataclass
class BirdConfig:
    iters: int = 100          # Optimization_steps
    ddim_steps: int = 10      # 1000 // delta_t
    lr_image: float = 3e-3    # lr_img
    lr_kernel: float | None = None  # None: the branch's rate for "bird" (branch.lr_in)
    clip: bool = True         # clip x0 to [-1, 1] in the DDIM steps


class BirdLoop(IterativeMethod):
    """BIRD's optimisation (see the module docstring). ``optimizer.param_groups`` is
    ``[[x_T], kernel branch parameters]``; the denoiser is held by reference, frozen. The step
    function and state of :func:`glkm_prior.loop.run_loop`."""

    name = "bird"
    postfix_every = 10

    def __init__(self, blurry: torch.Tensor, kernel_size: int, *, denoiser, kernel_branch="glkm", seed: int = 0,
                 prior=None, context=None, config: BirdConfig | None = None, branch_options=None,
                 load_options: dict | None = None):
        check_blurry(blurry)
        if blurry.shape[0] != 1:
            raise InvalidInputError(f"bird deblurs one image at a time, got a batch of {blurry.shape[0]}")
        self.cfg = cfg = config or BirdConfig()
        if int(cfg.iters) < 0:
            raise InvalidInputError(f"iters must be >= 0, got {cfg.iters}")
        self.K = check_kernel_size(int(kernel_size))
        self.context = as_context(context)
        self.seed = int(seed)
        self.denoiser: Denoiser = as_denoiser(denoiser, **(load_options or {}))
        self.y, self.repeated = to_model_image(blurry, self.denoiser.channels)
        self.denoiser.check_image(self.y.shape, "image")
        self.timesteps = ddim_timesteps(self.denoiser.num_train_timesteps, cfg.ddim_steps)
        gen = torch.Generator().manual_seed(self.seed)
        self.x_T = torch.randn(self.y.shape, generator=gen).requires_grad_(True)
        self.radius = math.sqrt(self.x_T[0].numel())
        self.branch, self.branch_name = build_kernel_branch(kernel_branch, blurry, self.K, context=self.context,
                                                            seed=self.seed, prior=prior, branch_options=branch_options,
                                                            aliases={"native": "bird-native"})
        lr_k = cfg.lr_kernel if cfg.lr_kernel is not None else self.branch.lr_in(LOOP)
        self.lr_kernel = float(lr_k)
        self.optimizer = torch.optim.Adam([{"params": [self.x_T], "lr": float(cfg.lr_image)},
                                           {"params": list(self.branch.parameters()), "lr": self.lr_kernel}])
        self.last_x0 = self.last_k = None  # the last iteration's x0 (before its update) and kernel

    def image(self) -> torch.Tensor:
        """x0 = DDIM(x_T) in [-1, 1], differentiable w.r.t. x_T."""
        return ddim_trajectory(self.x_T, self.denoiser, self.timesteps, self.denoiser.alphas_cumprod, clip=self.cfg.clip)

    def kernel(self) -> torch.Tensor:
        return self.branch().reshape(1, 1, self.K, self.K)

    def step(self, step: int) -> torch.Tensor:
        """One optimisation step -> its loss; keeps the x0 and kernel of the state before the
        update (the iteration's outputs) in ``last_x0`` / ``last_k``."""
        x0 = self.image()
        k = self.kernel()
        loss = F.mse_loss(blur(x0, k, BOUNDARY), self.y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        project_to_sphere_(self.x_T, self.radius)
        self.branch.project_(step)
        self.last_x0, self.last_k = x0.detach(), k.detach()
        return loss.detach()

    def trace(self):
        return from_model_image(self.last_x0, self.repeated), self.last_k

    def identity(self) -> dict:
        return identity_of(self.name, self.branch_name, self.K, self.seed, self.y, asdict(self.cfg),
                           denoiser=repr(self.denoiser))

    def state(self) -> LoopState:
        return LoopState(modules={"branch": self.branch}, optimizers={"adam": self.optimizer},
                         tensors={"x_T": self.x_T})

    def run(self, *, progress: bool = False, callback=None, trace_every: int | None = None, checkpoint=None,
            checkpoint_every: int = 100) -> dict:
        """Run the iterations (:func:`glkm_prior.loop.run_loop`); ``callback(step, image, kernel)``
        every ``trace_every`` steps; ``checkpoint``: a resumable checkpoint folder, saved every
        ``checkpoint_every`` steps (the caller removes it when done)."""
        iters = int(self.cfg.iters)
        record = run_loop(self, iters, progress=progress, callback=callback, trace_every=trace_every,
                          checkpoint=checkpoint, checkpoint_every=checkpoint_every)
        x0, k = self.last_x0, self.last_k
        if x0 is None:  # iters == 0: the initial state
            with torch.no_grad():
                x0, k = self.image(), self.kernel()
        info = {
            "iters": iters,
            "kernel_branch": self.branch_name,
            "ddim_steps": len(self.timesteps),
            "timesteps": list(self.timesteps),
            "lr_image": float(self.cfg.lr_image),
            "lr_kernel": self.lr_kernel,
            "boundary": BOUNDARY,
            "denoiser": repr(self.denoiser),
            "denoiser_evaluations": iters * len(self.timesteps),
            **record.info(),
            "losses": record.losses,
        }
        return {"image": from_model_image(x0, self.repeated), "kernel": k.detach().float().clone(), "info": info}


def run_bird(blurry, *, kernel_size, kernel_branch="glkm", iters=None, seed=0, progress=True, prior=None,
             context=None, denoiser=None, ddim_steps=10, lr_image=3e-3, lr_kernel=None, clip=True, callback=None,
             trace_every=None, branch_options=None, revision=None, local_files_only=None, checkpoint=None,
             checkpoint_every=100):
    """Method ``bird``: BIRD with the kernel branch ``kernel_branch`` ('glkm', 'native' = BIRD's
    MLP, any registered branch, or a :class:`KernelBranch`). Returns ``{"image", "kernel", "info"}``.

    ``denoiser``: a :class:`glkm_prior.diffusion.Denoiser`, an object with ``unet`` and
    ``alphas_cumprod``, or a diffusers folder / Hub repo id (default ``google/ddpm-celebahq-256``,
    loaded with ``revision`` / ``local_files_only``; needs the ``[diffusion]`` extra).
    ``iters``: optimisation steps (default 100); ``ddim_steps``: DDIM steps per image (10).
    ``checkpoint`` / ``checkpoint_every``: resumable runs (:func:`glkm_prior.loop.run_loop`).
    """
    cfg = BirdConfig(iters=100 if iters is None else int(iters), ddim_steps=int(ddim_steps), lr_image=float(lr_image),
                     lr_kernel=lr_kernel, clip=bool(clip))
    loop = BirdLoop(blurry, kernel_size, denoiser=denoiser, kernel_branch=kernel_branch, seed=seed, prior=prior,
                    context=context, config=cfg, branch_options=branch_options,
                    load_options={"revision": revision, "local_files_only": local_files_only})
    return loop.run(progress=progress, callback=callback, trace_every=trace_every, checkpoint=checkpoint,
                    checkpoint_every=checkpoint_every)


@hookimpl
def glkm_kernel_branches(register):
    register("bird-native", make_bird_native_branch, "BIRD's kernel MLP (200 -> 1000 -> K^2, softmax), lr 2e-4, random init",
             branch_class=BirdNativeKernelBranch)


def _check_bird(self) -> None:
    positive(self, "ddim_steps", "lr_image", "lr_kernel")
    positive(self, "trace_every", allow_zero=True)


#: The diffusion model's Hub revision and offline flag (options of ``bird`` and ``blinddps``; the
#: prior's are the run context's).
DENOISER_SOURCE = (("revision", str | None, None), ("local_files_only", bool | None, None))
#: ``bird``'s options: :class:`BirdConfig`'s fields (less ``iters``) and :func:`run_bird`'s keywords.
BirdOptions = options_dataclass("BirdOptions", BirdConfig, exclude=("iters",), check=_check_bird, module=__name__,
                                extra=(("denoiser", Any, None), ("trace_every", int | None, None),
                                       ("branch_options", dict | None, None), *DENOISER_SOURCE))


@hookimpl
def glkm_methods(register):
    register("bird", run_bird, "BIRD (DDIM inversion of an optimised x_T, 10 steps, 100 its; diffusers model, default "
             "google/ddpm-celebahq-256); --kernel-branch glkm|native", iterative=True, checkpointable=True, progress=True,
             options=BirdOptions)


__all__ = ["BirdLoop", "BirdConfig", "BirdNativeKernelBranch", "run_bird", "to_model_image", "from_model_image"]
