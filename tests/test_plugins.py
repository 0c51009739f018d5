import pickle
import re
import types

import pytest
import torch
from conftest import plugin_manager

from glkm_prior import plugins
from glkm_prior.branch import KernelBranch
from glkm_prior.errors import PluginError
from glkm_prior.physics import blur
from glkm_prior.plugins import hookimpl, make_plugin_manager

README = plugins.__file__.replace("glkm_prior/plugins.py", "README.md")


def _builtin_manager():
    import glkm_adapters.glkm_branch
    import glkm_adapters.layouts
    import glkm_adapters.native_branch
    import glkm_adapters.nonblind

    return plugin_manager(glkm=glkm_adapters.glkm_branch, native=glkm_adapters.native_branch,
                          layouts=glkm_adapters.layouts, nonblind=glkm_adapters.nonblind)


def test_register_and_unregister_by_name_without_entry_points():
    pm = make_plugin_manager(load_entrypoints=False)
    assert plugins.kernel_branches(pm) == {}
    import glkm_adapters.native_branch

    pm.register(glkm_adapters.native_branch, name="native")
    assert set(plugins.kernel_branches(pm)) == {"native"}
    pm.unregister(name="native")
    assert plugins.kernel_branches(pm) == {}
    with pytest.raises(PluginError, match="unknown kernel branch 'native'"):
        plugins.make_kernel_branch("native", torch.rand(1, 1, 64, 64), 15, pm=pm)


def test_installed_entry_points_register_the_builtins():
    pm = make_plugin_manager(load_entrypoints=True)
    names = {name for name, _ in pm.list_name_plugin()}
    assert {"glkm", "native", "layouts", "nonblind"} <= names
    # registered through the entry-point path, like a third-party plugin
    assert {p.__name__ for p, _ in pm.list_plugin_distinfo()} >= {"glkm_adapters.glkm_branch", "glkm_adapters.native_branch"}


def test_glkm_plugins_env_var_limits_loading(monkeypatch):
    monkeypatch.setenv("GLKM_PLUGINS", "native")
    pm = make_plugin_manager(load_entrypoints=True)
    assert [name for name, _ in pm.list_name_plugin()] == ["native"]
    monkeypatch.setenv("GLKM_PLUGINS", "")
    assert make_plugin_manager(load_entrypoints=True).list_name_plugin() == []


def test_branches_hold_exactly_their_parameters(tiny_prior):
    pm = _builtin_manager()
    y = torch.rand(1, 1, 80, 80)
    glkm = plugins.make_kernel_branch("glkm", y, 19, pm=pm, prior=tiny_prior)
    native = plugins.make_kernel_branch("native", y, 19, pm=pm, seed=0)
    assert [n for n, _ in glkm.named_parameters()] == ["w"]
    assert glkm.w.shape == (1, *tiny_prior.generator.latent_shape)
    assert torch.allclose(glkm.w, tiny_prior.initial_latent(y))
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


def test_kernel_layouts_and_projection_hook():
    pm = _builtin_manager()
    k = torch.rand(1, 1, 5, 5)
    k = k / k.sum()
    assert plugins.kernel_layout(k, "selfdeblur", pm=pm).shape == (25,)
    per_channel = plugins.kernel_layout(k, "bird", pm=pm)
    assert per_channel.shape == (3, 1, 5, 5) and torch.equal(per_channel[2, 0], k[0, 0])
    signed = plugins.kernel_layout(k, "blinddps", pm=pm)
    assert signed.max() == pytest.approx(1.0) and signed.min() >= -1
    with pytest.raises(PluginError, match="unknown-baseline"):
        plugins.kernel_layout(k, "unknown-baseline", pm=pm)

    calls = []

    class Projector:
        @hookimpl
        def glkm_project_kernel(self, branch, step):
            calls.append((branch, step))

    pm.register(Projector(), name="projector")
    plugins.project_kernel("b", 3, pm=pm)
    assert calls == [("b", 3)]


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
    pm = make_plugin_manager(load_entrypoints=False)
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
        plugins.project_kernel(branch, step, pm=pm)
    assert loss.item() < 0.05 * start
    assert branch.log_sigma.exp().item() == pytest.approx(3.0, rel=0.1)
    pm.unregister(name="gaussian")
    assert "gaussian" not in plugins.kernel_branches(pm)
