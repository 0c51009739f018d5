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

Modules
-------
``operators`` (differences, closed-form circular solver), ``validation``, ``boundary``
(padding, :func:`edgetaper`, the working domain), ``tiling`` (tiles and the per-image driver),
``wiener``, ``hyper_laplacian``, ``noise`` (:func:`estimate_noise`).
"""

from __future__ import annotations

from .boundary import edgetaper
from .hyper_laplacian import hyper_laplacian_deconv
from .noise import estimate_noise
# read by tiling._resolve_tile: to change them at run time, set them on glkm_prior.deconv.tiling
from .tiling import AUTO_TILE_PIXELS, AUTO_TILE_SIZE, TileArg
from .wiener import wiener_deconv

__all__ = ["wiener_deconv", "hyper_laplacian_deconv", "edgetaper"]
