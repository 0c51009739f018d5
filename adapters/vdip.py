"""VDIP (Huo et al., TPAMI 2023: *Blind image deconvolution using variational deep image
prior*) as the glkm_prior methods ``vdip-std``, ``vdip-extreme`` and ``vdip-sparse``.

Same skeleton as SelfDeblur (:mod:`glkm_adapters.dip`: skip network on fixed noise, kernel
branch from the hook ``glkm_kernel_branches``, Adam with one group each, MultiStepLR
2000/3000/4000 x 0.5), but the image network outputs a per-pixel Gaussian ``q(x)``: for C
image channels it has 2C outputs, the mean (channels ``:C``) and the standard deviation
(channels ``C:``; both through the network's sigmoid, as upstream, which calls the std
channels ``image_STD``), and the loss is the negative ELBO.

Facts of the upstream code (``Dong-Huo/VDIP-Deconvolution``: ``VDIP_Sparse_lai_uniform.py``,
``VDIP_Extreme_lai_uniform.py``, their ``_real`` twins, ``networks/skip.py``, ``networks/fcn.py``)
reproduced here (the code is this project's own):

* image network: the SelfDeblur skip network with a 3-channel noise input (uniform [0, 0.1),
  fixed: VDIP does **not** perturb its input) and 2C = 6 outputs (RGB); kernel network
  ``fcn_relu6`` = SelfDeblur's MLP (here the ``native`` branch). Image lr 1e-2, kernel 1e-4.
* pre-fit (``num_pre`` steps: 500 Sparse, 5 Extreme): MSE of the centre-cropped mean to the
  blurry image, of the std to 0, and of the kernel to the uniform kernel, same optimiser.
  With the GLKM branch the kernel part is skipped (it would erase the initializer's kernel);
  the image part stays.
* ELBO phase (iterations < 2000): one reparameterised sample ``x = mean + std * eps`` and the
  log-likelihood ``E = -(|r|^2 / 2 + first + second + gradient) / (H' W' C)`` of the residual
  ``r = k (x) x - y`` (valid correlation), its first differences (``/4``), its second
  differences (``vv, vh, hh, hv``, ``/8``) and upstream's "gradient" term (``k`` applied to the
  sample's differences, ``/4``), with H' x W' the size of the network output. By linearity
  the gradient term equals the first-order term and ``vh = hv``; :func:`data_term` uses that.
* negative KL: the entropy ``sum log std / (H' W' C)`` (std clamped at 1e-45), minus the
  variant's image prior, minus ``10 * sum(k^2) / 2`` (kernel L2):

  - Sparse: reweighted gradients, ``E[(x_{i+1} - x_i)^2] = (dmean)^2 + std_{i+1}^2 + std_i^2``
    times the detached weight ``1 / (that + 1e-6)``, ``/4`` per direction, normalised by
    ``(H'-1)(W'-1)C``;
  - Extreme: dark and bright channel of a sampled ``x^2`` (``E = mean^2 + std^2`` plus
    ``N(0, 1) * sqrt(4 mean^2 std^2 + 2 std^4)``) and of ``(1-x)^2``, min-pooled over
    (C, 35, 35), each divided by its detached value + 1e-45, ``/4`` each, normalised by
    ``(H'-34)(W'-34)``;
  - Std: upstream's comment says "replace the elob with: elob = sampling_expectation for
    VDIP-Std", i.e. no KL at all (``kl=True`` adds the entropy and kernel terms without an
    image prior).
* ``ELBO = E + sigma * negative_KL`` with ``sigma`` 0.1 (Sparse) or 1e-4 (Extreme), multiplied
  by 0.1 after every 1000 iterations; the loss is ``-ELBO`` until iteration 2000, then
  ``1 - SSIM(k (x) mean, y)``. Extreme skips the update of an iteration whose gradients hold
  NaN (upstream ``checkNaN``). 5000 iterations.
* result: the mean of a forward pass after the last update, centre-cropped (as upstream saves
  it), and the kernel after the last update.

Colour: upstream runs on RGB with one kernel (``colour='rgb'``, the default here); grey images
use C = 1; ``colour='ycbcr'`` deblurs the luma and puts the chroma back, as SelfDeblur does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from glkm_prior.errors import InvalidInputError
from glkm_prior.physics import blur
from glkm_prior.plugins import hookimpl

from .dip import RUN_OPTIONS, DeepPriorLoop, DIPConfig, config_options, make_config

STD_FLOOR = 1e-45          # torch.clamp_min(image_STD, opt.lb), lb = 1e-45
SPARSE_BIAS = 1e-6
EXTREME_BIAS = 1e-45
EXTREME_WINDOW = 35
KERNEL_L2_WEIGHT = 10.0
PAPER_ITERS = 5000


@dataclass(frozen=True)
class Variant:
    name: str
    prior: str | None          # None, 'sparse' or 'extreme'
    kl: bool                   # the KL block (entropy + prior + kernel L2) is in the ELBO
    kl_weight: float           # opt.noise_sigma: weight of the negative KL, x0.1 every 1000 its
    prefit_steps: int          # opt.num_pre
    skip_nan: bool             # Extreme's checkNaN


VARIANTS = {
    "std": Variant("std", None, False, 0.1, 500, False),
    "sparse": Variant("sparse", "sparse", True, 0.1, 500, False),
    "extreme": Variant("extreme", "extreme", True, 1e-4, 5, True),
}


# ============================================================================ ELBO terms
def diff_v(z: torch.Tensor) -> torch.Tensor:
    """Vertical first difference ``z[i+1] - z[i]`` (conv2d with the (2, 1) kernel [-1, 1])."""
    return z[..., 1:, :] - z[..., :-1, :]


def diff_h(z: torch.Tensor) -> torch.Tensor:
    """Horizontal first difference ``z[:, j+1] - z[:, j]``."""
    return z[..., :, 1:] - z[..., :, :-1]


def _sq(z: torch.Tensor) -> torch.Tensor:
    return z.square().sum()


def data_term(mean: torch.Tensor, std: torch.Tensor, kernel: torch.Tensor, y: torch.Tensor,
              eps: torch.Tensor) -> torch.Tensor:
    """Upstream's ``sampling_expectation`` (one sample, to be maximised).

    ``x = mean + std * eps``, ``r = blur(x, kernel, 'valid') - y``;
    ``-(|r|^2/2 + 2 (|Dv r|^2 + |Dh r|^2)/4 + (|Dvv r|^2 + 2 |Dhv r|^2 + |Dhh r|^2)/8) / (H' W' C)``.
    """
    x = mean + std * eps
    r = blur(x, kernel, "valid") - y
    rv, rh = diff_v(r), diff_h(r)
    zero = _sq(r) / 2
    first = (_sq(rv) + _sq(rh)) / 4           # = upstream's gradient_expectation as well
    second = (_sq(diff_v(rv)) + 2 * _sq(diff_h(rv)) + _sq(diff_h(rh))) / 8
    C, H, W = mean.shape[-3:]
    return -(zero + 2 * first + second) / (H * W * C)


def entropy_term(std: torch.Tensor) -> torch.Tensor:
    """``sum(2 log std) / 2`` (the entropy of q up to a constant)."""
    return torch.log(std.clamp_min(STD_FLOOR)).sum()


def sparse_prior_term(mean: torch.Tensor, std: torch.Tensor, bias: float = SPARSE_BIAS) -> torch.Tensor:
    """VDIP-Sparse's reweighted (IRLS) gradient prior, before normalisation."""
    pen_v = diff_v(mean).square() + std[..., 1:, :].square() + std[..., :-1, :].square()
    pen_h = diff_h(mean).square() + std[..., :, 1:].square() + std[..., :, :-1].square()
    w_v = (1 / (pen_v + bias)).detach()
    w_h = (1 / (pen_h + bias)).detach()
    return (pen_v * w_v).sum() / 4 + (pen_h * w_h).sum() / 4


