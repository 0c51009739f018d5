"""One run context (``glkm_prior.context.RunContext``) instead of ``pm``/``weights``/``revision``/
``warn`` through every signature (issue 26 item 2)."""

import pytest
import torch
from conftest import plugin_manager

from glkm_prior import api, plugins
from glkm_prior.bench_config import BenchConfig
from glkm_prior.bench_runner import PairRunner
from glkm_prior.context import RunContext, as_context
from glkm_prior.errors import InvalidInputError
from glkm_prior.physics import delta_kernel
from glkm_prior.plugins import hookimpl


def _plugin(seen):
    def run(blurry, *, kernel_size, kernel_branch="glkm", seed=0, context=None):
        seen.append(context)
        return {"image": blurry.clone(), "kernel": delta_kernel(kernel_size), "info": {}}

    def branch(blurry, kernel_size, **options):
        seen.append(options)
        from glkm_adapters.native_branch import NativeMLPKernelBranch

        return NativeMLPKernelBranch(kernel_size, seed=0)

    class Plugin:
        @hookimpl
        def glkm_methods(self, register):
            register("ctx", run, "takes the run context")

        @hookimpl
        def glkm_kernel_branches(self, register):
            register("rec", branch, "records its options")

    return Plugin()


def test_defaults_and_plugin_manager():
    ctx = RunContext()
    assert (ctx.pm, ctx.weights, ctx.revision, ctx.local_files_only, ctx.warn) == (None, None, None, None, print)
    assert ctx.plugin_manager() is plugins.get_plugin_manager()
    pm = plugin_manager()
    assert RunContext(pm=pm).plugin_manager() is pm
    assert as_context(None) == RunContext() and as_context(ctx) is ctx
    assert ctx.with_(weights="w").weights == "w" and ctx.weights is None  # frozen: a copy
    assert RunContext(revision="abc").prior_source() == {"revision": "abc"}
    assert RunContext(local_files_only=True).prior_source() == {"revision": None, "local_files_only": True}
    with pytest.raises(InvalidInputError, match="context must be a RunContext"):
        as_context({"pm": pm})


def test_the_hosts_pass_one_context_to_the_method(tmp_path):
    seen = []
    pm = plugin_manager(p=_plugin(seen))
    ctx = RunContext(pm=pm, warn=lambda m: None)
    api.deblur(torch.rand(1, 1, 32, 32), "ctx", kernel_size=7, kernel_branch="rec", context=ctx)
    assert seen == [ctx]
    runner = PairRunner(BenchConfig(dataset="d", method="ctx", out=str(tmp_path), kernel_branch="rec", weights="W",
                                    revision="r"), [], None, "", context=RunContext(pm=pm))
    runner._call(runner.method, torch.rand(1, 1, 32, 32), kernel_size=7, seed=0)
    got = seen[-1]
    assert got.pm is pm and (got.weights, got.revision) == ("W", "r")  # the run's prior source, the caller's manager


def test_build_kernel_branch_reads_the_context():
    seen = []
    pm = plugin_manager(p=_plugin(seen))
    blurry = torch.rand(1, 1, 32, 32)
    plugins.build_kernel_branch("rec", blurry, 7, context=RunContext(pm=pm, weights="W"), seed=1)
    prior = object()
    plugins.build_kernel_branch("rec", blurry, 7, context=RunContext(pm=pm, weights="W"), seed=1, prior=prior)
    assert seen == [{"weights": "W", "seed": 1}, {"prior": prior, "seed": 1}]  # weights only without a prior


def test_readme_context_example_runs(monkeypatch):
    import re

    from conftest import REPO

    match = re.search(r"<!-- context-example -->\s*```python\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    assert match, "README must contain the RunContext example block"
    monkeypatch.chdir(REPO)
    namespace = {}
    exec(compile(match.group(1), "README.md", "exec"), namespace)
    assert isinstance(namespace["ctx"], RunContext) and namespace["result"]["kernel"].shape[-1] == 27
