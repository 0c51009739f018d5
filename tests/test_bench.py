"""The benchmark runner, its pictures, resume, the 2-process torchrun path and the CLI."""

import csv
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from glkm_prior import KernelPrior, bench, metrics, plugins
from glkm_prior.cli import main
from glkm_prior.errors import InvalidInputError
from glkm_prior.imageio import read_image
from glkm_prior.plugins import hookimpl
from glkm_prior.synthetic_set import build_synthetic_set
from glkm_prior.context import RunContext

from conftest import REPO
from test_datasets import fake_lai, write_photos


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 4-image synthetic set (128x128 RGB photos -> 98x98 blurry, 31 px levin kernels) and an
    untrained 31-px prior saved as a --weights folder."""
    root = tmp_path_factory.mktemp("bench")
    src = write_photos(root / "photos", 4, (128, 128, 3))
    build_synthetic_set(src, root / "set", family="levin", kernel_size=31, noise=0.01, seed=0)
    KernelPrior.untrained(31, seed=0).save_pretrained(root / "prior")
    return root


@pytest.fixture(scope="module")
def runs(tiny):
    """The initializer (untrained GLKM prior) and true-kernel runs through the CLI."""
    out = {}
    for method in ("initializer", "true-kernel"):
        out[method] = tiny / f"run_{method}"
        args = ["eval", str(tiny / "set"), "--method", method, "--out", str(out[method]), "--seeds", "0,1",
                "--weights", str(tiny / "prior"), "--no-progress"]
        assert main(args) == 0
    return out


def _results(folder):
    return json.loads((folder / "results.json").read_text())["rows"]


def test_end_to_end_files_and_values(runs, capsys):
    for method, folder in runs.items():
        for name in ("results.csv", "results.json", "summary.md", "summary.json", "grid.png", "convergence.png", "run.json"):
            assert (folder / name).is_file(), name
        rows = _results(folder)
        assert len(rows) == 8 and {r["seed"] for r in rows} == {0, 1}
        assert sorted(p.name for p in (folder / "results").iterdir()) == sorted(
            f"photo0{i}__s{s}.json" for i in range(4) for s in (0, 1))
        for r in rows:
            for key in ("psnr", "ssim", "kernel_rel_l2", "seconds", "peak_rss_mb"):
                assert r[key] is not None and math.isfinite(r[key]), (method, key)
            assert r["kernel_size"] == 31 and r["category"] == "levin" and r["lpips"] is None
            assert len(r["trace"]) == 1 and r["trace"][0]["step"] == 0 and r["trace"][0]["psnr"] == r["psnr"]
            assert (folder / r["image"]).is_file() and (folder / r["kernel"]).is_file()
        summary = json.loads((folder / "summary.json").read_text())
        overall = summary["table"]["all"]
        assert overall["images"] == 4 and overall["psnr"]["n_seeds"] == 2 and len(overall["psnr"]["per_seed"]) == 2
        with open(folder / "results.csv") as fh:
            table = list(csv.DictReader(fh))
        assert len(table) == 8 and float(table[0]["psnr"]) == pytest.approx(rows[0]["psnr"])
        md = (folder / "summary.md").read_text()
        assert "| **all** | 4 |" in md and "PSNR (dB)" in md
        with Image.open(folder / "grid.png") as img:
            assert img.width == 5 * bench_cell() + 6 * 4 and img.height > 4 * bench_cell()
        with Image.open(folder / "convergence.png") as img:
            assert img.width > 500
    init = json.loads((runs["initializer"] / "summary.json").read_text())
    true = json.loads((runs["true-kernel"] / "summary.json").read_text())
    assert true["table"]["all"]["psnr"]["mean"] > init["table"]["all"]["psnr"]["mean"] + 1.0
    assert true["table"]["all"]["kernel_rel_l2"]["mean"] == 0.0  # the truth itself
    assert true["table"]["all"]["error_ratio"] is None  # not computed for the reference method
    assert init["table"]["all"]["error_ratio"]["mean"] > 1.0
    assert init["priors"] == [str(runs["initializer"].parent / "prior")]
    if not metrics.lpips_available()[0]:
        assert init["lpips_note"] and init["table"]["all"]["lpips"] is None


def bench_cell():
    from glkm_prior.report import CELL

    return CELL


def test_scores_equal_an_independent_computation(runs, tiny):
    row = _results(runs["initializer"])[0]
    est = read_image(runs["initializer"] / row["image"])
    gt = read_image(tiny / "set" / "sharp" / f"{row['name']}.png")
    ey, gy = metrics.rgb_to_y(est, matlab=True), metrics.rgb_to_y(gt, matlab=True)
    res = metrics.align_upto_shift(ey, gy, maxshift=5, step=0.25, border=15, peak=1.0)
    assert res.psnr == pytest.approx(row["psnr"], abs=1e-9)
    assert res.ssim == pytest.approx(row["ssim"], abs=1e-9)
    kerr = metrics.kernel_error(np.load(runs["initializer"] / row["kernel"]), np.load(tiny / "set" / "kernels" / f"{row['name']}.npy"))
    assert kerr.rel_l2 == pytest.approx(row["kernel_rel_l2"], rel=1e-5)
    ref = json.loads((runs["initializer"] / "reference" / f"{row['name']}.json").read_text())
    assert row["error_ratio"] == pytest.approx(res.ssd / ref["ssd"], rel=1e-9)


def test_resume_skips_finished_pairs(runs, tiny, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(runs["true-kernel"], folder)
    before = {p.name: p.stat().st_mtime_ns for p in (folder / "results").iterdir()}
    cfg = bench.BenchConfig(dataset=str(tiny / "set"), method="true-kernel", out=str(folder), seeds=(0, 1),
                            weights=str(tiny / "prior"))
    summary = bench.run_benchmark(cfg, progress=False, log=lambda m: None)
    assert summary["run"]["computed"] == 0 and summary["run"]["skipped"] == 8
    assert {p.name: p.stat().st_mtime_ns for p in (folder / "results").iterdir()} == before
    # one more seed: only the 4 new pairs are computed
    cfg.seeds = (0, 1, 2)
    summary = bench.run_benchmark(cfg, progress=False, log=lambda m: None)
    assert summary["run"]["computed"] == 4 and summary["run"]["skipped"] == 8 and summary["pairs"] == 12
    assert all((folder / "results" / n).stat().st_mtime_ns == t for n, t in before.items())
    # another method into the same folder is refused
    bad = bench.BenchConfig(dataset=str(tiny / "set"), method="initializer", out=str(folder), seeds=(0,))
    with pytest.raises(InvalidInputError, match="different run"):
        bench.run_benchmark(bad, progress=False, log=lambda m: None)


def test_summary_only_rewrites_summaries_and_computes_nothing(runs, tiny, tmp_path, capsys):
    folder = tmp_path / "copy"
    shutil.copytree(runs["true-kernel"], folder)
    results = {p.name: p.read_bytes() for p in (folder / "results").iterdir()}
    rows0 = [r for r in _results(folder) if r["seed"] == 0]
    (folder / "summary.json").unlink()
    args = ["eval", str(tiny / "set"), "--method", "true-kernel", "--weights", str(tiny / "prior"), "--out", str(folder),
            "--no-progress", "--summary-only"]
    assert main([*args, "--seeds", "0"]) == 0
    overall = json.loads((folder / "summary.json").read_text())["table"]["all"]
    assert overall["psnr"]["n_seeds"] == 1   # the summary now describes seed 0 alone
    assert overall["psnr"]["mean"] == pytest.approx(np.mean([r["psnr"] for r in rows0]), abs=1e-9)
    # a seed without results: a one-line error naming the missing pairs; nothing computed or rewritten
    before = (folder / "summary.json").read_bytes()
    capsys.readouterr()
    assert main([*args, "--seeds", "0,2"]) == 2
    err = capsys.readouterr().err
    assert "summary only: 4 of the 8 selected pairs have no result" in err and f"{rows0[0]['name']} s2" in err
    assert {p.name: p.read_bytes() for p in (folder / "results").iterdir()} == results
    assert (folder / "summary.json").read_bytes() == before
    # a folder with no run at all is not created
    assert main([*args[:-4], "--out", str(tmp_path / "none"), "--summary-only"]) == 2
    assert not (tmp_path / "none").exists()


def test_images_selects_pairs_by_name(runs, tiny, tmp_path):
    names = sorted(r["name"] for r in _results(runs["true-kernel"]) if r["seed"] == 0)
    folder = tmp_path / "some"
    assert main(["eval", str(tiny / "set"), "--method", "true-kernel", "--images", f"{names[3]},{names[1]}",
                 "--out", str(folder), "--no-progress"]) == 0
    rows = _results(folder)
    assert [r["name"] for r in rows] == [names[1], names[3]]   # dataset order, only those two
    assert sorted(p.name for p in (folder / "results").iterdir()) == sorted(f"{n}__s0.json" for n in names[1::2])
    full = {r["name"]: r["psnr"] for r in _results(runs["true-kernel"]) if r["seed"] == 0}
    assert all(r["psnr"] == pytest.approx(full[r["name"]], abs=1e-9) for r in rows)
    # the same folder resumes with another selection: only the new pair is computed
    cfg = bench.BenchConfig(dataset=str(tiny / "set"), method="true-kernel", out=str(folder), images=names[:2])
    summary = bench.run_benchmark(cfg, progress=False, log=lambda m: None)
    assert summary["run"]["computed"] == 1 and summary["run"]["skipped"] == 1
    with pytest.raises(InvalidInputError, match="no image named nope"):
        bench.run_benchmark(bench.BenchConfig(dataset=str(tiny / "set"), method="true-kernel", out=str(folder),
                                              images="nope"), progress=False, log=lambda m: None)


# ----------------------------------------------------------------------------- method conventions
class ToyPlugin:
    """An iterative blind method (calls the convergence callback) and a strict-signature one."""

    seen_kwargs: list = []

    @hookimpl
    def glkm_methods(self, register):
        from glkm_adapters.nonblind import nonblind

        def toy(blurry, *, kernel_size, iters=10, callback=None, **kwargs):
            ToyPlugin.seen_kwargs.append(sorted(kwargs))
            r = torch.arange(kernel_size, dtype=torch.float32) - kernel_size // 2
            for step in range(0, iters + 1, 5):
                sigma = 4.0 / (1 + step / 5)  # a shrinking Gaussian: the error changes with the step
                g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
                k = (g / g.sum())[None, None]
                image = nonblind(blurry, k)
                if callback is not None:
                    callback(step, image, k)
            return {"image": image, "kernel": k, "info": {"iters": iters}}

        def strict(blurry, *, kernel_size, seed):
            return {"image": blurry.clone(), "kernel": torch.ones(1, 1, kernel_size, kernel_size) / kernel_size**2}

        register("toy-iterative", toy, "test: shrinking Gaussian kernels")
        register("toy-strict", strict, "test: accepts only kernel_size and seed")


def test_callback_traces_and_strict_signatures(tiny, tmp_path):
    pm = plugins.make_plugin_manager()
    pm.register(ToyPlugin(), name="toy")
    ToyPlugin.seen_kwargs.clear()
    cfg = bench.BenchConfig(dataset=str(tiny / "set"), method="toy-iterative", out=str(tmp_path / "toy"),
                            iters=20, limit=2, kernel_branch="native")
    summary = bench.run_benchmark(cfg, context=RunContext(pm=pm), progress=False, log=lambda m: None)
    rows = _results(tmp_path / "toy")
    assert len(rows) == 2
    for row in rows:
        steps = [p["step"] for p in row["trace"]]
        assert steps == [0, 5, 10, 15, 20] and row["trace"][-1].get("final") and row["trace"][-1]["psnr"] == row["psnr"]
        assert all(math.isfinite(p["psnr"]) and math.isfinite(p["kernel_rel_l2"]) for p in row["trace"])
        assert row["iters"] == 20
    # blind methods never see the ground truth; the runner's own options are passed
    assert all("true_kernel" not in kw and "seed" in kw and "kernel_branch" in kw for kw in ToyPlugin.seen_kwargs)
    assert summary["table"]["all"]["psnr"]["n_seeds"] == 1 and summary["table"]["all"]["psnr"]["std"] is None
    cfg = bench.BenchConfig(dataset=str(tiny / "set"), method="toy-strict", out=str(tmp_path / "strict"), limit=1)
    bench.run_benchmark(cfg, context=RunContext(pm=pm), progress=False, log=lambda m: None)
    assert len(_results(tmp_path / "strict")) == 1
    # an option the method cannot take is refused before anything runs, not silently dropped
    cfg = bench.BenchConfig(dataset=str(tiny / "set"), method="toy-strict", out=str(tmp_path / "typo"), limit=1,
                            options={"lr_kernel": 5e-3})
    with pytest.raises(InvalidInputError, match="'toy-strict' has no option lr_kernel"):
        bench.run_benchmark(cfg, context=RunContext(pm=pm), progress=False, log=lambda m: None)
    assert not (tmp_path / "typo" / "results").exists() or not any((tmp_path / "typo" / "results").iterdir())
    # overlay plot of several runs
    assert main(["eval", "plot", str(tmp_path / "toy"), str(tmp_path / "strict"), "-o", str(tmp_path / "c.png")]) == 0
    with Image.open(tmp_path / "c.png") as img:
        assert img.format == "PNG"


# ----------------------------------------------------------------------------- torchrun
def test_torchrun_two_processes(tiny, tmp_path, runs):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLKM_TEST_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "glkm_prior.cli", "eval", str(tiny / "set"), "--method", "true-kernel", "--seeds", "0,1",
           "--out", str(out), "--no-progress"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = _results(out)
    assert len(rows) == 8 and {r["rank"] for r in rows} == {0, 1}
    assert proc.stdout.count("| **all** |") == 1  # only rank 0 writes the summary
    for name in ("summary.md", "summary.json", "grid.png", "convergence.png", "results.csv"):
        assert (out / name).is_file()
    single = {(r["name"], r["seed"]): r["psnr"] for r in _results(runs["true-kernel"])}
    # same pairs, same scores (1 thread per process here vs 2 in-process: FFT round-off may differ)
    assert all(single[(r["name"], r["seed"])] == pytest.approx(r["psnr"], abs=1e-3) for r in rows)


# ----------------------------------------------------------------------------- CLI
@pytest.mark.parametrize(
    "args, message",
    [
        (["eval", "no/such/dataset", "--method", "true-kernel"], "unknown dataset"),
        (["eval", "{set}", "--method", "nope"], "unknown method"),
        (["eval", "{set}", "--method", "initializer", "--kernel-branch", "nope"], "unknown kernel branch"),
        (["eval", "{set}", "--method", "true-kernel", "--limit", "0"], "--limit"),
        (["eval", "{set}", "--method", "true-kernel", "--limit", "x"], "--limit"),
        (["eval", "{set}", "--method", "true-kernel", "--seeds", "a,b"], "--seeds"),
        (["eval", "{set}", "--method", "true-kernel", "--seeds", "1,,2"], "--seeds"),
        (["eval", "{set}", "--method", "true-kernel", "--seeds", "1,1"], "distinct"),
        (["eval", "{set}", "--method", "true-kernel", "--iters", "-3"], "--iters"),
        (["eval", "plot", "{set}", "-o", "{out}/c.png"], "no results.json"),
    ],
)
def test_bad_input_one_line_error(tiny, tmp_path, capsys, args, message):
    args = [a.format(set=tiny / "set", out=tmp_path) for a in args]
    assert main([*args, "--out", str(tmp_path / "o")] if args[1] != "plot" else args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("glkm: error:") and message in err[0], err
    assert not (tmp_path / "o").exists()


def test_eval_help_explains_all_forms(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "glkm eval DATASET --method M" in out and "glkm eval prior" in out and "make-synthetic" in out
    with pytest.raises(SystemExit):
        main(["eval", "prior", "--help"])
    out = capsys.readouterr().out
    assert "--coverage-kernels" in out and "--parts" in out
    with pytest.raises(SystemExit):
        main(["eval", "levin", "--help"])
    out = capsys.readouterr().out
    assert "--seeds" in out and "--kernel-branch" in out and "resumes" in out


def test_rotated_true_kernel_is_detected(tiny, runs, tmp_path):
    """A set whose stored kernels are the 180-degree rotations of the ones that made the data
    (as Levin's kernels 4 and 8): flagged; 'auto' uses the orientation that fits the data."""
    root = tmp_path / "rot"
    k = np.zeros((15, 15), np.float32)
    k[7, 7:14] = 1.0
    k[2:8, 13] = 1.0  # an asymmetric L-shaped stroke
    build_synthetic_set(tiny / "photos", root, kernels=[k], noise=0.0, n=2)
    for p in (root / "kernels").glob("*.npy"):
        np.save(p, np.load(p)[::-1, ::-1].copy())
    summaries = {}
    for orientation in ("stored", "auto"):
        cfg = bench.BenchConfig(dataset=str(root), method="true-kernel", out=str(tmp_path / orientation),
                                true_kernel_orientation=orientation)
        summaries[orientation] = bench.run_benchmark(cfg, progress=False, log=lambda m: None)
        rows = _results(tmp_path / orientation)
        assert all(r["true_kernel_fit_psnr_rotated"] > r["true_kernel_fit_psnr"] + 5 for r in rows)
        assert all(r["true_kernel_rotated"] == (orientation == "auto") for r in rows)
        assert any("180-degree" in n for n in summaries[orientation]["notes"])
    assert summaries["auto"]["table"]["all"]["psnr"]["mean"] > summaries["stored"]["table"]["all"]["psnr"]["mean"] + 3
    # the builder's own sets are consistent: nothing flagged
    rows = _results(runs["true-kernel"])
    assert rows and all(not r["true_kernel_rotated"] and r["true_kernel_fit_psnr"] > r["true_kernel_fit_psnr_rotated"] for r in rows)


def test_lai_layout_colour_and_categories(tmp_path):
    root = fake_lai(tmp_path / "lai")
    cfg = bench.BenchConfig(dataset=str(root), method="true-kernel", out=str(tmp_path / "out"))
    summary = bench.run_benchmark(cfg, progress=False, log=lambda m: None)
    assert set(summary["table"]) == {"manmade", "text", "all"}
    assert summary["table"]["manmade"]["images"] == 2 and summary["dataset"]["layout"] == "lai"
    rows = _results(tmp_path / "out")
    assert [r["kernel_size"] for r in rows] == [31, 51, 31, 51]
    row = rows[1]
    est, gt = read_image(tmp_path / "out" / row["image"]), read_image(root / "sharp" / "manmade_01.png")
    assert est.shape == gt.shape == (80, 96, 3)
    res = metrics.align_upto_shift(metrics.rgb_to_y(est), metrics.rgb_to_y(gt), maxshift=10)  # scored on MATLAB Y
    assert res.psnr == pytest.approx(row["psnr"], abs=1e-9)


def test_lai_layout_searches_shifts_up_to_10_px(tmp_path):
    """Lai et al.'s 51-75 px kernels sit up to 7 px off their centre: a result shifted by 7 px
    (here the blurry file is the sharp photo moved by 7 px; method identity) is found at +-10 px
    on the Lai layout, as SelfDeblur's statistic_lai.m does, where Levin's +-5 px would miss it."""
    root = fake_lai(tmp_path / "lai")
    sharp = read_image(root / "sharp" / "manmade_01.png")
    moved = np.roll(sharp, (7, -7), axis=(0, 1)) + np.random.default_rng(0).normal(0, 0.01, sharp.shape)
    for path in (root / "blurred").glob("*"):
        path.unlink()
    Image.fromarray((moved.clip(0, 1) * 255).round().astype(np.uint8)).save(root / "blurred" / "manmade_01_kernel_01.png")
    cfg = bench.BenchConfig(dataset=str(root), method="identity", kernel_branch="native", out=str(tmp_path / "out"))
    bench.run_benchmark(cfg, progress=False, log=lambda m: None)
    (row,) = _results(tmp_path / "out")
    assert (row["shift_y"], row["shift_x"]) == (7, -7)
    y_moved, y_sharp = metrics.rgb_to_y(read_image(tmp_path / "out" / row["image"])), metrics.rgb_to_y(sharp)
    assert row["psnr"] == pytest.approx(metrics.align_upto_shift(y_moved, y_sharp, maxshift=10).psnr, abs=1e-9)
    assert row["psnr"] > metrics.align_upto_shift(y_moved, y_sharp, maxshift=5).psnr + 10


def test_photos_without_ground_truth_get_no_reference_scores_per_category(tmp_path):
    """A folder of photos + attribute.txt: layout 'photos'; each photo counts in each of its
    categories; NIQE/PIQE of input and result (identity: equal)."""
    from PIL import Image

    from glkm_prior.bench import BenchConfig, run_benchmark
    from glkm_prior.datasets import detect_layout, load_dataset

    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        img = rng.random((100, 200, 3))
        img = (img + np.roll(img, 1, 0) + np.roll(img, 1, 1)) / 3  # some texture, not pure noise
        Image.fromarray((img * 255).astype(np.uint8)).save(folder / f"{name}.jpg", quality=95)
    (folder / "attribute.txt").write_text("a   manmade   saturated\nb   natural\n")
    assert detect_layout(folder) == "photos"
    samples = load_dataset(folder)
    assert [s.categories for s in samples] == [("manmade", "saturated"), ("natural",)]
    out = tmp_path / "run"
    run_benchmark(BenchConfig(dataset=str(folder), method="identity", kernel_branch="native", out=str(out)),
                           progress=False)
    rows = json.loads((out / "results.json").read_text())["rows"]
    for row in rows:
        assert row["psnr"] is None and row["niqe"] is not None and row["piqe"] is not None
        assert row["niqe"] == pytest.approx(row["niqe_input"], abs=0.05)  # the result is the (requantised) input
    summary = json.loads((out / "summary.json").read_text())["table"]
    assert summary["manmade"]["images"] == 1 and summary["saturated"]["images"] == 1 and summary["all"]["images"] == 2
    assert summary["natural"]["niqe"]["mean"] == pytest.approx([r for r in rows if r["name"] == "b"][0]["niqe"])
    assert "NIQE" in (out / "summary.md").read_text()
