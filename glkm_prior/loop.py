"""One driver for the iterative methods (SelfDeblur, VDIP, BIRD, BlindDPS): iteration range,
progress bar, loss record, trace callback and resumable checkpoints.

A method is an :class:`IterativeMethod`: it supplies its step function and its state, the driver
:func:`run_loop` does the rest. Conventions:

* ``method.step(i)`` performs iteration ``i`` (0-based) in full -- forward pass, update, the
  kernel branch's ``project_(i)`` where the method updated its kernel -- and returns the
  iteration's loss (a float or a 0-d tensor; recorded as float32). It keeps what
  :meth:`IterativeMethod.trace` needs.
* ``callback(n, image, kernel)`` is called (under ``no_grad``) after iteration ``n - 1`` when
  ``n`` is a multiple of ``trace_every`` (default ``iters // 20``) and after the last one, with
  ``(image, kernel) = method.trace()`` (the image as the method returns it, [0, 1]).
* checkpoints (``checkpoint`` a folder, :class:`glkm_prior.checkpoint.RunCheckpoint`): after
  iteration ``n - 1`` when ``n`` is a multiple of ``checkpoint_every`` and ``n < iters``, after
  the callback. A checkpoint holds :meth:`IterativeMethod.state` (modules, optimisers,
  schedulers, ``torch.Generator`` states, loose tensors), torch's global RNG state, the losses
  so far, the elapsed seconds, :meth:`IterativeMethod.loop_state` (JSON), the callback's
  ``state_dict()`` if it has one, and :meth:`IterativeMethod.identity` (JSON). A run started on
  a folder holding a checkpoint resumes from it if the identity matches (else
  :class:`InvalidInputError`) and ends bit-for-bit as the uninterrupted run would;
  :meth:`IterativeMethod.before_loop` runs only on a fresh start. The caller removes the folder
  when the result is safe (``RunCheckpoint.clear``).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field

import torch

from .checkpoint import RunCheckpoint
from .errors import InvalidInputError, WeightsError


@dataclass
class LoopState:
    """The tensors of a method that a checkpoint saves and restores in place (by name).

    ``modules``/``optimizers``: ``state_dict`` round trips; ``schedulers``: their counters and
    rates (``last_epoch``, ``_step_count``, ``_last_lr``); ``generators``: ``torch.Generator``
    states; ``tensors``: loose tensors (e.g. a diffusion sample or an optimised x_T), restored
    with ``copy_`` so optimisers keep their references.
    """

    modules: dict = field(default_factory=dict)
    optimizers: dict = field(default_factory=dict)
    schedulers: dict = field(default_factory=dict)
    generators: dict = field(default_factory=dict)
    tensors: dict = field(default_factory=dict)


class IterativeMethod:
    """What :func:`run_loop` needs of a method (override :meth:`step`, :meth:`trace`,
    :meth:`state` and :meth:`identity`; the rest has defaults)."""

    name = "iterative"
    branch_name: str | None = None
    unit = "it"              # progress-bar unit
    loss_label = "loss"      # progress-bar postfix name
    postfix_every = 50       # progress-bar postfix refresh, in iterations

    def step(self, step: int):  # pragma: no cover - abstract
        """Iteration ``step`` in full; returns its loss."""
        raise NotImplementedError

    def trace(self) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover - abstract
        """(image, kernel) for the callback, after the last :meth:`step`."""
        raise NotImplementedError

    def state(self) -> LoopState:  # pragma: no cover - abstract
        raise NotImplementedError

    def identity(self) -> dict:  # pragma: no cover - abstract
        """What a checkpoint must match to be resumed (JSON types)."""
        raise NotImplementedError

    def before_loop(self, progress: bool) -> None:
        """Work before the first iteration of a fresh (not resumed) run."""

    def loop_state(self) -> dict:
        """State outside :meth:`state` (JSON), saved with each checkpoint."""
        return {}

    def load_loop_state(self, state: dict) -> None:
        """Restore :meth:`loop_state`."""


@dataclass
class LoopRecord:
    """What :func:`run_loop` measured: float32 losses of all iterations (those before a resume
    included), the iteration resumed from (0: fresh), seconds spent before the interruption,
    seconds in the iterations (earlier ones included) and the wall-clock start of this call."""

    losses: list
    resumed_from: int
    seconds_before_resume: float
    loop_seconds: float
    started: float

    def seconds(self) -> float:
        """Seconds of the whole run so far (time before a resume included)."""
        return self.seconds_before_resume + time.perf_counter() - self.started

    def info(self) -> dict:
        """The info entries every iterative method reports."""
        iters = len(self.losses)
        return {
            "seconds": self.seconds(),
            "seconds_before_resume": self.seconds_before_resume,
            "resumed_from": self.resumed_from,
            "seconds_per_iter": self.loop_seconds / iters if iters else None,
            "loss_first": self.losses[0] if self.losses else None,
            "loss_last": self.losses[-1] if self.losses else None,
        }


def check_checkpoint_every(checkpoint_every) -> int:
    """``checkpoint_every`` as a positive int (InvalidInputError otherwise)."""
    try:
        every = None if isinstance(checkpoint_every, bool) else int(checkpoint_every)
    except (TypeError, ValueError):
        every = None
    if every is None or every < 1:
        raise InvalidInputError(f"checkpoint_every must be a positive integer, got {checkpoint_every!r}")
    return every


def run_loop(method: IterativeMethod, iters: int, *, progress: bool = True, callback=None,
             trace_every: int | None = None, checkpoint=None, checkpoint_every: int = 100) -> LoopRecord:
    """Run ``method`` for ``iters`` iterations (see the module docstring for the conventions)."""
    from tqdm import tqdm

    iters = int(iters)
    trace_every = max(1, int(trace_every if trace_every is not None else max(1, iters // 20)))
    ckpt = RunCheckpoint(checkpoint) if checkpoint is not None else None
    if ckpt is not None:
        checkpoint_every = check_checkpoint_every(checkpoint_every)
    start = time.perf_counter()
    losses = torch.zeros(iters)
    first, earlier = 0, {"seconds": 0.0, "loop_seconds": 0.0}
    if ckpt is not None and ckpt.exists():
        first, earlier = _resume(method, ckpt, losses, callback)
    else:
        method.before_loop(progress)
    t_loop = time.perf_counter()
    desc = method.name if method.branch_name is None else f"{method.name}/{method.branch_name}"
    bar = tqdm(range(first, iters), initial=first, total=iters, desc=desc, unit=method.unit, file=sys.stderr,
               disable=not progress, dynamic_ncols=True, leave=False)
    every = max(1, int(method.postfix_every))
    for step in bar:
        loss = method.step(step)
        losses[step] = loss.detach() if isinstance(loss, torch.Tensor) else float(loss)
        if progress and (step % every == 0 or step + 1 == iters):
            bar.set_postfix({method.loss_label: f"{float(losses[step]):.4g}"}, refresh=False)
        if callback is not None and ((step + 1) % trace_every == 0 or step + 1 == iters):
            with torch.no_grad():
                callback(step + 1, *method.trace())
        if ckpt is not None and (step + 1) % checkpoint_every == 0 and step + 1 < iters:
            now = time.perf_counter()
            _save(method, ckpt, step + 1, losses, callback, seconds=earlier["seconds"] + now - start,
                  loop_seconds=earlier["loop_seconds"] + now - t_loop)
    bar.close()
    return LoopRecord(losses=[float(v) for v in losses.tolist()], resumed_from=first,
                      seconds_before_resume=earlier["seconds"],
                      loop_seconds=earlier["loop_seconds"] + time.perf_counter() - t_loop,
                      started=start)


# ---------------------------------------------------------------------------- checkpoints
def _scheduler_meta(scheduler) -> dict:
    sched = scheduler.state_dict()
    return {k: sched[k] for k in ("last_epoch", "_step_count", "_last_lr")}


def _save(method: IterativeMethod, ckpt: RunCheckpoint, step: int, losses, callback, *, seconds: float,
          loop_seconds: float) -> None:
    state = method.state()
    meta = {"identity": method.identity(), "losses": [float(v) for v in losses[:step].tolist()],
            "seconds": seconds, "loop_seconds": loop_seconds,
            "schedulers": {name: _scheduler_meta(s) for name, s in state.schedulers.items()},
            "loop_state": method.loop_state(),
            "callback": callback.state_dict() if hasattr(callback, "state_dict") else None}
    extra = {f"rng_{name}": g.get_state() for name, g in state.generators.items()}
    extra["rng_global"] = torch.get_rng_state()
    extra.update({f"tensor_{name}": t for name, t in state.tensors.items()})
    ckpt.save(step, state.modules, state.optimizers, meta, extra)


def _upgrade_meta(meta: dict) -> dict:
    """Checkpoints written before this driver (DIP/VDIP: one ``scheduler``, ``skipped`` at the
    top) in the current layout."""
    if "schedulers" not in meta and "scheduler" in meta:
        meta = {**meta, "schedulers": {"scheduler": meta["scheduler"]},
                "loop_state": {"skipped": meta.get("skipped", 0), **(meta.get("loop_state") or {})}}
    return meta


def _resume(method: IterativeMethod, ckpt: RunCheckpoint, losses, callback):
    mine, saved = method.identity(), ckpt.meta().get("identity", {})
    diffs = [f"{k}: saved {saved.get(k)!r}, now {v!r}" for k, v in mine.items() if saved.get(k) != v]
    if diffs:
        raise InvalidInputError(f"checkpoint {ckpt.folder} belongs to a different run ({'; '.join(diffs)}); "
                                "delete it or choose another folder")
    state = method.state()
    extra: dict = {}
    meta = _upgrade_meta(ckpt.load(state.modules, state.optimizers, extra))
    step = int(meta["step"])
    wanted = [f"rng_{n}" for n in state.generators] + [f"tensor_{n}" for n in state.tensors] + ["rng_global"]
    missing = [k for k in wanted if k not in extra] + [n for n in state.schedulers if n not in meta["schedulers"]]
    if not 0 < step <= losses.numel() or len(meta["losses"]) != step or missing:
        raise WeightsError(f"checkpoint {ckpt.folder} is inconsistent (step {step}, {len(meta['losses'])} losses"
                           + (f", missing {missing}" if missing else "") + f"); delete {ckpt.folder} to start over")
    losses[:step] = torch.tensor(meta["losses"], dtype=losses.dtype)
    for name, scheduler in state.schedulers.items():
        sched = scheduler.state_dict()
        sched.update(meta["schedulers"][name])
        scheduler.load_state_dict(sched)
    for name, gen in state.generators.items():
        gen.set_state(extra[f"rng_{name}"])
    with torch.no_grad():
        for name, tensor in state.tensors.items():
            tensor.copy_(extra[f"tensor_{name}"])
    torch.set_rng_state(extra["rng_global"])
    method.load_loop_state(meta.get("loop_state") or {})
    if meta.get("callback") is not None and hasattr(callback, "load_state_dict"):
        callback.load_state_dict(meta["callback"])
    return step, {"seconds": float(meta["seconds"]), "loop_seconds": float(meta["loop_seconds"])}


def identity_of(name: str, branch_name, kernel_size: int, seed: int, image: torch.Tensor, config: dict,
                **more) -> dict:
    """The usual :meth:`IterativeMethod.identity`: loop, kernel branch, size, seed, the image's
    shape and sum, the configuration (and ``more``), made JSON (non-JSON values as ``str``)."""
    ident = {"loop": name, "kernel_branch": branch_name, "kernel_size": kernel_size, "seed": seed,
             "shape": list(image.shape), "image_sum": round(float(image.double().sum()), 6), "config": config, **more}
    return json.loads(json.dumps(ident, default=str))


__all__ = ["IterativeMethod", "LoopState", "LoopRecord", "run_loop", "identity_of", "check_checkpoint_every"]
