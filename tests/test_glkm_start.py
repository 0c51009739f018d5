"""The GLKM branch's ``init="estimate"`` start: the classical kernel estimate put on the prior."""

import pytest
import torch

from glkm_adapters.glkm_branch import make_glkm_branch
from glkm_prior import KernelPrior, blur
from glkm_prior.errors import InvalidInputError

from test_deconv import motion_kernel, scene


@pytest.fixture(scope="module")
def blurred():
    """A 15 px motion blur of a piecewise-smooth scene, 0.5 % noise, 'valid' geometry."""
    k = motion_kernel(15)
    x = scene(160 + 14, 160 + 14, seed=3)[None, None]
    y = blur(x, k[None, None], "valid")
    y = (y + 0.005 * torch.randn(y.shape, generator=torch.Generator().manual_seed(4))).clamp(0, 1)
    return y, k[None, None]


def _rel_error(k, truth):
    """Relative L2 error after the best integer shift (metrics.kernel_error)."""
    from glkm_prior.metrics import kernel_error

    return kernel_error(k[0, 0].double().numpy(), truth[0, 0].double().numpy()).rel_l2


def test_estimate_start_is_closer_to_the_truth_than_the_initializer(blurred):
    y, truth = blurred
    prior = KernelPrior.from_pretrained(kernel_size=15)  # the bundled 31-px prior
    errors = {}
    for init in ("estimate", "initializer"):
        branch = make_glkm_branch(y, 15, prior=prior, init=init, seed=0)
        with torch.no_grad():
            k = branch()
        assert k.shape == (1, 1, 15, 15) and k.min() >= 0 and abs(k.sum().item() - 1) < 1e-5
        assert branch.w.is_leaf and branch.w.requires_grad
        errors[init] = _rel_error(k, truth)
    # measured: estimate 0.11, initializer 0.85 (rel. L2 after the best shift); bounds with a ~3x margin
    assert errors["estimate"] < 0.3 and errors["estimate"] < 0.5 * errors["initializer"], errors


def test_unknown_init_is_a_clear_error(blurred, tiny_prior):
    with pytest.raises(InvalidInputError, match="init must be"):
        make_glkm_branch(blurred[0], 15, prior=tiny_prior, init="nope")


def test_the_default_start_is_the_estimate_and_the_papers_start_stays_available(blurred):
    """Issue 25: the branch's and ``KernelPrior.initial_latent``'s default is the estimate; the
    paper's G.head(E(y)) is ``init="initializer"``."""
    y, _ = blurred
    prior = KernelPrior.from_pretrained(kernel_size=15)
    default = make_glkm_branch(y, 15, prior=prior, seed=0).w
    estimate = make_glkm_branch(y, 15, prior=prior, init="estimate", seed=0).w
    assert torch.equal(default, estimate)
    assert torch.equal(prior.initial_latent(y, kernel_size=15), estimate)
    paper = prior.initial_latent(y, init="initializer")
    with torch.no_grad():
        assert torch.equal(paper, prior.latent(prior.predict_z(y)))
    assert torch.equal(make_glkm_branch(y, 15, prior=prior, init="initializer").w, paper)
    with pytest.raises(InvalidInputError, match="init must be"):
        prior.initial_latent(y, init="random")
    with pytest.raises(InvalidInputError, match="one image"):
        prior.initial_latent(y.repeat(2, 1, 1, 1), kernel_size=15)


def test_fast_and_the_size_probe_keep_the_papers_start(blurred):
    """``fast`` (and ``--kernel-size auto``, which runs its estimator) start from G.head(E(y)), as
    their figures were measured; ``init=estimate`` is still an option of ``fast``."""
    from glkm_adapters.fast import FastOptions, run_fast

    assert FastOptions().init == "initializer"
    y, _ = blurred
    prior = KernelPrior.from_pretrained(kernel_size=15)
    start = run_fast(y, kernel_size=15, prior=prior, iters=0, deconvolve=False)["branch"].w
    assert torch.equal(start, prior.initial_latent(y, init="initializer"))
