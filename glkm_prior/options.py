"""A method's options: one dataclass per method, declared at registration
(``register(name, run, description, options=MyOptions)``) and checked once by the host
(:func:`glkm_prior.plugins.check_options`) before anything runs.

The dataclass lists every option a user may set (``deblur(**options)``, ``glkm deblur --option
k=v``, ``glkm eval --option k=v``) with its type and the default the method uses; its
``__post_init__`` may refuse bad values (raise :class:`~glkm_prior.errors.InvalidInputError` or
``ValueError``). The host checks names and types, builds the dataclass once to run those checks,
and passes on only the keys the caller gave: the method's own defaults stay where they are.

Types understood: ``int`` (not ``bool``), ``float`` (an ``int`` too), ``bool``, ``str``, ``dict``,
``list`` / ``tuple`` (either, from JSON), ``X | None``, ``Literal[...]`` (choices) and ``Any``.
:func:`options_dataclass` builds such a class from a method's existing defaults (a dict such as
``fast``'s ``DEFAULTS`` or a config dataclass), so the defaults have one source.
"""

from __future__ import annotations

import copy
import dataclasses
import types
from typing import Any, Callable, Iterable, Literal, Union, get_args, get_origin, get_type_hints

from .errors import InvalidInputError

_SEQUENCES = (tuple, list)


def type_name(tp) -> str:
    """``tp`` as a short readable word (``int``, ``float | None``, ``'none' | 'prior'``)."""
    if tp is Any:
        return "any"
    if tp is type(None) or tp is None:
        return "None"
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin is not None:
        inner = ", ".join("..." if a is Ellipsis else type_name(a) for a in args)
        return f"{origin.__name__}[{inner}]" if args else origin.__name__
    return getattr(tp, "__name__", repr(tp))


def _sequence_matches(value, tp, origin, args) -> bool:
    if not isinstance(value, _SEQUENCES):
        return False
    if not args:
        return True
    if len(args) == 2 and args[1] is Ellipsis:
        return all(matches(v, args[0]) for v in value)
    if origin is tuple:
        return len(value) == len(args) and all(matches(v, a) for v, a in zip(value, args))
    return all(matches(v, args[0]) for v in value)


def matches(value, tp) -> bool:
    """Whether ``value`` is of the option type ``tp`` (module docstring)."""
    if tp is Any:
        return True
    if tp is type(None) or tp is None:
        return value is None
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        return any(matches(value, a) for a in args)
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp in _SEQUENCES or origin in _SEQUENCES:
        return _sequence_matches(value, tp, origin, args)
    if tp is dict or origin is dict:
        if not isinstance(value, dict):
            return False
        return not args or all(matches(k, args[0]) and matches(v, args[1]) for k, v in value.items())
    return isinstance(value, tp) if isinstance(tp, type) else True


def option_fields(cls) -> list[tuple[str, Any, Any]]:
    """``[(name, type, default)]`` of an options dataclass (default ``dataclasses.MISSING`` when none)."""
    hints = get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        if f.init:
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING)
            rows.append((f.name, hints.get(f.name, Any), default))
    return rows


def check_options(owner: str, cls, options: dict) -> dict:
    """``options`` checked against the options dataclass ``cls``: an unknown key, a value of the
    wrong type or a value its ``__post_init__`` refuses raises :class:`InvalidInputError` naming
    ``owner`` (e.g. ``"method 'fast'"``). Returns the keys given (a new dict)."""
    fields = {name: tp for name, tp, _ in option_fields(cls)}
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise InvalidInputError(f"{owner}: unknown option(s) {', '.join(unknown)}; its options: "
                                f"{', '.join(fields) or 'none'}")
    for name, value in options.items():
        if not matches(value, fields[name]):
            raise InvalidInputError(f"{owner}: option {name} must be {type_name(fields[name])}, got {value!r}")
    try:
        cls(**options)
    except (InvalidInputError, ValueError, TypeError) as exc:
        raise InvalidInputError(f"{owner}: {exc}") from exc
    return dict(options)


def _inferred_type(value):
    if value is None:
        return Any
    return tuple if isinstance(value, list) else type(value)


def _field(default):
    if isinstance(default, (dict, list, set)):
        return dataclasses.field(default_factory=lambda d=default: copy.deepcopy(d))
    return dataclasses.field(default=default)


def options_dataclass(name: str, *sources, exclude: Iterable[str] = (), typed: dict | None = None,
                      extra: Iterable[tuple[str, Any, Any]] = (), check: Callable | None = None,
                      module: str | None = None) -> type:
    """A frozen options dataclass ``name`` from a method's existing defaults, in order: each of
    ``sources`` is a dict of defaults (types from the values: ``int``, ``float``, ``bool``, ``str``,
    ``tuple``, ``dict``; None -> any) or a dataclass (its fields' types and defaults); ``extra``
    adds ``(name, type, default)`` rows (e.g. the run function's keywords), ``typed`` overrides
    types (e.g. ``Literal`` choices), ``exclude`` drops names (e.g. ``iters``: the host's own).
    ``check(self)`` becomes ``__post_init__`` (value checks)."""
    rows: dict[str, tuple[Any, Any]] = {}
    for source in sources:
        if dataclasses.is_dataclass(source):
            rows.update({n: (tp, d) for n, tp, d in option_fields(source)})
        else:
            rows.update({n: (_inferred_type(v), v) for n, v in source.items()})
    rows.update({n: (tp, d) for n, tp, d in extra})
    for n, tp in (typed or {}).items():
        rows[n] = (tp, rows[n][1])
    dropped = set(exclude)
    specs = [(n, tp, _field(d)) for n, (tp, d) in rows.items() if n not in dropped]
    namespace = {"__post_init__": check} if check is not None else {}
    cls = dataclasses.make_dataclass(name, specs, frozen=True, namespace=namespace)
    if module is not None:
        cls.__module__ = module
    return cls


def positive(self, *names: str, allow_zero: bool = False) -> None:
    """Raise :class:`InvalidInputError` when one of ``names`` (not None) is not > 0 (>= 0 with
    ``allow_zero``): a helper for ``__post_init__``."""
    for n in names:
        value = getattr(self, n)
        if value is not None and (value < 0 or (value == 0 and not allow_zero)):
            raise InvalidInputError(f"{n} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
