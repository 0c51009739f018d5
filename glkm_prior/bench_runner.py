"""The per-pair runner of a benchmark (:func:`glkm_prior.bench.run_benchmark`; protocol and
output layout in :mod:`glkm_prior.bench`): read a sample, call the method, save and score its
result, record its convergence trace."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from . import metrics, plugins
from .bench_config import BenchConfig
from .bench_report import write_json
from .bench_store import pair_stem
from .checkpoint import RunCheckpoint, seconds_before_resume
from .context import RunContext, as_context
from .errors import GLKMError
from .imageio import read_image, to_array, to_tensor, write_image
from .kernel_io import load_kernel, save_kernel
from .plugins import accepts_keyword, check_method_branch
from .process_memory import peak_rss_mb
from .scoring import (ALIGN, LAYOUT_MAXSHIFT, TRACE_ALIGN, TRUE_KERNEL_METHOD, common_crop, kernel_fit,
                      no_reference_scores, quantise, score_image)

DEFAULT_KERNEL_SIZE = 31


def kernel_2d(k) -> np.ndarray:
    """A method's kernel (tensor or array, ``(..., K, K)``) -> ``(K, K)`` float32, clamped >= 0, sum 1."""
    k = k.detach().cpu().double() if isinstance(k, torch.Tensor) else torch.as_tensor(np.asarray(k), dtype=torch.float64)
    k = k.reshape(-1, *k.shape[-2:]).mean(0).clamp_min(0).numpy()
    if not np.isfinite(k).all() or k.sum() <= 0:
        raise GLKMError("the method returned a kernel with no positive mass or with NaN/Inf")
    return (k / k.sum()).astype(np.float32)


