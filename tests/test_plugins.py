import pickle
import re
import sys
import types

import pluggy
import pytest
import torch
from conftest import boxed_branch_plugin, mass_outside_centre, plugin_manager

from glkm_prior import plugins
from glkm_prior.branch import KernelBranch
from glkm_prior.errors import PluginError
from glkm_prior.physics import blur
from glkm_prior.plugins import hookimpl, make_plugin_manager
from glkm_prior.context import RunContext

README = plugins.__file__.replace("glkm_prior/plugins.py", "README.md")


def _builtin_manager():
    import glkm_adapters.glkm_branch
    import glkm_adapters.native_branch
    import glkm_adapters.nonblind

    return plugin_manager(glkm=glkm_adapters.glkm_branch, native=glkm_adapters.native_branch,
                          nonblind=glkm_adapters.nonblind)


def test_register_and_unregister_by_name_without_entry_points():
    pm = make_plugin_manager(load_plugins=False)
    assert plugins.kernel_branches(pm) == {}
    import glkm_adapters.native_branch

    pm.register(glkm_adapters.native_branch, name="native")
    assert set(plugins.kernel_branches(pm)) == {"native"}
    pm.unregister(name="native")
    assert plugins.kernel_branches(pm) == {}
    with pytest.raises(PluginError, match="unknown kernel branch 'native'"):
        plugins.make_kernel_branch("native", torch.rand(1, 1, 64, 64), 15, pm=pm)


BUILTIN_NAMES = {"glkm", "native", "nonblind", "dip", "vdip", "fast", "l0", "svola", "bird", "blinddps"}
THIRD_PARTY = '''
from glkm_prior import hookimpl

from glkm_adapters.native_branch import NativeMLPKernelBranch


@hookimpl
def glkm_kernel_branches(register):
    register("third", lambda blurry, kernel_size, **options: NativeMLPKernelBranch(kernel_size), "third-party branch")
'''


@pytest.fixture
def third_party(tmp_path, monkeypatch):
    """A third-party distribution on sys.path: module ``glkm_third_party`` declared as entry point
    'third'; its metadata also carries stale built-in entries (an older install's, one of them
    of a module that no longer exists), which the host must ignore."""
    (tmp_path / "glkm_third_party.py").write_text(THIRD_PARTY)
    info = tmp_path / "glkm_third_party-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: glkm-third-party\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[glkm_prior]\nthird = glkm_third_party\nglkm = glkm_adapters.glkm_branch\n"
                                           "layouts = glkm_adapters.layouts\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("GLKM_PLUGINS", raising=False)
    yield
    sys.modules.pop("glkm_third_party", None)


def _names(pm):
    return {name for name, _ in pm.list_name_plugin()}


def test_builtins_register_from_one_list_through_pm_register(monkeypatch):
    import glkm_adapters

    assert set(glkm_adapters.BUILTIN_PLUGINS) == set(plugins.builtin_plugins()) == BUILTIN_NAMES
    calls = []
    real = pluggy.PluginManager.register
    monkeypatch.setattr(pluggy.PluginManager, "register",
                        lambda self, plugin, name=None: calls.append(name) or real(self, plugin, name))
    pm = make_plugin_manager()
    assert calls[:len(BUILTIN_NAMES)] == list(glkm_adapters.BUILTIN_PLUGINS)
    assert BUILTIN_NAMES <= _names(pm)
    assert {"glkm", "native"} <= set(plugins.kernel_branches(pm))
    rows = {row["name"]: row for row in plugins.describe(pm)}
    assert rows["glkm"]["distribution"] == "built-in" and "glkm_kernel_branches" in rows["glkm"]["hooks"]


def test_packaging_declares_no_builtin_entry_points():
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(README.replace("README.md", "setup.cfg"))
    declared = cfg["options.entry_points"].get("glkm_prior", "")
    assert "glkm_adapters" not in declared


def test_third_party_entry_points_load_beside_the_builtins(third_party):
    pm = make_plugin_manager()
    assert _names(pm) == BUILTIN_NAMES | {"third"}  # stale 'glkm'/'layouts' entries ignored
    assert plugins.kernel_branches(pm)["third"].plugin == "third"
    assert {p.__name__: d.project_name for p, d in pm.list_plugin_distinfo()} == {"glkm_third_party": "glkm-third-party"}
    rows = {row["name"]: row for row in plugins.describe(pm)}
    assert rows["third"]["distribution"] == "glkm-third-party 1.0"


