"""The whole extension surface of glkm_prior, one hook per function.

A plugin is any module or object with functions decorated ``@glkm_prior.hookimpl`` named as
below. Built-in adapters and third-party ones are registered the same way (``pm.register``):
the built-ins from the list ``glkm_adapters.BUILTIN_PLUGINS``, third-party ones from entry
points of the group ``glkm_prior`` in the plugin's packaging (see README, "Writing an adapter").

Vocabulary:

* a **kernel branch** is the part of a blind-deblurring loop that produces the blur kernel:
  an ``nn.Module`` (:class:`glkm_prior.branch.KernelBranch`) whose ``parameters()`` are exactly
  what the loop's optimiser updates, whose ``forward()`` returns the current kernel
  (B, 1, K, K) (cross-correlation, >= 0, sums to 1), initialised from the blurry image; a
  per-step projection, if the branch needs one, is its own ``project_(step)`` method, which
  every loop calls right after ``optimizer.step()`` (no hook: a plugin supplies it with the
  branch class its factory returns);
* a **method** is a whole deblurring loop (an image prior such as DIP or VDIP plus the
  kernel branch it asks for by name).
"""

import pluggy

hookspec = pluggy.HookspecMarker("glkm_prior")


@hookspec
def glkm_kernel_branches(register):
    """Offer kernel branches: call ``register(name, factory, description, branch_class=None)``
    once per branch.

    ``factory(blurry, kernel_size, **options) -> KernelBranch`` builds the branch for one run:
    ``blurry`` is (1, 1|3, H, W) in [0, 1]; the returned module is already in its initial
    state (e.g. GLKM: w = G.head(E(y)); native: a randomly initialised MLP) and carries
    ``default_lr``, the learning rate its reference implementation uses.
    ``branch_class``: the KernelBranch subclass the factory returns; hosts read its class
    properties (``uses_prior``, ``capacity``) before building. Left out: KernelBranch's defaults
    (no prior, any kernel size).
    """


@hookspec
def glkm_methods(register):
    """Offer deblurring methods: call ``register(name, run, description, *,
    needs_true_kernel=False, iterative=False, checkpointable=False, progress=False,
    branches=None, options=None)`` once per method.

    ``run(blurry, *, kernel_size, kernel_branch, iters, seed, **options) -> dict``
    returns at least ``{"image": (1, C, H, W) tensor in [0, 1], "kernel": (1, 1, K, K)}``.
    ``options``: a dataclass listing every option of ``run`` a user may set, with its type and
    default (:mod:`glkm_prior.options`); the host checks the caller's options against it once,
    before ``run`` is called (without it: against ``run``'s signature). A ``run`` that names
    ``context`` gets the host's :class:`glkm_prior.context.RunContext` (plugin manager, prior
    source, warnings).

    The keywords declare what ``run`` needs and offers (stored as
    :class:`glkm_prior.plugins.MethodSpec`); hosts (``glkm deblur``, ``glkm eval``,
    :func:`glkm_prior.api.deblur`) read them and never guess from ``run``'s signature:

    * ``needs_true_kernel``: ``run`` takes ``true_kernel=`` (the ground-truth kernel, passed by
      the benchmark when the sample has one);
    * ``iterative``: an optimisation loop of ``iters`` steps that reports them through
      ``callback(step, image, kernel)`` (a convergence trace);
    * ``checkpointable``: ``run`` takes ``checkpoint=`` (a folder to save to and resume from)
      and ``checkpoint_every=`` (steps);
    * ``progress``: ``run`` takes ``progress=`` (a tqdm bar on stderr when True);
    * ``branches``: the kernel branch names ``run`` accepts, a tuple; None (default): any
      registered branch. Asking for another raises InvalidInputError before ``run`` is called.

    A method registered without them gets the defaults: no true kernel, no checkpoint, no
    ``progress`` argument, any branch.
    """

