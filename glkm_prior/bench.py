"""Benchmark runner: the Levin/Lai evaluation protocol over a dataset (``glkm eval DATASET``).

For every (image, seed) pair of a dataset (:func:`glkm_prior.datasets.load_dataset`) the runner
calls a registered method (:func:`glkm_prior.plugins.get_method`), saves its result and scores
it. Results are written as they finish, one JSON per pair, so a run is resumable; at the end
tables and pictures are written::

    OUT/run.json                      the run's configuration (a rerun must match it)
    OUT/results/<name>__s<seed>.json  one scored (image, seed) pair, written atomically
    OUT/images/<name>__s<seed>.png    the deblurred image (8 bit; the scores are computed on it)
    OUT/kernels/<name>__s<seed>.npy   the estimated kernel (exact; .png scaled for viewing)
    OUT/reference/<name>.json         the true-kernel deconvolution's scores (error ratio)
    OUT/checkpoints/<name>__s<seed>/  an unfinished pair's checkpoint (methods taking ``checkpoint``:
                                      ``dip``, ``vdip-*``, ``bird``, ``blinddps``), resumed by a rerun,
                                      removed when done
    OUT/results.csv, results.json     every pair
    OUT/summary.md, summary.json      mean and std across seeds of the per-seed means,
                                      per category and overall
    OUT/grid.png, convergence.png     pictures (:mod:`glkm_prior.report`)

Scores
------
* ``psnr``, ``ssim``: Levin's ``comp_upto_shift`` protocol (:func:`metrics.align_upto_shift`:
  15 px border, sub-pixel shifts within +-5 px in 0.25 px steps, bilinear, best SSD; +-10 px on
  Lai et al.'s set, as SelfDeblur's ``statistic_lai.m``: :data:`glkm_prior.scoring.LAYOUT_MAXSHIFT`), peak 1.0
  on [0, 1] images (= peak 255 on 8-bit). They are computed on the **saved 8-bit result**, as
  the field's MATLAB scripts read saved PNGs. Colour images are scored on their luma Y,
  ``metrics.rgb_to_y(..., matlab=True)`` (MATLAB ``rgb2ycbcr``), as Lai et al.'s scripts do.
  When the ground truth and the result differ in size, the larger is centre-cropped.
* ``kernel_rel_l2``, ``kernel_psnr``: :func:`metrics.kernel_error` with ``allow_flip=False``
  (every kernel of this project and of the datasets is a cross-correlation kernel), best
  integer shift, both kernels normalised.
* ``error_ratio``: Levin et al.'s ``SSD(result) / SSD(true-kernel result)`` (squared, as in
  Levin 2009; SelfDeblur's ``statistic_levin.m`` reports its square root), both aligned as
  above. The denominator comes from the registered ``true-kernel`` method, run once per image
  and cached in ``OUT/reference/``; it is not computed for the ``true-kernel`` method itself.
* true-kernel orientation check: for every image the runner measures how well the stored true
  kernel and its 180-degree rotation explain the blurry image (:func:`glkm_prior.scoring.kernel_fit`, cached in
  ``OUT/reference/<name>_fit.json``; ``true_kernel_fit_psnr`` / ``..._rotated`` in the rows).
  In the copy of the Levin set used here, kernels 4 and 8 fit only after the rotation (they
  are stored as true-convolution kernels, the other six as correlation kernels). With
  ``true_kernel_orientation='auto'`` (default) the orientation that explains the data (by more
  than 1 dB) becomes the ground truth for the kernel error, the true-kernel deconvolution and
  oracle methods; with ``'stored'`` the files are used as they are. ``summary.md`` lists the
  images concerned either way.
* ``seconds``: wall time of the method call alone, minus the time spent in the runner's
  convergence callback (reported as ``seconds_callback``); not saving or scoring.
* ``peak_rss_mb``: the process's peak resident set size (``resource.getrusage``
  ``ru_maxrss``) in MB, read when the image is finished. It is the high-water mark of the
  whole process so far (monotone over a run; it includes the interpreter, torch and every
  earlier image), i.e. an upper bound of the memory the image needed, not a per-image delta.
* ``lpips``: only when :func:`metrics.lpips_available` says the package and its weights are
  there (never a made-up value); otherwise its one-line reason is printed once and stored in
  ``summary.json``.

Kernel sizes: the sample's ``kernel_size`` (Levin: the SelfDeblur sizes; Lai and synthetic
sets: the true kernel's size), else the true kernel's size, else 31; the config's ``kernel_size``
overrides it: K for every image, or ``'auto'`` (estimated per image from the blurry input by
:func:`glkm_prior.api.estimate_kernel_size`, as ``glkm deblur`` does; its seconds count as the
method's, its report is the row's ``kernel_size_estimate``). GLKM priors are loaded
once per generator canvas (31 or 75, :func:`glkm_prior.prior.bundle_spec`) with
:func:`glkm_prior.api.load_prior` (an untrained prior with a loud warning when no weights are
bundled yet; the summary says so) and handed to the method as ``prior=``.

Method calling convention
-------------------------
``factory(blurry, *, kernel_size, kernel_branch, seed, progress, iters?, prior?, true_kernel?,
callback?, **options) -> {"image": (1, C, H, W), "kernel": (1, 1, K, K), "info": {...}}``.
Keyword arguments a factory cannot take (no such parameter and no ``**kwargs``) are not
passed. ``true_kernel`` ((1, 1, K, K) tensor) is passed **only** to factories that name it as
a parameter (oracle methods such as ``true-kernel``), so blind methods never see the truth.

Convergence callback
--------------------
Iterative methods may accept ``callback`` and call ``callback(step, image, kernel)`` during
their loop (``step`` an int, the number of iterations done; ``image`` (1, C, H, W) in [0, 1];
``kernel`` (1, 1, K, K); the callback only reads them, under ``torch.no_grad``, and returns
None). A method chooses how often (e.g. every ``iters // 20`` steps and after the last one);
the runner also thins calls with ``trace_every``. It is passed to factories that name
``callback`` or take ``**kwargs``. At each call the runner records the PSNR (alignment on
whole-pixel shifts only, 121 instead of 1681 candidates, so it is cheap and can be a little
lower than the final sub-pixel score) and the kernel error. The last point of every trace is
the final result with the full protocol, at ``info["iters"]`` (or ``--iters``, else 0);
methods that never call the callback get just that point.

Scale-out
---------
Under ``torchrun --nproc_per_node=N`` (``WORLD_SIZE > 1``) the runner joins a gloo process
group (CPU), takes every N-th pair of the work list (round robin by rank), writes its result
files, and after a collective barrier rank 0 merges them and writes the tables and pictures.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import datasets, metrics, plugins
from .checkpoint import RunCheckpoint, seconds_before_resume
from .errors import GLKMError, InvalidInputError, PluginError
from .imageio import read_image, to_array, to_tensor, write_image
from .bench_report import finalize, json_safe, write_json
from .kernel_io import load_kernel, save_kernel
from .plugins import accepts_keyword, refuse_unaccepted_options
from .scoring import (ALIGN, LAYOUT_MAXSHIFT, TRACE_ALIGN, TRUE_KERNEL_METHOD, common_crop, kernel_fit,
                      no_reference_scores, quantise, score_image)

DEFAULT_KERNEL_SIZE = 31
ORIENTATIONS = ("stored", "auto")


# ----------------------------------------------------------------------------- configuration
@dataclass
class BenchConfig:
    """One benchmark run (see the module docstring)."""

    dataset: str
    method: str
    out: str
    kernel_branch: str = "glkm"
    seeds: tuple = (0,)
    iters: int | None = None
    limit: int | None = None
    images: tuple | None = None   # only these image names (dataset order kept), before ``limit``
    weights: str | None = None
    revision: str | None = None
    grid_rows: int = 16
    trace_every: int = 1
    checkpoint_every: int = 100   # iterative methods that take ``checkpoint``: OUT/checkpoints/ (0: off)
    true_kernel_orientation: str = "auto"
    kernel_size: int | str | None = None  # None: the dataset's; "auto": estimated per image; or K
    options: dict = field(default_factory=dict)

    def validate(self) -> "BenchConfig":
        if self.limit is not None and (isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit <= 0):
            raise InvalidInputError(f"--limit must be a positive integer, got {self.limit!r}")
        if self.images is not None:
            if isinstance(self.images, str):
                self.images = tuple(n.strip() for n in self.images.split(","))
            self.images = tuple(self.images)
            if not self.images or not all(isinstance(n, str) and n for n in self.images):
                raise InvalidInputError(f"--images must be comma-separated image names, got {self.images!r}")
        if self.iters is not None and (isinstance(self.iters, bool) or not isinstance(self.iters, int) or self.iters < 0):
            raise InvalidInputError(f"--iters must be an integer >= 0, got {self.iters!r}")
        self.seeds = parse_seeds(self.seeds)
        if not isinstance(self.grid_rows, int) or self.grid_rows < 1:
            raise InvalidInputError(f"grid_rows must be a positive integer, got {self.grid_rows!r}")
        if not isinstance(self.trace_every, int) or self.trace_every < 1:
            raise InvalidInputError(f"trace_every must be a positive integer, got {self.trace_every!r}")
        if isinstance(self.checkpoint_every, bool) or not isinstance(self.checkpoint_every, int) or self.checkpoint_every < 0:
            raise InvalidInputError(f"--checkpoint-every must be an integer >= 0, got {self.checkpoint_every!r}")
        if not self.out:
            raise InvalidInputError("an output folder (--out) is required")
        if self.kernel_size is not None and self.kernel_size != "auto":
            from .prior import check_kernel_size

            check_kernel_size(self.kernel_size)
        if self.true_kernel_orientation not in ORIENTATIONS:
            raise InvalidInputError(f"true-kernel orientation must be one of {', '.join(ORIENTATIONS)}, "
                                    f"got {self.true_kernel_orientation!r}")
        return self


def parse_seeds(seeds) -> tuple:
    """``"0,1,2"`` (or an iterable of ints) -> ``(0, 1, 2)``; distinct integers >= 0."""
    if isinstance(seeds, str):
        parts = [p.strip() for p in seeds.split(",")]
        if not seeds.strip() or any(not p for p in parts):
            raise InvalidInputError(f"--seeds must be a comma-separated list of integers, got {seeds!r}")
        try:
            values = [int(p) for p in parts]
        except ValueError:
            raise InvalidInputError(f"--seeds must be a comma-separated list of integers, got {seeds!r}") from None
    else:
        try:
            values = list(seeds)
        except TypeError:
            raise InvalidInputError(f"seeds must be a list of integers, got {seeds!r}") from None
        if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in values):
            raise InvalidInputError(f"seeds must be integers, got {seeds!r}")
        values = [int(v) for v in values]
    if not values:
        raise InvalidInputError("at least one seed is needed")
    if any(v < 0 for v in values):
        raise InvalidInputError(f"seeds must be >= 0, got {values}")
    if len(set(values)) != len(values):
        raise InvalidInputError(f"seeds must be distinct, got {values}")
    return tuple(values)


# ----------------------------------------------------------------------------- helpers
def peak_rss_mb() -> float | None:
    """The process's peak RSS (ru_maxrss) in MB; None where ``resource`` is unavailable."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def _kernel_2d(k) -> np.ndarray:
    k = k.detach().cpu().double() if isinstance(k, torch.Tensor) else torch.as_tensor(np.asarray(k), dtype=torch.float64)
    k = k.reshape(-1, *k.shape[-2:]).mean(0).clamp_min(0).numpy()
    if not np.isfinite(k).all() or k.sum() <= 0:
        raise GLKMError("the method returned a kernel with no positive mass or with NaN/Inf")
    return (k / k.sum()).astype(np.float32)


