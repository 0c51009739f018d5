"""Seconds per SelfDeblur iteration: our loop (``glkm_adapters.dip``) next to the authors' code,
in one process, on the same image and configuration (issue: "ours must not be slower").

The upstream code is not part of this project: pass a clone of https://github.com/csdwren/SelfDeblur
with ``--upstream``. Only its network modules are imported (``networks/skip.py``, ``networks/fcn.py``
and ``SSIM.py``; its ``utils`` needs torchvision and OpenCV and is not used); the iteration body
is the one of its ``selfdeblur_levin.py`` (noise-perturbed input, skip net + fcn kernel net, valid
``conv2d``, MSE before iteration 1000, Adam 1e-2 / 1e-4, MultiStepLR), on the CPU.

The three loops (upstream; ours with the native kernel branch; ours with GLKM's) run in turns,
``--rounds`` times, each for ``--iters`` timed iterations after one warm-up, so a change in the
machine's load hits them alike. Run::

    git clone https://github.com/csdwren/SelfDeblur /tmp/SelfDeblur
    OMP_NUM_THREADS=1 python examples/benchmark_dip_upstream.py --upstream /tmp/SelfDeblur
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from glkm_adapters.dip import DIPConfig, SelfDeblur, make_config
from glkm_prior.imageio import read_image, to_tensor

REPO = Path(__file__).resolve().parents[1]


def upstream_loop(upstream: Path, y: torch.Tensor, K: int):
    """A step function running one iteration of the authors' SelfDeblur loop with their modules."""
    sys.path.insert(0, str(upstream))
    try:
        from networks.fcn import fcn
        from networks.skip import skip
    finally:
        sys.path.pop(0)
    torch.manual_seed(0)
    H, W = y.shape[-2:]
    net_input = torch.rand(1, 8, H + K - 1, W + K - 1) * 0.1  # get_noise(8, 'noise', ...): uniform / 10
    net = skip(8, 1, num_channels_down=[128] * 5, num_channels_up=[128] * 5, num_channels_skip=[16] * 5,
               upsample_mode="bilinear", need_sigmoid=True, need_bias=True, pad="reflection", act_fun="LeakyReLU")
    kernel_input = (torch.rand(1, 200, 1, 1) * 0.1).squeeze_()
    net_kernel = fcn(200, K * K)
    optimizer = torch.optim.Adam([{"params": net.parameters()}, {"params": net_kernel.parameters(), "lr": 1e-4}], lr=0.01)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[2000, 3000, 4000], gamma=0.5)

    def step(_):
        noisy = net_input + 0.001 * torch.zeros_like(net_input).normal_()
        optimizer.zero_grad()
        out_x = net(noisy)
        out_k = net_kernel(kernel_input).view(-1, 1, K, K)
        loss = F.mse_loss(F.conv2d(out_x, out_k), y)
        loss.backward()
        optimizer.step()
        scheduler.step()

    return step


def our_loop(y: torch.Tensor, K: int, branch: str):
    loop = SelfDeblur(y, K, config=make_config(DIPConfig), kernel_branch=branch, seed=0)

    def step(i):
        loss, _, _ = loop.loss(i)
        loop.optimise(loss, i)
        loop.scheduler.step()

    return step


def timed(step, first: int, iters: int) -> list[float]:
    step(first)  # warm-up (allocations)
    times = []
    for i in range(first + 1, first + 1 + iters):
        t0 = time.perf_counter()
        step(i)
        times.append(time.perf_counter() - t0)
    return times


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--upstream", type=Path, required=True, help="a clone of csdwren/SelfDeblur")
    p.add_argument("--image", type=Path, default=REPO.parent / "shared/data/levin/im1_kernel4_img.png",
                   help="grey blurry image (default: Levin im1_kernel4, 255 x 255)")
    p.add_argument("--kernel-size", type=int, default=27, help="kernel size (default 27: Levin kernel 4)")
    p.add_argument("--iters", type=int, default=5, help="timed iterations per turn (default 5)")
    p.add_argument("--rounds", type=int, default=2, help="turns of the three loops (default 2)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = p.parse_args(argv)
    if not (args.upstream / "networks" / "skip.py").is_file():
        print(f"{args.upstream} is not a SelfDeblur clone (no networks/skip.py): "
              "git clone https://github.com/csdwren/SelfDeblur and pass its folder")
        return 2
    if not args.image.is_file():
        print(f"image not found: {args.image} (give --image)")
        return 2
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message="Implicit dimension choice for softmax")  # upstream's fcn
    y = to_tensor(read_image(args.image, "gray"))
    K = args.kernel_size
    loops = {"upstream SelfDeblur (native MLP)": upstream_loop(args.upstream, y, K),
             "ours, native kernel branch": our_loop(y, K, "native"),
             "ours, GLKM kernel branch": our_loop(y, K, "glkm")}
    times = {name: [] for name in loops}
    for r in range(args.rounds):
        for name, step in loops.items():
            times[name] += timed(step, r * (args.iters + 1), args.iters)
    print(f"{args.image.name}: {tuple(y.shape[-2:])}, K = {K}, {args.threads} thread(s), "
          f"{args.rounds} x {args.iters} iterations each")
    print("| loop | s / iteration (median) | min | max |\n|---|---:|---:|---:|")
    for name, t in times.items():
        print(f"| {name} | {statistics.median(t):.2f} | {min(t):.2f} | {max(t):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
