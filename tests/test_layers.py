"""Layering of the two packages, read from their source (ast; nothing is imported to find edges).

Rules (README "Layout", issue 26):

* no import cycle between modules of ``glkm_prior`` and ``glkm_adapters``;
* the core (``glkm_prior``) never imports ``glkm_adapters`` (the built-in adapters are registered
  by module name through the plugin host, ``glkm_adapters.BUILTIN_PLUGINS``; that is not an
  import statement), no exceptions;
* nothing outside ``glkm_prior.cli`` imports it or its modules (the command line sits on top).

Every import statement counts, also the lazy ones inside functions: a lazy import still ties
the modules together. ``from pkg import name`` depends on ``pkg.name`` when that is a module,
else on ``pkg`` itself (its ``__init__``); importing ``pkg.sub`` is not counted as depending
on ``pkg/__init__``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import glkm_adapters
import glkm_prior

PACKAGES = {"glkm_prior": Path(glkm_prior.__file__).parent, "glkm_adapters": Path(glkm_adapters.__file__).parent}


def module_files() -> dict[str, Path]:
    """Dotted module name -> source file, for every .py file of both packages."""
    found = {}
    for package, root in PACKAGES.items():
        for path in sorted(root.rglob("*.py")):
            parts = [package, *path.relative_to(root).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imported(node, module: str, path: Path, known) -> set[str]:
    if isinstance(node, ast.Import):
        candidates = [alias.name for alias in node.names]
    else:
        if node.level:
            base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
            base = base[: len(base) - node.level + 1]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module
        candidates = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in known else prefix for a in node.names]
    out = set()
    for name in candidates:  # the longest prefix that is one of our modules
        parts = name.split(".")
        for i in range(len(parts), 0, -1):
            if ".".join(parts[:i]) in known:
                out.add(".".join(parts[:i]))
                break
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules of both packages it imports (anywhere in its source)."""
    files = module_files()
    graph = {}
    for module, path in files.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                deps |= _imported(node, module, path, files)
        graph[module] = deps - {module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_walker_sees_the_imports():
    graph = import_graph()
    assert {"glkm_prior.cli", "glkm_prior.physics", "glkm_adapters.fast", "glkm_prior.estimation.pyramid"} <= set(graph)
    assert "glkm_prior.hub" in graph["glkm_prior.prior"]            # from . import hub
    assert "glkm_prior.physics" in graph["glkm_prior.deconv.operators"]  # from ..physics import ...
    assert "glkm_prior.deconv.wiener" in graph["glkm_prior.deconv"]  # from .wiener import ...
    assert "glkm_prior.prior" in graph["glkm_adapters.fast"]        # from glkm_prior.prior import ...
    assert "glkm_prior.plugins" in graph["glkm_prior"]              # the package's __init__
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_core_does_not_import_the_adapters():
    upward = {(m, d) for m, deps in import_graph().items() if m.split(".")[0] == "glkm_prior"
              for d in deps if d.split(".")[0] == "glkm_adapters"}
    assert not upward, f"upward imports: {sorted(upward)}"


def _in_cli(module: str) -> bool:
    return module == "glkm_prior.cli" or module.startswith("glkm_prior.cli.")


def test_nothing_imports_the_cli():
    """No module outside the CLI package imports it or one of its modules (glkm_prior/cli/)."""
    assert sorted(m for m, deps in import_graph().items() if not _in_cli(m) and any(_in_cli(d) for d in deps)) == []