def _min_pool(z: torch.Tensor, window: int) -> torch.Tensor:
    """Min over all channels and a ``window`` x ``window`` box: (B, C, H, W) -> (B, 1, H-w+1, W-w+1).

    Upstream's ``-max_pool3d(-z, (C, 35, 35), stride=1)`` computed separably (channels, then
    rows, then columns): same values and gradients, ~13x faster on a CPU.
    """
    m = z.amin(dim=1, keepdim=True)
    m = -F.max_pool2d(-m, (window, 1), stride=1)
    return -F.max_pool2d(-m, (1, window), stride=1)


def extreme_prior_term(mean: torch.Tensor, std: torch.Tensor, eps_dark: torch.Tensor, eps_bright: torch.Tensor,
                       window: int = EXTREME_WINDOW, bias: float = EXTREME_BIAS) -> torch.Tensor:
    """VDIP-Extreme's dark + bright channel prior of a sampled x^2 and (1 - x)^2, before
    normalisation (upstream's formulas, including its spread of (1 - x)^2)."""
    m2, s2 = mean.square(), std.square()
    e_dark = m2 + s2
    s_dark = torch.sqrt(4 * m2 * s2 + 2 * s2 * s2 + 1e-32)
    dark = _min_pool(e_dark + eps_dark * s_dark, window)
    dark = dark / (dark.detach() + bias)
    e_bright = (1 - mean).square() + s2
    s_bright = torch.sqrt(4 * s2 + 4 * m2 * s2 + 2 * s2 * s2 + 1e-32)
    bright = _min_pool(e_bright + eps_bright * s_bright, window)
    bright = bright / (bright.detach() + bias)
    return dark.sum() / 4 + bright.sum() / 4


