"""Diffusion image priors for the diffusion-based adapters (``bird``, ``blinddps``): a frozen
noise-prediction network with its noise schedule (:class:`Denoiser`), the DDIM and DDPM update
rules those solvers use, the sphere projection of BIRD, and safe loaders for pretrained models.

Nothing here trains a diffusion model: denoisers are loaded. Three sources are accepted:

* a diffusers ``UNet2DModel`` + its scheduler config, from the Hugging Face Hub or a local folder
  in the same layout (:func:`load_diffusers_unet`; needs the optional extra
  ``pip install 'glkm-prior[diffusion]'``; e.g. ``google/ddpm-celebahq-256``, the DDPM CelebA-HQ
  256 model that BIRD's prior corresponds to);
* a guided-diffusion checkpoint, the format of BlindDPS' models (``ffhq_10m.pt``,
  ``kernel_checkpoint.pt``): :func:`load_guided_diffusion_state` reads the state dict safely
  (safetensors, or ``torch.load(..., weights_only=True)``) into a network with the matching
  architecture, and rejects a file whose keys do not match. The architecture is
  :mod:`glkm_prior.guided_unet` (guided-diffusion's UNet): pass a config name, e.g.
  ``load_guided_diffusion("ffhq_10m.pt", "ffhq")`` or ``(..., "blinddps-kernel")``, or a module;
* any ``nn.Module`` ``unet(x, t)`` plus its ``alphas_cumprod`` (tests build a tiny one).

Conventions: images inside the diffusion loops are in [-1, 1]; the network predicts the noise
epsilon (``prediction_type='epsilon'``); a network whose output has twice the input channels
carries guided-diffusion's learned variance (``learned_range``) in the second half.
``alphas_cumprod`` are float64 on the CPU; update coefficients are Python floats, so the update
rules keep the dtype of the images (float64 in the gradient tests).

Memory: a :class:`Denoiser` holds a *reference* to the network (never a copy); building one puts
the network in eval mode and turns ``requires_grad`` off on its parameters, in place, so no
gradient buffers are ever allocated for it.

Modules: :mod:`.schedules`, :mod:`.denoiser`, :mod:`.sampling` (DDIM, DDPM), :mod:`.diffusers_model`,
:mod:`.guided_checkpoint` (the loaders) and :mod:`.resolve` (:func:`as_denoiser`).
"""

from __future__ import annotations

from .denoiser import DEFAULT_MODEL, Denoiser
from .diffusers_model import load_diffusers_unet
from .guided_checkpoint import load_guided_diffusion, load_guided_diffusion_state
from .resolve import as_denoiser
from .sampling import DDPMChain, ddim_step, ddim_trajectory, project_to_sphere_
from .schedules import alphas_cumprod_from, ddim_timesteps, linear_alphas_cumprod, respaced_timesteps

__all__ = ["DEFAULT_MODEL", "Denoiser", "DDPMChain", "as_denoiser", "alphas_cumprod_from", "linear_alphas_cumprod",
           "ddim_timesteps", "respaced_timesteps", "ddim_step", "ddim_trajectory", "project_to_sphere_",
           "load_diffusers_unet", "load_guided_diffusion_state", "load_guided_diffusion"]
