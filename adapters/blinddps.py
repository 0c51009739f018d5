"""BlindDPS (Chung, Kim, Kim and Ye, CVPR 2023: *Parallel diffusion models of operator and
image for blind inverse problems*) as the glkm_prior method ``blinddps``.

Diffusion posterior sampling on the image: ancestral DDPM steps of a frozen image diffusion
model, each followed by a gradient step on the data distance ``||y - k (*) x0_hat(x_t)||``
(the norm, not its square) w.r.t. x_t, through the network (Tweedie's x0_hat). The kernel is
either

* ``"native"``: BlindDPS' own kernel diffusion model, sampled in parallel with the image (its
  own ancestral steps on a K x K kernel image, the same data-distance gradient w.r.t. its x_t,
  plus the authors' L0/L1 kernel regulariser), given as ``kernel_denoiser``; or
* ``"glkm"`` (or any registered kernel branch): the branch from the hook
  ``glkm_kernel_branches``; at every diffusion step its parameters (GLKM: only the latent
  ``w``, started at ``G.head(E(y))``) take one **Adam** step on the gradient of the same data
  distance. No kernel diffusion model and no hand-tuned kernel regulariser are needed.

Facts of the upstream code (``BlindDPS/blind-dps``: ``guided_diffusion/gaussian_diffusion.py``,
``blind_condition_methods.py``, ``measurements.py``, ``posterior_mean_variance.py``,
``configs/*.yaml``, ``run_deblur.sh``) reproduced here (the code is this project's own):

* DDPM, linear betas over 1000 steps, all 1000 sampled (``timestep_respacing: 1000``;
  fewer steps here respace the chain evenly, as guided-diffusion does), epsilon prediction,
  x0_hat clipped to [-1, 1], learned-range variance when the network outputs 2C channels
  (FFHQ 256 and kernel 64 models), x_T ~ N(0, I) for both image and kernel.
* kernel x0_hat -> kernel: ``(x0 + 1) / 2`` divided by its sum.
* measurement operator: each colour channel cross-correlated with the kernel, zero padding,
  output the image's size (``conv2d(padding='same')``); here :func:`glkm_prior.physics.blur`
  with ``'same'`` (the model makes an image of its own fixed size, the blurry image's size; for
  even K the kernel's centre index is K//2 here, (K-1)//2 in PyTorch: a one-pixel shift of
  the estimated kernel, nothing else). Images in [-1, 1].
* step size: the current code scales the gradient by ``sqrt(alpha_bar_t)`` ("gradually
  increasing scale", ``scale='sqrt_alpha_bar'``, the default here); the paper used the
  constant 0.3 of ``motion_deblur_config.yaml`` (``scale=0.3``).
* native kernel regulariser: ``run_deblur.sh`` adds ``1.0 * ||k0||_1`` to the distance
  (``reg_ord=1, reg_scale=1.0``; the demo's defaults are L0 with 0.1). On the normalised kernel
  ``||k0||_1`` is constant 1, and an L0 count has no gradient, so the term changes the reported
  value, not the update; it is kept for fidelity.
* the result is the image after the last update, x0 at t = 0.

GLKM branch: the Adam learning rate at step t is ``lr_kernel * sqrt(alpha_bar_t)`` under the
default schedule (the same growth as the image step; ``lr_kernel`` constant for a constant
``scale``); default ``lr_kernel`` 5e-3 for GLKM (not tuned: over 1000 steps the weights
``sqrt(alpha_bar_t)`` sum to ~391, a total Adam step length ~2, comparable to the DIP loop's
5000 x 5e-4), else the branch's ``default_lr``. The
returned kernel is the branch's kernel after the last update (native: the final kernel sample
mapped to [0, 1] and normalised, as the loop normalises its x0_hat).

Images enter and leave in [0, 1]; a grey image is repeated over the model's three channels and
the result averaged back. The image must have the model's size.

Steps, progress, trace and checkpoints (``checkpoint`` / ``checkpoint_every``: the image and
kernel samples, the kernel branch and its Adam state, the noise generator) are
:func:`glkm_prior.loop.run_loop`'s; a resumed run ends bit-for-bit as the uninterrupted one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

from glkm_prior.branch import check_blurry
from glkm_prior.context import as_context
from glkm_prior.diffusion import DDPMChain, Denoiser, as_denoiser, respaced_timesteps
from glkm_prior.errors import InvalidInputError
from glkm_prior.loop import IterativeMethod, LoopState, identity_of, run_loop
from glkm_prior.options import options_dataclass, positive
from glkm_prior.physics import blur
from glkm_prior.plugins import build_kernel_branch, hookimpl
from glkm_prior.prior import check_kernel_size

from glkm_adapters.bird import DENOISER_SOURCE, from_model_image, to_model_image

BOUNDARY = "same"
SCALES = ("sqrt_alpha_bar",)
LOOP = "blinddps"  # the name under which kernel branches give this loop's rate at sqrt(alpha_bar) = 1
#: The ``kernel_branch`` that selects BlindDPS' own kernel diffusion model instead of a kernel branch
#: (a method option, as BIRD's alias 'native' -> 'bird-native'; no branch of that name is built).
OWN_KERNEL_MODEL = "native"


def kernel_from_signed(k: torch.Tensor) -> torch.Tensor:
    """BlindDPS' kernel image in [-1, 1] -> kernel >= 0 summing to 1: ``(k + 1) / 2`` over its sum."""
    k = (k.clamp(-1.0, 1.0) + 1.0) / 2.0
    return k / k.sum(dim=(-3, -2, -1), keepdim=True).clamp_min(1e-12)


