"""Kernel branches: the swappable kernel half of a blind-deblurring loop (see hookspecs)."""

from __future__ import annotations

import torch
import torch.nn as nn

from .errors import InvalidInputError


class KernelBranch(nn.Module):
    """Base class. Subclasses set ``kernel_size`` and implement :meth:`forward`.

    * ``parameters()`` yields exactly the tensors the loop's optimiser must update;
    * ``forward()`` returns the current kernel (1, 1, K, K): cross-correlation, >= 0, sum 1;
    * ``project_(step)`` applies an in-place projection after each optimiser step (default
      none): every loop calls it right after ``optimizer.step()``, with the 0-based step number.
      It is the one per-step projection mechanism: a plugin that needs one (e.g. clamping or
      renormalising its parameters) supplies it by overriding this method on the branch class
      its ``glkm_kernel_branches`` factory returns;
    * ``default_lr`` is the learning rate of the branch's reference implementation;
      ``loop_lr`` maps a loop's name ("fast", "bird", "blinddps") to the rate that loop uses
      instead (:meth:`lr_in`; none by default);
    * ``uses_prior``: the factory needs a learned :class:`~glkm_prior.prior.KernelPrior`
      (``prior=``); hosts load one only for such branches (:func:`glkm_prior.plugins.branch_uses_prior`);
    * :meth:`capacity` is the largest kernel the branch can make with a given prior.

    Hosts read these from the class the factory registers (``register(..., branch_class=)``)
    before building a branch, never from its name.
    """

    name = "base"
    default_lr = 1e-4
    loop_lr: dict[str, float] = {}
    uses_prior = False

    def __init__(self, kernel_size: int):
        super().__init__()
        self.kernel_size = int(kernel_size)

    def forward(self) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    @torch.no_grad()
    def project_(self, step: int) -> None:
        """In-place projection after optimiser step ``step``; none by default."""

    @classmethod
    def capacity(cls, prior=None) -> int | None:
        """The largest kernel (px) this branch makes with ``prior``; None: any size."""
        return None

    def lr_in(self, loop: str) -> float:
        """The Adam rate of this branch in the loop named ``loop``: ``loop_lr[loop]``, else ``default_lr``."""
        return self.loop_lr.get(loop, self.default_lr)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}"


def check_blurry(blurry: torch.Tensor) -> torch.Tensor:
    """Validate a blurry image (1, 1|3, H, W) in [0, 1] handed to a branch factory."""
    if not isinstance(blurry, torch.Tensor) or blurry.dim() != 4 or blurry.shape[1] not in (1, 3):
        shape = tuple(blurry.shape) if isinstance(blurry, torch.Tensor) else type(blurry).__name__
        raise InvalidInputError(f"blurry image must be a (B, 1|3, H, W) tensor, got {shape}")
    if not torch.isfinite(blurry).all():
        raise InvalidInputError("blurry image contains NaN or Inf values")
    return blurry