class PairRunner:
    """Runs and scores one (image, seed) pair at a time for a run (:meth:`run_pair` -> its result row)."""

    def __init__(self, cfg: BenchConfig, samples, folder: Path, layout: str, context: RunContext | None = None,
                 log=None):
        self.cfg, self.samples, self.folder, self.layout = cfg, samples, folder, layout
        self.maxshift = LAYOUT_MAXSHIFT.get(layout, ALIGN["maxshift"])
        self.out = Path(cfg.out)
        self.log = log or (lambda m: print(m, file=sys.stderr))
        # the run's context: the caller's plugin manager, the config's prior source, warnings to the log
        self.context = as_context(context).with_(weights=cfg.weights, revision=cfg.revision, warn=self.log)
        self.pm = pm = self.context.plugin_manager()
        self.method = plugins.get_method(cfg.method, pm)
        self.options = plugins.check_options(self.method, cfg.options)  # once, before any image runs
        check_method_branch(self.method, cfg.kernel_branch)
        self.reference = None
        if cfg.method != TRUE_KERNEL_METHOD:
            try:
                self.reference = plugins.get_method(TRUE_KERNEL_METHOD, pm)
            except GLKMError:
                self.reference = None
        self.priors: dict[int, object] = {}
        self.notes: list[str] = []
        self.lpips_ok, self.lpips_reason = metrics.lpips_available()
        self._lpips_model = None

    # -------------------------------------------------------------- priors
    def needs_prior(self) -> bool:
        return self.cfg.method != TRUE_KERNEL_METHOD and plugins.branch_uses_prior(self.cfg.kernel_branch, self.pm)

    def prior_for(self, kernel_size: int):
        from .api import context_prior
        from .prior import bundle_spec

        canvas = bundle_spec(kernel_size)["size"]
        if canvas not in self.priors:
            def warn(msg):
                self.notes.append(msg.removeprefix("glkm: warning: "))
                self.log(msg)

            prior = context_prior(self.context.with_(warn=warn), kernel_size)
            self.priors[canvas] = prior
        return self.priors[canvas]

    # -------------------------------------------------------------- method calls
    def checkpoint_folder(self, name: str, seed: int) -> Path | None:
        """``OUT/checkpoints/<name>__s<seed>`` for methods registered ``checkpointable`` (None
        otherwise or with ``checkpoint_every`` 0); removed once the pair's result is written."""
        if not self.cfg.checkpoint_every or not self.method.spec.checkpointable:
            return None
        return self.out / "checkpoints" / pair_stem(name, seed)

    def _call(self, registration, blurry, *, kernel_size, seed, true_kernel=None, prior=None, callback=None,
              checkpoint=None, options=None):
        fn, spec = registration.factory, registration.spec
        wanted = {"kernel_size": kernel_size, "kernel_branch": self.cfg.kernel_branch, "seed": seed}
        if self.cfg.iters is not None:
            wanted["iters"] = self.cfg.iters
        if prior is not None:
            wanted["prior"] = prior
        if callback is not None:
            wanted["callback"] = callback
        kwargs = {k: v for k, v in wanted.items() if accepts_keyword(fn, k)}
        if plugins.takes_context(registration):
            kwargs["context"] = self.context
        # what the method declared (plugins.MethodSpec), never guessed from its signature
        if spec.progress:
            kwargs["progress"] = False
        if checkpoint is not None and spec.checkpointable:
            kwargs.update(checkpoint=checkpoint, checkpoint_every=self.cfg.checkpoint_every)
        kwargs.update(options or {})  # the run's options, checked once (plugins.check_options)
        if true_kernel is not None and spec.needs_true_kernel:
            kwargs["true_kernel"] = true_kernel
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        start = time.perf_counter()
        result = fn(blurry, **kwargs)
        seconds = time.perf_counter() - start
        if not isinstance(result, dict) or "image" not in result or "kernel" not in result:
            raise GLKMError(f"method {registration.name!r} must return a dict with 'image' and 'kernel'")
        image = result["image"]
        if not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[0] != 1:
            raise GLKMError(f"method {registration.name!r} returned an image of shape "
                            f"{tuple(getattr(image, 'shape', ()))}; expected (1, C, H, W)")
        return result, seconds

    # -------------------------------------------------------------- reading a sample
    def _read(self, sample):
        blurry = read_image(sample.blurry)
        sharp = None
        if sample.sharp is not None:
            sharp = read_image(sample.sharp, mode="gray" if blurry.ndim == 2 else "rgb")
        true_k = load_kernel(sample.kernel) if sample.kernel is not None else None
        ks = sample.kernel_size or (int(max(true_k.shape)) if true_k is not None else DEFAULT_KERNEL_SIZE)
        return blurry, sharp, true_k, int(ks)

    def true_kernel_check(self, sample, blurry, sharp, true_k) -> dict | None:
        """:func:`kernel_fit` of ``sample`` (cached in OUT/reference/<name>_fit.json)."""
        path = self.out / "reference" / f"{sample.name}_fit.json"
        if path.is_file():
            try:
                data = json.loads(path.read_text())
                if data.get("name") == sample.name:
                    return data.get("fit")
            except (OSError, ValueError):
                pass
        fit = kernel_fit(blurry, sharp, true_k)
        write_json(path, {"name": sample.name, "fit": fit})
        return fit

    def reference_scores(self, sample, blurry, sharp, true_k, ks, rotated: bool = False):
        """Scores of the true-kernel deconvolution of ``sample`` (cached in OUT/reference/)."""
        path = self.out / "reference" / f"{sample.name}{'_rotated' if rotated else ''}.json"
        if path.is_file():
            try:
                data = json.loads(path.read_text())
                if data.get("name") == sample.name and data.get("ssd") is not None \
                        and data.get("maxshift", ALIGN["maxshift"]) == self.maxshift:
                    return data
            except (OSError, ValueError):
                pass
        tk = torch.from_numpy(true_k)[None, None]
        result, seconds = self._call(self.reference, to_tensor(blurry), kernel_size=ks, seed=0, true_kernel=tk)
        res = score_image(quantise(to_array(result["image"].detach().float().clamp(0, 1))), sharp,
                          maxshift=self.maxshift)
        data = {"name": sample.name, "method": TRUE_KERNEL_METHOD, "psnr": res.psnr, "ssim": res.ssim,
                "ssd": res.ssd, "seconds": seconds, "maxshift": self.maxshift}
        write_json(path, data)
        return data

    def _lpips(self, est: np.ndarray, ref: np.ndarray):
        if not self.lpips_ok:
            return None
        if self._lpips_model is None:
            import lpips  # noqa: PLC0415 (optional dependency, checked by lpips_available)

            self._lpips_model = lpips.LPIPS(net="alex", verbose=False).eval()
        e, g = common_crop(est, ref)
        # aligned on all channels (LPIPS needs RGB), then both crops to [-1, 1]
        res = metrics.align_upto_shift(e, g, **{**ALIGN, "maxshift": self.maxshift})

        def t(a):
            a = np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a
            return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1), dtype=np.float32))[None] * 2 - 1

        with torch.no_grad():
            return float(self._lpips_model(t(res.aligned), t(res.reference)).item())

    # -------------------------------------------------------------- one pair
    def run_pair(self, sample, seed: int) -> dict:
        """Run the method on ``sample`` with ``seed``, save its image and kernel, return the scored row."""
        blurry, sharp, true_k, ks, fit, rotated = self._ground_truth(sample)
        ks, size_estimate = self._kernel_size(ks, blurry, seed)
        prior = self.prior_for(ks) if self.needs_prior() else None
        result, seconds, recorder = self._run_method(sample, seed, blurry, sharp, true_k, ks, prior)
        if size_estimate is not None:  # estimating the kernel size is part of the method's work
            seconds += size_estimate["seconds"]
        image, kernel, image_path, kernel_path = self._save_outputs(pair_stem(sample.name, seed), result)
        row = self._base_row(sample, seed, ks, true_k, fit, rotated, size_estimate, seconds, recorder.calls,
                             image_path, kernel_path)
        self._add_method_info(row, result, prior)
        self._add_scores(row, sample, blurry, sharp, true_k, ks, rotated, image, kernel, result)
        row["trace"] = self._close_trace(recorder.trace, row)
        row["peak_rss_mb"] = peak_rss_mb()
        return row

    def _ground_truth(self, sample):
        """The sample's images and true kernel, its size, and the true-kernel orientation check."""
        blurry, sharp, true_k, ks = self._read(sample)
        fit = self.true_kernel_check(sample, blurry, sharp, true_k) if sharp is not None and true_k is not None else None
        rotated = bool(fit and fit["rotated"] and self.cfg.true_kernel_orientation == "auto")
        if rotated:  # the data were made with the rotated kernel: that is the ground truth
            true_k = np.ascontiguousarray(true_k[::-1, ::-1])
        return blurry, sharp, true_k, ks, fit, rotated

    def _kernel_size(self, ks: int, blurry, seed: int):
        """The kernel size to run with (the dataset's ``ks`` unless the config sets it) and the
        size estimate's report (None unless ``kernel_size='auto'``)."""
        cfg = self.cfg
        size_estimate = None
        if cfg.kernel_size == "auto":
            from .api import estimate_kernel_size

            size_estimate = estimate_kernel_size(to_tensor(blurry), cfg.kernel_branch, seed, context=self.context)
            ks = size_estimate["kernel_size"]
        elif cfg.kernel_size is not None:
            ks = int(cfg.kernel_size)
        from .prior import check_kernel_size

        check_kernel_size(ks)
        return ks, size_estimate

    def _run_method(self, sample, seed: int, blurry, sharp, true_k, ks: int, prior):
        """Call the method (resuming its checkpoint if any); returns ``(result, seconds, recorder)``,
        the seconds without the convergence callback's and with those before an interruption."""
        recorder = TraceRecorder(self.cfg.trace_every, sharp, true_k, self.maxshift)
        tk = torch.from_numpy(true_k)[None, None] if true_k is not None else None
        checkpoint = self.checkpoint_folder(sample.name, seed)
        if checkpoint is not None and RunCheckpoint(checkpoint).exists():
            self.log(f"glkm: resuming {sample.name} seed {seed} from its checkpoint in {checkpoint}")
        result, seconds = self._call(self.method, to_tensor(blurry), kernel_size=ks, seed=seed, true_kernel=tk,
                                     prior=prior, callback=recorder, checkpoint=checkpoint, options=self.options)
        # time spent before an interruption counts; the runner's scoring is not the method's time
        seconds += seconds_before_resume(result)
        seconds = max(0.0, seconds - recorder.calls["seconds"])
        return result, seconds, recorder

    def _save_outputs(self, stem: str, result: dict):
        """Write the 8-bit image and the kernel (.npy exact, .png for viewing); returns
        ``(image, kernel, image_path, kernel_path)``."""
        image = quantise(to_array(result["image"].detach().float().clamp(0, 1).cpu()))
        kernel = kernel_2d(result["kernel"])
        image_path = self.out / "images" / f"{stem}.png"
        kernel_path = self.out / "kernels" / f"{stem}.npy"
        write_image(image_path, image)
        (self.out / "kernels").mkdir(parents=True, exist_ok=True)
        save_kernel(kernel, kernel_path)
        save_kernel(kernel, kernel_path.with_suffix(".png"))
        return image, kernel, image_path, kernel_path

    def _base_row(self, sample, seed, ks, true_k, fit, rotated, size_estimate, seconds, calls, image_path,
                  kernel_path) -> dict:
        """The row with every column, the scores still None."""
        cfg = self.cfg
        return {
            "name": sample.name, "category": sample.category or "all", "seed": seed, "method": cfg.method,
            "kernel_branch": cfg.kernel_branch, "kernel_size": ks,
            "true_kernel_size": int(max(true_k.shape)) if true_k is not None else None,
            "true_kernel_rotated": rotated,
            "true_kernel_fit_psnr": fit["stored"] if fit else None,
            "true_kernel_fit_psnr_rotated": fit["flipped"] if fit else None,
            "psnr": None, "ssim": None, "ssd": None, "shift_y": None, "shift_x": None,
            "kernel_rel_l2": None, "kernel_psnr": None, "kernel_shift": None, "error_ratio": None, "lpips": None,
            "seam_rmse": None, "interior_rmse": None, "grid": None, "kernel_size_estimate": size_estimate,
            "niqe_input": None, "niqe": None, "piqe_input": None, "piqe": None,
            "categories": list(sample.categories) or ([sample.category] if sample.category else ["all"]),
            "seconds": seconds, "seconds_callback": calls["seconds"], "peak_rss_mb": None,
            "iters": None, "blurry": str(sample.blurry), "sharp": str(sample.sharp) if sample.sharp else None,
            "true_kernel": str(sample.kernel) if sample.kernel else None,
            "image": str(image_path.relative_to(self.out)), "kernel": str(kernel_path.relative_to(self.out)),
            "prior": None,
            "rank": int(os.environ.get("RANK", "0")),
        }

    def _add_method_info(self, row: dict, result: dict, prior) -> None:
        """The method's scalar ``info``, the prior it used and its iteration count."""
        info = result.get("info", {}) or {}
        row["info"] = {k: v for k, v in info.items() if isinstance(v, (int, float, str, bool, type(None)))}
        if prior is not None:  # the prior the method says it used (fast: its 31-px member), else the one handed over
            row["prior"] = str(info.get("prior") or getattr(prior, "source", None))
        iters = info.get("iters", self.cfg.iters if self.cfg.iters is not None else 0)
        row["iters"] = int(iters) if isinstance(iters, (int, float)) and not isinstance(iters, bool) else 0

    def _add_scores(self, row: dict, sample, blurry, sharp, true_k, ks, rotated, image, kernel, result) -> None:
        """Image scores (with or without reference), kernel error and error ratio, as the data allow."""
        if sharp is not None:
            res = score_image(image, sharp, maxshift=self.maxshift)
            row.update(psnr=res.psnr, ssim=res.ssim, ssd=res.ssd, shift_y=res.shift[0], shift_x=res.shift[1])
            if result.get("grid") is not None:  # non-uniform methods: error along vs inside the cell boundaries
                row["grid"] = "x".join(str(int(g)) for g in result["grid"])
                row["seam_rmse"], row["interior_rmse"] = metrics.seam_errors(
                    res.aligned, res.reference, result["grid"],
                    tuple(n + 2 * ALIGN["border"] for n in res.aligned.shape[:2]), ALIGN["border"])
            row["lpips"] = self._lpips(image, sharp)
        if sharp is None:  # no ground truth: no-reference scores of the input and the result
            row.update(no_reference_scores(blurry, image))
        if true_k is not None:
            kerr = metrics.kernel_error(kernel, true_k, allow_flip=False)
            row.update(kernel_rel_l2=kerr.rel_l2, kernel_psnr=kerr.psnr, kernel_shift=list(kerr.shift))
        if self.reference is not None and sharp is not None and true_k is not None:
            ref = self.reference_scores(sample, blurry, sharp, true_k, ks, rotated)
            row["reference_psnr"] = ref["psnr"]
            row["error_ratio"] = (row["ssd"] / ref["ssd"]) if ref["ssd"] > 0 else (1.0 if row["ssd"] == 0 else math.inf)

    @staticmethod
    def _close_trace(trace: list, row: dict) -> list:
        """The trace ending with the final, fully scored point at ``row['iters']``."""
        final = {"step": row["iters"], "psnr": row["psnr"], "kernel_rel_l2": row["kernel_rel_l2"], "final": True}
        if trace and trace[-1]["step"] >= final["step"]:
            trace[-1] = {**final, "step": trace[-1]["step"]}
        else:
            trace.append(final)
        return trace


