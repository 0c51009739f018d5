import numpy as np
import pytest
import torch
from PIL import Image

from glkm_prior.errors import ImageReadError, InvalidInputError
from glkm_prior.imageio import kernel_to_image, read_image, tile_factor, to_array, to_tensor, write_image


def test_round_trip_grey_and_colour(tmp_path):
    rng = np.random.default_rng(0)
    for shape in [(20, 30), (20, 30, 3)]:
        arr = rng.random(shape).astype(np.float32)
        path = write_image(tmp_path / f"x{len(shape)}.png", arr)
        back = read_image(path)
        assert back.shape == shape
        assert np.abs(back - arr).max() <= 0.5 / 255 + 1e-6


def test_sixteen_bit_and_mode_conversion(tmp_path):
    arr = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    Image.fromarray(arr).save(tmp_path / "d.png")
    img = read_image(tmp_path / "d.png")
    assert img.dtype == np.float32 and img.max() == pytest.approx(1.0) and img.min() == 0
    rgb = read_image(tmp_path / "d.png", mode="rgb")
    assert rgb.shape == (64, 64, 3)
    col = np.zeros((8, 8, 3), dtype=np.uint8)
    col[..., 0] = 255
    Image.fromarray(col).save(tmp_path / "red.png")
    assert read_image(tmp_path / "red.png", mode="gray")[0, 0] == pytest.approx(0.299, abs=1e-3)


def test_tensor_conversion_round_trip():
    arr = np.random.default_rng(1).random((5, 6, 3)).astype(np.float32)
    t = to_tensor(arr)
    assert t.shape == (1, 3, 5, 6)
    assert np.array_equal(to_array(t), arr)
    assert to_tensor(arr[..., 0]).shape == (1, 1, 5, 6)


def test_errors(tmp_path):
    with pytest.raises(ImageReadError, match="not found"):
        read_image(tmp_path / "none.png")
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 broken")
    with pytest.raises(ImageReadError, match="bad.jpg"):
        read_image(tmp_path / "bad.jpg")
    with pytest.raises(InvalidInputError):
        write_image(tmp_path / "x.png", np.zeros((4, 4, 2)))
    with pytest.raises(InvalidInputError, match="NaN"):
        to_tensor(np.full((3, 3), np.nan))
    with pytest.raises(InvalidInputError, match="extension"):
        write_image(tmp_path / "x.xyz", np.zeros((4, 4)))
    assert not list(tmp_path.glob(".x*"))  # no temporary leftovers


def test_kernel_tiles_one_rule():
    """One kernel-tile drawing (CLI PNG, report grid, gallery): whole-factor nearest enlargement."""
    assert tile_factor((19, 19), min_side=256) == 14 and tile_factor((19, 19), fit=176) == 9
    assert tile_factor((200, 200), fit=176) == 1 and tile_factor((5, 7), min_side=0) == 1
    k = np.zeros((3, 3), np.float32)
    k[1, 2] = 0.5
    k[0, 0] = 0.25
    tile = kernel_to_image(k, fit=10, dtype=np.float64)
    assert tile.shape == (9, 9) and tile.dtype == np.float64 and tile.max() == 1.0
    assert (tile[3:6, 6:9] == 1.0).all() and (tile[0:3, 0:3] == 0.5).all()
    with pytest.raises(InvalidInputError, match="2-D"):
        kernel_to_image(np.zeros((2, 3, 3)))
