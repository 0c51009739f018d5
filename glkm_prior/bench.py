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
import os
import sys
import time
from pathlib import Path

import torch

from . import datasets, plugins
from .bench_config import BenchConfig
from .bench_report import finalize, write_json
from .bench_runner import PairRunner
from .bench_store import check_run_file, load_result, result_path, run_identity
from .checkpoint import RunCheckpoint
from .errors import GLKMError, InvalidInputError, PluginError


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


# ----------------------------------------------------------------------------- the run
def run_benchmark(cfg: BenchConfig, *, context=None, log=None, progress: bool = True, compute: bool = True) -> dict:
    """Run (or resume) a benchmark; returns the summary (rank 0) or this rank's counts.
    ``context``: a :class:`~glkm_prior.context.RunContext` (its plugin manager; the prior's source
    comes from ``cfg.weights`` / ``cfg.revision``).

    ``compute=False`` only rewrites the summary files over results already in ``cfg.out``: a
    pair of the selection without a result is an error (listing them), and nothing is computed."""
    cfg.validate()
    say = _message_sink(log)
    folder, layout = datasets.resolve_dataset(cfg.dataset)
    samples = _select_samples(cfg, folder, layout)
    out = Path(cfg.out)
    dist = _Dist()
    try:
        quiet = (lambda m: None) if dist.rank else say
        runner = PairRunner(cfg, samples, folder, layout, context=context, log=quiet)
        if cfg.kernel_branch not in plugins.kernel_branches(runner.pm):
            raise PluginError(f"unknown kernel branch {cfg.kernel_branch!r}; registered: "
                              f"{', '.join(sorted(plugins.kernel_branches(runner.pm))) or 'none'}")
        identity = run_identity(cfg, folder, layout)
        check_run_file(out, identity, write=dist.rank == 0 and compute)
        if not runner.lpips_ok:
            quiet(f"glkm: LPIPS not reported: {runner.lpips_reason}")
        work = [(s, seed) for s in samples for seed in cfg.seeds]
        mine = work[dist.rank :: dist.world]
        todo = [(s, seed) for s, seed in mine if load_result(out, s.name, seed) is None]
        computed, failed, error = 0, False, None
        start = time.perf_counter()
        try:
            if todo and not compute:  # inside the try: under torchrun every rank learns of it
                _refuse_missing(todo, mine, out)
            computed = _run_pairs(runner, todo, len(mine), out, folder, dist, progress)
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
        rows = _collect_rows(work, out)
        return finalize(out, cfg, rows, runner=runner, identity=identity, counts=counts, wall=wall, log=say)
    finally:
        dist.close()


def _message_sink(log):
    """``log``, or by default a writer to stderr above the progress bar (not through it)."""
    if log is not None:
        return log
    from tqdm import tqdm

    def say(message):  # above the progress bar, not through it
        tqdm.write(message, file=sys.stderr)

    return say


def _select_samples(cfg: BenchConfig, folder: Path, layout: str) -> list:
    """The dataset's samples, narrowed to ``cfg.images`` (dataset order kept), then to ``cfg.limit``."""
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
    return samples


def _refuse_missing(todo: list, mine: list, out: Path) -> None:
    """The summary-only error: ``todo`` pairs of the selection have no result."""
    missing = ", ".join(f"{s.name} s{seed}" for s, seed in todo[:8]) + (", ..." if len(todo) > 8 else "")
    raise InvalidInputError(f"summary only: {len(todo)} of the {len(mine)} selected pairs have no result "
                            f"in {out / 'results'} ({missing}); narrow --seeds/--images/--limit or drop "
                            "--summary-only to compute them")


def _run_pairs(runner: PairRunner, todo: list, n_mine: int, out: Path, folder: Path, dist: _Dist,
               progress: bool) -> int:
    """Run the ``todo`` pairs, each result written as it finishes (its checkpoint then removed),
    under a progress bar over this rank's ``n_mine`` pairs; returns how many were computed."""
    from tqdm import tqdm

    cfg = runner.cfg
    computed = 0
    with tqdm(total=n_mine, initial=n_mine - len(todo), unit="img", dynamic_ncols=True,
              desc=f"{cfg.method}/{cfg.kernel_branch} on {folder.name}" + (f" [rank 0/{dist.world}]" if dist.world > 1 else ""),
              disable=not progress or dist.rank != 0, file=sys.stderr) as bar:
        for sample, seed in todo:
            row = runner.run_pair(sample, seed)
            write_json(result_path(out, sample.name, seed), row)
            checkpoint = runner.checkpoint_folder(sample.name, seed)
            if checkpoint is not None:
                RunCheckpoint(checkpoint).clear()
            computed += 1
            bar.set_postfix_str(f"{sample.name} s{seed}: {row['psnr']:.2f} dB" if row["psnr"] is not None else sample.name)
            bar.update(1)
    return computed


def _collect_rows(work: list, out: Path) -> list[dict]:
    """Every pair's result row, in work order (all must exist)."""
    rows = []
    for s, seed in work:
        row = load_result(out, s.name, seed)
        if row is None:
            raise GLKMError(f"result of {s.name} seed {seed} is missing in {out / 'results'}")
        rows.append(row)
    return rows
