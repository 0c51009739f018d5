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

    manager = make_plugin_manager(load_plugins=False)
    for name, module in plugins.items():
        manager.register(module, name=name)
    return manager


def boxed_branch_plugin():
    """A plugin offering two softmax kernel branches, 'boxed' and 'unboxed'. Both record the
    steps at which a loop called their ``project_``; only 'boxed' projects (it sets every logit
    outside the central 3x3 to -30, so the kernel's mass outside it is < 1e-9 after each step).
    The loops' results with the two branches tell whether a loop applies the branch's projection."""
    from glkm_prior.branch import KernelBranch
    from glkm_prior.plugins import hookimpl

    class SoftmaxBranch(KernelBranch):
        default_lr = 5e-2

        def __init__(self, kernel_size, box, seed=0):
            super().__init__(kernel_size)
            self.box, self.steps, K = box, [], self.kernel_size
            gen = torch.Generator().manual_seed(int(seed or 0))
            self.logits = torch.nn.Parameter(0.1 * torch.randn(K * K, generator=gen))
            inside = torch.zeros(K, K, dtype=torch.bool)
            inside[K // 2 - 1: K // 2 + 2, K // 2 - 1: K // 2 + 2] = True
            self.register_buffer("outside", ~inside.reshape(-1), persistent=False)

        def forward(self):
            return torch.softmax(self.logits, 0).reshape(1, 1, self.kernel_size, self.kernel_size)

        @torch.no_grad()
        def project_(self, step):
            self.steps.append(step)
            if self.box:
                self.logits[self.outside] = -30.0

    class Plugin:
        made = []

        @hookimpl
        def glkm_kernel_branches(self, register):
            for name, box in (("boxed", True), ("unboxed", False)):
                def factory(blurry, kernel_size, seed=0, _box=box, **_):
                    Plugin.made.append(SoftmaxBranch(kernel_size, _box, seed))
                    return Plugin.made[-1]

                register(name, factory, "test branch with a recorded (boxed: real) per-step projection")

    return Plugin()


def mass_outside_centre(kernel):
    """Kernel mass outside the central 3x3 of (B, 1, K, K) kernels, per kernel."""
    K = kernel.shape[-1]
    inside = kernel[..., K // 2 - 1: K // 2 + 2, K // 2 - 1: K // 2 + 2].sum(dim=(-2, -1))
    return (kernel.sum(dim=(-2, -1)) - inside).reshape(-1)
