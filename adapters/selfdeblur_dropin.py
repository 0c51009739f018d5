"""A drop-in replacement for SelfDeblur's (and VDIP's) kernel network in the upstream scripts.

Upstream (``selfdeblur_levin.py``)::

    net_kernel = fcn(n_k, opt.kernel_size[0] * opt.kernel_size[1])
    net_kernel = net_kernel.type(dtype)
    optimizer = torch.optim.Adam([{'params': net.parameters()},
                                  {'params': net_kernel.parameters(), 'lr': 1e-4}], lr=LR)
    ...
    out_k = net_kernel(net_input_kernel)                 # flat (K*K,) softmax vector
    out_k_m = out_k.view(-1, 1, opt.kernel_size[0], opt.kernel_size[1])

With GLKM (three changed lines; everything else of the script stays)::

    from glkm_adapters.selfdeblur_dropin import GLKMKernelNet
    net_kernel = GLKMKernelNet(y, opt.kernel_size)       # y: the blurry (1, 1, H, W) tensor
    ... {'params': net_kernel.parameters(), 'lr': GLKMKernelNet.default_lr} ...   # 5e-4

``net_kernel(anything)`` ignores its input and returns ``G.tail(w)`` as the flat (K*K,) vector
(>= 0, sums to 1, cross-correlation layout: upstream's ``conv2d`` needs no flip);
``parameters()`` yields only ``w``; ``.type(dtype)``, ``.to()``, ``.cuda()``, ``.double()`` move
the frozen generator along without exposing its parameters; the module pickles (upstream
``torch.save``s whole modules). It carries its own copy of the generator only (the
start is computed once, in the constructor: by default the classical L0 estimate of ``y``'s kernel
projected onto G, ``init="initializer"`` for the paper's ``G.head(E(y))``), so pickles stay small
and moving it never touches the prior it was built from.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn as nn

from glkm_prior.errors import InvalidInputError
from glkm_prior.prior import KernelPrior, check_kernel_size

from .glkm_branch import GLKMKernelBranch


def _as_blurry_tensor(blurry) -> torch.Tensor:
    """Accept upstream's ``y`` in any of its forms: (1, 1, H, W) tensor, (1, H, W) / (H, W)
    array or tensor, (H, W, 3) array; values in [0, 1]."""
    if isinstance(blurry, np.ndarray):
        arr = blurry.astype(np.float32)
        if arr.ndim == 3 and arr.shape[-1] == 3 and arr.shape[0] != 3:
            arr = arr.transpose(2, 0, 1)
        blurry = torch.from_numpy(np.ascontiguousarray(arr))
    if not isinstance(blurry, torch.Tensor):
        raise InvalidInputError(f"blurry image must be a tensor or numpy array, got {type(blurry).__name__}")
    t = blurry.detach().float().cpu()
    while t.dim() < 4:
        t = t.unsqueeze(0)
    if t.dim() != 4 or t.shape[0] != 1 or t.shape[1] not in (1, 3):
        raise InvalidInputError(f"blurry image must be (1, 1|3, H, W), (1, H, W) or (H, W), got {tuple(blurry.shape)}")
    return t


def _square_size(kernel_size) -> int:
    if isinstance(kernel_size, (list, tuple)):
        if len(kernel_size) != 2 or int(kernel_size[0]) != int(kernel_size[1]):
            raise InvalidInputError(f"GLKM kernels are square; got kernel_size {list(kernel_size)}")
        kernel_size = kernel_size[0]
    return check_kernel_size(int(kernel_size))


class GLKMKernelNet(nn.Module):
    """``net_kernel = GLKMKernelNet(blurry_y, kernel_size, prior=None)``; see the module docstring.

    ``prior``: a :class:`KernelPrior` (default: the bundled trained one for ``kernel_size``);
    ``init``: 'estimate' (default: the classical L0 kernel estimate projected onto G,
    :meth:`KernelPrior.estimated_latent`), 'initializer' (w = G.head(E(y)), the GLKM paper's
    start) or 'random' (with ``seed``).
    """

    default_lr = GLKMKernelBranch.default_lr

    def __init__(self, blurry_y, kernel_size, prior: KernelPrior | None = None, init: str = "estimate",
                 seed: int | None = None):
        super().__init__()
        K = _square_size(kernel_size)
        y = _as_blurry_tensor(blurry_y)
        if prior is None:
            prior = KernelPrior.from_pretrained(kernel_size=K)
        device = next(prior.generator.parameters()).device
        if init in ("estimate", "initializer"):
            w = prior.initial_latent(y.to(device), init=init, kernel_size=K, seed=0 if seed is None else int(seed))
        elif init == "random":
            w = prior.random_latent(1, seed=seed)
        else:
            raise InvalidInputError(f"init must be 'estimate', 'initializer' or 'random', got {init!r}")
        # own copy of the generator only: small pickles, and .type()/.to() leave `prior` alone
        own = KernelPrior(copy.deepcopy(prior.generator), None, source=prior.source)
        self.branch = GLKMKernelBranch(own, w.detach(), K)
        self.kernel_size = K

    @property
    def w(self) -> nn.Parameter:
        """The optimised latent (the module's only parameter)."""
        return self.branch.w

    def forward(self, net_input_kernel=None) -> torch.Tensor:
        """The current kernel as upstream's flat (K*K,) vector; the input is ignored."""
        return self.branch().reshape(-1)

    def kernel(self) -> torch.Tensor:
        """The current kernel (1, 1, K, K)."""
        return self.branch()

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, latent={tuple(self.branch.w.shape)}"


__all__ = ["GLKMKernelNet"]
