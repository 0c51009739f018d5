"""The plugin host: one ``pluggy.PluginManager("glkm_prior")`` and the registries built from it.

Loading (as simonw's ``llm`` does it): the built-in plugins are one list of module names,
``glkm_adapters.BUILTIN_PLUGINS`` (name -> module), imported with importlib and registered with
``pm.register`` -- the same call that registers a third-party plugin -- so a new built-in
adapter needs no packaging metadata and stale metadata cannot hide one. Third-party plugins
come from entry points of the group ``glkm_prior``; an entry point that names a built-in
module or a built-in plugin's name (metadata of an older install) is ignored.

``GLKM_PLUGINS``: a comma-separated list of entry-point names restricts which *third-party*
plugins load (empty: none). It never removes a built-in, so the ``glkm`` and ``native``
kernel branches are always there. Tests build bare managers with ``load_plugins=False`` and
register plugins by hand.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Callable

import pluggy

from . import hookspecs
from .errors import InvalidInputError, PluginError
from .options import check_options as _check_declared, option_fields, type_name

PROJECT = "glkm_prior"
hookimpl = pluggy.HookimplMarker(PROJECT)

#: The package whose ``BUILTIN_PLUGINS`` list names the bundled adapters (the folder adapters/).
BUILTIN_PACKAGE = "glkm_adapters"

_manager: pluggy.PluginManager | None = None


def builtin_plugins() -> dict[str, str]:
    """The built-in plugins, name -> module path (``glkm_adapters.BUILTIN_PLUGINS``)."""
    return dict(importlib.import_module(BUILTIN_PACKAGE).BUILTIN_PLUGINS)


def make_plugin_manager(load_plugins: bool = True) -> pluggy.PluginManager:
    """A fresh manager with the hook specifications; with ``load_plugins`` the built-ins are
    registered, then the third-party entry points (``GLKM_PLUGINS`` filters the latter)."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    if load_plugins:
        register_builtins(pm)
        load_third_party(pm)
    return pm


def register_builtins(pm: pluggy.PluginManager) -> None:
    """Import every built-in module and ``pm.register`` it under its name."""
    for name, module in builtin_plugins().items():
        pm.register(importlib.import_module(module), name=name)


