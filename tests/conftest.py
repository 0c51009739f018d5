import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network
torch.set_num_threads(int(os.environ.get("GLKM_TEST_THREADS", "2")))  # 1 while training runs beside

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"


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
