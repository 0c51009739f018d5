"""Dense camera-motion blur (glkm_prior/camera_motion.py) and the non-uniform synthetic set."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from glkm_prior.camera_motion import ROTATION_DEG, CameraMotion, sample_camera_motion
from glkm_prior.errors import InvalidInputError
from glkm_prior.physics import blur
from glkm_prior.synthetic_set import build_synthetic_set


def _motion(theta_deg=0.0, s_far=1.0, H=40, W=56, K=15, seed=0):
    rng = np.random.default_rng(seed)
    T = 48
    t = np.linspace(0, 1, T)
    tau = np.stack([3.0 * np.sin(2.5 * t) - 1.0, 4.0 * t - 2.0 + 0.3 * rng.standard_normal(T).cumsum() / T], 1)
    theta = np.radians(theta_deg) * (t - 0.5)
    return CameraMotion(theta, tau, s_far, 0.7, H, W, K)


def _sharp(m, C=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, C, m.height + m.kernel_size - 1, m.width + m.kernel_size - 1, generator=g, dtype=torch.float64)


def test_pure_translation_is_the_uniform_blur_with_its_kernel():
    m = _motion()
    x = _sharp(m, C=3)
    kernels = m.kernels_at([0, 17, 39], [0, 30, 55])
    assert np.allclose(kernels, kernels[:1], atol=1e-7)  # the same kernel everywhere
    k = torch.from_numpy(kernels[0]).double()[None, None]
    assert torch.allclose(m.blur(x), blur(x, k, "valid", method="direct"), atol=1e-10)


def test_every_pixel_is_explained_by_its_own_kernel():
    m = _motion(theta_deg=4.0, s_far=0.5)
    x = _sharp(m, seed=1)
    y = m.blur(x)
    rng = np.random.default_rng(2)
    rows, cols = rng.integers(0, m.height, 25), rng.integers(0, m.width, 25)
    K = m.kernel_size
    for r, c, k in zip(rows, cols, m.kernels_at(rows, cols)):
        direct = float((torch.from_numpy(k).double() * x[0, 0, r: r + K, c: c + K]).sum())
        assert direct == pytest.approx(float(y[0, 0, r, c]), abs=1e-6)  # float32 kernels


def test_kernels_vary_smoothly_and_stay_inside_the_canvas():
    m = _motion(theta_deg=6.0, s_far=0.4)
    field = m.kernel_field((3, 3))
    assert field.shape == (3, 3, 15, 15)
    # float32 kernels of float64 ones that sum to 1: summed in float64 they are off by <= eps32/2 = 6e-8
    # (a float32 sum of 225 entries adds up to ~log2(225) eps32 = 9e-7, at the old 1e-6)
    assert np.allclose(field.sum(axis=(-2, -1), dtype=np.float64), 1, rtol=0, atol=1e-6) and field.min() >= 0
    assert field[..., 0, :].max() == 0 and field[..., -1, :].max() == 0  # outer ring empty
    assert field[..., :, 0].max() == 0 and field[..., :, -1].max() == 0
    # corners differ from the centre (non-uniform); neighbouring pixels barely differ (smooth)
    assert np.abs(field[0, 0] - field[1, 1]).sum() > 0.3
    near = m.kernels_at([20, 20], [28, 29])
    assert np.abs(near[0] - near[1]).sum() < 0.05


def test_sampled_motion_fits_its_canvas_and_is_reproducible():
    a = sample_camera_motion(np.random.default_rng(5), 120, 160, 21, rotation_deg=(8, 10), translation_px=(15, 20))
    b = sample_camera_motion(np.random.default_rng(5), 120, 160, 21, rotation_deg=(8, 10), translation_px=(15, 20))
    assert a.max_displacement() <= 21 // 2 - 1
    assert np.array_equal(a.theta, b.theta) and np.array_equal(a.tau, b.tau)
    with pytest.raises(InvalidInputError, match="odd"):
        sample_camera_motion(np.random.default_rng(0), 50, 50, 20)
    with pytest.raises(InvalidInputError, match="sharp image"):
        a.blur(torch.zeros(1, 1, 10, 10))


def _sharp_folder(tmp_path, n=2):
    folder = tmp_path / "sharp_src"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray((rng.random((70, 90, 3)) * 255).astype(np.uint8)).save(folder / f"im{i}.png")
    return folder


def test_camera_motion_synthetic_set(tmp_path):
    src = _sharp_folder(tmp_path)
    m1 = build_synthetic_set(src, tmp_path / "a", motion="camera", kernel_size=15, seed=3)
    m2 = build_synthetic_set(src, tmp_path / "b", motion="camera", kernel_size=15, seed=3)
    assert m1["motion"] == "camera" and not (tmp_path / "a" / "kernels").exists()
    for name in ("im0", "im1"):
        field = np.load(tmp_path / "a" / "kernel_fields" / f"{name}.npy")
        assert field.shape == (3, 3, 15, 15)
        assert (tmp_path / "a" / "kernel_fields" / f"{name}.png").is_file()
        for sub in ("blurry", "sharp"):
            assert (tmp_path / "a" / sub / f"{name}.png").read_bytes() == (tmp_path / "b" / sub / f"{name}.png").read_bytes()
    item = json.loads((tmp_path / "a" / "manifest.json").read_text())["items"][0]
    assert item["category"] == "camera" and item["exposure"]["max_displacement_px"] <= 6
    with pytest.raises(InvalidInputError, match="motion"):
        build_synthetic_set(src, tmp_path / "c", motion="rolling")
    with pytest.raises(InvalidInputError, match="do not pass kernels"):
        build_synthetic_set(src, tmp_path / "c", motion="camera", kernels=[np.ones((3, 3))])


def test_rotation_range_is_drawn_from_and_recorded(tmp_path):
    # a 200-px image on a 75-px canvas: nothing is shrunk. The drawn range is the peak-to-peak
    # amplitude of a smooth curve, so the realised roll is at most ``high`` and, seed for seed,
    # scales with the drawn value: (4 + 1 u) / (1.5 + 1.5 u) >= 5 / 3 for the same u in [0, 1]
    def roll(seed, rng_deg):
        return sample_camera_motion(np.random.default_rng(seed), 200, 200, 75, rotation_deg=rng_deg).describe()["rotation_deg"]

    for seed in range(6):
        strong, default = roll(seed, (4.0, 5.0)), roll(seed, ROTATION_DEG)
        assert strong <= 5.0 + 1e-9 and default <= ROTATION_DEG[1] + 1e-9
        assert strong / default >= 5 / 3 - 1e-6
    src = _sharp_folder(tmp_path)
    manifest = build_synthetic_set(src, tmp_path / "a", motion="camera", kernel_size=15, rotation_deg=(0.5, 1.0), n=1)
    assert manifest["rotation_deg"] == [0.5, 1.0]
    assert build_synthetic_set(src, tmp_path / "b", motion="camera", kernel_size=15, n=1)["rotation_deg"] == list(ROTATION_DEG)
    with pytest.raises(InvalidInputError, match="rotation_deg"):
        build_synthetic_set(src, tmp_path / "c", motion="camera", rotation_deg=(3.0, 1.0))
    with pytest.raises(InvalidInputError, match="motion='camera' only"):
        build_synthetic_set(src, tmp_path / "c", rotation_deg=(1.0, 2.0))


def test_make_synthetic_cli_rotation(tmp_path, capsys):
    from glkm_prior.cli import main

    src = _sharp_folder(tmp_path)
    assert main(["eval", "make-synthetic", str(src), str(tmp_path / "s"), "--motion", "camera", "--kernel-size", "15",
                 "--n", "1", "--rotation", "0.5,1"]) == 0
    assert json.loads((tmp_path / "s" / "manifest.json").read_text())["rotation_deg"] == [0.5, 1.0]
    assert main(["eval", "make-synthetic", str(src), str(tmp_path / "t"), "--motion", "camera", "--rotation", "2"]) != 0
    assert "--rotation must be LO,HI" in capsys.readouterr().err