def load_third_party(pm: pluggy.PluginManager) -> int:
    """Register the entry points of the group ``glkm_prior`` allowed by ``GLKM_PLUGINS`` (all
    when unset), skipping modules of the built-in package (stale metadata). Loaded through
    pluggy, so ``describe`` knows each one's distribution. An entry point named like a
    registered plugin is refused (PluginError). Returns the number loaded."""
    allowed = os.environ.get("GLKM_PLUGINS")
    wanted = None if allowed is None else {n.strip() for n in allowed.split(",") if n.strip()}
    count = 0
    for ep in entry_points(group=PROJECT):
        if ep.module.split(".")[0] == BUILTIN_PACKAGE or (wanted is not None and ep.name not in wanted):
            continue
        if pm.has_plugin(ep.name):
            raise PluginError(f"entry point {ep.name!r} ({ep.value}) has the name of a registered plugin; rename it")
        count += pm.load_setuptools_entrypoints(PROJECT, name=ep.name)
    return count


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide manager (plugins loaded once)."""
    global _manager
    if _manager is None:
        _manager = make_plugin_manager()
    return _manager


@dataclass(frozen=True)
class MethodSpec:
    """What a method declares when it registers (``register(..., needs_true_kernel=, iterative=,
    checkpointable=, progress=, branches=)``); hosts read these instead of the run function's
    signature. The defaults are what an undeclared (third-party) method gets.

    ``needs_true_kernel``: the runner passes ``true_kernel=`` (the ground truth) when it has one;
    ``iterative``: an optimisation loop of ``iters`` steps that reports them to ``callback``;
    ``checkpointable``: takes ``checkpoint=`` (a folder) and ``checkpoint_every=``;
    ``progress``: takes ``progress=`` (a tqdm bar on stderr);
    ``branches``: the kernel branch names it accepts (None: any registered branch);
    ``options``: its options dataclass (:mod:`glkm_prior.options`; None: undeclared, the options
    are then checked against the run function's signature)."""

    needs_true_kernel: bool = False
    iterative: bool = False
    checkpointable: bool = False
    progress: bool = False
    branches: tuple[str, ...] | None = None
    options: type | None = None

    def keywords(self) -> set[str]:
        """The host's keywords a call may carry beside the options: ``iters`` (every method's) and
        those these declarations add."""
        return {"iters"} | ({"true_kernel"} if self.needs_true_kernel else set()) | (
            {"progress"} if self.progress else set()) | ({"checkpoint", "checkpoint_every"} if self.checkpointable else set())

    def declared(self) -> list[str]:
        """The declarations as short words (for ``glkm plugins``); [] for the defaults."""
        words = [w for w, on in (("needs the true kernel", self.needs_true_kernel), ("iterative", self.iterative),
                                 ("checkpointable", self.checkpointable), ("progress", self.progress)) if on]
        if self.branches is not None:
            words.append(f"branches: {'|'.join(self.branches)}")
        return words

    def as_dict(self) -> dict:
        return {"needs_true_kernel": self.needs_true_kernel, "iterative": self.iterative,
                "checkpointable": self.checkpointable, "progress": self.progress,
                "branches": list(self.branches) if self.branches is not None else None,
                "options": None if self.options is None else [
                    {"name": n, "type": type_name(tp), "default": None if d is dataclasses.MISSING else repr(d)}
                    for n, tp, d in option_fields(self.options)]}


@dataclass(frozen=True)
class Registration:
    """One offered kernel branch or method; ``branch_class``: the class a branch factory
    returns, as registered (None: not declared); ``spec``: a method's declarations."""

    name: str
    factory: Callable[..., Any]
    description: str
    plugin: str
    branch_class: type | None = None
    spec: MethodSpec = MethodSpec()


def _method_spec(name: str, plugin: str, *, needs_true_kernel: bool = False, iterative: bool = False,
                 checkpointable: bool = False, progress: bool = False, branches=None, options=None) -> MethodSpec:
    if branches is not None:
        if isinstance(branches, str) or not all(isinstance(b, str) for b in branches) or not branches:
            raise PluginError(f"method {name!r} ({plugin}): branches must be None or a non-empty tuple of "
                              f"kernel branch names, got {branches!r}")
        branches = tuple(branches)
    if options is not None and not (isinstance(options, type) and dataclasses.is_dataclass(options)):
        raise PluginError(f"method {name!r} ({plugin}): options must be a dataclass type, got {options!r}")
    return MethodSpec(bool(needs_true_kernel), bool(iterative), bool(checkpointable), bool(progress), branches, options)


def _collect(pm: pluggy.PluginManager, hook_name: str) -> dict[str, Registration]:
    found: dict[str, Registration] = {}
    hook = getattr(pm.hook, hook_name)
    for impl in hook.get_hookimpls():
        plugin = impl.plugin_name

        def add(name: str, registration: Registration, _plugin=plugin) -> None:
            if name in found:
                raise PluginError(f"{hook_name}: name {name!r} offered by both {found[name].plugin} and {_plugin}")
            found[name] = registration

        if hook_name == "glkm_methods":
            def register(name: str, factory: Callable[..., Any], description: str = "", *, _plugin=plugin,
                         **declared) -> None:
                add(name, Registration(name, factory, description, _plugin, spec=_method_spec(name, _plugin, **declared)))
        else:
            def register(name: str, factory: Callable[..., Any], description: str = "", branch_class: type | None = None,
                         _plugin=plugin) -> None:
                add(name, Registration(name, factory, description, _plugin, branch_class))

        impl.function(register=register)
    return found


def kernel_branches(pm: pluggy.PluginManager | None = None) -> dict[str, Registration]:
    """All kernel branches the registered plugins offer, by name."""
    return _collect(pm or get_plugin_manager(), "glkm_kernel_branches")


def methods(pm: pluggy.PluginManager | None = None) -> dict[str, Registration]:
    """All deblurring methods the registered plugins offer, by name."""
    return _collect(pm or get_plugin_manager(), "glkm_methods")


def _branch_registration(name: str, pm: pluggy.PluginManager | None) -> Registration:
    offered = kernel_branches(pm)
    if name not in offered:
        raise PluginError(f"unknown kernel branch {name!r}; registered: {', '.join(sorted(offered)) or 'none'}")
    return offered[name]


def branch_class(name: str, pm: pluggy.PluginManager | None = None) -> type:
    """The class the kernel branch ``name`` builds, as its plugin registered it
    (``register(..., branch_class=)``); :class:`~glkm_prior.branch.KernelBranch` when it names
    none, so an undeclared branch has the base class's properties (no prior, ``default_lr``)."""
    from .branch import KernelBranch

    return _branch_registration(name, pm).branch_class or KernelBranch


def branch_uses_prior(name: str, pm: pluggy.PluginManager | None = None) -> bool:
    """Whether the kernel branch ``name`` needs a learned prior (its class's ``uses_prior``);
    False for a name no plugin offers (the method that builds it reports that)."""
    if name not in kernel_branches(pm):
        return False
    return bool(branch_class(name, pm).uses_prior)


def make_kernel_branch(name: str, blurry, kernel_size: int, pm: pluggy.PluginManager | None = None, **options):
    """Build the kernel branch ``name`` for one run (see ``hookspecs.glkm_kernel_branches``); a
    declared ``branch_class`` must be what the factory returns."""
    registration = _branch_registration(name, pm)
    branch = registration.factory(blurry, kernel_size, **options)
    if registration.branch_class is not None and not isinstance(branch, registration.branch_class):
        raise PluginError(f"kernel branch {name!r} ({registration.plugin}) registered branch_class "
                          f"{registration.branch_class.__name__} but its factory returned {type(branch).__name__}")
    return branch


def build_kernel_branch(kernel_branch, blurry, kernel_size: int, *, context=None, seed=None, prior=None,
                        branch_options: dict | None = None, aliases: dict | None = None):
    """What a method's loop does to get its kernel branch: ``kernel_branch`` is a ready-made
    :class:`~glkm_prior.branch.KernelBranch` (returned as is) or a registered name (``aliases``
    maps e.g. 'native' to a method's own native branch), built by :func:`make_kernel_branch`
    with ``branch_options`` plus the loop's ``prior`` and ``seed``, through the plugin manager of
    ``context`` (a :class:`~glkm_prior.context.RunContext`; None: the defaults); without a
    ``prior``, the context's ``weights`` (if any) go to the branch. Returns ``(branch, name)``."""
    from .branch import KernelBranch

    if isinstance(kernel_branch, KernelBranch):
        return kernel_branch, getattr(kernel_branch, "name", type(kernel_branch).__name__)
    name = (aliases or {}).get(kernel_branch, kernel_branch)
    opts = dict(branch_options or {})
    weights = getattr(context, "weights", None)
    if prior is not None:
        opts.setdefault("prior", prior)
    elif weights is not None:
        opts.setdefault("weights", weights)
    opts.setdefault("seed", seed)
    pm = context.plugin_manager() if context is not None else None
    return make_kernel_branch(name, blurry, kernel_size, pm=pm, **opts), str(name)


def get_method(name: str, pm: pluggy.PluginManager | None = None) -> Registration:
    offered = methods(pm)
    if name not in offered:
        raise PluginError(f"unknown method {name!r}; registered: {', '.join(sorted(offered)) or 'none'}")
    return offered[name]


def check_method_branch(registration: Registration, kernel_branch) -> None:
    """Raise :class:`InvalidInputError` when the method declared ``branches`` and
    ``kernel_branch`` (a name) is not one of them."""
    branches = registration.spec.branches
    if branches is not None and isinstance(kernel_branch, str) and kernel_branch not in branches:
        raise InvalidInputError(f"method {registration.name!r} takes the kernel branch {' or '.join(map(repr, branches))}, "
                                f"not {kernel_branch!r}")


def describe(pm: pluggy.PluginManager | None = None) -> list[dict]:
    """Registered plugins with the hooks each implements (for ``glkm plugins``)."""
    pm = pm or get_plugin_manager()
    rows = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        dist = "built-in" if getattr(plugin, "__name__", None) in builtin_plugins().values() else None
        for p, d in pm.list_plugin_distinfo():
            if p is plugin:
                dist = f"{d.project_name} {d.version}"
        rows.append({"name": name, "hooks": hooks, "distribution": dist})
    return rows


# ----------------------------------------------------------------------------- calling a method
def accepts_keyword(fn, name: str, explicit_only: bool = False) -> bool:
    """Whether ``fn`` can be called with keyword ``name`` (named, or through ``**kwargs`` unless
    ``explicit_only``)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return not explicit_only
    if name in params and params[name].kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
        return True
    return not explicit_only and any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params.values())


def refuse_unaccepted_options(method_name: str, fn, options) -> None:
    """Raise :class:`InvalidInputError` naming the ``options`` keys ``fn`` cannot take."""
    unaccepted = sorted(k for k in options if not accepts_keyword(fn, k))
    if unaccepted:
        raise InvalidInputError(f"method {method_name!r} has no option {', '.join(unaccepted)}")


def check_options(registration: Registration, options: dict) -> dict:
    """The one check of a method's options (``deblur(**options)``, ``--option``), before it runs:
    against its declared options dataclass (:func:`glkm_prior.options.check_options`: unknown
    keys, types, value checks) -- or, for a method registered without ``options`` (a third-party
    one), against its run function's signature (:func:`refuse_unaccepted_options`). The host
    keywords its declarations add (``MethodSpec.keywords``: ``checkpoint``, ...) pass unchecked.
    Returns the options given, as a new dict."""
    options = dict(options)
    cls = registration.spec.options
    if cls is None:
        refuse_unaccepted_options(registration.name, registration.factory, options)
        return options
    own = {k: v for k, v in options.items() if k not in registration.spec.keywords()}
    _check_declared(f"method {registration.name!r}", cls, own)
    return options


def takes_context(registration: Registration) -> bool:
    """Whether the method's run function names ``context`` (a :class:`~glkm_prior.context.RunContext`:
    the hosts pass theirs; every built-in takes one)."""
    return accepts_keyword(registration.factory, "context", explicit_only=True)


def takes_option(registration: Registration, name: str) -> bool:
    """Whether the method has the option ``name`` (declared, else a named keyword of its run function)."""
    if registration.spec.options is None:
        return accepts_keyword(registration.factory, name, explicit_only=True)
    return any(n == name for n, _, _ in option_fields(registration.spec.options))
