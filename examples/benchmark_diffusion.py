"""Cost of the diffusion adapters on this CPU (RESULTS.md, "Diffusion image priors").

1. ``bird`` and ``blinddps`` with a tiny random diffusers UNet (64 x 64, ~177k parameters),
   GLKM branch with an untrained prior: seconds per image for 5 steps and for the defaults
   (BIRD 100 iterations x 10 DDIM steps; BlindDPS 1000 steps with ``--full-blinddps``, ~2 min).
2. The full google/ddpm-celebahq-256 UNet architecture (BIRD's prior; random weights, no download)
   and BlindDPS' own FFHQ 256 guided-diffusion UNet (``glkm_prior.guided_unet``, config 'ffhq', the
   architecture of ``ffhq_10m.pt``): parameters, GMAC per forward, seconds per forward and per
   forward + backward to the input, peak RSS; the expected cost of one image = evaluations x
   these times.

Needs diffusers (``pip install -e ".[diffusion]"``). Run: ``OMP_NUM_THREADS=1 python examples/benchmark_diffusion.py``.
"""

import resource
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

try:
    import diffusers
except ImportError:
    print("diffusers is not installed: pip install -e '.[diffusion]'")
    sys.exit(2)

import glkm_adapters.bird as bird
import glkm_adapters.blinddps as blinddps
from glkm_prior import KernelPrior
from glkm_prior.diffusion import Denoiser, linear_alphas_cumprod
from glkm_prior.guided_unet import build_guided_unet

torch.set_num_threads(1)
torch.manual_seed(0)
prior = KernelPrior.untrained(31, seed=0)
tiny = diffusers.UNet2DModel(sample_size=64, in_channels=3, out_channels=3, block_out_channels=(16, 32),
                             layers_per_block=1, norm_num_groups=8, down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                             up_block_types=("AttnUpBlock2D", "UpBlock2D"))
den = Denoiser(tiny, linear_alphas_cumprod(1000))
y = torch.rand(1, 3, 64, 64)


def seconds(fn, **kw):
    t0 = time.perf_counter()
    fn(blurry=y, kernel_size=9, kernel_branch="glkm", prior=prior, denoiser=den, progress=False, **kw)
    return time.perf_counter() - t0


print(f"tiny UNet: {sum(p.numel() for p in tiny.parameters())} parameters, 64 x 64, 1 thread")
print(f"bird (GLKM): 5 iterations {seconds(bird.run_bird, iters=5):.2f} s, 100 iterations x 10 DDIM steps "
      f"{seconds(bird.run_bird, iters=100):.1f} s")
steps = 1000 if "--full-blinddps" in sys.argv else 5
print(f"blinddps (GLKM): {steps} steps {seconds(blinddps.run_blinddps, iters=steps):.2f} s")

cfg = dict(sample_size=256, in_channels=3, out_channels=3, block_out_channels=(128, 128, 256, 256, 512, 512),
           layers_per_block=2, down_block_types=("DownBlock2D",) * 4 + ("AttnDownBlock2D", "DownBlock2D"),
           up_block_types=("UpBlock2D", "AttnUpBlock2D") + ("UpBlock2D",) * 4, norm_num_groups=32, norm_eps=1e-6,
           downsample_padding=0, flip_sin_to_cos=False, freq_shift=1, act_fn="silu", attention_head_dim=None,
           time_embedding_type="positional", mid_block_scale_factor=1, center_input_sample=False)


def cost(name, net, unwrap=lambda out: out):
    """Parameters, GMAC per forward, seconds per forward and per forward + input backward."""
    net = net.eval().requires_grad_(False)
    x, t = torch.randn(1, 3, 256, 256), torch.tensor([500])
    with torch.no_grad():
        with FlopCounterMode(display=False) as counter:
            net(x, t)
        t0 = time.perf_counter()
        net(x, t)
        forward = time.perf_counter() - t0
    xg = x.clone().requires_grad_(True)
    t0 = time.perf_counter()
    torch.autograd.grad(unwrap(net(xg, t)).square().sum(), xg)
    both = time.perf_counter() - t0
    print(f"{name}: {sum(p.numel() for p in net.parameters()) / 1e6:.1f} M parameters, "
          f"{counter.get_total_flops() / 2e9:.0f} GMAC per forward; forward {forward:.1f} s, forward + input backward "
          f"{both:.1f} s; peak RSS so far {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB")
    return forward, both


forward, _ = cost("CelebA-HQ 256 UNet (BIRD)", diffusers.UNet2DModel(**cfg), unwrap=lambda out: out.sample)
print(f"expected per image: BIRD 1000 forwards ~{1000 * forward / 60:.0f} min")
_, both = cost("BlindDPS FFHQ 256 guided-diffusion UNet", build_guided_unet("ffhq"))
print(f"expected per image: BlindDPS 1000 forward+backward steps of the image model ~{1000 * both / 3600:.1f} h "
      f"(native: plus the 64 x 64 kernel model at every step)")
