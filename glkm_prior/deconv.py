"""Fast non-blind deconvolution (known blur kernel) in torch, on CPU.

Two solvers are provided, both FFT based:

* :func:`wiener_deconv` -- closed-form Tikhonov / Wiener deconvolution with a first-difference
  (gradient) or identity regulariser.
* :func:`hyper_laplacian_deconv` -- Krishnan & Fergus, "Fast image deconvolution using
  hyper-Laplacian priors" (NIPS 2009): half-quadratic splitting that alternates a closed-form
  FFT x-step with a per-pixel w-step for ``|w|**alpha``.

and the helper :func:`edgetaper` (MATLAB ``edgetaper`` equivalent).

Conventions
-----------
Images
    torch tensors of shape ``(B, C, H, W)``, floating point, values in ``[0, 1]``.  All work is
    done in float32 and the result is float32 (``(B, C, H, W)``, same size as the input).
Kernels
    ``(Kh, Kw)`` (one kernel for the whole batch) or ``(B, 1, Kh, Kw)`` / ``(1, 1, Kh, Kw)``
    (one kernel per batch element, applied to all channels of that element).  Kernels must be
    finite, non-negative and have a positive sum; they are renormalised to sum 1 here (entries
    that are negative by less than 1 % of the kernel maximum are treated as round-off and
    clamped to 0; larger negative entries raise).  Even sizes are allowed.
Blur model
    *cross-correlation* exactly as :func:`torch.nn.functional.conv2d` computes it (no kernel
    flip), in 'same' geometry with kernel centre ``(Kh // 2, Kw // 2)``::

        y[i, j] = sum_{a, b} k[a, b] * x[i + a - Kh // 2, j + b - Kw // 2]

    In the Fourier domain the OTF is ``K = rfft2(k_shift)`` where ``k_shift`` is the kernel
    zero-padded to the image size and circularly shifted so that ``k[Kh//2, Kw//2]`` sits at
    index ``(0, 0)`` (see :func:`glkm_prior.physics.kernel_otf`); circular correlation is then
    ``irfft2(rfft2(x) * conj(K))`` and its adjoint (a convolution) is ``irfft2(rfft2(r) * K)``.
    With circular padding this equals
    ``F.conv2d(F.pad(x, (Kw//2, Kw-1-Kw//2, Kh//2, Kh-1-Kh//2), mode='circular'), k)``.
Gradients
    forward differences ``Dx x = x[i, j+1] - x[i, j]``, ``Dy x = x[i+1, j] - x[i, j]``
    (circular on the padded working domain).
Blurry image geometry
    ``y`` has the size of the sharp image it is compared to: ``y = k * x`` where ``x`` has
    unknown content outside the frame (real photographs are not periodic).

Objectives
----------
``wiener_deconv``::

    x = argmin ||k * x - y||^2 + reg * (||Dx x||^2 + ||Dy x||^2)     (grad_reg=True)
    x = argmin ||k * x - y||^2 + reg * ||x||^2                       (grad_reg=False)

``hyper_laplacian_deconv`` (``lam`` weights the *prior*; Krishnan's code writes the same
objective as ``lambda/2 ||k*x-y||^2 + sum |grad x|^alpha`` with ``lambda = 1 / lam``, e.g. their
``lambda = 2e3`` for [0, 1] images is ``lam = 5e-4`` here)::

    x = argmin 1/2 ||k * x - y||^2 + lam * sum(|Dx x|^alpha + |Dy x|^alpha)

solved by half-quadratic splitting with auxiliary ``w = (wx, wy)``::

    1/2 ||k*x - y||^2 + lam * sum(|w|^alpha + beta/2 (w - Dx)^2)

for ``beta = beta0, beta0*beta_rate, ... <= beta_max`` (``iters_per_beta`` alternations each):

* w-step, per pixel: ``w = argmin |w|^alpha + beta/2 (w - v)^2`` with ``v = Dx x`` (resp.
  ``Dy x``) -- exact:
  zero below the generalised-shrinkage threshold (Zuo et al. 2013), otherwise the larger root of
  ``alpha w^(alpha-1) + beta (w - |v|) = 0`` found by vectorised Newton iterations started at
  ``|v|`` (monotone, quadratic convergence; only pixels above the threshold are touched).
  ``alpha = 1`` is plain soft thresholding.
* x-step, in closed form:
  ``X = (K Y + lam beta F[Dx^T wx + Dy^T wy]) / (|K|^2 + lam beta (|Dx|^2 + |Dy|^2))``
  (``K`` the OTF above, ``Y = rfft2(y)``, ``F = rfft2``); ``K Y``, ``|K|^2`` and ``|D|^2`` are
  computed once per call, only the cheap element-wise denominator changes with ``beta``.

Defaults, tuned for ~1 % Gaussian noise on [0, 1] images (grid search on synthetic and natural
test images, 15x15 and 27x27 motion kernels): ``lam = 1e-3`` (Krishnan's ``lambda = 1000``),
``alpha = 2/3``, ``beta`` from 1 to 256 by factors ``2 sqrt 2`` with one alternation each
(Krishnan's schedule: 6 x-steps); ``reg = 1e-2`` for Wiener (1e-3 under-regularises at 1 % noise
and is 2 dB worse).  Less noise: smaller ``lam`` / ``reg``.

Boundary handling (both solvers; ``boundary=`` argument)
---------------------------------------------------------
``'valid'`` (default)
    The exact 'valid' model: the unknown ``x`` lives on a larger, periodic working domain and
    only the pixels of the observed frame carry a data term, ``1/2 ||M (k * x - y)||^2`` with
    ``M`` the frame mask, so nothing periodic is assumed about the image.  The working domain
    is the frame plus at least ``K`` pixels per side, rounded up to an FFT-friendly size (prime
    factors 2, 3, 5); the frame is cropped back at the end.  The unobserved part is initialised
    with the ``'taper'`` image below.  Hyper-Laplacian: after every x-step the data outside the
    frame is replaced by the current re-blurred estimate ``k * x`` (a majorise-minimise step
    for the masked data term; one extra rfft2/irfft2 pair per iteration).  Wiener: the masked
    normal equations ``(K^T M K + reg D^T D) x = K^T M y`` are solved by conjugate gradients in
    the Fourier domain, preconditioned by the closed-form circulant solve and started from the
    closed-form ``'taper'`` solution (at most ``cg_iters = 20`` iterations, one FFT pair each;
    the masked problem is ill-conditioned near the frame, so CG is not run to convergence --
    the PSNR gain over ``'taper'``, typically 0.5-2 dB, is mostly there after 10-20).
``'taper'``
    Purely closed form: the blurry image is mirror ("reflect") padded to the same working
    domain, passed through :func:`edgetaper` (blend with its own circular blur, weights from
    the kernel's autocorrelation, so that the periodic wrap-around of the working domain is
    smooth), solved circularly and cropped.  Fast, but the reflected data is not consistent
    with an asymmetric kernel, so the outer ~K pixels are typically 0.5-2 dB worse than with
    ``'valid'``.
``'periodic'``
    No boundary handling (the image is assumed periodic): strong ringing at the borders, for
    comparison and for genuinely circular problems only.

Whatever the handling, the outermost ~K/2 pixels are only partly observed (part of what blurred
into them lies outside the frame), so they are intrinsically less accurate than the interior.

Large images
------------
Images are processed one batch element (and, above 1 Mpx, one channel) at a time.  Images with
more than ``2048 * 2048`` pixels are by default split into overlapping tiles no larger than
``2048 x 2048`` (``tile='auto'``); ``tile=<int>`` uses tiles of at most that size whenever the
image is larger, ``tile=None`` (or 0) disables tiling.  Neighbouring tiles overlap by at least
``overlap = max(4 K, 64)`` pixels (an explicit ``overlap`` must be >= ``2 K``; ``tile`` must be
>= ``2 * overlap``); every tile is deconvolved on its own, with the boundary handling above,
and the tiles are blended with linear ramps across each overlap (the ``K // 2`` tile-edge pixels
next to a neighbouring tile get weight 0).  A 4000x3000 RGB image needs well under 1 GB of
working memory this way.  Tiled and untiled Wiener results agree to ~2e-3 inside the tiles; the
hyper-Laplacian solver is non-convex and run for only a few iterations, so isolated pixels whose
thresholding decision flips differ by a few 1e-2 (as much as a 1e-4 perturbation of ``y``
moves them), while the mean difference is ~5e-4.

Gradients are not propagated (inputs are detached); tensors may live on any device.
"""

