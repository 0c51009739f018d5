"""The method contract's options (issue 26 item 2): each method registers an options dataclass,
checked once by the host (``plugins.check_options``) in ``deblur``, the benchmark runner and the
CLI; a method registered without one keeps the signature check."""

import inspect
from dataclasses import dataclass
from typing import Literal

import pytest
import torch
from conftest import plugin_manager

from glkm_prior import api, plugins
from glkm_prior.bench_config import BenchConfig
from glkm_prior.bench_runner import PairRunner
from glkm_prior.errors import InvalidInputError, PluginError
from glkm_prior.options import option_fields
from glkm_prior.physics import delta_kernel
from glkm_prior.plugins import hookimpl, make_plugin_manager
from glkm_prior.context import RunContext


@dataclass(frozen=True)
class ToyOptions:
    lr: float = 0.1
    steps: int = 3
    mode: Literal["a", "b"] = "a"
    scales: tuple[float, ...] | None = None
    extra: dict | None = None

    def __post_init__(self):
        if self.lr <= 0:
            raise InvalidInputError(f"lr must be > 0, got {self.lr}")


def _toy_plugin(seen):
    def run(blurry, *, kernel_size, kernel_branch="glkm", seed=0, **options):
        seen.append(options)
        return {"image": blurry.clone(), "kernel": delta_kernel(kernel_size), "info": {}}

    def strict(blurry, *, kernel_size, kernel_branch="glkm", seed=0, lr=1.0):
        seen.append({"lr": lr})
        return {"image": blurry.clone(), "kernel": delta_kernel(kernel_size), "info": {}}

    class Toy:
        @hookimpl
        def glkm_methods(self, register):
            register("toy", run, "declares its options", options=ToyOptions)
            register("third", strict, "a third-party method without declared options")

    return Toy()


@pytest.fixture
def toy():
    seen = []
    return plugin_manager(native=__import__("glkm_adapters.native_branch").native_branch, toy=_toy_plugin(seen)), seen


BLURRY = torch.rand(1, 1, 32, 32)


def _deblur(pm, method="toy", **options):
    return api.deblur(BLURRY, method, kernel_size=7, kernel_branch="native", context=RunContext(pm=pm), **options)


def test_an_unknown_option_is_refused_with_the_method_s_options(toy, tmp_path):
    pm, seen = toy
    with pytest.raises(InvalidInputError, match=r"method 'toy': unknown option\(s\) typo; its options: lr, steps, mode, "
                                                r"scales, extra"):
        _deblur(pm, typo=1)
    cfg = BenchConfig(dataset="d", method="toy", out=str(tmp_path), options={"typo": 1})
    with pytest.raises(InvalidInputError, match="unknown option"):  # the runner: when configured, before any image
        PairRunner(cfg, [], None, "", context=RunContext(pm=pm))
    assert seen == []


@pytest.mark.parametrize("option, value, expected", [
    ("steps", 2.5, "int"), ("steps", True, "int"), ("lr", "0.1", "float"), ("mode", "c", "'a' | 'b'"),
    ("scales", [1, "x"], r"tuple\[float, ...\] \| None"), ("extra", [1], r"dict \| None")])
def test_a_value_of_the_wrong_type_is_refused(toy, option, value, expected):
    pm, seen = toy
    with pytest.raises(InvalidInputError, match=rf"method 'toy': option {option} must be {expected}, got "):
        _deblur(pm, **{option: value})
    assert seen == []


def test_post_init_checks_values_and_valid_options_reach_the_method(toy, tmp_path):
    pm, seen = toy
    with pytest.raises(InvalidInputError, match="method 'toy': lr must be > 0, got 0"):
        _deblur(pm, lr=0)
    _deblur(pm, lr=1, scales=[1, 2.5], mode="b", extra=None)  # float takes an int; a list for a tuple (JSON)
    assert seen == [{"lr": 1, "scales": [1, 2.5], "mode": "b", "extra": None}]  # only the keys given
    runner = PairRunner(BenchConfig(dataset="d", method="toy", out=str(tmp_path), options={"steps": 5}), [], None, "",
                        context=RunContext(pm=pm))
    runner._call(runner.method, BLURRY, kernel_size=7, seed=0, options=runner.options)
    assert seen[-1] == {"steps": 5}


def test_a_method_without_declared_options_keeps_the_signature_check(toy):
    pm, seen = toy
    assert plugins.get_method("third", pm).spec.options is None
    _deblur(pm, "third", lr=2.0)
    assert seen == [{"lr": 2.0}]
    with pytest.raises(InvalidInputError, match="method 'third' has no option typo"):
        _deblur(pm, "third", typo=1)


def test_options_must_be_a_dataclass():
    class Bad:
        @hookimpl
        def glkm_methods(self, register):
            register("bad", lambda blurry, **_: None, options={"lr": 1.0})

    with pytest.raises(PluginError, match="options must be a dataclass type"):
        plugins.methods(plugin_manager(bad=Bad()))


