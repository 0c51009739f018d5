import json

import numpy as np
import torch
import pytest
from PIL import Image

from glkm_prior.cli import main
from glkm_prior.imageio import read_image


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
    assert kernel.shape == (19, 19) and kernel.min() >= 0 and abs(kernel.sum() - 1) < 1e-4
    assert Image.open(tmp_path / "res" / "deblurred_kernel.png").size == (19, 19)
    report = json.loads((tmp_path / "res" / "deblurred.json").read_text())
    assert report["kernel_size"] == 19 and report["method"] == "fast" and report["seconds"] > 0
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
        (b"", ["--kernel-size", "500"], "outside the supported range"),
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
