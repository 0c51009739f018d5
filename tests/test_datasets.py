"""Dataset loaders (Levin, Lai, generic folders, detection) and the synthetic-set builder."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import shared_path
from glkm_prior import datasets
from glkm_prior.cli import main
from glkm_prior.errors import InvalidInputError, KernelSizeError
from glkm_prior.imageio import read_image, to_array, to_tensor
from glkm_prior.kernel_io import load_kernel
from glkm_prior.physics import blur
from glkm_prior.synthetic_set import build_synthetic_set, prepare_sharp


# ----------------------------------------------------------------------------- fake trees
def _png(path, shape, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)
    Image.fromarray(a).save(path)
    return path


def _kernel_png(path, size):
    k = np.zeros((size, size), np.uint8)
    k[size // 2, 2 : size - 2] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(k).save(path)
    return path


def photo(shape, seed):
    """A procedural 'photo': smooth gradient, random discs and rectangles, some texture."""
    rng = np.random.default_rng(seed)
    h, w = shape[:2]
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([0.3 + 0.4 * xx, 0.2 + 0.5 * yy, 0.5 - 0.3 * xx * yy], axis=-1)
    for _ in range(8):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(4, max(h, w) / 4)
        img[(yy * max(h, w) - cy) ** 2 + (xx * max(h, w) - cx) ** 2 < r * r] = rng.uniform(0, 1, 3)
        y0, x0 = int(rng.integers(0, h - 8)), int(rng.integers(0, w - 8))
        img[y0 : y0 + int(rng.integers(4, h // 3)), x0 : x0 + int(rng.integers(4, w // 3))] = rng.uniform(0, 1, 3)
    img += 0.03 * rng.standard_normal(img.shape)
    return np.clip(img, 0, 1) if len(shape) == 3 else np.clip(img.mean(-1), 0, 1)


def write_photos(folder, n, shape=(128, 128, 3)):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(np.round(photo(shape, i) * 255).astype(np.uint8)).save(folder / f"photo{i:02d}.png")
    return folder


def fake_levin(root):
    for i in (1, 2):
        _png(root / "gt" / f"im{i}.png", (64, 64), seed=i)
        for j in (1, 4):
            _png(root / f"im{i}_kernel{j}_img.png", (64, 64), seed=10 * i + j)
    _kernel_png(root / "gt" / "kernel1.png", 19)
    _kernel_png(root / "gt" / "kernel4.png", 27)
    return root


def fake_lai(root, blurred_in_root=False):
    names = ["manmade_01", "text_02"]
    for n, name in enumerate(names):
        _png(root / "sharp" / f"{name}.png", (80, 96, 3), seed=n)
        for j, size in ((1, 31), (2, 51)):
            folder = root if blurred_in_root else root / "blurred"
            _png(folder / f"{name}_kernel_0{j}.png", (80, 96, 3), seed=100 + 10 * n + j)
    _kernel_png(root / "kernels" / "kernel_01.png", 31)
    _kernel_png(root / "kernels" / "kernel_02.png", 51)
    return root


# ----------------------------------------------------------------------------- Levin
def test_levin_fake_tree_and_detection(tmp_path):
    root = fake_levin(tmp_path / "levin")
    samples = datasets.levin(root)
    assert [s.name for s in samples] == ["im1_kernel1", "im1_kernel4", "im2_kernel1", "im2_kernel4"]
    s = samples[1]
    assert s.sharp == root / "gt" / "im1.png" and s.kernel == root / "gt" / "kernel4.png"
    assert s.kernel_size == 27 and s.category == "kernel4"
    assert datasets.detect_layout(root) == "levin"
    assert datasets.load_dataset(root) == samples
    assert datasets.load_dataset(str(root)) == samples


def test_levin_real_when_available():
    root = shared_path("levin")
    samples = datasets.load_dataset(root)
    assert len(samples) == 32
    assert {s.category for s in samples} == {f"kernel{j}" for j in range(1, 9)}
    assert all(s.blurry.is_file() and s.sharp.is_file() and s.kernel.is_file() for s in samples)
    assert datasets.resolve_dataset("levin")[0] == root.resolve()
    assert len(datasets.load_dataset("levin")) == 32


# ----------------------------------------------------------------------------- Lai
@pytest.mark.parametrize("blurred_in_root", [False, True])
def test_lai_fake_tree(tmp_path, blurred_in_root):
    root = fake_lai(tmp_path / "lai", blurred_in_root)
    assert datasets.detect_layout(root) == "lai"
    samples = datasets.load_dataset(root)
    assert [s.name for s in samples] == ["manmade_01_kernel_01", "manmade_01_kernel_02", "text_02_kernel_01", "text_02_kernel_02"]
    assert [s.category for s in samples] == ["manmade", "manmade", "text", "text"]
    assert [s.kernel_size for s in samples] == [31, 51, 31, 51]
    assert samples[2].sharp == root / "sharp" / "text_02.png"
    assert samples[1].kernel == root / "kernels" / "kernel_02.png"
    assert read_image(samples[0].blurry).shape == (80, 96, 3)


def test_lai_problems_are_clear(tmp_path):
    root = fake_lai(tmp_path / "lai")
    (root / "sharp" / "text_02.png").unlink()
    with pytest.raises(InvalidInputError, match="no sharp image"):
        datasets.lai_uniform(root)
    root = fake_lai(tmp_path / "lai2")
    _png(root / "manmade_01_kernel_01.png", (8, 8, 3))  # the same image in root and blurred/
    with pytest.raises(InvalidInputError, match="found twice"):
        datasets.lai_uniform(root)
    root = fake_lai(tmp_path / "lai3")
    (root / "kernels" / "kernel_02.png").unlink()
    with pytest.raises(InvalidInputError, match="no kernel"):
        datasets.lai_uniform(root)


# ----------------------------------------------------------------------------- generic
def test_folder_dataset_with_and_without_manifest(tmp_path):
    root = tmp_path / "set"
    for stem in ("a", "b"):
        _png(root / "blurry" / f"{stem}.png", (50, 60))
        _png(root / "sharp" / f"{stem}.png", (50, 60))
    _kernel_png(root / "kernels" / "a.png", 15)
    np.save(root / "kernels" / "a.npy", np.full((13, 13), 1 / 169, np.float32))  # .npy wins over .png
    samples = datasets.load_dataset(root)
    assert datasets.detect_layout(root) == "folder"
    assert [(s.name, s.kernel_size, s.category) for s in samples] == [("a", 13, None), ("b", None, None)]
    assert samples[0].kernel.suffix == ".npy" and samples[1].kernel is None
    (root / "manifest.json").write_text(json.dumps({"items": [{"name": "a", "kernel_size": 11, "category": "x"},
                                                              {"name": "b", "kernel_size": 17, "category": "y"}]}))
    samples = datasets.folder_dataset(root)
    assert [(s.kernel_size, s.category) for s in samples] == [(11, "x"), (17, "y")]
    (root / "sharp" / "b.png").unlink()
    with pytest.raises(InvalidInputError, match="no sharp image"):
        datasets.folder_dataset(root)


def test_detection_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match="empty"):
        datasets.load_dataset(tmp_path / "empty")
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "notes.txt").write_text("no images here")
    with pytest.raises(InvalidInputError, match="unknown dataset layout"):
        datasets.load_dataset(tmp_path / "odd")
    _png(tmp_path / "photos" / "x.png", (8, 8))  # bare images: photos without ground truth
    assert datasets.detect_layout(tmp_path / "photos") == "photos"
    assert [s.name for s in datasets.load_dataset(tmp_path / "photos")] == ["x"]
    with pytest.raises(InvalidInputError, match="unknown dataset 'nope'"):
        datasets.load_dataset("nope")
    (tmp_path / "f" / "blurry").mkdir(parents=True)
    (tmp_path / "f" / "sharp").mkdir()
    with pytest.raises(InvalidInputError, match="no images"):
        datasets.load_dataset(tmp_path / "f")


# ----------------------------------------------------------------------------- synthetic sets
def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_synthetic_set_is_reproducible_and_reads_back(tmp_path):
    src = write_photos(tmp_path / "src", 3, (90, 100, 3))
    m1 = build_synthetic_set(src, tmp_path / "a", seed=3, noise=0.01)
    build_synthetic_set(src, tmp_path / "b", seed=3, noise=0.01)
    build_synthetic_set(src, tmp_path / "c", seed=4, noise=0.01)
    a, b, c = _files(tmp_path / "a"), _files(tmp_path / "b"), _files(tmp_path / "c")
    assert a == b
    assert sorted(a) == sorted(c) and a["blurry/photo00.png"] != c["blurry/photo00.png"]
    assert a["kernels/photo00.npy"] != c["kernels/photo00.npy"]
    assert sorted(a) == ["blurry/photo00.png", "blurry/photo01.png", "blurry/photo02.png",
                         "kernels/photo00.npy", "kernels/photo00.png", "kernels/photo01.npy", "kernels/photo01.png",
                         "kernels/photo02.npy", "kernels/photo02.png", "manifest.json",
                         "sharp/photo00.png", "sharp/photo01.png", "sharp/photo02.png"]
    manifest = json.loads(a["manifest.json"])
    assert manifest["seed"] == 3 and manifest["family"] == "levin" and manifest["noise"] == 0.01
    assert [it["source"] for it in manifest["items"]] == ["photo00.png", "photo01.png", "photo02.png"]
    assert all(it["kernel_size"] == 31 and it["shape"] == [60, 70, 3] for it in manifest["items"])
    assert m1 == manifest
    samples = datasets.load_dataset(tmp_path / "a")
    assert [(s.name, s.kernel_size, s.category) for s in samples] == [(f"photo0{i}", 31, "levin") for i in range(3)]
    k = load_kernel(samples[0].kernel)
    assert k.shape == (31, 31) and abs(k.sum() - 1) < 1e-5
    assert read_image(samples[0].blurry).shape == read_image(samples[0].sharp).shape == (60, 70, 3)


def test_synthetic_blurry_matches_the_forward_model(tmp_path):
    src = write_photos(tmp_path / "src", 2, (80, 90, 3))
    build_synthetic_set(src, tmp_path / "set", noise=0.0, family="levin", kernel_size=21, seed=1)
    for stem in ("photo00", "photo01"):
        k = np.load(tmp_path / "set" / "kernels" / f"{stem}.npy")
        blurry = read_image(tmp_path / "set" / "blurry" / f"{stem}.png")
        sharp = read_image(tmp_path / "set" / "sharp" / f"{stem}.png")
        # 1. the whole blurry image: forward model of the (large) prepared sharp image, exactly
        big = prepare_sharp(src / f"{stem}.png")
        kt = torch.from_numpy(k)[None, None].double()
        expected = to_array(blur(to_tensor(big).double(), kt, "valid"))
        np.testing.assert_array_equal(blurry, np.round(np.clip(expected, 0, 1) * 255).astype(np.float32) / 255)
        h = 21 // 2
        np.testing.assert_array_equal(sharp, big[h : h + blurry.shape[0], h : h + blurry.shape[1]])
        # 2. from the stored files alone: where the kernel footprint lies inside the stored sharp
        # image, blurry = blur(stored sharp, k, 'valid') up to the 8-bit rounding
        inner = to_array(blur(to_tensor(sharp).double(), kt, "valid"))
        diff = np.abs(blurry[h:-h, h:-h] - inner)
        assert diff.max() <= 0.5 / 255 + 1e-6


def test_synthetic_noise_and_given_kernels(tmp_path):
    src = write_photos(tmp_path / "src", 1, (96, 96))
    box = np.zeros((9, 9), np.float32)
    box[4, :] = 1  # horizontal box blur, 9 px
    build_synthetic_set(src, tmp_path / "n", noise=0.02, kernels=[box], seed=0, colour=False)
    blurry = read_image(tmp_path / "n" / "blurry" / "photo00.png")
    sharp = read_image(tmp_path / "n" / "sharp" / "photo00.png")
    assert blurry.ndim == 2 and blurry.shape == (88, 88)
    np.testing.assert_allclose(np.load(tmp_path / "n" / "kernels" / "photo00.npy"), box / 9)
    clean = to_array(blur(to_tensor(sharp).double(), torch.from_numpy(box / 9)[None, None].double(), "valid"))
    residual = blurry[4:-4, 4:-4] - clean
    assert 0.015 < residual.std() < 0.025 and abs(residual.mean()) < 0.003
    manifest = json.loads((tmp_path / "n" / "manifest.json").read_text())
    assert manifest["items"][0]["category"] == "given" and manifest["items"][0]["kernel_seed"] is None


def test_synthetic_large_upscaled_rgb_image(tmp_path):
    src = write_photos(tmp_path / "src", 1, (300, 400, 3))
    manifest = build_synthetic_set(src, tmp_path / "big", upscale=3.0, family="lai", seed=0, noise=0.01)
    item = manifest["items"][0]
    assert item["source_shape"] == [900, 1200, 3] and item["kernel_size"] == 75
    blurry = read_image(tmp_path / "big" / "blurry" / "photo00.png")
    assert blurry.shape == (826, 1126, 3) == read_image(tmp_path / "big" / "sharp" / "photo00.png").shape
    manifest = build_synthetic_set(src, tmp_path / "capped", upscale=3.0, max_side=600, kernel_size=31, seed=0)
    assert manifest["items"][0]["source_shape"] == [450, 600, 3]


def test_synthetic_bad_input(tmp_path):
    src = write_photos(tmp_path / "src", 1, (40, 40, 3))
    with pytest.raises(InvalidInputError, match="too small|no usable"):
        build_synthetic_set(src, tmp_path / "o", kernel_size=31)
    with pytest.raises(InvalidInputError, match="unknown kernel family"):
        build_synthetic_set(src, tmp_path / "o", family="nope")
    with pytest.raises(KernelSizeError):
        build_synthetic_set(src, tmp_path / "o", kernel_size=12)
    (tmp_path / "none").mkdir()
    with pytest.raises(InvalidInputError, match="no images"):
        build_synthetic_set(tmp_path / "none", tmp_path / "o")


def test_make_synthetic_cli_matches_api(tmp_path, capsys):
    src = write_photos(tmp_path / "src", 3, (70, 70, 3))
    assert main(["eval", "make-synthetic", str(src), str(tmp_path / "cli"), "--n", "2", "--seed", "5",
                 "--kernel-size", "15", "--noise", "0.005"]) == 0
    assert "wrote 2 images" in capsys.readouterr().out
    build_synthetic_set(src, tmp_path / "api", n=2, seed=5, kernel_size=15, noise=0.005)
    cli, api = _files(tmp_path / "cli"), _files(tmp_path / "api")
    cli_manifest, api_manifest = json.loads(cli.pop("manifest.json")), json.loads(api.pop("manifest.json"))
    assert cli == api
    assert cli_manifest["items"] == api_manifest["items"]
    assert main(["eval", "make-synthetic", str(src), str(tmp_path / "x"), "--noise", "-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("glkm: error:") and "--noise" in err[0]


def test_named_datasets_resolve_in_the_data_root(tmp_path, monkeypatch):
    """``levin`` / ``lai_uniform`` name folders of $GLKM_DATA (else ../shared/data beside the checkout)."""
    fake_levin(tmp_path / "data" / "levin")
    fake_lai(tmp_path / "data" / "lai_uniform")
    monkeypatch.setenv("GLKM_DATA", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)  # no folder named like the dataset in the working directory
    assert datasets.resolve_dataset("levin") == ((tmp_path / "data" / "levin").resolve(), "levin")
    assert datasets.resolve_dataset("LAI_UNIFORM")[1] == "lai"
    with pytest.raises(InvalidInputError, match="GLKM_DATA"):
        datasets.resolve_dataset("lai_real")
    monkeypatch.delenv("GLKM_DATA")
    assert datasets.data_root() == datasets.repo_root().parent / "shared" / "data"
