"""Kernel layouts of the upstream baselines (hook ``glkm_kernel_layout``).

Input is always our (B, 1, K, K) cross-correlation kernel; all four baselines also
correlate (``F.conv2d``), so no flip is needed, only a reshape or rescale.
"""

from __future__ import annotations

from glkm_prior.plugins import hookimpl


def _flat(kernel):
    return kernel.reshape(-1)


def _per_channel(kernel, channels=3):
    return kernel.reshape(1, 1, *kernel.shape[-2:]).repeat(channels, 1, 1, 1)


def _signed_unit(kernel):
    # BlindDPS' kernel diffusion works on kernels scaled to [-1, 1] (max -> 1, 0 -> -1)
    k = kernel / kernel.amax(dim=(-2, -1), keepdim=True)
    return k * 2 - 1


LAYOUTS = {
    "selfdeblur": _flat,      # net_kernel(...) returns a flat K*K softmax vector
    "vdip": _flat,            # same kernel MLP as SelfDeblur
    "bird": _per_channel,     # weight (C, 1, K, K) for conv2d(..., groups=C)
    "blinddps": _signed_unit,
    "bchw": lambda kernel: kernel,
}


@hookimpl
def glkm_kernel_layout(kernel, baseline):
    fn = LAYOUTS.get(baseline)
    return None if fn is None else fn(kernel)