def kernel_l2_term(kernel: torch.Tensor) -> torch.Tensor:
    """``sum(k^2) / 2`` of the flat kernel."""
    return kernel.square().sum() / 2


def negative_kl(mean: torch.Tensor, std: torch.Tensor, kernel: torch.Tensor, prior: str | None,
                eps_dark: torch.Tensor | None = None, eps_bright: torch.Tensor | None = None,
                window: int = EXTREME_WINDOW) -> dict:
    """Upstream's ``get_negative_kl`` split into its parts (all scalars; ``total`` is maximised).

    ``total = entropy / (H' W' C) - prior_normalised - 10 * kernel_l2``.
    """
    C, H, W = mean.shape[-3:]
    entropy = entropy_term(std)
    k_l2 = kernel_l2_term(kernel)
    if prior is None:
        prior_value = prior_norm = mean.new_zeros(())
    elif prior == "sparse":
        prior_value = sparse_prior_term(mean, std)
        prior_norm = prior_value / ((H - 1) * (W - 1) * C)
    elif prior == "extreme":
        if eps_dark is None or eps_bright is None:
            raise InvalidInputError("the extreme-channel prior needs its two noise maps (eps_dark, eps_bright)")
        prior_value = extreme_prior_term(mean, std, eps_dark, eps_bright, window)
        prior_norm = prior_value / ((H - window + 1) * (W - window + 1))
    else:
        raise InvalidInputError(f"unknown VDIP image prior {prior!r}")
    total = entropy / (H * W * C) - prior_norm - KERNEL_L2_WEIGHT * k_l2
    return {"entropy": entropy, "prior": prior_value, "prior_normalised": prior_norm, "kernel_l2": k_l2,
            "total": total}


