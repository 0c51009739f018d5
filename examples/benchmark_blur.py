"""Speed of the blur forward model: direct conv2d vs FFT, forward + backward (both inputs).

    python examples/benchmark_blur.py            # prints a table, median of 5 runs

The two paths are numerically equal (tests/test_physics.py); 'auto' picks the FFT from 5x5.
"""

import statistics
import time

import torch

from glkm_prior.physics import blur


def seconds(fn, repeats: int = 5) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    print("| image | kernel | direct (ms) | fft (ms) | speed-up |")
    print("|---|---|---|---|---|")
    for image, kernel in [(255, 13), (255, 27), (320, 31), (320, 64), (700, 75)]:
        x = torch.rand(1, 1, image + kernel - 1, image + kernel - 1, requires_grad=True)
        k = torch.rand(1, 1, kernel, kernel, requires_grad=True)
        t = {m: seconds(lambda m=m: blur(x, k, "valid", m).square().sum().backward()) for m in ("direct", "fft")}
        print(f"| {image}x{image} | {kernel}x{kernel} | {t['direct'] * 1e3:.1f} | {t['fft'] * 1e3:.1f} | {t['direct'] / t['fft']:.0f}x |")


if __name__ == "__main__":
    main()