class TraceRecorder:
    """The runner's convergence callback: every ``every``-th call records the PSNR against
    ``sharp`` (whole-pixel alignment, :data:`TRACE_ALIGN`) and the kernel error against
    ``true_k``. ``state_dict`` / ``load_state_dict`` let a checkpointed method carry the trace
    across an interruption."""

    def __init__(self, every: int, sharp, true_k, maxshift: float = TRACE_ALIGN["maxshift"]):
        self.every, self.sharp, self.true_k, self.maxshift = every, sharp, true_k, maxshift
        self.trace: list[dict] = []
        self.calls = {"n": 0, "seconds": 0.0}

    def __call__(self, step, image, kernel):
        self.calls["n"] += 1
        if (self.calls["n"] - 1) % self.every:
            return None
        t0 = time.perf_counter()
        with torch.no_grad():
            point = {"step": int(step), "psnr": None, "kernel_rel_l2": None}
            if self.sharp is not None:
                arr = to_array(image.detach().float().clamp(0, 1).cpu())
                point["psnr"] = score_image(arr, self.sharp, **{**TRACE_ALIGN, "maxshift": self.maxshift}).psnr
            if self.true_k is not None:
                point["kernel_rel_l2"] = metrics.kernel_error(kernel_2d(kernel), self.true_k).rel_l2
        self.trace.append(point)
        self.calls["seconds"] += time.perf_counter() - t0
        return None

    def state_dict(self) -> dict:
        return {"trace": [dict(p) for p in self.trace], "calls": dict(self.calls)}

    def load_state_dict(self, state: dict) -> None:
        self.trace = [dict(p) for p in state["trace"]]
        self.calls = {"n": int(state["calls"]["n"]), "seconds": float(state["calls"]["seconds"])}