@pytest.mark.parametrize("value, third", [("third", True), ("gaussian", False), ("", False), (" third , x", True)])
def test_glkm_plugins_filters_third_parties_never_the_builtins(third_party, monkeypatch, value, third):
    monkeypatch.setenv("GLKM_PLUGINS", value)
    pm = make_plugin_manager()
    assert _names(pm) == BUILTIN_NAMES | ({"third"} if third else set())
    assert {"glkm", "native"} <= set(plugins.kernel_branches(pm))


def test_an_entry_point_may_not_take_a_builtin_name(tmp_path, third_party):
    info = tmp_path / "glkm_third_party-1.0.dist-info"
    (info / "entry_points.txt").write_text("[glkm_prior]\nnative = glkm_third_party\n")
    with pytest.raises(PluginError, match="'native'.*name of a registered plugin"):
        make_plugin_manager()


def test_branches_hold_exactly_their_parameters(tiny_prior):
    pm = _builtin_manager()
    y = torch.rand(1, 1, 80, 80)
    glkm = plugins.make_kernel_branch("glkm", y, 19, pm=pm, prior=tiny_prior)
    native = plugins.make_kernel_branch("native", y, 19, pm=pm, seed=0)
    assert [n for n, _ in glkm.named_parameters()] == ["w"]
    assert glkm.w.shape == (1, *tiny_prior.generator.latent_shape)
    assert torch.equal(glkm.w, tiny_prior.initial_latent(y, kernel_size=19))  # the default start (init=estimate)
    assert sum(p.numel() for p in native.parameters()) == 200 * 1000 + 1000 + 1000 * 19**2 + 19**2
    for branch in (glkm, native):
        k = branch()
        assert k.shape == (1, 1, 19, 19) and (k >= 0).all()
        assert k.sum().item() == pytest.approx(1.0, abs=1e-5)
        assert isinstance(branch, KernelBranch)
    assert glkm.default_lr == 5e-4 and native.default_lr == 1e-4


def test_glkm_branch_moves_prior_and_pickles(tiny_prior):
    branch = plugins.make_kernel_branch("glkm", torch.rand(1, 1, 64, 64), 15, pm=_builtin_manager(), prior=tiny_prior)
    branch.double()
    assert branch.w.dtype == torch.float64 and next(branch.prior.parameters()).dtype == torch.float64
    branch.float()
    clone = pickle.loads(pickle.dumps(branch))
    assert torch.equal(clone(), branch())


def test_removed_hooks_stay_removed():
    """One per-step projection mechanism (``KernelBranch.project_``), no layout hook."""
    pm = make_plugin_manager(load_plugins=False)
    assert not hasattr(pm.hook, "glkm_project_kernel") and not hasattr(pm.hook, "glkm_kernel_layout")
    assert not hasattr(plugins, "project_kernel") and not hasattr(plugins, "kernel_layout")


def _fast(name, pm):
    from glkm_adapters import fast

    y = torch.rand(1, 1, 90, 90, generator=torch.Generator().manual_seed(0))
    out = fast.run_fast(y, kernel_size=9, kernel_branch=name, context=RunContext(pm=pm), iters=1, kernel_steps=3, deconvolve=False)
    return out["kernel"], 1


def _svola_fast(name, pm):
    from glkm_adapters import svola

    y = torch.rand(1, 1, 100, 120, generator=torch.Generator().manual_seed(0))
    out = svola.run_svola_fast(y, kernel_size=9, kernel_branch=name, context=RunContext(pm=pm), grid="2x2", iters=1, kernel_steps=3)
    return out["kernels"], 5  # the global branch and one per cell


def _dip(name, pm):
    from glkm_adapters import dip

    y = torch.rand(1, 1, 48, 48, generator=torch.Generator().manual_seed(0))
    cfg = dip.make_config(iters=3, channels=(8, 8), skip_channels=(4, 4), mse_steps=2)
    out = dip.SelfDeblur(y, 9, config=cfg, kernel_branch=name, context=RunContext(pm=pm), seed=0).run(progress=False)
    return out["kernel"], 1


