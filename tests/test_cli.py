import json

import numpy as np
import torch
import pytest
from PIL import Image

from glkm_prior.cli import main
from glkm_prior.imageio import read_image, to_tensor
from glkm_prior.errors import InvalidInputError


def test_plugins_lists_builtins(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    for name in ("glkm", "native", "initializer", "glkm_kernel_branches"):
        assert name in out
    assert main(["plugins", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"glkm", "native"} <= set(data["kernel_branches"])


def test_deblur_example_writes_image_kernel_and_report(tmp_path, example_dir, capsys):
    out = tmp_path / "res" / "deblurred.png"
    assert main(["deblur", str(example_dir / "blurry.png"), "-o", str(out), "--kernel-size", "19", "--iters", "1"]) == 0
    image = read_image(out)
    assert image.shape == read_image(example_dir / "blurry.png").shape
    kernel = np.load(tmp_path / "res" / "deblurred_kernel.npy")
    report = json.loads((tmp_path / "res" / "deblurred.json").read_text())
    # the default method (l0) returns at least the asked size, more when the estimate's support needs it
    side = kernel.shape[0]
    assert kernel.shape == (side, side) == tuple(report["kernel_shape"]) and side >= 19 and side % 2 == 1
    assert kernel.min() >= 0 and abs(kernel.sum() - 1) < 1e-4
    # the viewing PNG is the kernel enlarged by a whole factor (each kernel pixel a f x f square) to >= 256 px
    png = np.asarray(Image.open(tmp_path / "res" / "deblurred_kernel.png"), dtype=np.float64)
    f = -(-256 // side)
    assert png.shape == (side * f, side * f)
    expected = np.round(kernel / kernel.max() * 255).repeat(f, 0).repeat(f, 1)
    assert np.abs(png - expected).max() <= 1  # 8-bit rounding
    assert report["kernel_size"] == 19 and report["method"] == "l0" and report["seconds"] > 0
    assert report["threads"] == 1 and isinstance(report["warnings"], list)
    assert sorted(p.name for p in (tmp_path / "res").iterdir()) == [
        "deblurred.json", "deblurred.png", "deblurred_kernel.npy", "deblurred_kernel.png"]
    # refuses to overwrite without --force
    assert main(["deblur", str(example_dir / "blurry.png"), "-o", str(out)]) == 2
    assert "--force" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content, args, message",
    [
        (None, [], "not found"),
        (b"this is not a png", [], "cannot read image"),
        (b"", ["--kernel-size", "501"], "outside the supported range"),
        (b"", ["--method", "nope"], "unknown method"),
        (b"", ["--weights", "/no/such/folder"], "does not exist"),
    ],
)
def test_bad_input_one_line_error_and_no_output(tmp_path, example_dir, capsys, content, args, message):
    src = example_dir / "blurry.png"
    if content is None:
        src = tmp_path / "missing.png"
    elif content:
        src = tmp_path / "bad.png"
        src.write_bytes(content)
    out = tmp_path / "out" / "x.png"
    assert main(["deblur", str(src), "-o", str(out), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("glkm: error:") and message in err[0]
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_nan_image_is_rejected(tmp_path, capsys):
    arr = np.full((70, 70), np.nan, dtype=np.float32)
    path = tmp_path / "nan.tif"
    Image.fromarray(arr, mode="F").save(path)
    assert main(["deblur", str(path), "-o", str(tmp_path / "o.png")]) == 2
    assert "NaN" in capsys.readouterr().err


def test_help_explains_options(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["deblur", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--kernel-size" in out and "--kernel-branch" in out


def test_train_export_writes_a_shippable_prior(tmp_path, tiny_prior, capsys):
    from glkm_prior import KernelPrior
    from glkm_prior.hub import read_config

    tiny_prior.save_pretrained(tmp_path / "run")
    assert main(["train", "export", str(tmp_path / "run"), str(tmp_path / "ship")]) == 0
    assert read_config(tmp_path / "ship" / "initializer")["dtype"] == "float16"
    assert read_config(tmp_path / "ship" / "generator")["dtype"] == "float32"
    shipped = KernelPrior.from_pretrained(tmp_path / "ship")
    assert torch.equal(shipped.generator.head[0].weight, tiny_prior.generator.head[0].weight)


def test_eval_prior_coverage_part_prints_a_table(tmp_path, tiny_prior, capsys):
    tiny_prior.save_pretrained(tmp_path / "p")
    out = tmp_path / "report.json"
    assert main(["eval", "prior", "--weights", str(tmp_path / "p"), "--parts", "coverage",
                 "--coverage-kernels", "3", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "held-out `levin` kernels | 3 |" in text
    report = json.loads(out.read_text())
    assert report["parts"] == ["coverage"] and 0 <= report["coverage_synthetic"]["rel_l2"]["median"]
    assert main(["eval", "prior", "--weights", str(tmp_path / "p"), "--parts", "bogus"]) == 2


def test_initializer_on_synthetic_crops_fits_large_kernels_into_small_photos(tmp_path):
    """A 75-px kernel on photos whose side cannot hold a 256-px crop: smaller crops, not none."""
    from glkm_prior import KernelPrior
    from glkm_prior.errors import InvalidInputError
    from glkm_prior.evaluate_prior import initializer_synthetic

    rng = np.random.default_rng(0)
    for name, side in (("a", 150), ("b", 160)):
        Image.fromarray((rng.random((side, side)) * 255).astype(np.uint8)).save(tmp_path / f"{name}.png")
    prior = KernelPrior.untrained(75, seed=0)
    report = initializer_synthetic(prior, tmp_path, "lai", n=2)
    assert len(report["per_image"]) == 2 and all(np.isfinite(r["psnr_true"]) for r in report["per_image"].values())
    small = tmp_path / "small"
    small.mkdir()
    Image.fromarray((rng.random((100, 100)) * 255).astype(np.uint8)).save(small / "c.png")
    with pytest.raises(InvalidInputError, match="large enough for a 75-px kernel"):
        initializer_synthetic(prior, small, "lai", n=2)


@pytest.mark.parametrize("spelling", ["same", "relative", "hard link"])
def test_deblur_never_overwrites_its_input_even_with_force(tmp_path, example_dir, capsys, monkeypatch, spelling):
    photo = tmp_path / "photo.png"
    photo.write_bytes((example_dir / "blurry.png").read_bytes())
    before = photo.read_bytes()
    monkeypatch.chdir(tmp_path)
    output = {"same": str(photo), "relative": "./sub/../photo.png", "hard link": str(tmp_path / "link.png")}[spelling]
    if spelling == "hard link":
        (tmp_path / "link.png").hardlink_to(photo)
    assert main(["deblur", str(photo), "-o", output, "--force", "--kernel-size", "11", "--iters", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is the input image" in err[0]
    assert photo.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["photo.png"] + (["link.png"] if spelling == "hard link" else []))


@pytest.mark.parametrize("shape", [(1, 1), (10, 1000), (21, 40)])
def test_too_small_image_gets_one_clean_error_line(tmp_path, capsys, shape):
    path = tmp_path / "small.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)).save(path)
    assert main(["deblur", str(path), "-o", str(tmp_path / "o.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"glkm: error: the image is {shape[0]}x{shape[1]} px: too small for the smallest automatic kernel "
                   f"size (11 px); deblurring needs at least 22 px per side"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.png"]


def test_small_image_auto_kernel_size_runs(tmp_path, example_dir, capsys):
    """A 70 px crop: the size probe sees it at 31/35 scale, 62 px, below the initializer's 64 px (padded, not refused)."""
    crop = read_image(example_dir / "blurry.png", mode="gray")[:70, :70]
    path = tmp_path / "crop.png"
    Image.fromarray(np.round(crop * 255).astype(np.uint8)).save(path)
    assert main(["deblur", str(path), "-o", str(tmp_path / "o.png"), "--iters", "1"]) == 0
    report = json.loads((tmp_path / "o.json").read_text())
    assert report["kernel_size_estimate"]["max_size"] == 35 and report["kernel_size"] <= 35  # odd(70 // 2 - 1)
    assert "kernel size" in capsys.readouterr().err


def test_default_methods_uniform_and_nonuniform(capsys):
    """``glkm deblur`` runs l0 by default and svola-fast with --nonuniform (l0 has no SVOLA variant)."""
    from glkm_prior.cli import deblur as cli

    assert cli._deblur_method_name(None, False) == "l0" and cli._deblur_method_name(None, True) == "svola-fast"
    assert cli._deblur_method_name("fast", True) == "svola-fast"
    with pytest.raises(InvalidInputError, match="no non-uniform"):
        cli._deblur_method_name("l0", True)
    with pytest.raises(SystemExit):
        main(["deblur", "--help"])
    assert "default: l0" in capsys.readouterr().out


def test_even_kernel_size_is_refused(tmp_path, example_dir, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["deblur", str(example_dir / "blurry.png"), "-o", str(tmp_path / "o.png"), "--kernel-size", "20"])
    assert exc.value.code == 2
    assert "must be odd" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


def _fake_method(kernel):
    """A registered-method stand-in that returns the input and a fixed kernel."""
    from glkm_prior.plugins import Registration

    def run(blurry, *, kernel_size, kernel_branch, seed, prior=None, progress=False, **_):
        return {"image": blurry, "kernel": kernel, "info": {}}

    return Registration("fake", run, "test stand-in", "tests")


@pytest.mark.parametrize("case", ["point", "fills canvas", "fills the largest"])
def test_warnings_on_trivial_or_oversized_kernels(tmp_path, example_dir, capsys, monkeypatch, case):
    from glkm_prior import plugins

    K = {"point": 15, "fills canvas": 15, "fills the largest": 101}[case]
    kernel = torch.zeros(1, 1, K, K)
    if case == "point":
        kernel[..., K // 2, K // 2] = 1.0
    else:
        kernel[..., K // 2, :] = 1.0 / K  # a horizontal line across the whole canvas
    monkeypatch.setattr(plugins, "get_method", lambda name, pm=None: _fake_method(kernel))
    src = example_dir / "blurry.png"
    assert main(["deblur", str(src), "-o", str(tmp_path / "o.png"), "--kernel-size", str(K)]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("glkm: warning:")]
    warnings = json.loads((tmp_path / "o.json").read_text())["warnings"]
    assert len(err) == len(warnings) == 1 and err[0] == f"glkm: warning: {warnings[0]}"
    expected = {"point": "nearly a point", "fills canvas": "fills its 15 px canvas, so the blur may be larger: try --kernel-size 23",
                "fills the largest": "larger than the largest kernel allowed here (101 px)"}[case]
    assert expected in warnings[0]


def test_no_warning_for_an_ordinary_kernel(tmp_path, example_dir, capsys, monkeypatch):
    from glkm_prior import plugins

    kernel = torch.zeros(1, 1, 21, 21)
    kernel[..., 10, 5:16] = 1.0 / 11  # an 11 px line on a 21 px canvas
    monkeypatch.setattr(plugins, "get_method", lambda name, pm=None: _fake_method(kernel))
    assert main(["deblur", str(example_dir / "blurry.png"), "-o", str(tmp_path / "o.png"), "--kernel-size", "21"]) == 0
    assert json.loads((tmp_path / "o.json").read_text())["warnings"] == []
    assert "warning" not in capsys.readouterr().err


def test_threads_option_sets_torch_threads(tmp_path, example_dir, monkeypatch):
    from glkm_prior import plugins

    seen = []

    def run(blurry, *, kernel_size, kernel_branch, seed, prior=None, progress=False, **_):
        seen.append(torch.get_num_threads())
        kernel = torch.zeros(1, 1, 11, 11)
        kernel[..., 5, 3:8] = 0.2
        return {"image": blurry, "kernel": kernel, "info": {}}

    registration = plugins.Registration("fake", run, "test stand-in", "tests")
    monkeypatch.setattr(plugins, "get_method", lambda name, pm=None: registration)
    src = str(example_dir / "blurry.png")
    assert main(["deblur", src, "-o", str(tmp_path / "a.png"), "--kernel-size", "11", "--threads", "2"]) == 0
    assert main(["deblur", src, "-o", str(tmp_path / "b.png"), "--kernel-size", "11"]) == 0
    assert seen == [2, 1]
    with pytest.raises(SystemExit):
        main(["deblur", src, "--threads", "0"])


def test_api_deblur_is_what_the_cli_runs(tmp_path, example_dir):
    """glkm_prior.api.deblur(image, method=...) gives the CLI's kernel and image (same method,
    size, seed); bad input gets the library's clear errors."""
    from glkm_prior.api import deblur
    from glkm_prior.errors import KernelSizeError

    blurry = to_tensor(read_image(example_dir / "blurry.png"))
    torch.set_num_threads(1)  # as glkm deblur's default --threads (conftest restores the test's count)
    seen = []
    result = deblur(blurry, "l0", kernel_size="auto", iters=1, on_kernel_size=seen.append)
    assert len(seen) == 1 and result["kernel_size"] == seen[0]["kernel_size"] == result["kernel_size_estimate"]["kernel_size"]
    assert result["image"].shape == blurry.shape and result["seconds"] >= seen[0]["seconds"] > 0
    out = tmp_path / "o.png"
    assert main(["deblur", str(example_dir / "blurry.png"), "-o", str(out), "--iters", "1"]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "o_kernel.npy"), result["kernel"][0, 0].numpy())
    with pytest.raises(InvalidInputError, match="unknown option"):
        deblur(blurry, "l0", kernel_size=19, no_such_option=1)
    with pytest.raises(KernelSizeError):
        deblur(blurry, "l0", kernel_size=200)
    with pytest.raises(InvalidInputError, match="NaN"):
        deblur(torch.full_like(blurry, float("nan")), "l0", kernel_size=19)