def kl_weight(start: float, step: int) -> float:
    """``opt.noise_sigma`` at ``step``: ``start``, multiplied by 0.1 after every 1000 iterations."""
    return start * 0.1 ** (step // 1000)


# ============================================================================ the loop
@dataclass
class VDIPConfig(DIPConfig):
    input_depth: int = 3
    colour: str = "rgb"
    elbo_steps: int = 2000             # -ELBO before, 1 - SSIM(mean) from here
    prefit_steps: int | None = None    # None: the variant's num_pre (scaled with iters, see README)
    kernel_prefit: bool | None = None  # None: yes for every branch without a learned prior (not glkm)
    kl: bool | None = None             # None: the variant's (Std: False)
    kl_weight: float | None = None     # None: the variant's
    extreme_window: int = EXTREME_WINDOW


class VDIP(DeepPriorLoop):
    """VDIP's loop for one :class:`Variant` (see the module docstring)."""

    net_outputs_per_channel = 2
    noise_before_net = False  # manual_seed(0); get_network(); get_input() (which reseeds with 0)

    def __init__(self, blurry, kernel_size, *, variant: str = "sparse", config: VDIPConfig | None = None, **kwargs):
        if variant not in VARIANTS:
            raise InvalidInputError(f"VDIP variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
        self.variant = VARIANTS[variant]
        self.name = f"vdip-{variant}"
        config = config or make_config(VDIPConfig)
        super().__init__(blurry, kernel_size, config=config, **kwargs)
        cfg = self.cfg
        v = self.variant
        self.use_kl = v.kl if cfg.kl is None else bool(cfg.kl)
        self.kl_weight0 = v.kl_weight if cfg.kl_weight is None else float(cfg.kl_weight)
        if cfg.prefit_steps is not None:
            self.prefit_steps = int(cfg.prefit_steps)
        elif cfg.iters >= PAPER_ITERS or not v.prefit_steps:
            self.prefit_steps = v.prefit_steps
        else:  # a shortened run keeps upstream's proportion of pre-fit to main iterations
            self.prefit_steps = max(1, math.ceil(v.prefit_steps * cfg.iters / PAPER_ITERS)) if cfg.iters else 0
        self.kernel_prefit = (not self.branch.uses_prior) if cfg.kernel_prefit is None else bool(cfg.kernel_prefit)
        if v.prior == "extreme" and min(self.H, self.W) + self.pad < cfg.extreme_window:
            raise InvalidInputError(f"vdip-extreme needs images of at least {cfg.extreme_window - self.pad} px "
                                    f"(its {cfg.extreme_window}-px extreme-channel window)")
        self.eps = torch.empty(1, self.C, self.H + self.pad, self.W + self.pad)
        self.eps_dark = torch.empty(1, self.C, self.H + self.pad, self.W + self.pad)
        self.eps_bright = torch.empty_like(self.eps_dark)
        self.prefit_loss_last = None
        self.last_terms: dict = {}

    def split(self, out: torch.Tensor):
        return out[:, : self.C], out[:, self.C :]

    # -------------------------------------------------------------- pre-fit
    def before_loop(self, progress: bool) -> None:
        if self.prefit_steps <= 0:
            return
        y_target = torch.cat([self.y, torch.zeros_like(self.y)], dim=1)
        K2 = self.K * self.K
        uniform = torch.full((K2,), 1.0 / K2)
        for step in range(self.prefit_steps):
            out = self.net(self.input_saved)
            loss = F.mse_loss(self.crop(out), y_target)
            if self.kernel_prefit:
                loss = loss + F.mse_loss(self.kernel().reshape(-1), uniform)
            self.optimise(loss, step)
            self.prefit_loss_last = float(loss.detach())

    # -------------------------------------------------------------- main loss
    def elbo_terms(self, out: torch.Tensor, k: torch.Tensor, step: int) -> dict:
        """The ELBO of this step's outputs, drawing fresh noise for the sample (and priors)."""
        mean, std = self.split(out)
        self.eps.normal_(generator=self.gen)
        terms = {"data": data_term(mean, std, k, self.y, self.eps)}
        if self.use_kl:
            eps_d = eps_b = None
            if self.variant.prior == "extreme":
                eps_d = self.eps_dark.normal_(generator=self.gen)
                eps_b = self.eps_bright.normal_(generator=self.gen)
            nkl = negative_kl(mean, std, k.reshape(-1), self.variant.prior, eps_d, eps_b, self.cfg.extreme_window)
            terms.update({f"kl_{name}": value for name, value in nkl.items()})
            terms["elbo"] = terms["data"] + kl_weight(self.kl_weight0, step) * nkl["total"]
        else:
            terms["elbo"] = terms["data"]
        return terms

    def loss(self, step: int):
        out = self.net(self.input_saved)
        k = self.kernel()
        if step < self.cfg.elbo_steps:
            terms = self.elbo_terms(out, k, step)
            self.last_terms = {name: value.detach() for name, value in terms.items()}
            loss = -terms["elbo"]
        else:
            loss = self.ssim.loss(blur(self.split(out)[0], k, "valid"))
        return loss, out[:, : self.C], k

    def grads_ok(self) -> bool:
        if not self.variant.skip_nan:
            return True
        grads = [p.grad for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
        return not bool(torch.stack([g.isnan().any() for g in grads]).any()) if grads else True

    def final(self, last_out, last_kernel):
        # upstream saves a forward pass made after the last update
        with torch.no_grad():
            out = self.net(self.input_saved)
            return out[:, : self.C], self.kernel()

    def loop_state(self) -> dict:
        return {**super().loop_state(), "prefit_loss_last": self.prefit_loss_last,
                "last_terms": {k: float(v) for k, v in self.last_terms.items()}}

    def load_loop_state(self, state: dict) -> None:
        super().load_loop_state(state)
        self.prefit_loss_last = state.get("prefit_loss_last")
        self.last_terms = {k: torch.tensor(v) for k, v in (state.get("last_terms") or {}).items()}

    def extra_info(self) -> dict:
        info = {"variant": self.variant.name, "prefit_steps": self.prefit_steps, "kernel_prefit": self.kernel_prefit,
                "kl": self.use_kl, "kl_weight": self.kl_weight0, "elbo_steps": self.cfg.elbo_steps,
                "prefit_loss_last": self.prefit_loss_last}
        info.update({f"last_{k}": float(v.detach()) for k, v in self.last_terms.items()})
        return info


def _runner(variant: str):
    def run(blurry, *, kernel_size, kernel_branch="glkm", iters=None, seed=0, progress=True, prior=None,
            callback=None, context=None, preset="default", colour="rgb", trace_every=None, init_latent=None,
            branch_options=None, checkpoint=None, checkpoint_every=100, **options):
        cfg = make_config(VDIPConfig, preset=preset, iters=iters, colour=colour, **options)
        loop = VDIP(blurry, kernel_size, variant=variant, config=cfg, kernel_branch=kernel_branch, seed=seed,
                    prior=prior, context=context, init_latent=init_latent, branch_options=branch_options)
        return loop.run(progress=progress, callback=callback, trace_every=trace_every, checkpoint=checkpoint,
                        checkpoint_every=checkpoint_every)

    run.__name__ = f"run_vdip_{variant}"
    run.__doc__ = (f"Method ``vdip-{variant}``: VDIP with its {variant} image prior and the kernel branch "
                   "``kernel_branch``; options override :class:`VDIPConfig` fields.")
    return run


run_vdip_std = _runner("std")
run_vdip_sparse = _runner("sparse")
run_vdip_extreme = _runner("extreme")


#: ``vdip-*``'s options: :class:`VDIPConfig`'s fields and the run functions' keywords.
VDIPOptions = config_options("VDIPOptions", VDIPConfig, extra=RUN_OPTIONS)


@hookimpl
def glkm_methods(register):
    loop = dict(iterative=True, checkpointable=True, progress=True, options=VDIPOptions)
    register("vdip-std", run_vdip_std, "VDIP, no hand-crafted image prior (-ELBO data term, then 1-SSIM)", **loop)
    register("vdip-extreme", run_vdip_extreme, "VDIP with the extreme-channel (dark + bright) prior", **loop)
    register("vdip-sparse", run_vdip_sparse, "VDIP with the sparse (reweighted gradient) prior", **loop)


__all__ = ["VDIP", "VDIPConfig", "VDIPOptions", "VARIANTS", "Variant", "data_term", "negative_kl", "entropy_term",
           "sparse_prior_term", "extreme_prior_term", "kernel_l2_term", "kl_weight", "diff_v", "diff_h",
           "run_vdip_std", "run_vdip_sparse", "run_vdip_extreme"]
