"""The README's "Using the prior in your own loop" example runs as written and makes progress."""

import re

import torch

from conftest import REPO


def test_readme_own_loop_example_runs_and_fits_better(monkeypatch):
    text = (REPO / "README.md").read_text()
    match = re.search(r"<!-- own-loop-example -->\s*```python\n(.*?)```", text, re.S)
    assert match, "README must contain the own-loop example block"
    monkeypatch.chdir(REPO)  # the example reads examples/data/blurry.png from the repository root
    namespace = {}
    exec(compile(match.group(1), "README.md", "exec"), namespace)
    prior, blurry, K, x, w = (namespace[n] for n in ("prior", "blurry", "K", "x", "w"))
    from glkm_prior import blur

    k = prior.kernel(w, size=K).detach()
    assert k.shape == (1, 1, K, K) and k.min() >= 0 and abs(k.sum().item() - 1) < 1e-5
    assert x.shape[-2:] == (blurry.shape[-2] + K - 1, blurry.shape[-1] + K - 1)
    # the data term at the start, recomputed independently: the padded blurry image and the start's kernel
    x0 = torch.nn.functional.pad(blurry, [K // 2] * 4, mode="replicate")
    k0 = prior.kernel(prior.initial_latent(blurry, kernel_size=K), size=K).detach()
    with torch.no_grad():
        start = ((blur(x0, k0, "valid") - blurry) ** 2).mean().item()
        end = ((blur(x.detach(), k, "valid") - blurry) ** 2).mean().item()
    assert end < 0.5 * start