HOST_KEYWORDS = {"kernel_size", "kernel_branch", "iters", "seed", "progress", "prior", "callback", "checkpoint",
                 "checkpoint_every", "true_kernel", "context"}


def test_every_builtin_declares_its_options_with_the_run_function_s_defaults():
    """The options dataclass lists every keyword the run function names (less the host's) with
    the same default, so the two cannot drift."""
    for name, reg in plugins.methods(make_plugin_manager()).items():
        cls = reg.spec.options
        assert cls is not None, name
        fields = {n: d for n, _, d in option_fields(cls)}
        cls()  # the defaults pass the value checks
        for p in inspect.signature(reg.factory).parameters.values():
            if p.kind is p.KEYWORD_ONLY and p.name not in HOST_KEYWORDS:
                assert p.name in fields, (name, p.name)
                assert fields[p.name] == p.default, (name, p.name)
        assert not HOST_KEYWORDS & set(fields), name


def test_the_defaults_come_from_the_method_s_own_constants():
    from glkm_adapters import dip, fast, l0, svola, vdip

    from glkm_prior.estimation import L0_DEFAULTS

    assert {n: d for n, _, d in option_fields(fast.FastOptions) if n in fast.DEFAULTS} == {
        k: v for k, v in fast.DEFAULTS.items() if k != "iters"}
    l0_fields = {n: d for n, _, d in option_fields(l0.L0Options)}
    for source in (L0_DEFAULTS, l0.REFINE, l0.SELECT, {"max_side": l0.MAX_SIDE}):
        assert all(l0_fields[k] == v for k, v in source.items() if k != "iters")
    assert {n: d for n, _, d in option_fields(svola.SVOLAFastOptions)}["window_scale"] == svola.WINDOW_SCALE
    for options, config in ((dip.DIPOptions, dip.DIPConfig), (vdip.VDIPOptions, vdip.VDIPConfig)):
        defaults = config()
        assert all(getattr(defaults, n) == d for n, _, d in option_fields(options) if hasattr(defaults, n))


def test_builtin_methods_refuse_bad_options_before_running():
    blurry = torch.rand(1, 1, 48, 48)
    for method, options, message in [
        ("fast", {"kernel_steps": "5"}, "option kernel_steps must be int"),
        ("fast", {"kernel_steps": 0}, "kernel_steps must be >= 1"),
        ("l0", {"select": "prior", "refine": "glkm"}, "cannot be combined"),
        ("l0", {"refine": "bogus"}, "option refine must be 'none' | 'project'"),
        ("dip", {"lr_image": -1.0}, "lr_image must be > 0"),
        ("identity", {"lam": 1e-3}, r"unknown option\(s\) lam; its options: none"),
    ]:
        with pytest.raises(InvalidInputError, match=message):
            api.deblur(blurry, method, kernel_size=9, kernel_branch="native", **options)


def test_check_options_lets_the_declared_host_keywords_through():
    reg = plugins.get_method("dip", make_plugin_manager())
    assert plugins.check_options(reg, {"checkpoint": "x", "checkpoint_every": 5, "lr_image": 0.02}) == {
        "checkpoint": "x", "checkpoint_every": 5, "lr_image": 0.02}
    with pytest.raises(InvalidInputError, match="unknown option"):
        plugins.check_options(plugins.get_method("fast", make_plugin_manager()), {"checkpoint": "x"})


def test_readme_method_example_runs(monkeypatch, capsys):
    """The README's method-contract example (``register(..., options=...)``) runs as written."""
    import re

    from conftest import REPO

    from glkm_prior.plugins import get_plugin_manager

    match = re.search(r"<!-- method-example -->\s*```python\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    assert match, "README must contain the method example block"
    monkeypatch.chdir(REPO)
    namespace = {}
    try:
        exec(compile(match.group(1), "README.md", "exec"), namespace)
    finally:
        get_plugin_manager().unregister(name="my-methods")
    assert namespace["result"]["image"].shape == namespace["blurry"].shape
    printed = capsys.readouterr().out.splitlines()
    assert printed == ["method 'unsharp': option amount must be float, got '0.5'",
                       "method 'unsharp': amount must be >= 0, got -1",
                       "method 'unsharp': unknown option(s) amuont; its options: amount"]


def test_glkm_plugins_lists_the_options(capsys):
    import json

    from glkm_prior.cli import main

    assert main(["plugins", "--options"]) == 0
    out = capsys.readouterr().out
    assert "      options: lam: float | None = None" in out  # true-kernel
    assert "      options: none" in out  # identity
    assert "refine: 'none' | 'project' | 'glkm' | 'levels' = 'none'" in out  # l0's choices
    assert main(["plugins", "--json"]) == 0
    fast = json.loads(capsys.readouterr().out)["methods"]["fast"]["options"]
    assert {"name": "kernel_steps", "type": "int", "default": "50"} in fast
