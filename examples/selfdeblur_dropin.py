"""SelfDeblur's own loop with GLKM's kernel network dropped in: a three-line change.

This script follows the upstream script ``selfdeblur_ycbcr.py`` (csdwren/SelfDeblur) step by
step: deblur the luma, DIP skip network on fixed noise, Adam + MultiStepLR, MSE then 1 - SSIM,
``torch.save`` of the networks. The skip network and SSIM come from this project
(``glkm_adapters.dip.SkipNet`` = upstream ``networks/skip.py``, ``glkm_prior.ssim_loss.SSIM`` =
upstream ``SSIM.py``). The three lines marked ``# GLKM (n/3)`` are everything a user changes
in the upstream script; the upstream lines they replace are kept above them as comments.

    python examples/selfdeblur_dropin.py                 # bundled example, 5 iterations: seconds
    python examples/selfdeblur_dropin.py --iters 5000    # the paper's length (hours on a CPU)

Writes ``<out>/blurry_x.png`` (deblurred), ``blurry_k.png`` (kernel), ``blurry_xnet.pth`` and
``blurry_knet.pth`` (whole pickled modules, as upstream) to ``--out`` (default ``out/dropin``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from torch.optim.lr_scheduler import MultiStepLR
from tqdm import tqdm

from glkm_adapters.dip import SkipNet
from glkm_prior.api import load_prior
from glkm_prior.imageio import kernel_to_image, read_image, to_array, to_tensor, write_image
from glkm_prior.prior import to_luma
from glkm_prior.ssim_loss import SSIM

from glkm_adapters.selfdeblur_dropin import GLKMKernelNet  # GLKM (1/3): the drop-in kernel network

HERE = Path(__file__).resolve().parent
parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--input", default=str(HERE / "data" / "blurry.png"), help="blurry image (default: the bundled example)")
parser.add_argument("--kernel-size", type=int, default=19, help="kernel side in px (default 19, the example's)")
parser.add_argument("--iters", type=int, default=5, help="iterations (default 5; the paper runs 5000)")
parser.add_argument("--out", default="out/dropin", help="output folder (default out/dropin)")
parser.add_argument("--weights", default=None, help="GLKM prior folder (default: the bundled weights)")
parser.add_argument("--seed", type=int, default=0, help="seed of the noise input (upstream: 0)")
opt = parser.parse_args()

dtype = torch.FloatTensor  # upstream: torch.cuda.FloatTensor
os.makedirs(opt.out, exist_ok=True)
INPUT, pad, LR, num_iter, reg_noise_std = "noise", "reflection", 0.01, opt.iters, 0.001
kernel_size = [opt.kernel_size, opt.kernel_size]
imgname = Path(opt.input).stem

# upstream: img, y, cb, cr = readimg(path_to_image) -- the luma Y in [0, 1]
rgb = to_tensor(read_image(opt.input))
y = to_luma(rgb).type(dtype)
img_size = y.shape[1:]
padh, padw = kernel_size[0] - 1, kernel_size[1] - 1

# x_net: 8-channel uniform noise in [0, 0.1) at (H+K-1) x (W+K-1), the DIP skip network
input_depth = 8
gen = torch.Generator().manual_seed(opt.seed)
net_input = (torch.rand(1, input_depth, img_size[1] + padh, img_size[2] + padw, generator=gen) * 0.1).type(dtype)
torch.manual_seed(opt.seed)
net = SkipNet(input_depth, 1, down=[128] * 5, up=[128] * 5, skip=[16] * 5, upsample_mode="bilinear", pad=pad)
net = net.type(dtype)

# k_net
n_k = 200
net_input_kernel = (torch.rand(n_k, generator=gen) * 0.1).type(dtype).detach()  # upstream get_noise(n_k, ...)
# net_kernel = fcn(n_k, opt.kernel_size[0] * opt.kernel_size[1])
prior = load_prior(opt.weights, opt.kernel_size, warn=lambda m: print(m, file=sys.stderr))  # (bundled weights)
net_kernel = GLKMKernelNet(y, kernel_size, prior=prior)  # GLKM (2/3): (prior= optional; default bundled)
net_kernel = net_kernel.type(dtype)

# Losses
mse = torch.nn.MSELoss().type(dtype)
ssim = SSIM().type(dtype)

# optimizer
# optimizer = torch.optim.Adam([{'params': net.parameters()}, {'params': net_kernel.parameters(), 'lr': 1e-4}], lr=LR)
optimizer = torch.optim.Adam([{"params": net.parameters()},
                              {"params": net_kernel.parameters(), "lr": GLKMKernelNet.default_lr}], lr=LR)  # GLKM (3/3)
scheduler = MultiStepLR(optimizer, milestones=[2000, 3000, 4000], gamma=0.5)

net_input_saved = net_input.detach().clone()
for step in tqdm(range(num_iter), file=sys.stderr):
    # input regularization
    net_input = net_input_saved + reg_noise_std * torch.zeros(net_input_saved.shape).type_as(net_input_saved).normal_()
    optimizer.zero_grad()

    out_x = net(net_input)
    out_k = net_kernel(net_input_kernel)                      # flat (K*K,) softmax vector, as fcn returns
    out_k_m = out_k.view(-1, 1, kernel_size[0], kernel_size[1])
    out_y = nn.functional.conv2d(out_x, out_k_m, padding=0, bias=None)

    total_loss = mse(out_y, y) if step < 500 else 1 - ssim(out_y, y)
    total_loss.backward()
    optimizer.step()
    scheduler.step()  # upstream calls scheduler.step(step) at the top of the loop: same learning rates

    if step + 1 == num_iter:  # upstream saves every opt.save_frequency iterations
        out_x_np = out_x.detach()[..., padh // 2 : padh // 2 + img_size[1], padw // 2 : padw // 2 + img_size[2]]
        out_rgb = (out_x_np + (rgb - to_luma(rgb))).clamp(0, 1)  # merge the original chroma (cv2.merge + cvtColor)
        write_image(os.path.join(opt.out, f"{imgname}_x.png"), to_array(out_rgb))
        out_k_np = out_k_m.detach().squeeze().numpy()
        write_image(os.path.join(opt.out, f"{imgname}_k.png"), kernel_to_image(out_k_np))
        torch.save(net, os.path.join(opt.out, f"{imgname}_xnet.pth"))
        torch.save(net_kernel, os.path.join(opt.out, f"{imgname}_knet.pth"))

print(f"wrote {opt.out}/{imgname}_x.png and {imgname}_k.png after {num_iter} iterations "
      f"(final loss {total_loss.item():.4f}; kernel sum {float(np.sum(out_k_np)):.4f})" if num_iter else "no iterations")