@dataclass
class BlindDPSConfig:
    steps: int = 1000                 # diffusion steps (timestep_respacing)
    scale: float | str = "sqrt_alpha_bar"
    lr_kernel: float | None = None    # hook branches: Adam rate at weight 1
    reg_ord: int = 1                  # native kernel regulariser (run_deblur.sh)
    reg_scale: float = 1.0


class BlindDPSSampler(IterativeMethod):
    """BlindDPS' sampler (see the module docstring). For a hook branch, ``optimizer`` is Adam over
    exactly the branch's parameters (GLKM: ``[w]``); for ``native`` there is no optimiser. The
    step function and state of :func:`glkm_prior.loop.run_loop`."""

    name = "blinddps"
    unit = "step"
    loss_label = "distance"
    postfix_every = 20

    def __init__(self, blurry: torch.Tensor, kernel_size: int, *, denoiser, kernel_branch="glkm", kernel_denoiser=None,
                 seed: int = 0, prior=None, context=None, config: BlindDPSConfig | None = None, branch_options=None,
                 load_options: dict | None = None):
        check_blurry(blurry)
        if blurry.shape[0] != 1:
            raise InvalidInputError(f"blinddps deblurs one image at a time, got a batch of {blurry.shape[0]}")
        self.cfg = cfg = config or BlindDPSConfig()
        if isinstance(cfg.scale, str) and cfg.scale not in SCALES:
            raise InvalidInputError(f"scale must be a number or one of {SCALES}, got {cfg.scale!r}")
        self.K = check_kernel_size(int(kernel_size))
        self.context = as_context(context)
        self.seed = int(seed)
        load_options = load_options or {}
        self.denoiser: Denoiser = as_denoiser(denoiser, **load_options)
        self.y, self.repeated = to_model_image(blurry, self.denoiser.channels)
        self.denoiser.check_image(self.y.shape, "image")
        T = self.denoiser.num_train_timesteps
        self.chain = DDPMChain(self.denoiser.alphas_cumprod, respaced_timesteps(T, cfg.steps))
        self.gen = torch.Generator().manual_seed(self.seed)
        self.x = torch.randn(self.y.shape, generator=self.gen)

        self.native = kernel_branch == OWN_KERNEL_MODEL
        self.branch = self.optimizer = self.kernel_denoiser = self.kernel_chain = None
        if self.native:
            self.kernel_denoiser = as_denoiser(kernel_denoiser, default=None, what="kernel_denoiser (BlindDPS' kernel "
                                               "diffusion model, needed by the native kernel branch; the glkm branch "
                                               "needs none)", guided_config="blinddps-kernel", **load_options)
            self.kernel_denoiser.check_image((1, 1, self.K, self.K), "kernel")
            kT = self.kernel_denoiser.num_train_timesteps
            self.kernel_chain = DDPMChain(self.kernel_denoiser.alphas_cumprod, respaced_timesteps(kT, cfg.steps))
            self.k = torch.randn(1, 1, self.K, self.K, generator=self.gen)
            self.branch_name = OWN_KERNEL_MODEL
            self.lr_kernel = None
        else:
            if kernel_denoiser is not None:
                raise InvalidInputError("kernel_denoiser is only used by the native kernel branch")
            self.branch, self.branch_name = build_kernel_branch(kernel_branch, blurry, self.K, context=self.context,
                                                                seed=self.seed, prior=prior,
                                                                branch_options=branch_options)
            lr = cfg.lr_kernel if cfg.lr_kernel is not None else self.branch.lr_in(LOOP)
            self.lr_kernel = float(lr)
            self.optimizer = torch.optim.Adam(list(self.branch.parameters()), lr=self.lr_kernel)

    def weight(self, i: int) -> float:
        """Step size of the data-distance gradient at chain index ``i``."""
        if isinstance(self.cfg.scale, str):
            return math.sqrt(self.chain.alphas_cumprod[i].item())
        return float(self.cfg.scale)

    def kernel(self) -> torch.Tensor:
        """The current kernel (1, 1, K, K), >= 0, sum 1."""
        with torch.no_grad():
            if self.native:
                return kernel_from_signed(self.k)
            return self.branch().reshape(1, 1, self.K, self.K)

    def step(self, n: int) -> float:
        """Sampler step ``n`` (0-based; chain index ``len - 1 - n``) -> the data distance."""
        i = len(self.chain) - 1 - n
        x = self.x.detach().requires_grad_(True)
        noise = torch.randn(x.shape, generator=self.gen) if i > 0 else None
        x_next, x0 = self.chain.p_sample(self.denoiser, x, i, noise)
        inputs = [x]
        if self.native:
            kx = self.k.detach().requires_grad_(True)
            knoise = torch.randn(kx.shape, generator=self.gen) if i > 0 else None
            k_next, k0 = self.kernel_chain.p_sample(self.kernel_denoiser, kx, i, knoise)
            kernel = kernel_from_signed(k0)
            inputs.append(kx)
        else:
            kernel = self.branch().reshape(1, 1, self.K, self.K)
            params = list(self.branch.parameters())
            inputs.extend(params)
        distance = torch.linalg.vector_norm(self.y - blur(x0, kernel, BOUNDARY))
        objective = distance
        if self.native and self.cfg.reg_scale:
            objective = distance + self.cfg.reg_scale * torch.linalg.vector_norm(kernel.reshape(-1), ord=self.cfg.reg_ord)
        grads = torch.autograd.grad(objective, inputs)
        w = self.weight(i)
        with torch.no_grad():
            self.x = (x_next - w * grads[0]).detach()
            if self.native:
                self.k = (k_next - w * grads[1]).detach()
        if not self.native:
            for p, g in zip(params, grads[1:]):
                p.grad = g
            lr = self.lr_kernel * (w if isinstance(self.cfg.scale, str) else 1.0)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.branch.project_(n)
        return float(distance.detach())

    def trace(self):
        return from_model_image(self.x.clamp(-1, 1), self.repeated), self.kernel()

    def identity(self) -> dict:
        return identity_of(self.name, self.branch_name, self.K, self.seed, self.y, asdict(self.cfg),
                           denoiser=repr(self.denoiser), kernel_denoiser=repr(self.kernel_denoiser))

    def state(self) -> LoopState:
        if self.native:
            return LoopState(generators={"loop": self.gen}, tensors={"x": self.x, "k": self.k})
        return LoopState(modules={"branch": self.branch}, optimizers={"adam": self.optimizer},
                         generators={"loop": self.gen}, tensors={"x": self.x})

    def run(self, *, progress: bool = False, callback=None, trace_every: int | None = None, checkpoint=None,
            checkpoint_every: int = 100) -> dict:
        """Run the sampler (:func:`glkm_prior.loop.run_loop`); ``callback(step, image, kernel)``
        every ``trace_every`` steps; ``checkpoint``: a resumable checkpoint folder, saved every
        ``checkpoint_every`` steps (the caller removes it when done)."""
        n = len(self.chain)
        record = run_loop(self, n, progress=progress, callback=callback, trace_every=trace_every,
                          checkpoint=checkpoint, checkpoint_every=checkpoint_every)
        info = {
            "iters": n,
            "steps": n,
            "kernel_branch": self.branch_name,
            "scale": self.cfg.scale,
            "lr_kernel": self.lr_kernel,
            "kernel_optimizer": None if self.native else "adam",
            "reg": [self.cfg.reg_ord, self.cfg.reg_scale] if self.native else None,
            "boundary": BOUNDARY,
            "denoiser": repr(self.denoiser),
            "kernel_denoiser": repr(self.kernel_denoiser) if self.native else None,
            **record.info(),
            "losses": record.losses,
        }
        return {"image": from_model_image(self.x.clamp(-1, 1), self.repeated), "kernel": self.kernel().float().clone(),
                "info": info}