def pair_stem(name: str, seed: int) -> str:
    return f"{name}__s{seed}"


# ----------------------------------------------------------------------------- distributed
class _Dist:
    def __init__(self):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.created = False
        if self.world > 1:
            import torch.distributed as dist

            if not dist.is_available():
                raise GLKMError("WORLD_SIZE > 1 but torch.distributed is not available")
            if not dist.is_initialized():
                dist.init_process_group("gloo", timeout=datetime.timedelta(hours=6))
                self.created = True
            self.rank, self.world = dist.get_rank(), dist.get_world_size()

    def any_failed(self, failed: bool) -> bool:
        """Collective barrier that also tells every rank whether some rank failed."""
        if self.world == 1:
            return failed
        import torch.distributed as dist

        flag = torch.tensor([1.0 if failed else 0.0])
        dist.all_reduce(flag)
        return bool(flag.item() > 0)

    def close(self):
        if self.created:
            import torch.distributed as dist

            dist.destroy_process_group()


# ----------------------------------------------------------------------------- runner
class _Runner:
    def __init__(self, cfg: BenchConfig, samples, folder: Path, layout: str, pm=None, log=None):
        self.cfg, self.samples, self.folder, self.layout = cfg, samples, folder, layout
        self.maxshift = LAYOUT_MAXSHIFT.get(layout, ALIGN["maxshift"])
        self.pm = pm
        self.out = Path(cfg.out)
        self.log = log or (lambda m: print(m, file=sys.stderr))
        self.method = plugins.get_method(cfg.method, pm)
        refuse_unaccepted_options(cfg.method, self.method.factory, cfg.options)
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
        return self.cfg.kernel_branch == "glkm" and self.cfg.method != TRUE_KERNEL_METHOD

    def prior_for(self, kernel_size: int):
        from .api import load_prior
        from .prior import bundle_spec

        canvas = bundle_spec(kernel_size)["size"]
        if canvas not in self.priors:
            def warn(msg):
                self.notes.append(msg.removeprefix("glkm: warning: "))
                self.log(msg)

            prior = load_prior(self.cfg.weights, kernel_size, self.cfg.revision, warn=warn)
            self.priors[canvas] = prior
        return self.priors[canvas]

    # -------------------------------------------------------------- method calls
    def checkpoint_folder(self, name: str, seed: int) -> Path | None:
        """``OUT/checkpoints/<name>__s<seed>`` for methods that take ``checkpoint`` (None otherwise
        or with ``checkpoint_every`` 0); removed once the pair's result is written."""
        if not self.cfg.checkpoint_every or not accepts_keyword(self.method.factory, "checkpoint", explicit_only=True):
            return None
        return self.out / "checkpoints" / pair_stem(name, seed)

    def _call(self, registration, blurry, *, kernel_size, seed, true_kernel=None, prior=None, callback=None,
              checkpoint=None):
        fn = registration.factory
        wanted = {"kernel_size": kernel_size, "kernel_branch": self.cfg.kernel_branch, "seed": seed, "progress": False}
        if self.cfg.iters is not None:
            wanted["iters"] = self.cfg.iters
        if prior is not None:
            wanted["prior"] = prior
        if callback is not None:
            wanted["callback"] = callback
        if checkpoint is not None:
            wanted.update(checkpoint=checkpoint, checkpoint_every=self.cfg.checkpoint_every)
        wanted.update(self.cfg.options)
        kwargs = {k: v for k, v in wanted.items() if accepts_keyword(fn, k)}
        if true_kernel is not None and accepts_keyword(fn, "true_kernel", explicit_only=True):
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
        cfg = self.cfg
        blurry, sharp, true_k, ks = self._read(sample)
        fit = self.true_kernel_check(sample, blurry, sharp, true_k) if sharp is not None and true_k is not None else None
        rotated = bool(fit and fit["rotated"] and cfg.true_kernel_orientation == "auto")
        if rotated:  # the data were made with the rotated kernel: that is the ground truth
            true_k = np.ascontiguousarray(true_k[::-1, ::-1])
        size_estimate = None
        if cfg.kernel_size == "auto":
            from .api import estimate_kernel_size

            size_estimate = estimate_kernel_size(to_tensor(blurry), cfg.kernel_branch, cfg.weights, cfg.revision, seed,
                                                 warn=self.log, pm=self.pm)
            ks = size_estimate["kernel_size"]
        elif cfg.kernel_size is not None:
            ks = int(cfg.kernel_size)
        from .prior import check_kernel_size

        check_kernel_size(ks)
        prior = self.prior_for(ks) if self.needs_prior() else None
        recorder = _TraceRecorder(cfg.trace_every, sharp, true_k, self.maxshift)
        tk = torch.from_numpy(true_k)[None, None] if true_k is not None else None
        stem = pair_stem(sample.name, seed)
        checkpoint = self.checkpoint_folder(sample.name, seed)
        if checkpoint is not None and RunCheckpoint(checkpoint).exists():
            self.log(f"glkm: resuming {sample.name} seed {seed} from its checkpoint in {checkpoint}")
        result, seconds = self._call(self.method, to_tensor(blurry), kernel_size=ks, seed=seed, true_kernel=tk,
                                     prior=prior, callback=recorder, checkpoint=checkpoint)
        trace, calls = recorder.trace, recorder.calls
        # time spent before an interruption counts; the runner's scoring is not the method's time
        seconds += seconds_before_resume(result)
        seconds = max(0.0, seconds - calls["seconds"])
        if size_estimate is not None:  # estimating the kernel size is part of the method's work
            seconds += size_estimate["seconds"]
        image = quantise(to_array(result["image"].detach().float().clamp(0, 1).cpu()))
        kernel = _kernel_2d(result["kernel"])
        image_path = self.out / "images" / f"{stem}.png"
        kernel_path = self.out / "kernels" / f"{stem}.npy"
        write_image(image_path, image)
        (self.out / "kernels").mkdir(parents=True, exist_ok=True)
        save_kernel(kernel, kernel_path)
        save_kernel(kernel, kernel_path.with_suffix(".png"))

        row = {
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
        info = result.get("info", {}) or {}
        row["info"] = {k: v for k, v in info.items() if isinstance(v, (int, float, str, bool, type(None)))}
        if prior is not None:  # the prior the method says it used (fast: its 31-px member), else the one handed over
            row["prior"] = str(info.get("prior") or getattr(prior, "source", None))
        iters = info.get("iters", cfg.iters if cfg.iters is not None else 0)
        row["iters"] = int(iters) if isinstance(iters, (int, float)) and not isinstance(iters, bool) else 0
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
        final = {"step": row["iters"], "psnr": row["psnr"], "kernel_rel_l2": row["kernel_rel_l2"], "final": True}
        if trace and trace[-1]["step"] >= final["step"]:
            trace[-1] = {**final, "step": trace[-1]["step"]}
        else:
            trace.append(final)
        row["trace"] = trace
        row["peak_rss_mb"] = peak_rss_mb()
        return row


class _TraceRecorder:
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
                point["kernel_rel_l2"] = metrics.kernel_error(_kernel_2d(kernel), self.true_k).rel_l2
        self.trace.append(point)
        self.calls["seconds"] += time.perf_counter() - t0
        return None

    def state_dict(self) -> dict:
        return {"trace": [dict(p) for p in self.trace], "calls": dict(self.calls)}

    def load_state_dict(self, state: dict) -> None:
        self.trace = [dict(p) for p in state["trace"]]
        self.calls = {"n": int(state["calls"]["n"]), "seconds": float(state["calls"]["seconds"])}


def _result_path(out: Path, name: str, seed: int) -> Path:
    return out / "results" / f"{pair_stem(name, seed)}.json"


def load_result(out: Path, name: str, seed: int) -> dict | None:
    """A finished pair's result, or None if it is missing or unreadable."""
    path = _result_path(out, name, seed)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("name") != name or data.get("seed") != seed or "psnr" not in data:
        return None
    return data


def _run_identity(cfg: BenchConfig, folder: Path, layout: str) -> dict:
    identity = {"dataset": str(folder.resolve()), "layout": layout, "method": cfg.method,
                "kernel_branch": cfg.kernel_branch, "iters": cfg.iters, "weights": cfg.weights,
                "revision": cfg.revision, "true_kernel_orientation": cfg.true_kernel_orientation,
                "options": json_safe(cfg.options)}
    if cfg.kernel_size is not None:  # only when set, so runs made before the option still resume
        identity["kernel_size"] = cfg.kernel_size
    return identity


def _check_run_file(out: Path, identity: dict, write: bool) -> None:
    path = out / "run.json"
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            old = None
        has_results = (out / "results").is_dir() and any((out / "results").glob("*.json"))
        if isinstance(old, dict):
            diffs = [f"{k}: {old.get(k)!r} -> {v!r}" for k, v in identity.items() if old.get(k) != v]
            if diffs and has_results:
                raise InvalidInputError(f"{out} holds results of a different run ({'; '.join(diffs)}); use another --out")
            if not diffs:
                return
    if write:
        write_json(path, identity)


def run_benchmark(cfg: BenchConfig, *, pm=None, log=None, progress: bool = True, compute: bool = True) -> dict:
    """Run (or resume) a benchmark; returns the summary (rank 0) or this rank's counts.

    ``compute=False`` only rewrites the summary files over results already in ``cfg.out``: a
    pair of the selection without a result is an error (listing them), and nothing is computed."""
    cfg.validate()
    if log is None:
        from tqdm import tqdm

        def say(message):  # above the progress bar, not through it
            tqdm.write(message, file=sys.stderr)
    else:
        say = log
    folder, layout = datasets.resolve_dataset(cfg.dataset)
    samples = datasets.LOADERS[layout](folder)
    if cfg.images is not None:
        names = [s.name for s in samples]
        unknown = [n for n in cfg.images if n not in names]
        if unknown:
            raise InvalidInputError(f"--images: no image named {', '.join(unknown)} in {folder} "
                                    f"(its names look like {', '.join(names[:3])})")
        samples = [s for s in samples if s.name in cfg.images]
    if cfg.limit is not None:
        samples = samples[: cfg.limit]
    out = Path(cfg.out)
    dist = _Dist()
    try:
        quiet = (lambda m: None) if dist.rank else say
        runner = _Runner(cfg, samples, folder, layout, pm=pm, log=quiet)
        if cfg.kernel_branch not in plugins.kernel_branches(pm):
            raise PluginError(f"unknown kernel branch {cfg.kernel_branch!r}; registered: "
                              f"{', '.join(sorted(plugins.kernel_branches(pm))) or 'none'}")
        identity = _run_identity(cfg, folder, layout)
        _check_run_file(out, identity, write=dist.rank == 0 and compute)
        if not runner.lpips_ok:
            quiet(f"glkm: LPIPS not reported: {runner.lpips_reason}")
        work = [(s, seed) for s in samples for seed in cfg.seeds]
        mine = work[dist.rank :: dist.world]
        todo = [(s, seed) for s, seed in mine if load_result(out, s.name, seed) is None]
        computed, failed, error = 0, False, None
        start = time.perf_counter()
        try:
            if todo and not compute:  # inside the try: under torchrun every rank learns of it
                missing = ", ".join(f"{s.name} s{seed}" for s, seed in todo[:8]) + (", ..." if len(todo) > 8 else "")
                raise InvalidInputError(f"summary only: {len(todo)} of the {len(mine)} selected pairs have no result "
                                        f"in {out / 'results'} ({missing}); narrow --seeds/--images/--limit or drop "
                                        "--summary-only to compute them")
            from tqdm import tqdm

            with tqdm(total=len(mine), initial=len(mine) - len(todo), unit="img", dynamic_ncols=True,
                      desc=f"{cfg.method}/{cfg.kernel_branch} on {folder.name}" + (f" [rank 0/{dist.world}]" if dist.world > 1 else ""),
                      disable=not progress or dist.rank != 0, file=sys.stderr) as bar:
                for sample, seed in todo:
                    row = runner.run_pair(sample, seed)
                    write_json(_result_path(out, sample.name, seed), row)
                    checkpoint = runner.checkpoint_folder(sample.name, seed)
                    if checkpoint is not None:
                        RunCheckpoint(checkpoint).clear()
                    computed += 1
                    bar.set_postfix_str(f"{sample.name} s{seed}: {row['psnr']:.2f} dB" if row["psnr"] is not None else sample.name)
                    bar.update(1)
        except Exception as exc:  # noqa: BLE001 - re-raised after telling the other ranks
            failed, error = True, exc
        if dist.any_failed(failed):
            if error is not None:
                raise error
            raise GLKMError("another process of the run failed; see its error above")
        wall = time.perf_counter() - start
        counts = {"computed": computed, "skipped": len(mine) - len(todo), "pairs": len(work), "rank": dist.rank,
                  "world_size": dist.world}
        if dist.rank != 0:
            return counts
        rows = []
        for s, seed in work:
            row = load_result(out, s.name, seed)
            if row is None:
                raise GLKMError(f"result of {s.name} seed {seed} is missing in {out / 'results'}")
            rows.append(row)
        return finalize(out, cfg, rows, runner=runner, identity=identity, counts=counts, wall=wall, log=say)
    finally:
        dist.close()


# ----------------------------------------------------------------------------- summary