@pytest.mark.parametrize("method", [_fast, _svola_fast, _dip], ids=["fast", "svola-fast", "dip"])
def test_a_branch_projection_supplied_by_a_plugin_shapes_the_result(method):
    """Every loop calls ``branch.project_(step)`` after each optimiser step: a plugin's branch
    that confines its kernel to the central 3x3 gets such kernels back, its unprojected twin
    does not (the BIRD and BlindDPS loops: tests/test_diffusion.py)."""
    from glkm_adapters import fast, nonblind, svola

    plugin = boxed_branch_plugin()
    pm = plugin_manager(fast=fast, svola=svola, nonblind=nonblind, boxed=plugin)
    boxed, n_branches = method("boxed", pm)
    assert len(plugin.made) == n_branches
    for branch in plugin.made:
        assert branch.steps and branch.steps == list(range(len(branch.steps)))  # 0-based, every step
    assert float(mass_outside_centre(boxed).max()) < 1e-6
    unboxed, _ = method("unboxed", pm)
    assert all(b.steps for b in plugin.made[n_branches:])
    assert float(mass_outside_centre(unboxed).min()) > 0.05


def test_duplicate_names_are_refused():
    pm = _builtin_manager()

    class Clash:
        @hookimpl
        def glkm_kernel_branches(self, register):
            register("native", lambda *a, **k: None, "clash")

    pm.register(Clash(), name="clash")
    with pytest.raises(PluginError, match="offered by both"):
        plugins.kernel_branches(pm)


def _readme_adapter_module():
    text = open(README).read()
    match = re.search(r"<!-- adapter-example -->\s*```python\n(.*?)```", text, re.S)
    assert match, "README must contain the adapter example block"
    module = types.ModuleType("gaussian_branch")
    exec(compile(match.group(1), "README.md", "exec"), module.__dict__)
    return module


def test_readme_adapter_example_runs_and_learns():
    module = _readme_adapter_module()
    pm = make_plugin_manager(load_plugins=False)
    pm.register(module, name="gaussian")
    assert "gaussian" in plugins.kernel_branches(pm)
    sharp = torch.rand(1, 1, 60, 60)
    truth = module.GaussianBranch(15, sigma=3.0)
    with torch.no_grad():
        blurry = blur(sharp, truth(), "valid")
    branch = plugins.make_kernel_branch("gaussian", blurry, 15, pm=pm)
    opt = torch.optim.Adam(branch.parameters(), lr=branch.default_lr * 5)
    start = None
    for step in range(60):
        opt.zero_grad()
        loss = ((blur(sharp, branch(), "valid") - blurry) ** 2).mean()
        start = start if start is not None else loss.item()
        loss.backward()
        opt.step()
        branch.project_(step)
    assert loss.item() < 0.05 * start
    assert branch.log_sigma.exp().item() == pytest.approx(3.0, rel=0.1)
    pm.unregister(name="gaussian")
    assert "gaussian" not in plugins.kernel_branches(pm)


# ----------------------------------------------------------------------------- branch properties
class _Bare(KernelBranch):
    """A third-party branch that declares none of the properties (only the base class's)."""

    default_lr = 3e-3

    def __init__(self, kernel_size):
        super().__init__(kernel_size)
        self.logits = torch.nn.Parameter(torch.zeros(kernel_size**2))

    def forward(self):
        K = self.kernel_size
        return torch.softmax(self.logits, 0).reshape(1, 1, K, K)


class _Latent(_Bare):
    uses_prior = True


def _branch_plugin(name, factory, **register_options):
    class Plugin:
        @hookimpl
        def glkm_kernel_branches(self, register):
            register(name, factory, "test branch", **register_options)

    return Plugin()


def test_a_third_party_branch_without_the_properties_gets_the_defaults():
    pm = plugin_manager(bare=_branch_plugin("bare", lambda blurry, kernel_size, **_: _Bare(kernel_size)))
    assert plugins.branch_class("bare", pm) is KernelBranch  # no branch_class registered
    assert plugins.branch_uses_prior("bare", pm) is False
    assert plugins.branch_class("bare", pm).capacity(None) is None
    branch = plugins.make_kernel_branch("bare", torch.rand(1, 1, 32, 32), 7, pm=pm)
    assert branch.loop_lr == {} and not branch.uses_prior
    assert all(branch.lr_in(loop) == 3e-3 for loop in ("fast", "bird", "blinddps", "dip"))
    assert plugins.branch_uses_prior("nobody-offers-this", pm) is False  # the method reports the name
    with pytest.raises(PluginError, match="unknown kernel branch"):
        plugins.branch_class("nobody-offers-this", pm)


