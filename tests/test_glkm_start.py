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
