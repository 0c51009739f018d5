"""Study (issue 5; RESULTS.md, "Deep-prior baselines", "With a perfect initializer"): SelfDeblur's
loop started from the GLKM latent inverted from the TRUE kernel -- a study device, not a method a
user can run on a real photo (it needs the ground truth), so it is not one of the built-in methods.

This module is a plugin offering the method ``dip-oracle-init``; nothing registers it unless
asked. Run as a script it registers itself into the process-wide plugin manager and hands its
arguments to the ``glkm`` command line, so a ``glkm eval`` run with the method reads::

    python examples/study_dip_oracle_init.py eval levin --method dip-oracle-init --iters 1000 \\
        --seeds 0 --images im1_kernel2,im1_kernel4,im1_kernel7,im1_kernel8 \\
        --out benchmarks/dip_convergence/levin_glkm_oracle_init

The benchmark passes the ground-truth kernel to it (it names ``true_kernel``, glkm_prior.bench),
and ``glkm eval`` checkpoints and resumes it like ``dip``. From Python: :func:`register` adds it
to a plugin manager (``pm.register(module, name=PLUGIN_NAME)``).
"""

from __future__ import annotations

import sys

import pluggy
import torch

from glkm_prior.errors import InvalidInputError
from glkm_prior.plugins import get_plugin_manager, hookimpl
from glkm_prior.prior import KernelPrior

from glkm_adapters.dip import run_dip

#: the method's name, also the plugin's name in the manager
PLUGIN_NAME = METHOD = "dip-oracle-init"


def run_dip_oracle_init(blurry, *, kernel_size, true_kernel=None, kernel_branch="glkm", prior=None, weights=None,
                        invert_steps=1000, checkpoint=None, checkpoint_every=100, **kwargs):
    """Diagnostic method ``dip-oracle-init``, not a blind method (it is given the ground truth):
    :func:`glkm_adapters.dip.run_dip` with the GLKM branch started from the latent whose kernel
    best matches ``true_kernel`` (GAN inversion, :meth:`KernelPrior.invert`, 4 restarts, seed 0)
    instead of E(y): what SelfDeblur-GLKM reaches with a perfect initializer. ``true_kernel``:
    (K, K) or (1, 1, K, K) in the convention of :func:`glkm_prior.blur` (the benchmark passes it
    in the orientation that explains the blurry image). Other arguments as ``run_dip``."""
    if true_kernel is None:
        raise InvalidInputError(f"method {METHOD!r} needs the ground-truth kernel (true_kernel=...)")
    if kernel_branch != "glkm":
        raise InvalidInputError(f"method {METHOD!r} starts the GLKM branch's latent; "
                                f"kernel branch {kernel_branch!r} has none (use --kernel-branch glkm)")
    if prior is None:
        prior = KernelPrior.from_pretrained(weights, kernel_size=kernel_size)
    target = torch.as_tensor(true_kernel).float()
    w = prior.invert(target.reshape(1, 1, *target.shape[-2:]), steps=int(invert_steps), restarts=4)
    return run_dip(blurry, kernel_size=kernel_size, kernel_branch="glkm", prior=prior, init_latent=w,
                   checkpoint=checkpoint, checkpoint_every=checkpoint_every, **kwargs)


@hookimpl
def glkm_methods(register):
    register(METHOD, run_dip_oracle_init, "study device, needs the true kernel: dip with the GLKM latent "
             "started from the inversion of the true kernel instead of E(y) (a perfect initializer)",
             needs_true_kernel=True, iterative=True, checkpointable=True, progress=True, branches=("glkm",))


def register(pm: pluggy.PluginManager | None = None) -> pluggy.PluginManager:
    """Register this module as the plugin :data:`PLUGIN_NAME` in ``pm`` (default: the process-wide
    manager that ``glkm`` uses); a no-op when it is already there. Returns the manager."""
    pm = pm or get_plugin_manager()
    if not pm.has_plugin(PLUGIN_NAME):
        pm.register(sys.modules[__name__], name=PLUGIN_NAME)
    return pm


def main(argv=None) -> int:
    """``glkm`` with this study's method registered (arguments as the ``glkm`` command's)."""
    from glkm_prior.cli import main as glkm_main

    register()
    return glkm_main(argv)


if __name__ == "__main__":
    sys.exit(main())