def test_the_builtin_branches_keep_their_rates_per_loop():
    from glkm_adapters.bird import BirdNativeKernelBranch
    from glkm_adapters.glkm_branch import GLKMKernelBranch
    from glkm_adapters.native_branch import NativeMLPKernelBranch

    glkm, native, bird_native = (object.__new__(c) for c in (GLKMKernelBranch, NativeMLPKernelBranch,
                                                              BirdNativeKernelBranch))
    # the former tables: fast {"glkm": 1e-2, "native": 1e-2}, bird {"glkm": 2e-2}, blinddps {"glkm": 5e-3}
    assert [glkm.lr_in(loop) for loop in ("fast", "bird", "blinddps", "dip")] == [1e-2, 2e-2, 5e-3, 5e-4]
    assert [native.lr_in(loop) for loop in ("fast", "bird", "blinddps", "dip")] == [1e-2, 1e-4, 1e-4, 1e-4]
    assert [bird_native.lr_in(loop) for loop in ("fast", "bird")] == [2e-4, 2e-4]
    pm = _builtin_manager()
    assert plugins.branch_class("glkm", pm) is GLKMKernelBranch and plugins.branch_uses_prior("glkm", pm)
    assert plugins.branch_class("native", pm) is NativeMLPKernelBranch and not plugins.branch_uses_prior("native", pm)
    assert GLKMKernelBranch.capacity(types.SimpleNamespace(size=31)) == 31 and NativeMLPKernelBranch.capacity() is None


def test_a_declared_branch_class_must_be_what_the_factory_returns():
    pm = plugin_manager(liar=_branch_plugin("liar", lambda blurry, kernel_size, **_: _Bare(kernel_size),
                                            branch_class=_Latent))
    with pytest.raises(PluginError, match="registered branch_class _Latent but its factory returned _Bare"):
        plugins.make_kernel_branch("liar", torch.rand(1, 1, 32, 32), 7, pm=pm)


@pytest.mark.parametrize("name, cls, loads", [("glkm", _Bare, False), ("latent", _Latent, True), ("bare", None, False)])
def test_the_host_asks_the_branch_class_not_its_name_whether_to_load_a_prior(monkeypatch, name, cls, loads):
    """A branch called 'glkm' whose class needs no prior gets none; any other name whose class
    does gets one (api.deblur, the benchmark runner)."""
    from glkm_prior import api
    from glkm_prior.bench_config import BenchConfig
    from glkm_prior.bench_runner import PairRunner

    factory = (lambda blurry, kernel_size, **_: (cls or _Bare)(kernel_size))
    calls = []

    def toy(blurry, *, kernel_size, kernel_branch, seed, prior=None, **_):
        calls.append(prior)
        return {"image": blurry, "kernel": torch.ones(1, 1, kernel_size, kernel_size) / kernel_size**2}

    class Methods:
        @hookimpl
        def glkm_methods(self, register):
            register("toy", toy, "test method")

    options = {"branch_class": cls} if cls is not None else {}
    pm = plugin_manager(branch=_branch_plugin(name, factory, **options), methods=Methods())
    loaded = object()
    monkeypatch.setattr(api, "load_prior", lambda *a, **k: loaded)
    api.deblur(torch.rand(1, 1, 32, 32), "toy", kernel_size=7, kernel_branch=name, context=RunContext(pm=pm))
    assert calls == [loaded if loads else None]
    runner = PairRunner(BenchConfig(dataset="d", method="toy", out="o", kernel_branch=name), [], None, "", context=RunContext(pm=pm))
    assert runner.needs_prior() is loads


# ----------------------------------------------------------------------------- declared method capabilities
def _capability_plugin(seen, **declared):
    """Two methods with the same signature (``checkpoint``, ``progress``, ``true_kernel`` named):
    'declared' registers ``declared``, 'undeclared' registers nothing."""

    def run(blurry, *, kernel_size, kernel_branch="glkm", seed=0, progress=None, true_kernel=None, checkpoint=None,
            checkpoint_every=None, **_):
        seen.append({"progress": progress, "true_kernel": true_kernel, "checkpoint": checkpoint,
                     "checkpoint_every": checkpoint_every})
        return {"image": blurry, "kernel": torch.ones(1, 1, kernel_size, kernel_size) / kernel_size**2}

    class Methods:
        @hookimpl
        def glkm_methods(self, register):
            register("declared", run, "test: declares", **declared)
            register("undeclared", run, "test: declares nothing")

    return Methods()


