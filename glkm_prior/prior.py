"""``KernelPrior``: the frozen generator G and initializer E that adapters use.

How one prior serves kernel sizes 11..75: a prior's generator draws kernels on a fixed odd
canvas (``prior.size``, e.g. 31 or 75); a smaller kernel size is served by centre-cropping
the canvas and renormalising, a larger one by zero-padding (:func:`physics.fit_kernel`).
The project ships a *bundle* of priors, one per canvas size, and
:meth:`KernelPrior.from_pretrained` picks the smallest canvas that holds the requested
``kernel_size`` (Levin 11-27 -> 31; Lai 31-75, BIRD 41, BlindDPS 64 -> 75).

Typical use inside a deblurring loop::

    prior = KernelPrior.from_pretrained(kernel_size=27)
    w = prior.initial_latent(blurry_y, kernel_size=27)  # the l0 estimate on G; leaf, requires_grad=True
    opt = torch.optim.Adam([w, *image_params], lr=...)
    k = prior.kernel(w, size=27)                # (1, 1, 27, 27), >= 0, sums to 1
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import hub
from .colour import luma
from .errors import InvalidInputError, KernelSizeError, WeightsError
from .models import KernelGenerator, KernelInitializer
from .physics import check_image, fit_kernel

#: GAN-inversion steps of the ``init="estimate"`` start (:meth:`KernelPrior.estimated_latent`).
ESTIMATE_INVERT_STEPS = 300

MIN_KERNEL_SIZE, MAX_KERNEL_SIZE = 3, 101
#: ``--kernel-size auto`` (glkm_prior/estimation/kernel_size.py) picks an odd size in this range.
AUTO_KERNEL_RANGE = (11, 75)
#: ``--kernel-size auto`` makes the kernel this many times the estimated blur extent, plus 2 px.
AUTO_KERNEL_MARGIN = 1.25


def auto_kernel_side(extent: float) -> float:
    """The kernel side (px, before rounding to odd and clamping) that ``--kernel-size auto``
    gives a blur of ``extent`` px."""
    return AUTO_KERNEL_MARGIN * extent + 2


def to_luma(image: torch.Tensor) -> torch.Tensor:
    """(B, 1|3, H, W) in [0, 1] -> (B, 1, H, W) BT.601 luma (0.299 R + 0.587 G + 0.114 B)."""
    check_image(image, "blurry image")
    if image.shape[1] == 1:
        return image
    if image.shape[1] != 3:
        raise InvalidInputError(f"blurry image must have 1 or 3 channels, got {image.shape[1]}")
    return luma(image[:, 0:1], image[:, 1:2], image[:, 2:3])


def check_kernel_size(size: int) -> int:
    if not isinstance(size, int) or isinstance(size, bool):
        raise KernelSizeError(f"kernel size must be an integer, got {size!r}")
    if not MIN_KERNEL_SIZE <= size <= MAX_KERNEL_SIZE:
        raise KernelSizeError(f"kernel size {size} is outside the supported range {MIN_KERNEL_SIZE}..{MAX_KERNEL_SIZE}")
    return size


class KernelPrior(nn.Module):
    """Generator + initializer, frozen and in eval mode (BatchNorm uses running statistics).

    Latent convention: ``w`` is the first-layer feature map ``G.head(z)``, shape
    (B, C0, s0, s0); kernels are ``G.tail(w)``, cross-correlation kernels on ``size x size``.
    """

    def __init__(self, generator: KernelGenerator, initializer: KernelInitializer | None = None, source: str | None = None):
        super().__init__()
        if initializer is not None and initializer.nz != generator.nz:
            raise WeightsError(f"initializer outputs nz={initializer.nz} but the generator takes nz={generator.nz}")
        self.generator = generator
        self.initializer = initializer
        self.source = source
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):  # the prior is always used frozen
        return super().train(False)

    @property
    def size(self) -> int:
        """Side of the generator's kernel canvas (odd)."""
        return self.generator.size

    @property
    def nz(self) -> int:
        return self.generator.nz

    # ------------------------------------------------------------------ construction / I/O
    @classmethod
    def untrained(cls, size: int = 31, seed: int = 0) -> "KernelPrior":
        """A randomly initialised prior (for tests and for running before weights exist)."""
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            spec = bundle_spec(size)
            return cls(KernelGenerator(**spec), KernelInitializer(nz=spec["nz"]), source="untrained")

    @classmethod
    def from_pretrained(
        cls,
        source: str | os.PathLike | None = None,
        *,
        kernel_size: int | None = None,
        revision: str | None = None,
        local_files_only: bool | None = None,
        cache_dir: str | os.PathLike | None = None,
        largest_if_too_small: bool = False,
    ) -> "KernelPrior":
        """Load a prior folder, or choose one from a bundle by ``kernel_size``.

        ``source``: a local folder, a Hub repo id ``owner/name`` (pin ``revision`` to a commit),
        or None for the project's bundled ``weights/``. When no canvas holds ``kernel_size``,
        :class:`KernelSizeError` is raised, or with ``largest_if_too_small`` the largest prior is
        returned (for methods that estimate large kernels at a reduced scale; check ``.size``).
        """
        folder = hub.resolve_source(source, revision, local_files_only, cache_dir)
        if kernel_size is not None:
            check_kernel_size(kernel_size)
        try:
            prior_dir = select_prior_folder(folder, kernel_size)
        except KernelSizeError:
            if not largest_if_too_small:
                raise
            prior_dir = select_prior_folder(folder, None, largest=True)
        generator = hub.load_component(prior_dir / "generator", "KernelGenerator")
        init_dir = prior_dir / "initializer"
        initializer = hub.load_component(init_dir, "KernelInitializer") if init_dir.exists() else None
        return cls(generator, initializer, source=str(prior_dir))

    def save_pretrained(self, folder: str | os.PathLike, dtype: str = "float32", extra: dict | None = None) -> Path:
        """Write ``folder/generator`` and ``folder/initializer`` (Hub-uploadable as is)."""
        folder = Path(folder)
        hub.save_component(self.generator, folder / "generator", dtype=dtype, extra=extra)
        if self.initializer is not None:
            hub.save_component(self.initializer, folder / "initializer", dtype=dtype, extra=extra)
        return folder

    # ------------------------------------------------------------------ latents and kernels
    def _device(self) -> torch.device:
        return next(self.generator.parameters()).device

    def latent(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, nz[, 1, 1]) -> w = G.head(z), (B, C0, s0, s0)."""
        return self.generator.head(z.reshape(z.shape[0], self.nz, 1, 1))

    def predict_z(self, blurry: torch.Tensor) -> torch.Tensor:
        """E(y): blurry (B, 1|3, H, W) in [0, 1] -> z (B, nz, 1, 1) (colour is reduced to luma).
        An image smaller than the initializer's ``MIN_SIZE`` is padded to it by edge replication
        (the blur keeps its scale; upsampling would enlarge it)."""
        if self.initializer is None:
            raise WeightsError("this prior has no initializer; load one with an initializer/ folder")
        y = to_luma(blurry).to(self._device(), torch.float32)
        short = self.initializer.MIN_SIZE
        if min(y.shape[-2:]) < short:
            dh, dw = max(0, short - y.shape[-2]), max(0, short - y.shape[-1])
            y = F.pad(y, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2), mode="replicate")
        with torch.no_grad():
            return self.initializer(y)

    def initial_latent(self, blurry: torch.Tensor, init: str = "estimate", kernel_size: int | None = None,
                       seed: int = 0) -> torch.Tensor:
        """A solver's starting latent w0 for ``blurry`` (1, 1|3, H, W) in [0, 1], as a fresh leaf
        tensor with ``requires_grad=True``:

        * ``"estimate"`` (default): :meth:`estimated_latent`, the classical L0 kernel estimate
          projected onto G (Levin: median error ratio 1.67 against 45.3 for E(y); about 4 s);
        * ``"initializer"``: ``G.head(E(y))``, the GLKM paper's start (about 1 s).

        ``kernel_size``: the blur's size for the estimate (default: the prior's canvas)."""
        if init == "estimate":
            return self.estimated_latent(blurry, kernel_size or self.size, seed=seed)
        if init != "initializer":
            raise InvalidInputError(f"init must be 'estimate' or 'initializer', got {init!r}")
        with torch.no_grad():
            w = self.latent(self.predict_z(blurry))
        return w.detach().clone().requires_grad_(True)

    def estimated_latent(self, blurry: torch.Tensor, kernel_size: int, seed: int = 0,
                         steps: int = ESTIMATE_INVERT_STEPS) -> torch.Tensor:
        """The latent of the classical L0 kernel estimate of ``blurry``'s luma
        (:func:`glkm_prior.estimation.estimate_kernel_l0`, no learned prior) by GAN inversion
        (:meth:`invert`, ``steps`` steps, ``seed``) for one image (1, 1|3, H, W); a fresh leaf
        (requires_grad=True)."""
        from .estimation.pyramid import estimate_kernel_l0

        if blurry.dim() != 4 or blurry.shape[0] != 1:
            raise InvalidInputError(f"init='estimate' takes one image (1, C, H, W), got shape {tuple(blurry.shape)}")
        kernel = estimate_kernel_l0(to_luma(blurry.float()), int(kernel_size))["kernel"]
        return self.invert(kernel, steps=steps, seed=int(seed))

    def random_latent(self, batch: int = 1, seed: int | None = None) -> torch.Tensor:
        """w = G.head(z), z ~ N(0, I), as a fresh leaf tensor (``seed`` for reproducibility)."""
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        z = torch.randn(batch, self.nz, 1, 1, generator=gen).to(self._device())
        with torch.no_grad():
            w = self.latent(z)
        return w.detach().clone().requires_grad_(True)

    def kernel(self, w: torch.Tensor, size: int | None = None) -> torch.Tensor:
        """w -> kernels (B, 1, K, K), K = ``size`` or the canvas; >= 0 and summing to 1.
        Differentiable in ``w``."""
        expected = tuple(self.generator.latent_shape)
        if w.dim() != 4 or tuple(w.shape[1:]) != expected:
            raise InvalidInputError(f"latent w must have shape (B, {', '.join(map(str, expected))}), got {tuple(w.shape)}")
        k = self.generator.tail(w)
        if size is not None and size != self.size:
            k = fit_kernel(k, check_kernel_size(size))
        return k

    def invert(
        self,
        kernel: torch.Tensor,
        steps: int = 1000,
        lr: float = 0.03,
        restarts: int = 2,
        seed: int = 0,
    ) -> torch.Tensor:
        """GAN inversion: latent w whose kernel best matches ``kernel`` (B, 1, h, w).

        From ``restarts`` random z per kernel, optimised together as one batch: ``steps // 2``
        Adam steps on z (lr ``5 * lr``), then the rest on w (lr ``lr``); the best restart per
        kernel is kept. The loss is L1 between kernels on the generator's canvas (``kernel`` is
        centre-padded or cropped to it). (On Levin's kernels, lr 0.03 reached half the error of
        lr 0.01 at equal steps.) Cost: about ``steps`` generator passes of a batch of
        ``B * restarts`` kernels (one 27-px kernel with the defaults: ~5 s on one CPU thread).
        Returns a fresh leaf w (requires_grad=True).
        """
        if kernel.dim() == 2:
            kernel = kernel[None, None]
        target = fit_kernel(kernel.to(self._device(), torch.float32), self.size)
        B, R = target.shape[0], max(1, int(restarts))
        targets = target.repeat(R, 1, 1, 1)  # restart r of kernel b at index r * B + b
        gen = torch.Generator().manual_seed(seed)
        with torch.enable_grad():
            z = torch.randn(R * B, self.nz, 1, 1, generator=gen).to(target.device).requires_grad_(True)
            opt = torch.optim.Adam([z], lr=lr * 5)
            for _ in range(steps // 2):
                opt.zero_grad()
                (self.generator(z) - targets).abs().sum().backward()
                opt.step()
            w = self.latent(z.detach()).detach().requires_grad_(True)
            opt = torch.optim.Adam([w], lr=lr)
            for _ in range(steps - steps // 2):
                opt.zero_grad()
                (self.generator.tail(w) - targets).abs().sum().backward()
                opt.step()
        with torch.no_grad():
            final = (self.generator.tail(w) - targets).abs().sum(dim=(1, 2, 3)).reshape(R, B)
        best = final.argmin(dim=0)  # (B,) the best restart of each kernel
        w = w.detach().reshape(R, B, *w.shape[1:])[best, torch.arange(B)]
        return w.clone().requires_grad_(True)


# ---------------------------------------------------------------------- bundles
BUNDLE_SPECS = {
    31: dict(size=31, nz=100, head_size=4, channels=[256, 128, 64]),
    75: dict(size=75, nz=100, head_size=5, channels=[256, 128, 64, 32]),
}


def bundle_spec(size: int) -> dict:
    """Generator constructor arguments for the canvas that holds kernels of ``size``."""
    for canvas in sorted(BUNDLE_SPECS):
        if size <= canvas:
            return dict(BUNDLE_SPECS[canvas])
    raise KernelSizeError(f"no generator canvas holds {size} px kernels (largest {max(BUNDLE_SPECS)})")


def _is_prior_folder(folder: Path) -> bool:
    return (folder / "generator" / hub.CONFIG_NAME).is_file()


def select_prior_folder(folder: Path, kernel_size: int | None, largest: bool = False) -> Path:
    """``folder`` itself if it is a prior; otherwise the bundle member with the smallest
    canvas >= ``kernel_size`` (if ``kernel_size`` is None: the smallest canvas, or the largest
    with ``largest=True``)."""
    if _is_prior_folder(folder):
        return folder
    members = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []:
        if _is_prior_folder(sub):
            size = hub.read_config(sub / "generator")["config"].get("size")
            members.append((int(size), sub))
    if not members:
        raise WeightsError(f"no trained prior in {folder}: expected generator/ and initializer/ folders (or a bundle of them)")
    members.sort()
    if kernel_size is None:
        return members[-1 if largest else 0][1]
    for size, sub in members:
        if kernel_size <= size:
            return sub
    raise KernelSizeError(f"kernel size {kernel_size} exceeds the largest prior canvas in {folder} ({members[-1][0]})")
