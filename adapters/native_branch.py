"""The native kernel branch of SelfDeblur/VDIP: an MLP 200 -> 1000 -> K^2 with softmax on a
fixed noise input (the upstream ``fcn``), randomly initialised."""

from __future__ import annotations

import torch
import torch.nn as nn

from glkm_prior.branch import KernelBranch
from glkm_prior.plugins import hookimpl


class NativeMLPKernelBranch(KernelBranch):
    name = "native"
    default_lr = 1e-4  # SelfDeblur's kernel learning rate
    loop_lr = {"fast": 1e-2}  # elsewhere default_lr

    def __init__(self, kernel_size: int, n_input: int = 200, n_hidden: int = 1000, seed: int | None = None):
        super().__init__(kernel_size)
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        # upstream: get_noise(200, 'noise', (1, 1)) = uniform [0, 1) scaled by 1/10, kept fixed
        self.register_buffer("noise", torch.rand(n_input, generator=gen) * 0.1)
        with torch.random.fork_rng():
            if seed is not None:
                torch.manual_seed(seed)
            self.net = nn.Sequential(
                nn.Linear(n_input, n_hidden), nn.ReLU6(), nn.Linear(n_hidden, kernel_size**2), nn.Softmax(dim=-1)
            )

    def forward(self) -> torch.Tensor:
        K = self.kernel_size
        return self.net(self.noise).reshape(1, 1, K, K)


def make_native_branch(blurry, kernel_size, *, seed=None, **_):
    return NativeMLPKernelBranch(kernel_size, seed=seed)


@hookimpl
def glkm_kernel_branches(register):
    register("native", make_native_branch, "SelfDeblur's MLP kernel (200 -> 1000 -> K^2, softmax), random init",
             branch_class=NativeMLPKernelBranch)