def run_blinddps(blurry, *, kernel_size, kernel_branch="glkm", iters=None, seed=0, progress=True, prior=None,
                 context=None, denoiser=None, kernel_denoiser=None, scale="sqrt_alpha_bar", lr_kernel=None, reg_ord=1,
                 reg_scale=1.0, callback=None, trace_every=None, branch_options=None, revision=None,
                 local_files_only=None, checkpoint=None, checkpoint_every=100):
    """Method ``blinddps``: BlindDPS with the kernel from ``kernel_branch`` ('glkm' or any
    registered branch: Adam on its parameters; 'native': the kernel diffusion model
    ``kernel_denoiser``). Returns ``{"image", "kernel", "info"}``.

    ``denoiser``: a :class:`glkm_prior.diffusion.Denoiser` (e.g. BlindDPS' FFHQ model through
    :func:`glkm_prior.diffusion.load_guided_diffusion`), an object with ``unet`` and
    ``alphas_cumprod``, or a diffusers folder / Hub repo id (default
    ``google/ddpm-celebahq-256``). ``iters``: diffusion steps (default 1000). ``checkpoint`` /
    ``checkpoint_every``: resumable runs (:func:`glkm_prior.loop.run_loop`).
    """
    cfg = BlindDPSConfig(steps=1000 if iters is None else int(iters), scale=scale, lr_kernel=lr_kernel,
                         reg_ord=int(reg_ord), reg_scale=float(reg_scale))
    sampler = BlindDPSSampler(blurry, kernel_size, denoiser=denoiser, kernel_branch=kernel_branch,
                              kernel_denoiser=kernel_denoiser, seed=seed, prior=prior, context=context, config=cfg,
                              branch_options=branch_options,
                              load_options={"revision": revision, "local_files_only": local_files_only})
    return sampler.run(progress=progress, callback=callback, trace_every=trace_every, checkpoint=checkpoint,
                       checkpoint_every=checkpoint_every)


def _check_blinddps(self) -> None:
    positive(self, "lr_kernel", "reg_scale")
    positive(self, "trace_every", allow_zero=True)


#: ``blinddps``' options: :class:`BlindDPSConfig`'s fields (less ``steps``: ``iters``) and
#: :func:`run_blinddps`' keywords.
BlindDPSOptions = options_dataclass(
    "BlindDPSOptions", BlindDPSConfig, exclude=("steps",), check=_check_blinddps, module=__name__,
    extra=(("denoiser", Any, None), ("kernel_denoiser", Any, None), ("trace_every", int | None, None),
           ("branch_options", dict | None, None), *DENOISER_SOURCE))


@hookimpl
def glkm_methods(register):
    register("blinddps", run_blinddps, "BlindDPS (diffusion posterior sampling, 1000 DDPM steps; diffusers or "
             "guided-diffusion model); --kernel-branch glkm (Adam on w) | native (needs the kernel diffusion model)",
             iterative=True, checkpointable=True, progress=True, options=BlindDPSOptions)


__all__ = ["BlindDPSSampler", "BlindDPSConfig", "run_blinddps", "kernel_from_signed"]
