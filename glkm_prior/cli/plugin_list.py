"""``glkm plugins``: the registered plugins, kernel branches and methods."""

from __future__ import annotations

import argparse
import json


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("plugins", help="list registered plugins, their hooks, kernel branches and methods")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON instead of a table")
    p.add_argument("--options", action="store_true", help="also list each method's options (name, type, default)")
    p.set_defaults(func=cmd_plugins)
    return p


def cmd_plugins(args) -> int:
    from .. import plugins

    rows = plugins.describe()
    branches = plugins.kernel_branches()
    methods = plugins.methods()
    if args.json:
        print(json.dumps({
            "plugins": rows,
            "kernel_branches": {n: {"plugin": r.plugin, "description": r.description} for n, r in branches.items()},
            "methods": {n: {"plugin": r.plugin, "description": r.description, **r.spec.as_dict()}
                        for n, r in methods.items()},
        }, indent=2))
        return 0
    print("Plugins (built-in, then entry-point group 'glkm_prior'):")
    for row in rows:
        dist = f"  [{row['distribution']}]" if row["distribution"] else ""
        print(f"  {row['name']}{dist}: {', '.join(row['hooks']) or '(no hooks)'}")
    print("Kernel branches:")
    for name, reg in sorted(branches.items()):
        print(f"  {name:12s} {reg.description}  (from {reg.plugin})")
    print("Methods:")
    for name, reg in sorted(methods.items()):
        declared = "; ".join(reg.spec.declared())
        print(f"  {name:12s} {reg.description}  (from {reg.plugin}{'; ' + declared if declared else ''})")
        if args.options:
            _print_options(reg.spec.options)
    if not args.options:
        print("(glkm plugins --options lists each method's options)")
    return 0


def _print_options(cls) -> None:
    from ..options import option_fields, type_name

    if cls is None:
        print("      options: not declared (checked against the run function's keywords)")
        return
    rows = option_fields(cls)
    print(f"      options: {', '.join(f'{n}: {type_name(tp)} = {d!r}' for n, tp, d in rows) if rows else 'none'}")
    return 0
