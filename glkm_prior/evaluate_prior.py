"""Evaluation of a trained kernel prior (``glkm eval prior``).

1. Generator coverage: GAN inversion (``KernelPrior.invert``) onto held-out synthesized
   kernels and onto the 8 real Levin kernels; relative L2 error and kernel PSNR.
2. Initializer accuracy: the kernel G(E(y)) alone, on blurred crops of held-out photos and on
   the 32 Levin images: kernel error after best shift, and PSNR of one non-blind
   deconvolution (hyper-Laplacian, same settings for every kernel) with E's kernel, the true
   kernel and a delta kernel; Levin's error ratio.
3. Init sensitivity: a small joint image/latent optimisation from E's latent and from random
   latents, repeated over seeds; spread of the final kernel error.

Kernel errors use :func:`glkm_prior.metrics.kernel_error` (best integer shift, estimate and
truth both normalised); image PSNRs use the field's ``comp_upto_shift`` protocol
(:func:`glkm_prior.metrics.align_upto_shift`, peak 1.0 on [0, 1] images = peak 255 on 8-bit).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from . import datasets, metrics
from .deconv import hyper_laplacian_deconv
from .errors import InvalidInputError
from .imageio import read_image, to_tensor
from .kernel_io import load_kernel
from .physics import blur, delta_kernel, fit_kernel
from .prior import KernelPrior
from .synthesis import KernelSynthesizer

HELD_OUT_SEED = 90_210  # kernels and crops for evaluation; training seeds are derived from small ints


def _summary(values) -> dict:
    values = [float(v) for v in values]
    return {
        "median": round(statistics.median(values), 4),
        "mean": round(statistics.fmean(values), 4),
        "max": round(max(values), 4),
        "n": len(values),
    }


def _kernel_psnr(est: np.ndarray, true: np.ndarray) -> float:
    mse = float(np.mean((est - true) ** 2))
    return float(10 * np.log10(true.max() ** 2 / max(mse, 1e-30)))


# ---------------------------------------------------------------------------- 1. coverage
def generator_coverage(prior: KernelPrior, family: str, n: int = 500, steps: int = 1000, batch: int = 100) -> dict:
    """Invert ``n`` held-out kernels of ``family`` on the prior's canvas."""
    targets = KernelSynthesizer(family).sample(n, prior.size, seed=HELD_OUT_SEED)
    rel, psnr = [], []
    for start in tqdm(range(0, n, batch), desc=f"inverting {family} kernels", leave=False):
        t = torch.from_numpy(targets[start : start + batch])[:, None]
        with torch.no_grad():
            k = prior.kernel(prior.invert(t, steps=steps)).numpy()[:, 0]
        for est, true in zip(k, t.numpy()[:, 0]):
            rel.append(float(np.linalg.norm(est - true) / np.linalg.norm(true)))
            psnr.append(_kernel_psnr(est, true))
    return {"family": family, "canvas": prior.size, "rel_l2": _summary(rel), "kernel_psnr": _summary(psnr)}


def levin_kernel_coverage(prior: KernelPrior, levin_root: str | Path, steps: int = 2000) -> list[dict]:
    """Invert the 8 ground-truth Levin kernels (centre-padded to the canvas)."""
    rows = []
    for j in range(1, 9):
        true = load_kernel(Path(levin_root) / "gt" / f"kernel{j}.png")
        target = fit_kernel(torch.from_numpy(true)[None, None], prior.size)
        with torch.no_grad():
            est = prior.kernel(prior.invert(target, steps=steps, restarts=4)).numpy()[0, 0]
        err = metrics.kernel_error(est, true)
        rows.append({"kernel": f"kernel{j}", "size": true.shape[0], "rel_l2": round(err.rel_l2, 4), "kernel_psnr": round(err.psnr, 2)})
    return rows


# ---------------------------------------------------------------------------- 2. initializer
def _deconv_psnr(blurry: torch.Tensor, kernel: torch.Tensor, sharp: np.ndarray):
    x = hyper_laplacian_deconv(blurry, kernel)[0, 0].numpy()
    return metrics.align_upto_shift(x, sharp), x


def _initializer_row(prior: KernelPrior, blurry: torch.Tensor, sharp: np.ndarray, true_kernel: np.ndarray) -> dict:
    with torch.no_grad():
        k_est = prior.kernel(prior.initial_latent(blurry, init="initializer"))
    est_res, _ = _deconv_psnr(blurry, k_est, sharp)
    true_res, _ = _deconv_psnr(blurry, torch.from_numpy(true_kernel)[None, None], sharp)
    delta_res, _ = _deconv_psnr(blurry, delta_kernel(3), sharp)
    kerr = metrics.kernel_error(k_est.numpy()[0, 0], true_kernel)
    return {
        "kernel_rel_l2": kerr.rel_l2,
        "psnr_estimated": est_res.psnr,
        "psnr_true": true_res.psnr,
        "psnr_delta": delta_res.psnr,
        "error_ratio": est_res.ssd / max(true_res.ssd, 1e-30),
    }


