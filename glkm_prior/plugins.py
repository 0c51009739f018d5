"""The plugin host: one ``pluggy.PluginManager("glkm_prior")`` and the registries built from it.

Plugins (built-in adapters included) are loaded from entry points of the group
``glkm_prior``. Set ``GLKM_PLUGINS`` to a comma-separated list of entry-point names to load
only those (empty: none). Tests build managers with ``load_entrypoints=False`` and register
plugins by hand.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any, Callable

import pluggy

from . import hookspecs
from .errors import PluginError

PROJECT = "glkm_prior"
hookimpl = pluggy.HookimplMarker(PROJECT)

# Declared as entry points in setup.cfg; registered by module path only when the package
# runs from a source tree that was never pip-installed (no entry-point metadata at all).
BUILTIN_PLUGINS = {
    "glkm": "glkm_adapters.glkm_branch",
    "native": "glkm_adapters.native_branch",
    "nonblind": "glkm_adapters.nonblind",
    "dip": "glkm_adapters.dip",
    "vdip": "glkm_adapters.vdip",
    "fast": "glkm_adapters.fast",
    "l0": "glkm_adapters.l0",
    "svola": "glkm_adapters.svola",
    "bird": "glkm_adapters.bird",
    "blinddps": "glkm_adapters.blinddps",
}

_manager: pluggy.PluginManager | None = None


def make_plugin_manager(load_entrypoints: bool = True) -> pluggy.PluginManager:
    """A fresh manager with the hook specifications; entry points loaded on request."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    if load_entrypoints:
        _load_entrypoints(pm)
    return pm


def _load_entrypoints(pm: pluggy.PluginManager) -> None:
    allowed = os.environ.get("GLKM_PLUGINS")
    if allowed is None:
        found = pm.load_setuptools_entrypoints(PROJECT)
    else:
        names = [n.strip() for n in allowed.split(",") if n.strip()]
        found = sum(pm.load_setuptools_entrypoints(PROJECT, name=n) for n in names)
    if found == 0 and allowed is None and not _has_entrypoint_metadata():
        for name, module in BUILTIN_PLUGINS.items():
            pm.register(importlib.import_module(module), name=name)


def _has_entrypoint_metadata() -> bool:
    from importlib.metadata import entry_points

    return bool(entry_points(group=PROJECT))


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide manager (entry points loaded once)."""
    global _manager
    if _manager is None:
        _manager = make_plugin_manager()
    return _manager


@dataclass(frozen=True)
class Registration:
    """One offered kernel branch or method."""

    name: str
    factory: Callable[..., Any]
    description: str
    plugin: str


def _collect(pm: pluggy.PluginManager, hook_name: str) -> dict[str, Registration]:
    found: dict[str, Registration] = {}
    hook = getattr(pm.hook, hook_name)
    for impl in hook.get_hookimpls():

        def register(name: str, factory: Callable[..., Any], description: str = "", _plugin=impl.plugin_name) -> None:
            if name in found:
                raise PluginError(f"{hook_name}: name {name!r} offered by both {found[name].plugin} and {_plugin}")
            found[name] = Registration(name, factory, description, _plugin)

        impl.function(register=register)
    return found


def kernel_branches(pm: pluggy.PluginManager | None = None) -> dict[str, Registration]:
    """All kernel branches the registered plugins offer, by name."""
    return _collect(pm or get_plugin_manager(), "glkm_kernel_branches")


def methods(pm: pluggy.PluginManager | None = None) -> dict[str, Registration]:
    """All deblurring methods the registered plugins offer, by name."""
    return _collect(pm or get_plugin_manager(), "glkm_methods")


def make_kernel_branch(name: str, blurry, kernel_size: int, pm: pluggy.PluginManager | None = None, **options):
    """Build the kernel branch ``name`` for one run (see ``hookspecs.glkm_kernel_branches``)."""
    offered = kernel_branches(pm)
    if name not in offered:
        raise PluginError(f"unknown kernel branch {name!r}; registered: {', '.join(sorted(offered)) or 'none'}")
    return offered[name].factory(blurry, kernel_size, **options)


def build_kernel_branch(kernel_branch, blurry, kernel_size: int, *, pm: pluggy.PluginManager | None = None, seed=None,
                        prior=None, weights=None, branch_options: dict | None = None, aliases: dict | None = None):
    """What a method's loop does to get its kernel branch: ``kernel_branch`` is a ready-made
    :class:`~glkm_prior.branch.KernelBranch` (returned as is) or a registered name (``aliases``
    maps e.g. 'native' to a method's own native branch), built by :func:`make_kernel_branch`
    with ``branch_options`` plus the loop's ``prior``, ``weights`` and ``seed``.
    Returns ``(branch, name)``."""
    from .branch import KernelBranch

    if isinstance(kernel_branch, KernelBranch):
        return kernel_branch, getattr(kernel_branch, "name", type(kernel_branch).__name__)
    name = (aliases or {}).get(kernel_branch, kernel_branch)
    opts = dict(branch_options or {})
    if prior is not None:
        opts.setdefault("prior", prior)
    if weights is not None:
        opts.setdefault("weights", weights)
    opts.setdefault("seed", seed)
    return make_kernel_branch(name, blurry, kernel_size, pm=pm, **opts), str(name)


def get_method(name: str, pm: pluggy.PluginManager | None = None) -> Registration:
    offered = methods(pm)
    if name not in offered:
        raise PluginError(f"unknown method {name!r}; registered: {', '.join(sorted(offered)) or 'none'}")
    return offered[name]


def describe(pm: pluggy.PluginManager | None = None) -> list[dict]:
    """Registered plugins with the hooks each implements (for ``glkm plugins``)."""
    pm = pm or get_plugin_manager()
    rows = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        dist = None
        for p, d in pm.list_plugin_distinfo():
            if p is plugin:
                dist = f"{d.project_name} {d.version}"
        rows.append({"name": name, "hooks": hooks, "distribution": dist})
    return rows
