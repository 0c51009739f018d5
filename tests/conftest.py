import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network
# Threads of the whole suite: GLKM_TEST_THREADS, else OMP_NUM_THREADS, else 2 (.ci/run runs it with 1 and with 2).
TEST_THREADS = int(os.environ.get("GLKM_TEST_THREADS") or os.environ.get("OMP_NUM_THREADS") or "2")
torch.set_num_threads(TEST_THREADS)

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _keep_thread_count():
    """A test that changes torch's thread count (``glkm deblur --threads``) gives it back."""
    yield
    if torch.get_num_threads() != TEST_THREADS:
        torch.set_num_threads(TEST_THREADS)


@pytest.fixture(scope="session")
def example_dir() -> Path:
    return REPO / "examples" / "data"


@pytest.fixture(scope="session")
def tiny_prior():
    """An untrained 31-px prior, shared across tests (read-only use)."""
    from glkm_prior import KernelPrior

    return KernelPrior.untrained(31, seed=0)


def shared_path(*parts) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not available (../shared is only on development machines)")
    return path


def plugin_manager(**plugins):
    """A plugin manager without entry points, with the given modules registered by name."""
    from glkm_prior.plugins import make_plugin_manager

    manager = make_plugin_manager(load_entrypoints=False)
    for name, module in plugins.items():
        manager.register(module, name=name)
    return manager