def initializer_levin(prior: KernelPrior, levin_root: str | Path) -> dict:
    """The 32 Levin images. The true kernel is taken in the orientation that explains the
    blurry image (kernels 4 and 8 of the set are stored rotated by 180 degrees, see
    :func:`glkm_prior.scoring.kernel_fit`)."""
    from .scoring import kernel_fit

    rows = {}
    for s in tqdm(datasets.levin(levin_root), desc="initializer on Levin", leave=False):
        blurry_np, sharp = read_image(s.blurry, mode="gray"), read_image(s.sharp, mode="gray")
        true = load_kernel(s.kernel)
        fit = kernel_fit(blurry_np, sharp, true)
        if fit and fit["rotated"]:
            true = np.ascontiguousarray(true[::-1, ::-1])
        rows[s.name] = _initializer_row(prior, to_tensor(blurry_np), sharp, true)
    return {"per_image": rows, **_aggregate(rows.values())}


def initializer_synthetic(prior: KernelPrior, folder: str | Path, family: str, n: int = 100, crop: int = 256, noise: float = 0.01) -> dict:
    """Blurred crops of held-out photos (``folder``, e.g. bsds500/test), 1% noise, 8-bit; the
    blurry crop is ``crop`` px square, or smaller when a photo cannot hold ``crop + K - 1`` (a
    75-px kernel on a 321-px BSDS500 side: 247 px); photos too small for a 64-px crop are skipped."""
    from .training import list_images

    files = list_images([folder])
    rng = np.random.default_rng(HELD_OUT_SEED)
    kernels = KernelSynthesizer(family).sample(n, prior.size, seed=HELD_OUT_SEED + 1)
    rows = {}
    for i in tqdm(range(n), desc="initializer on synthetic crops", leave=False):
        path = files[int(rng.integers(len(files)))]
        img = read_image(path, mode="gray")
        K = kernels.shape[-1]
        side = min(crop, min(img.shape) - K + 1)
        if side < 64:
            continue
        big = side + K - 1
        r, c = int(rng.integers(img.shape[0] - big + 1)), int(rng.integers(img.shape[1] - big + 1))
        sharp = img[r : r + big, c : c + big]
        k = torch.from_numpy(kernels[i])[None, None]
        y = blur(to_tensor(sharp), k, "valid")
        y = torch.round((y + noise * torch.from_numpy(rng.standard_normal(y.shape).astype(np.float32))).clamp(0, 1) * 255) / 255
        h = K // 2
        rows[f"{path.stem}_{i}"] = _initializer_row(prior, y, sharp[h : h + side, h : h + side], kernels[i])
    if not rows:
        raise InvalidInputError(f"no photo in {folder} is large enough for a {prior.size}-px kernel and a 64-px crop")
    return {"per_image": rows, **_aggregate(rows.values())}


def _aggregate(rows) -> dict:
    rows = list(rows)
    keys = ("kernel_rel_l2", "psnr_estimated", "psnr_true", "psnr_delta", "error_ratio")
    return {k: _summary(r[k] for r in rows) for k in keys}