from __future__ import annotations

import math
from typing import Callable, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F

from .errors import InvalidInputError, KernelSizeError
from .physics import fast_fft_size, kernel_otf

__all__ = ["wiener_deconv", "hyper_laplacian_deconv", "edgetaper"]

#: Images with more pixels than this are tiled by default (``tile='auto'``).
AUTO_TILE_PIXELS = 2048 * 2048
#: Tile size used by ``tile='auto'``.
AUTO_TILE_SIZE = 2048
#: Above this many pixels per channel, channels are processed one at a time.
_CHANNEL_CHUNK_PIXELS = 1024 * 1024
#: Newton iterations of the hyper-Laplacian w-step (float32-exact after 3-4 for alpha <= 0.8).
_NEWTON_ITERS = 4

TileArg = Union[int, str, None]


# --------------------------------------------------------------------------------------------
# FFT helpers (private; the OTF is physics.kernel_otf, the blur forward model is not used here)
# --------------------------------------------------------------------------------------------


def _grad_otf_energy(shape: Tuple[int, int], device=None) -> torch.Tensor:
    """``|Dx|^2 + |Dy|^2`` of the forward-difference operators, real-FFT layout ``(H, W//2+1)``."""
    H, W = int(shape[0]), int(shape[1])
    fy = torch.arange(H, dtype=torch.float64, device=device)
    fx = torch.arange(W // 2 + 1, dtype=torch.float64, device=device)
    ey = 2.0 - 2.0 * torch.cos(2.0 * math.pi * fy / H)
    ex = 2.0 - 2.0 * torch.cos(2.0 * math.pi * fx / W)
    return (ey[:, None] + ex[None, :]).to(torch.float32)


def _grad(x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Circular forward differences ``(Dx x, Dy x)``."""
    return torch.roll(x, -1, dims=-1) - x, torch.roll(x, -1, dims=-2) - x


def _grad_adjoint(wx: torch.Tensor, wy: torch.Tensor) -> torch.Tensor:
    """``Dx^T wx + Dy^T wy`` for the circular forward differences of :func:`_grad`."""
    return (torch.roll(wx, 1, dims=-1) - wx) + (torch.roll(wy, 1, dims=-2) - wy)


class _QuadraticSolver:
    """Closed-form solver of the circular quadratic problem on a fixed domain.

    ``solve(weight, rhs)`` returns::

        argmin_x 1/2 ||k * x - y||^2 + weight/2 * ||D x - w||^2

    where ``D`` is the gradient ``(Dx, Dy)`` (``grad_reg=True``) or the identity, and
    ``rhs = D^T w`` (``None`` means ``w = 0``), i.e. the solution of
    ``(K^T K + weight D^T D) x = K^T y + weight rhs``.  Everything that depends on the OTF
    (``K^T y``, ``|K|^2``, ``|D|^2``) is computed once in the constructor.
    """

    def __init__(self, y: torch.Tensor, k: torch.Tensor, grad_reg: bool = True) -> None:
        self._denom: Optional[Tuple[float, torch.Tensor]] = None
        self.shape = tuple(y.shape[-2:])
        otf = kernel_otf(k.to(torch.float32), self.shape)
        self.otf = otf
        self.kty = torch.fft.rfft2(y) * otf
        self.ktk = otf.real.square() + otf.imag.square()
        if grad_reg:
            self.dtd = _grad_otf_energy(self.shape, device=y.device)
        else:
            self.dtd = torch.ones_like(self.ktk)

    def set_data(self, u: torch.Tensor) -> None:
        """Replace the data ``y`` of the data term (used by the masked 'valid' model)."""
        self.kty = torch.fft.rfft2(u) * self.otf

    def denom(self, weight: float) -> torch.Tensor:
        """``|K|^2 + weight |D|^2`` (the last one is cached: reused while beta is unchanged)."""
        weight = float(weight)
        if self._denom is None or self._denom[0] != weight:
            self._denom = (weight, self.ktk + weight * self.dtd)
        return self._denom[1]

    def solve_spectral(self, weight: float, rhs: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Like :meth:`solve` but returns ``rfft2`` of the solution."""
        denom = self.denom(weight)
        num = self.kty
        if rhs is not None:
            num = num + float(weight) * torch.fft.rfft2(rhs)
        return num / denom

    def spatial(self, X: torch.Tensor) -> torch.Tensor:
        return torch.fft.irfft2(X, s=self.shape)

    def blur(self, X: torch.Tensor) -> torch.Tensor:
        """``k * x`` (circular correlation) for ``X = rfft2(x)``."""
        return torch.fft.irfft2(X * self.otf.conj(), s=self.shape)

    def solve(self, weight: float, rhs: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.spatial(self.solve_spectral(weight, rhs))


# --------------------------------------------------------------------------------------------
# hyper-Laplacian w-step
# --------------------------------------------------------------------------------------------


def _hl_threshold(beta: float, alpha: float) -> float:
    """Smallest ``|v|`` for which ``argmin_w |w|^alpha + beta/2 (w-v)^2`` is non-zero.

    Generalised soft-thresholding threshold (Zuo et al., ICCV 2013) with ``lambda = 1/beta``.
    """
    if alpha >= 1.0:
        return 1.0 / beta
    lam = 1.0 / beta
    a = 2.0 * lam * (1.0 - alpha)
    return a ** (1.0 / (2.0 - alpha)) + lam * alpha * a ** ((alpha - 1.0) / (2.0 - alpha))


def _hl_wstep(v: torch.Tensor, beta: float, alpha: float,
              newton_iters: int = _NEWTON_ITERS) -> torch.Tensor:
    """Per-element ``argmin_w |w|^alpha + beta/2 (w - v)^2`` for ``0 < alpha <= 1``.

    Below the threshold (:func:`_hl_threshold`) the minimiser is 0; above it, it is the larger
    root of ``g(w) = alpha w^(alpha-1) + beta (w - |v|)`` on ``(0, |v|)`` (with the sign of
    ``v``).  ``g`` is convex and increasing there and ``g(|v|) > 0``, so Newton started at
    ``|v|`` decreases monotonically to that root.
    """
    beta = float(beta)
    alpha = float(alpha)
    if alpha >= 1.0:
        return torch.sign(v) * torch.clamp(v.abs() - 1.0 / beta, min=0.0)
    tau = _hl_threshold(beta, alpha)
    mask = v.abs() > tau
    w = torch.zeros_like(v)
    vm = v[mask]
    if vm.numel() == 0:
        return w
    u = vm.abs()
    z = u.clone()
    am1 = alpha - 1.0
    c2 = alpha * am1
    for _ in range(newton_iters):
        # Newton step z -= g / g' computed as (z g) / (z g') (no negative powers of z needed
        # beyond z^(alpha-1)), in place to keep the number of passes over memory low.
        zp = z.pow(am1)
        t = z - u
        t.mul_(beta).add_(zp, alpha=alpha).mul_(z)        # z * g(z)
        zp.mul_(c2).add_(z, alpha=beta)                  # z * g'(z)  (> 0 right of the root)
        z.sub_(t.div_(zp)).clamp_(min=1e-30)
    w.masked_scatter_(mask, torch.copysign(z, vm))
    return w


# --------------------------------------------------------------------------------------------
# boundary handling
# --------------------------------------------------------------------------------------------


def _reflect_index(n: int, before: int, after: int, device=None) -> torch.Tensor:
    """Indices of a mirror ('reflect', edge not repeated) padding of any size, for length ``n``."""
    idx = torch.arange(-before, n + after, device=device)
    if n == 1:
        return torch.zeros_like(idx)
    period = 2 * (n - 1)
    idx = idx.remainder(period)
    return torch.where(idx >= n, period - idx, idx)


def _taper_weights_1d(p: torch.Tensor, n: int) -> torch.Tensor:
    """MATLAB edgetaper weights along one axis: 1 - normalised autocorrelation of ``p``."""
    m = n - 1
    P = torch.fft.rfft(p.to(torch.float64), n=m)
    ac = torch.fft.irfft(P.real.square() + P.imag.square(), n=m)
    ac = ac / ac.max()
    ac = torch.cat([ac, ac[:1]])
    return (1.0 - ac).clamp(0.0, 1.0).to(torch.float32)


def _edgetaper_2d(img: torch.Tensor, k: torch.Tensor, otf: Optional[torch.Tensor] = None) -> torch.Tensor:
    """edgetaper of ``img`` (``(..., H, W)``) with kernel ``k`` (``(Kh, Kw)``); no validation."""
    H, W = img.shape[-2:]
    wy = _taper_weights_1d(k.sum(dim=1), H).to(img.device)
    wx = _taper_weights_1d(k.sum(dim=0), W).to(img.device)
    alpha = wy[:, None] * wx[None, :]
    if otf is None:
        otf = kernel_otf(k.to(torch.float32), (H, W))
    blurred = torch.fft.irfft2(torch.fft.rfft2(img) * otf.conj(), s=(H, W))
    return alpha * img + (1.0 - alpha) * blurred


def _pad_for_boundary(img: torch.Tensor, k: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
    """Mirror-pad ``img`` by >= the kernel size per side, to a 2-3-5 FFT size, and edgetaper it.

    Returns the padded, tapered image and the ``(top, left)`` offset of the original frame.
    """
    H, W = img.shape[-2:]
    Kh, Kw = k.shape[-2:]
    Hp = fast_fft_size(H + 2 * Kh)
    Wp = fast_fft_size(W + 2 * Kw)
    top = (Hp - H) // 2
    left = (Wp - W) // 2
    ih = _reflect_index(H, top, Hp - H - top, device=img.device)
    iw = _reflect_index(W, left, Wp - W - left, device=img.device)
    padded = img.index_select(-2, ih).index_select(-1, iw)
    padded = _edgetaper_2d(padded, k)
    return padded, (top, left)


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------


def _check_image(y, name: str = "y") -> torch.Tensor:
    if not torch.is_tensor(y):
        raise InvalidInputError(
            f"{name} must be a torch.Tensor of shape (B, C, H, W), got {type(y).__name__}")
    if y.dim() != 4:
        raise InvalidInputError(f"{name} must be 4-D (B, C, H, W), got shape {tuple(y.shape)}")
    if not y.is_floating_point():
        raise InvalidInputError(
            f"{name} must be a floating-point tensor with values in [0, 1], got dtype {y.dtype}")
    if y.numel() == 0:
        raise InvalidInputError(f"{name} is empty, shape {tuple(y.shape)}")
    y = y.detach().to(torch.float32)
    if not bool(torch.isfinite(y).all()):
        raise InvalidInputError(f"{name} contains NaN or Inf values")
    return y


def _check_kernel(k, B: int, H: int, W: int, device) -> torch.Tensor:
    """Validate ``k`` and return it as float32 ``(B, 1, Kh, Kw)``, non-negative, sum 1."""
    if not torch.is_tensor(k):
        raise InvalidInputError(f"kernel k must be a torch.Tensor, got {type(k).__name__}")
    if not k.is_floating_point():
        raise InvalidInputError(f"kernel k must be a floating-point tensor, got dtype {k.dtype}")
    if k.dim() == 2:
        k = k[None, None]
    elif k.dim() != 4 or k.shape[1] != 1:
        raise InvalidInputError(
            f"kernel k must have shape (Kh, Kw) or (B, 1, Kh, Kw), got {tuple(k.shape)}")
    if k.shape[0] not in (1, B):
        raise InvalidInputError(
            f"kernel batch size {k.shape[0]} does not match image batch size {B}")
    Kh, Kw = k.shape[-2:]
    if Kh < 1 or Kw < 1:
        raise KernelSizeError(f"kernel k is empty, shape {tuple(k.shape)}")
    if Kh > H or Kw > W:
        raise KernelSizeError(f"kernel {Kh}x{Kw} is larger than the image {H}x{W}")
    k = k.detach().to(device=device, dtype=torch.float32)
    if not bool(torch.isfinite(k).all()):
        raise InvalidInputError("kernel k contains NaN or Inf values")
    kmax = k.amax(dim=(-2, -1), keepdim=True)
    if bool((kmax <= 0).any()):
        raise InvalidInputError("kernel k must have a positive sum (all entries are <= 0)")
    if bool((k < -0.01 * kmax).any()):
        raise InvalidInputError("kernel k must be non-negative (found negative entries)")
    k = k.clamp(min=0.0)
    s = k.sum(dim=(-2, -1), keepdim=True)
    if bool((s <= 0).any()):
        raise InvalidInputError("kernel k must have a positive sum")
    k = k / s
    return k.expand(B, 1, Kh, Kw)


def _check_int(name: str, value, minimum: int) -> int:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        and value == int(value) and int(value) >= minimum
    if not ok:
        raise InvalidInputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_positive(name: str, value, strict: bool = True) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or (v <= 0 if strict else v < 0):
        kind = "positive" if strict else "non-negative"
        raise InvalidInputError(f"{name} must be a finite {kind} number, got {value!r}")
    return v


# --------------------------------------------------------------------------------------------
# tiling and the per-image driver
# --------------------------------------------------------------------------------------------


def _default_overlap(k_size: Tuple[int, int]) -> int:
    return max(4 * max(k_size), 64)


def _tile_spans(n: int, tile: int, overlap: int) -> List[Tuple[int, int]]:
    """Equal-length spans covering ``range(n)``; consecutive spans overlap by >= ``overlap - 1``."""
    if n <= tile:
        return [(0, n)]
    nt = -(-(n - overlap) // (tile - overlap))
    length = -(-(n + (nt - 1) * overlap) // nt)
    length = min(length, tile)
    spans = []
    for i in range(nt):
        s = (i * (n - length) + (nt - 1) // 2) // (nt - 1)
        spans.append((s, s + length))
    return spans


def _tile_ramp(s: int, e: int, n: int, overlap: int, margin: int, device=None) -> torch.Tensor:
    """1-D blending weight of the span ``[s, e)``: linear ramps on edges shared with neighbours."""
    L = e - s
    t = torch.arange(L, dtype=torch.float32, device=device)
    w = torch.ones(L, dtype=torch.float32, device=device)
    width = float(max(overlap - 2 * margin, 1))
    if s > 0:
        w = torch.minimum(w, ((t + 0.5 - margin) / width).clamp(0.0, 1.0))
    if e < n:
        w = torch.minimum(w, ((L - 1 - t + 0.5 - margin) / width).clamp(0.0, 1.0))
    return w


def _resolve_tile(tile: TileArg, H: int, W: int, overlap: int) -> Optional[int]:
    if tile is None:
        return None
    if isinstance(tile, str):
        if tile != "auto":
            raise InvalidInputError(f"tile must be 'auto', None or a positive int, got {tile!r}")
        if H * W <= AUTO_TILE_PIXELS:
            return None
        t = max(AUTO_TILE_SIZE, 2 * overlap)
    else:
        t = _check_int("tile ('auto', None or a size)", tile, 0)
        if t == 0:
            return None
        if t < 2 * overlap:
            raise InvalidInputError(
                f"tile={t} is too small: it must be at least 2 * overlap = {2 * overlap} "
                f"(overlap >= 2 * kernel size)")
    if H <= t and W <= t:
        return None
    return t


def _tiled(img: torch.Tensor, k: torch.Tensor, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
           tile: int, overlap: int) -> torch.Tensor:
    H, W = img.shape[-2:]
    margin = max(k.shape[-2:]) // 2
    rows = _tile_spans(H, tile, overlap)
    cols = _tile_spans(W, tile, overlap)
    acc = torch.zeros_like(img)
    wacc = torch.zeros((H, W), dtype=img.dtype, device=img.device)
    for r0, r1 in rows:
        wr = _tile_ramp(r0, r1, H, overlap, margin, device=img.device)
        for c0, c1 in cols:
            wc = _tile_ramp(c0, c1, W, overlap, margin, device=img.device)
            wgt = wr[:, None] * wc[None, :]
            res = fn(img[..., r0:r1, c0:c1], k)
            acc[..., r0:r1, c0:c1] += res * wgt
            wacc[r0:r1, c0:c1] += wgt
    return acc / wacc


def _run(y, k, fn, *, tile: TileArg, overlap: Optional[int], clip: bool) -> torch.Tensor:
    """Validate, then apply ``fn(img (1, c, h, w), kernel (Kh, Kw))`` per batch element/channel chunk."""
    y = _check_image(y)
    B, C, H, W = y.shape
    kb = _check_kernel(k, B, H, W, y.device)
    Kh, Kw = kb.shape[-2:]
    if overlap is None:
        ov = _default_overlap((Kh, Kw))
    else:
        ov = _check_int("overlap (>= 2 * kernel size)", overlap, 2 * max(Kh, Kw))
    t = _resolve_tile(tile, H, W, ov)
    cchunk = C if H * W <= _CHANNEL_CHUNK_PIXELS else 1
    out = torch.empty_like(y)
    with torch.no_grad():
        for b in range(B):
            kk = kb[b, 0]
            for c0 in range(0, C, cchunk):
                img = y[b:b + 1, c0:c0 + cchunk]
                if t is None:
                    res = fn(img, kk)
                else:
                    res = _tiled(img, kk, fn, t, ov)
                out[b:b + 1, c0:c0 + cchunk] = res
    if clip:
        out.clamp_(0.0, 1.0)
    return out


_BOUNDARIES = ("valid", "taper", "periodic")


def _check_boundary(boundary: str) -> str:
    if boundary not in _BOUNDARIES:
        raise InvalidInputError(f"boundary must be one of {_BOUNDARIES}, got {boundary!r}")
    return boundary


class _Domain:
    """Working (FFT) domain of one image chunk ``(1, c, H, W)`` for a boundary mode.

    ``y`` is the image the circular solvers start from (the mirror-padded, edge-tapered image
    for 'valid'/'taper', the image itself for 'periodic'); ``crop`` cuts the frame back out;
    for 'valid', ``fill(ax)`` returns ``ax`` with the observed frame replaced by the data and
    ``mask`` is 1 on the frame, 0 elsewhere.
    """

    def __init__(self, img: torch.Tensor, k: torch.Tensor, boundary: str, saturation: Optional[float] = None) -> None:
        self.H, self.W = img.shape[-2:]
        self.masked = boundary == "valid"
        if boundary == "periodic":
            self.y, self.top, self.left = img, 0, 0
        else:
            self.y, (self.top, self.left) = _pad_for_boundary(img, k)
        self.obs = img if self.masked else None
        # clipped pixels (and their 8 neighbours) are not observations of k * x: treat them
        # like the unobserved border (the majorise-minimise refresh fills them with k * x)
        self.valid = None
        if self.masked and saturation is not None:
            self.valid = F.max_pool2d(img, 3, stride=1, padding=1) < saturation

    def _frame(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., self.top:self.top + self.H, self.left:self.left + self.W]

    def crop(self, x: torch.Tensor) -> torch.Tensor:
        return self._frame(x)

    def fill(self, ax: torch.Tensor) -> torch.Tensor:
        frame = self._frame(ax)
        frame.copy_(self.obs if self.valid is None else torch.where(self.valid, self.obs, frame))
        return ax

    def mask(self) -> torch.Tensor:
        m = torch.zeros(self.y.shape[-2:], dtype=self.y.dtype, device=self.y.device)
        if self.valid is None:
            self._frame(m).fill_(1.0)
            return m
        m = m.expand(*self.y.shape).clone()
        self._frame(m).copy_(self.valid.to(m.dtype))
        return m


def _rfft_weights(shape: Tuple[int, int], device=None) -> torch.Tensor:
    """Column weights that make sums over an rfft2 half-spectrum equal full-spectrum sums."""
    W = int(shape[1])
    w = torch.full((W // 2 + 1,), 2.0, dtype=torch.float32, device=device)
    w[0] = 1.0
    if W % 2 == 0:
        w[-1] = 1.0
    return w


def _masked_quadratic_pcg(solver: _QuadraticSolver, dom: _Domain, weight: float,
                          max_iter: int = 50, tol: float = 1e-3) -> torch.Tensor:
    """Exact 'valid'-model quadratic solve by preconditioned CG, in the Fourier domain.

    Solves ``(K^T M K + weight D^T D) x = K^T M y`` (``M`` = observed frame) with the circulant
    preconditioner ``(K^T K + weight D^T D)^-1`` (the closed-form solve), started from the
    closed-form solution on the tapered image.  Each iteration costs one rfft2/irfft2 pair.
    """
    shape = solver.shape
    otf = solver.otf
    otf_c = otf.conj()
    den = solver.denom(weight)
    m = dom.mask()
    cw = _rfft_weights(shape, device=otf.device)

    def dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return ((a.real * b.real + a.imag * b.imag) * cw).sum(dim=(-2, -1), keepdim=True)

    def op(P: torch.Tensor) -> torch.Tensor:
        ax = torch.fft.irfft2(P * otf_c, s=shape) * m
        return otf * torch.fft.rfft2(ax) + float(weight) * solver.dtd * P

    y0 = torch.zeros_like(dom.y)
    b = otf * torch.fft.rfft2(dom.fill(y0))
    X = solver.solve_spectral(weight)          # closed form on the tapered image: warm start
    R = b - op(X)
    Z = R / den
    P = Z
    rz = dot(R, Z)
    rz0 = rz.clamp(min=1e-30)
    for _ in range(max_iter):
        if bool((rz <= (tol * tol) * rz0).all()):
            break
        Q = op(P)
        pq = dot(P, Q)
        a = torch.where(pq > 0, rz / pq.clamp(min=1e-30), torch.zeros_like(pq))
        X = X + a * P
        R = R - a * Q
        Z = R / den
        rz_new = dot(R, Z)
        P = Z + (rz_new / rz.clamp(min=1e-30)) * P
        rz = rz_new
    return solver.spatial(X)


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------


def estimate_noise(y: torch.Tensor) -> float:
    """Standard deviation of white Gaussian noise in ``y`` (B, C, H, W), Immerkaer's estimator
    (CVIU 1996): ``sqrt(pi / 2) / 6 * mean |y (*) M|`` with ``M`` the 3 x 3 difference of two
    Laplacians, which cancels smooth image content. Colour channels are averaged first (so for
    independent per-channel noise it returns sigma / sqrt(3)). Blurred images have little
    content at this scale, so it reads their noise well; textures make it an overestimate."""
    y = _check_image(y)
    plane = y.double().mean(dim=1, keepdim=True)
    if min(plane.shape[-2:]) < 3:
        raise InvalidInputError(f"estimate_noise needs at least 3 x 3 pixels, got {tuple(plane.shape[-2:])}")
    m = torch.tensor([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]], dtype=torch.float64)
    response = F.conv2d(plane.reshape(-1, 1, *plane.shape[-2:]), m[None, None])
    return float(math.sqrt(math.pi / 2) / 6 * response.abs().mean())


def edgetaper(y: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """MATLAB-style ``edgetaper``: blend ``y`` with its circular blur near the image borders.

    ``J = a * y + (1 - a) * (k * y)_circular`` with ``a = (1 - r_y) (1 - r_x)^T``, ``r`` the
    normalised autocorrelations of the kernel's row/column projections; ``a`` is 0 on the frame
    and reaches 1 about one kernel size inside, which makes the periodic extension of ``J`` look
    like a circularly blurred image (no discontinuity at the wrap-around).

    ``y``: ``(B, C, H, W)``; ``k``: ``(Kh, Kw)`` or ``(B, 1, Kh, Kw)`` with ``Kh < H``, ``Kw < W``.
    """
    y = _check_image(y)
    B, C, H, W = y.shape
    kb = _check_kernel(k, B, H, W, y.device)
    Kh, Kw = kb.shape[-2:]
    if Kh >= H or Kw >= W:
        raise KernelSizeError(f"edgetaper needs a kernel smaller than the image: {Kh}x{Kw} vs {H}x{W}")
    with torch.no_grad():
        return torch.cat([_edgetaper_2d(y[b:b + 1], kb[b, 0]) for b in range(B)], dim=0)


def wiener_deconv(y: torch.Tensor, k: torch.Tensor, *, reg: float = 1e-2, grad_reg: bool = True,
                  boundary: str = "valid", tile: TileArg = "auto", overlap: Optional[int] = None,
                  clip: bool = True, cg_iters: int = 20, cg_tol: float = 1e-3) -> torch.Tensor:
    """Tikhonov / Wiener deconvolution with a gradient (or identity) regulariser.

    Solves ``argmin_x ||k * x - y||^2 + reg * (||Dx x||^2 + ||Dy x||^2)`` (``grad_reg=True``)
    or ``... + reg * ||x||^2`` (``grad_reg=False``).  With ``boundary='taper'`` (or
    ``'periodic'``) this is one FFT division on the padded image; with the default
    ``boundary='valid'`` the data term covers only the observed frame and the closed-form
    solution is refined by <= ``cg_iters`` preconditioned CG iterations (see the module
    docstring for conventions, boundary handling and tiling).

    Args:
        y: blurry image(s), ``(B, C, H, W)`` float in [0, 1].
        k: kernel ``(Kh, Kw)`` or ``(B, 1, Kh, Kw)`` (cross-correlation convention).
        reg: regularisation weight (> 0); the default 1e-2 suits ~1 % noise with the gradient
            regulariser.
        grad_reg: gradient (first-difference) regulariser if True, identity if False.
        boundary: ``'valid'`` (default), ``'taper'`` (mirror pad + edgetaper, closed form) or
            ``'periodic'``.
        tile: ``'auto'`` (tile above 2048x2048 pixels), None (never) or a tile size.
        overlap: tile overlap in pixels (default ``max(4 K, 64)``; must be >= 2 K).
        clip: clamp the result to [0, 1].
        cg_iters: maximum CG iterations for ``boundary='valid'`` (0: closed form only).
        cg_tol: CG stops when the preconditioned residual norm fell by this factor.

    Returns:
        float32 tensor of the shape of ``y``.

    Raises:
        InvalidInputError: non-4-D or non-float ``y``, NaN/Inf, bad kernel, kernel larger than
        the image (:class:`KernelSizeError`), bad parameters.
    """
    reg = _check_positive("reg", reg)
    boundary = _check_boundary(boundary)
    grad_reg = bool(grad_reg)
    cg_iters = _check_int("cg_iters", cg_iters, 0)
    cg_tol = _check_positive("cg_tol", cg_tol, strict=False)

    def fn(img: torch.Tensor, kk: torch.Tensor) -> torch.Tensor:
        dom = _Domain(img, kk, boundary)
        solver = _QuadraticSolver(dom.y, kk, grad_reg=grad_reg)
        if dom.masked:
            return dom.crop(_masked_quadratic_pcg(solver, dom, reg, max_iter=cg_iters, tol=cg_tol))
        return dom.crop(solver.solve(reg))

    return _run(y, k, fn, tile=tile, overlap=overlap, clip=clip)


def _hl_solve(dom: _Domain, k: torch.Tensor, lam: float, alpha: float, betas: List[float],
              iters_per_beta: int) -> torch.Tensor:
    """Half-quadratic splitting on the (already padded) circular domain.

    For the masked 'valid' model the data of the x-step is refreshed after every x-step with
    ``u = y`` on the observed frame and ``u = k * x`` outside it: a majorise-minimise step for
    ``1/2 ||M (k * x - y)||^2`` (it costs one extra rfft2/irfft2 pair per iteration).
    """
    solver = _QuadraticSolver(dom.y, k, grad_reg=True)
    x = dom.y
    n_total = len(betas) * iters_per_beta
    n = 0
    for beta in betas:
        for _ in range(iters_per_beta):
            n += 1
            vx, vy = _grad(x)
            wx = _hl_wstep(vx, beta, alpha)
            del vx
            wy = _hl_wstep(vy, beta, alpha)
            del vy
            X = solver.solve_spectral(lam * beta, _grad_adjoint(wx, wy))
            del wx, wy
            x = solver.spatial(X)
            if dom.masked and n < n_total:
                solver.set_data(dom.fill(solver.blur(X)))
    return x


def hyper_laplacian_deconv(y: torch.Tensor, k: torch.Tensor, *, lam: float = 1e-3,
                           alpha: float = 2.0 / 3.0, beta0: float = 1.0,
                           beta_rate: float = 2.0 * math.sqrt(2.0), beta_max: float = 256.0,
                           iters_per_beta: int = 1, boundary: str = "valid",
                           tile: TileArg = "auto", overlap: Optional[int] = None,
                           clip: bool = True, saturation: Optional[float] = None) -> torch.Tensor:
    """Krishnan & Fergus (2009) hyper-Laplacian deconvolution.

    Minimises ``1/2 ||k * x - y||^2 + lam * sum(|Dx x|^alpha + |Dy x|^alpha)`` by half-quadratic
    splitting with ``beta = beta0 * beta_rate**i <= beta_max`` (``iters_per_beta`` alternations of
    exact w-step and closed-form FFT x-step per value).  ``lam = 1 / lambda`` of Krishnan's code.

    Args:
        y: blurry image(s), ``(B, C, H, W)`` float in [0, 1].
        k: kernel ``(Kh, Kw)`` or ``(B, 1, Kh, Kw)`` (cross-correlation convention).
        lam: prior weight (> 0); the default 1e-3 suits ~1 % noise.
        alpha: exponent in (0, 1]; 2/3 (default), 1/2 or 0.8 are typical.
        beta0, beta_rate, beta_max: continuation schedule (defaults as in Krishnan's code).
        iters_per_beta: alternations per beta value (>= 1).
        boundary: ``'valid'`` (default: masked data term, majorise-minimise refresh of the
            unobserved data after each x-step), ``'taper'`` (mirror pad + edgetaper only) or
            ``'periodic'``.
        tile: ``'auto'`` (tile above 2048x2048 pixels), None (never) or a tile size.
        overlap: tile overlap in pixels (default ``max(4 K, 64)``; must be >= 2 K).
        clip: clamp the result to [0, 1].
        saturation: with ``'valid'``: pixels of a channel at or above this value, and their 8
            neighbours, are clipped highlights, not observations of ``k * x``; they are left out
            of the data term (filled by the majorise-minimise refresh like the unobserved
            border), so they do not ring. None (default): every pixel is data.

    Returns:
        float32 tensor of the shape of ``y``.

    Raises:
        InvalidInputError: as :func:`wiener_deconv`, plus bad schedule parameters.
    """
    lam = _check_positive("lam", lam)
    if saturation is not None and not (0.0 < float(saturation) <= 1.0):
        raise InvalidInputError(f"saturation must be in (0, 1] or None, got {saturation!r}")
    alpha = _check_positive("alpha", alpha)
    if alpha > 1.0:
        raise InvalidInputError(f"alpha must be in (0, 1], got {alpha!r}")
    beta0 = _check_positive("beta0", beta0)
    beta_rate = _check_positive("beta_rate", beta_rate)
    if beta_rate <= 1.0:
        raise InvalidInputError(f"beta_rate must be > 1, got {beta_rate!r}")
    beta_max = _check_positive("beta_max", beta_max)
    if beta_max < beta0:
        raise InvalidInputError(f"beta_max ({beta_max}) must be >= beta0 ({beta0})")
    iters_per_beta = _check_int("iters_per_beta", iters_per_beta, 1)
    boundary = _check_boundary(boundary)
    betas = []
    b = beta0
    while b <= beta_max * (1.0 + 1e-9):
        betas.append(b)
        b *= beta_rate

    def fn(img: torch.Tensor, kk: torch.Tensor) -> torch.Tensor:
        dom = _Domain(img, kk, boundary, saturation)
        return dom.crop(_hl_solve(dom, kk, lam, alpha, betas, iters_per_beta))

    return _run(y, k, fn, tile=tile, overlap=overlap, clip=clip)