def test_the_runner_passes_what_a_method_declares_not_what_its_signature_names(tmp_path):
    from glkm_prior import api
    from glkm_prior.bench_config import BenchConfig
    from glkm_prior.bench_runner import PairRunner

    seen = []
    pm = plugin_manager(methods=_capability_plugin(seen, checkpointable=True, progress=True, needs_true_kernel=True,
                                                   iterative=True))
    assert plugins.get_method("undeclared", pm).spec == plugins.MethodSpec()  # the defaults
    assert plugins.get_method("declared", pm).spec.iterative
    blurry, true_k = torch.rand(1, 1, 32, 32), torch.ones(7, 7) / 49
    for name in ("declared", "undeclared"):
        runner = PairRunner(BenchConfig(dataset="d", method=name, out=str(tmp_path), checkpoint_every=5), [], None, "",
                            context=RunContext(pm=pm))
        folder = runner.checkpoint_folder("im1", 0)
        assert (folder is not None) is (name == "declared")
        runner._call(runner.method, blurry, kernel_size=7, seed=0, true_kernel=true_k, checkpoint=folder)
        api.deblur(blurry, name, kernel_size=7, progress=True, context=RunContext(pm=pm))
    declared_bench, declared_api, undeclared_bench, undeclared_api = seen
    assert declared_bench == {"progress": False, "true_kernel": true_k, "checkpoint": tmp_path / "checkpoints" / "im1__s0",
                              "checkpoint_every": 5}
    assert declared_api["progress"] is True and declared_api["checkpoint"] is None
    assert undeclared_bench == undeclared_api == {"progress": None, "true_kernel": None, "checkpoint": None,
                                                  "checkpoint_every": None}


def test_a_method_that_declares_its_branches_refuses_the_others(tmp_path):
    from glkm_prior import api
    from glkm_prior.bench_config import BenchConfig
    from glkm_prior.bench_runner import PairRunner
    from glkm_prior.errors import InvalidInputError

    seen = []
    pm = plugin_manager(methods=_capability_plugin(seen, branches=("native",)))
    blurry = torch.rand(1, 1, 32, 32)
    message = "method 'declared' takes the kernel branch 'native', not 'glkm'"
    with pytest.raises(InvalidInputError, match=message):
        api.deblur(blurry, "declared", kernel_size=7, kernel_branch="glkm", context=RunContext(pm=pm))
    with pytest.raises(InvalidInputError, match=message):
        PairRunner(BenchConfig(dataset="d", method="declared", out=str(tmp_path), kernel_branch="glkm"), [], None, "",
                   context=RunContext(pm=pm))
    assert seen == []
    api.deblur(blurry, "declared", kernel_size=7, kernel_branch="native", context=RunContext(pm=pm))
    api.deblur(blurry, "undeclared", kernel_size=7, kernel_branch="glkm", context=RunContext(pm=pm))  # undeclared: any branch
    assert len(seen) == 2
    with pytest.raises(PluginError, match="branches must be"):
        plugins.methods(plugin_manager(methods=_capability_plugin([], branches="native")))


def test_the_builtin_methods_declare_what_their_run_functions_take():
    """Each built-in's declarations agree with its run function (the runner no longer reads the
    signature, so a wrong declaration would silently drop or add an argument)."""
    from glkm_prior.plugins import accepts_keyword

    offered = plugins.methods(make_plugin_manager())
    for name, reg in offered.items():
        fn, spec = reg.factory, reg.spec
        assert spec.checkpointable == accepts_keyword(fn, "checkpoint", explicit_only=True), name
        assert spec.needs_true_kernel == accepts_keyword(fn, "true_kernel", explicit_only=True), name
        assert spec.progress == accepts_keyword(fn, "progress", explicit_only=True), name
        assert spec.branches is None, name
    iterative = {n for n, r in offered.items() if r.spec.iterative}
    assert iterative == {"dip", "vdip-std", "vdip-extreme", "vdip-sparse", "bird", "blinddps", "svola-dip"}
    assert {n for n, r in offered.items() if r.spec.checkpointable} == iterative - {"svola-dip"}


def test_glkm_plugins_shows_the_declarations(capsys):
    import json

    from glkm_prior.cli import main

    assert main(["plugins", "--json"]) == 0
    methods = json.loads(capsys.readouterr().out)["methods"]
    assert methods["dip"]["checkpointable"] is True and methods["dip"]["branches"] is None
    assert methods["true-kernel"]["needs_true_kernel"] is True and methods["identity"]["progress"] is False
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "(from dip; iterative; checkpointable; progress)" in out
    assert "(from nonblind; needs the true kernel)" in out