# ---------------------------------------------------------------------------- 3. sensitivity
def joint_latent_fit(prior, blurry, w0, kernel_size, iters=300, lr_w=5e-3, lr_x=5e-3, tv=2e-3, seed=0):
    """A minimal blind loop: Adam on the sharp image x ('valid' geometry, initialised from the
    padded blurry image plus seeded noise) and on the latent w, minimising
    ``||k(w) (*) x - y||^2 + tv * TV(x)``. Returns the final kernel (1, 1, K, K)."""
    gen = torch.Generator().manual_seed(seed)
    p = kernel_size // 2
    x0 = torch.nn.functional.pad(blurry, (p, p, p, p), mode="replicate")
    x = (x0 + 0.02 * torch.randn(x0.shape, generator=gen)).requires_grad_(True)
    w = w0.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([{"params": [x], "lr": lr_x}, {"params": [w], "lr": lr_w}])
    for _ in range(iters):
        k = prior.kernel(w, kernel_size)
        loss = ((blur(x, k, "valid") - blurry) ** 2).mean()
        loss = loss + tv * ((x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        return prior.kernel(w, kernel_size)


def init_sensitivity(prior: KernelPrior, levin_root: str | Path, names=("im1_kernel1", "im2_kernel4", "im3_kernel6", "im4_kernel8"),
                     seeds=(0, 1, 2, 3, 4), iters=300) -> dict:
    samples = {s.name: s for s in datasets.levin(levin_root)}
    out = {}
    for name in tqdm(names, desc="init sensitivity", leave=False):
        s = samples[name]
        blurry = to_tensor(read_image(s.blurry, mode="gray"))
        true = load_kernel(s.kernel)
        K = prior.size
        row = {}
        for init in ("initializer", "random"):
            errs = []
            for seed in seeds:
                w0 = prior.initial_latent(blurry, init="initializer") if init == "initializer" else prior.random_latent(1, seed=seed)
                k = joint_latent_fit(prior, blurry, w0, K, iters=iters, seed=seed)
                errs.append(metrics.kernel_error(k.numpy()[0, 0], true).rel_l2)
            row[init] = {"rel_l2_per_seed": [round(e, 4) for e in errs], "mean": round(statistics.fmean(errs), 4),
                         "std": round(statistics.pstdev(errs), 4)}
        out[name] = row
    return out


# ---------------------------------------------------------------------------- report
PARTS = ("coverage", "initializer", "sensitivity")


def evaluate_prior(prior: KernelPrior, *, family: str, levin_root=None, test_folder=None, n_coverage=500,
                   n_synthetic=100, parts=PARTS, log=print) -> dict:
    """Run the requested ``parts`` (see the module docstring) and return a JSON-able report."""
    start = time.perf_counter()
    report: dict = {"prior": prior.source, "canvas": prior.size, "family": family, "parts": list(parts)}
    if "coverage" in parts:
        report["coverage_synthetic"] = generator_coverage(prior, family, n_coverage)
        log(f"coverage ({family}): rel L2 median {report['coverage_synthetic']['rel_l2']['median']}")
        if levin_root is not None:
            report["coverage_levin"] = levin_kernel_coverage(prior, levin_root)
            log("coverage (Levin kernels): " + ", ".join(f"{r['kernel']} {r['rel_l2']}" for r in report["coverage_levin"]))
    if "initializer" in parts and prior.initializer is not None:
        if levin_root is not None:
            report["initializer_levin"] = initializer_levin(prior, levin_root)
            log(f"initializer on Levin: error ratio median {report['initializer_levin']['error_ratio']['median']}")
        if test_folder is not None:
            report["initializer_synthetic"] = initializer_synthetic(prior, test_folder, family, n_synthetic)
    if "sensitivity" in parts and levin_root is not None and prior.initializer is not None:
        report["init_sensitivity"] = init_sensitivity(prior, levin_root)
    report["seconds"] = round(time.perf_counter() - start, 1)
    return report


def format_report(report: dict) -> str:
    """Markdown tables of a report (what ``glkm eval prior`` prints)."""
    lines = [f"## Prior {report['prior']} (canvas {report['canvas']} px)", ""]
    if "coverage_synthetic" in report:
        cov = report["coverage_synthetic"]
        lines += ["| generator coverage (GAN inversion) | n | rel. L2 median | rel. L2 mean | kernel PSNR mean (dB) |", "|---|---|---|---|---|",
                  f"| held-out `{cov['family']}` kernels | {cov['rel_l2']['n']} | {cov['rel_l2']['median']} | {cov['rel_l2']['mean']} | {cov['kernel_psnr']['mean']} |"]
    if "coverage_levin" in report:
        for r in report["coverage_levin"]:
            lines.append(f"| Levin {r['kernel']} ({r['size']} px) | 1 | {r['rel_l2']} | {r['rel_l2']} | {r['kernel_psnr']} |")
    for key, title in (("initializer_synthetic", "held-out photo crops"), ("initializer_levin", "Levin (32 images)")):
        if key in report:
            r = report[key]
            lines += ["", f"| initializer alone, {title} | median | mean |", "|---|---|---|"]
            for k, label in (("kernel_rel_l2", "kernel rel. L2 (after shift)"), ("psnr_estimated", "PSNR, E's kernel (dB)"),
                             ("psnr_true", "PSNR, true kernel (dB)"), ("psnr_delta", "PSNR, delta kernel (dB)"),
                             ("error_ratio", "error ratio (E / true)")):
                lines.append(f"| {label} | {r[k]['median']} | {r[k]['mean']} |")
    if "init_sensitivity" in report:
        lines += ["", "| init sensitivity (kernel rel. L2 over 5 seeds) | E-init mean | E-init std | random mean | random std |", "|---|---|---|---|---|"]
        for name, row in report["init_sensitivity"].items():
            e, r = row["initializer"], row["random"]
            lines.append(f"| {name} | {e['mean']} | {e['std']} | {r['mean']} | {r['std']} |")
    lines += ["", f"({report['seconds']} s)"]
    return "\n".join(lines)
