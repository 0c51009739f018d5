"""Tests of kernel file loading and saving (glkm_prior.kernel_io)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

import glkm_prior.kernel_io as kernel_io
from glkm_prior.errors import GLKMError, ImageReadError, InvalidInputError
from glkm_prior.kernel_io import load_kernel, save_kernel


def make_kernel(h: int = 15, w: int = 15, seed: int = 0) -> np.ndarray:
    """A small curved-stroke kernel, float32, sum 1."""
    rng = np.random.default_rng(seed)
    k = np.zeros((h, w), dtype=np.float64)
    t = np.linspace(0, 1, 200)
    ys = 2 + (h - 5) * t
    xs = (w - 1) / 2 + (w / 4) * np.sin(3 * t)
    for y, x in zip(ys, xs):
        k[int(round(y)), int(round(x))] += 1 + rng.random()
    k /= k.sum()
    return k.astype(np.float32)


def leftovers(folder) -> list[str]:
    return sorted(p for p in os.listdir(folder) if p.endswith(".tmp"))


# ---------------------------------------------------------------- round trips


def test_npy_round_trip_exact(tmp_path):
    k = make_kernel()
    path = tmp_path / "k.npy"
    save_kernel(k, path)
    raw = np.load(path)
    assert raw.dtype == np.float32
    np.testing.assert_array_equal(raw, k)
    loaded = load_kernel(path)
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, k)
    assert leftovers(tmp_path) == []


def test_npy_unnormalised_is_saved_as_given_and_loaded_normalised(tmp_path):
    k = make_kernel() * 7.0
    path = tmp_path / "k.npy"
    save_kernel(k.astype(np.float64), path)
    np.testing.assert_array_equal(np.load(path), k.astype(np.float32))
    loaded = load_kernel(str(path))
    assert abs(float(loaded.sum(dtype=np.float32)) - 1.0) < 1e-5
    np.testing.assert_allclose(loaded, k / k.sum(), rtol=1e-5, atol=1e-8)


def test_png_round_trip_within_8bit_quantisation(tmp_path):
    k = make_kernel(21, 17, seed=3)
    path = tmp_path / "k.png"
    save_kernel(k, path)
    with Image.open(path) as img:
        assert img.mode == "L"
        assert img.size == (17, 21)
        stored = np.asarray(img)
    assert stored.max() == 255
    q = np.rint(k.astype(np.float64) / k.max() * 255)
    np.testing.assert_array_equal(stored, q)
    loaded = load_kernel(path)
    assert loaded.shape == k.shape and loaded.dtype == np.float32
    assert abs(float(loaded.sum(dtype=np.float32)) - 1.0) < 1e-5
    # Equal to the kernel up to the 8-bit quantisation (half a step of max/255) and the
    # resulting small change of the normalisation.
    np.testing.assert_allclose(loaded, q / q.sum(), rtol=1e-6, atol=1e-8)
    assert np.abs(loaded - k).max() <= 1.0 / 255 * k.max()


def test_synthetic_kernels_round_trip(tmp_path):
    from glkm_prior.synthesis import synthesize_kernels

    for i, k in enumerate(synthesize_kernels(3, 31, "lai", seed=1)):
        save_kernel(k, tmp_path / f"{i}.npy")
        np.testing.assert_array_equal(load_kernel(tmp_path / f"{i}.npy"), k)
        save_kernel(k, tmp_path / f"{i}.png")
        assert np.abs(load_kernel(tmp_path / f"{i}.png") - k).max() <= k.max() / 255


def test_save_overwrites_atomically_and_keeps_mode(tmp_path):
    path = tmp_path / "k.npy"
    save_kernel(make_kernel(seed=1), path)
    save_kernel(make_kernel(seed=2), path)
    np.testing.assert_array_equal(np.load(path), make_kernel(seed=2))
    assert leftovers(tmp_path) == []
    mode = os.stat(path).st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask


def test_save_failure_leaves_no_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "k.npy"
    old = make_kernel(seed=1)
    save_kernel(old, path)

    def broken_save(fh, arr, allow_pickle=False):
        fh.write(b"\x93NUMPY partial")
        raise OSError("disk full")

    monkeypatch.setattr(kernel_io.np, "save", broken_save)
    with pytest.raises(GLKMError, match="disk full"):
        save_kernel(make_kernel(seed=2), path)
    monkeypatch.undo()
    np.testing.assert_array_equal(np.load(path), old)  # the old file is intact
    assert leftovers(tmp_path) == []


def test_save_failure_on_new_file_leaves_nothing(tmp_path, monkeypatch):
    def broken_save(fh, arr, allow_pickle=False):
        fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(kernel_io.np, "save", broken_save)
    with pytest.raises(GLKMError):
        save_kernel(make_kernel(), tmp_path / "new.npy")
    assert os.listdir(tmp_path) == []


def test_save_accepts_torch_tensor(tmp_path):
    torch = pytest.importorskip("torch")
    k = make_kernel()
    save_kernel(torch.from_numpy(k.copy()), tmp_path / "t.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "t.npy"), k)


@pytest.mark.parametrize("suffix", [".bmp", ".tif"])
def test_other_lossless_image_formats(tmp_path, suffix):
    k = make_kernel()
    save_kernel(k, tmp_path / f"k{suffix}")
    assert np.abs(load_kernel(tmp_path / f"k{suffix}") - k).max() <= k.max() / 255


# ---------------------------------------------------------------- benchmark-style files


def scaled_uint8(k: np.ndarray) -> np.ndarray:
    return np.rint(k / k.max() * 255).astype(np.uint8)


def test_max255_grayscale_png_loads_normalised(tmp_path):
    k = make_kernel(27, 27, seed=4)
    u8 = scaled_uint8(k)
    Image.fromarray(u8).save(tmp_path / "kernel1.png")
    loaded = load_kernel(tmp_path / "kernel1.png")
    np.testing.assert_allclose(loaded, u8 / u8.sum(dtype=np.float64), rtol=1e-6, atol=1e-9)
    assert abs(float(loaded.sum(dtype=np.float32)) - 1.0) < 1e-5


def test_rgb_png_is_averaged_to_gray(tmp_path):
    u8 = scaled_uint8(make_kernel(seed=5))
    rgb = np.stack([u8, u8, u8], axis=-1)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    np.testing.assert_allclose(load_kernel(tmp_path / "rgb.png"), u8 / u8.sum(dtype=np.float64), rtol=1e-6)
    # Channels are averaged, not just the first one taken.
    rgb2 = np.zeros((3, 3, 3), np.uint8)
    rgb2[1, 1] = (255, 255, 255)
    rgb2[0, 1] = (0, 0, 255)
    Image.fromarray(rgb2).save(tmp_path / "rgb2.png")
    out = load_kernel(tmp_path / "rgb2.png")
    np.testing.assert_allclose(out[[0, 1], [1, 1]], [0.25, 0.75], rtol=1e-6)


def test_rgba_and_palette_png(tmp_path):
    u8 = scaled_uint8(make_kernel(seed=6))
    expected = u8 / u8.sum(dtype=np.float64)
    rgba = np.stack([u8, u8, u8, np.full_like(u8, 255)], axis=-1)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    np.testing.assert_allclose(load_kernel(tmp_path / "rgba.png"), expected, rtol=1e-6)
    Image.fromarray(u8).convert("P").save(tmp_path / "pal.png")
    np.testing.assert_allclose(load_kernel(tmp_path / "pal.png"), expected, rtol=1e-6)


def test_16bit_png(tmp_path):
    k = make_kernel(seed=7)
    u16 = np.rint(k / k.max() * 65535).astype(np.uint16)
    Image.fromarray(u16).save(tmp_path / "k16.png")
    with Image.open(tmp_path / "k16.png") as img:
        assert img.mode.startswith("I")
    loaded = load_kernel(tmp_path / "k16.png")
    np.testing.assert_allclose(loaded, u16 / u16.sum(dtype=np.float64), rtol=1e-6, atol=1e-10)
    assert np.abs(loaded - k).max() <= k.max() / 65535 * 2


def test_jpeg_and_bmp_load(tmp_path):
    u8 = scaled_uint8(make_kernel(seed=8))
    Image.fromarray(u8).save(tmp_path / "k.jpg", quality=95)
    Image.fromarray(u8).save(tmp_path / "k.bmp")
    j = load_kernel(tmp_path / "k.jpg")
    assert j.shape == u8.shape and j.dtype == np.float32
    assert abs(float(j.sum(dtype=np.float32)) - 1.0) < 1e-5
    np.testing.assert_allclose(load_kernel(tmp_path / "k.bmp"), u8 / u8.sum(dtype=np.float64), rtol=1e-6)


def test_even_and_non_square_sizes_allowed(tmp_path):
    k = np.zeros((4, 6), np.float32)
    k[1, 2:5] = [1, 2, 1]
    np.save(tmp_path / "even.npy", k)
    out = load_kernel(tmp_path / "even.npy")
    assert out.shape == (4, 6)
    np.testing.assert_allclose(out, k / 4)
    np.save(tmp_path / "one.npy", np.array([[3.0]]))
    np.testing.assert_array_equal(load_kernel(tmp_path / "one.npy"), [[1.0]])


def test_integer_and_float64_npy(tmp_path):
    np.save(tmp_path / "i.npy", np.array([[0, 1], [3, 0]], dtype=np.int16))
    np.testing.assert_allclose(load_kernel(tmp_path / "i.npy"), [[0, 0.25], [0.75, 0]])
    np.save(tmp_path / "f.npy", np.array([[0.5, 0.5]], dtype=np.float64))
    out = load_kernel(tmp_path / "f.npy")
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[0.5, 0.5]])


# ---------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    for name in ("missing.png", "missing.npy"):
        path = tmp_path / name
        with pytest.raises(ImageReadError, match="missing"):
            load_kernel(path)


def test_directory_is_not_a_kernel(tmp_path):
    d = tmp_path / "dir.png"
    d.mkdir()
    with pytest.raises(ImageReadError, match="dir.png"):
        load_kernel(d)


@pytest.mark.parametrize("name", ["garbage.png", "garbage.jpg", "garbage.bmp", "noext"])
def test_corrupt_image(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"this is not an image at all" * 10)
    with pytest.raises(ImageReadError, match=name):
        load_kernel(path)


def test_truncated_png(tmp_path):
    u8 = scaled_uint8(make_kernel(31, 31))
    Image.fromarray(u8).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="cut.png"):
        load_kernel(tmp_path / "cut.png")


def test_empty_file(tmp_path):
    for name in ("empty.png", "empty.npy"):
        (tmp_path / name).write_bytes(b"")
        with pytest.raises(ImageReadError, match=name):
            load_kernel(tmp_path / name)


def test_corrupt_npy(tmp_path):
    path = tmp_path / "bad.npy"
    path.write_bytes(b"\x93NUMPY\x01\x00garbage")
    with pytest.raises(ImageReadError, match="bad.npy"):
        load_kernel(path)
    good = tmp_path / "good.npy"
    np.save(good, make_kernel())
    data = good.read_bytes()
    trunc = tmp_path / "trunc.npy"
    trunc.write_bytes(data[: len(data) - 100])
    with pytest.raises(ImageReadError, match="trunc.npy"):
        load_kernel(trunc)


def test_pickled_object_npy_is_refused(tmp_path):
    path = tmp_path / "obj.npy"
    np.save(path, np.array([[1, None]], dtype=object), allow_pickle=True)
    with pytest.raises(ImageReadError, match="obj.npy"):
        load_kernel(path)


@pytest.mark.parametrize(
    "arr",
    [
        np.ones((3, 3, 3), np.float32),  # 3-D
        np.ones(5, np.float32),  # 1-D
        np.float32(1.0),  # 0-D
        np.ones((0, 5), np.float32),  # empty
        np.ones((3, 3), np.complex64),  # complex
    ],
    ids=["3d", "1d", "0d", "empty", "complex"],
)
def test_bad_shape_or_dtype(tmp_path, arr):
    path = tmp_path / "bad.npy"
    np.save(path, arr)
    with pytest.raises(InvalidInputError, match="bad.npy"):
        load_kernel(path)


@pytest.mark.parametrize(
    "value,match",
    [(np.nan, "NaN"), (np.inf, "NaN or Inf"), (-np.inf, "NaN or Inf"), (-0.1, "negative")],
)
def test_bad_values(tmp_path, value, match):
    k = make_kernel()
    k[3, 3] = value
    path = tmp_path / "bad.npy"
    np.save(path, k)
    with pytest.raises(InvalidInputError, match=match):
        load_kernel(path)


def test_all_zero(tmp_path):
    np.save(tmp_path / "zero.npy", np.zeros((5, 5), np.float32))
    with pytest.raises(InvalidInputError, match="all zeros"):
        load_kernel(tmp_path / "zero.npy")
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "zero.png")
    with pytest.raises(InvalidInputError, match="zero.png"):
        load_kernel(tmp_path / "zero.png")


def test_errors_are_project_errors(tmp_path):
    assert issubclass(ImageReadError, GLKMError)
    assert issubclass(InvalidInputError, GLKMError)


@pytest.mark.parametrize(
    "kernel",
    [
        np.ones((3, 3, 1), np.float32),
        np.zeros((3, 3), np.float32),
        np.array([[1.0, np.nan]]),
        np.array([[1.0, -1.0]]),
        np.array([["a", "b"]]),
    ],
    ids=["3d", "zero", "nan", "negative", "strings"],
)
@pytest.mark.parametrize("suffix", [".npy", ".png"])
def test_save_invalid_kernel(tmp_path, kernel, suffix):
    with pytest.raises(InvalidInputError):
        save_kernel(kernel, tmp_path / f"k{suffix}")
    assert os.listdir(tmp_path) == []


def test_save_unsupported_suffix(tmp_path):
    with pytest.raises(InvalidInputError, match="unsupported suffix"):
        save_kernel(make_kernel(), tmp_path / "k.jpg")
    with pytest.raises(InvalidInputError):
        save_kernel(make_kernel(), tmp_path / "k")
    assert os.listdir(tmp_path) == []


def test_save_to_missing_folder(tmp_path):
    with pytest.raises(GLKMError, match="does not exist"):
        save_kernel(make_kernel(), tmp_path / "nope" / "k.npy")
