"""Paired comparison of two run folders (glkm_prior.report.compare_runs), against hand-computed values."""

import json
import subprocess
import sys

import pytest

from glkm_prior.errors import InvalidInputError
from glkm_prior.report import compare_runs, comparison_markdown

from conftest import REPO


def _write_run(folder, rows):
    (folder / "results").mkdir(parents=True)
    for name, seed, trace in rows:
        row = {"name": name, "seed": seed, "psnr": trace[-1][1],
               "trace": [{"step": s, "psnr": p, "kernel_rel_l2": 0.5} for s, p in trace]}
        (folder / "results" / f"{name}__s{seed}.json").write_text(json.dumps(row))


@pytest.fixture
def two_runs(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _write_run(a, [("im1", 0, [(250, 25.0), (500, 26.0), (750, 27.0), (1000, 27.5)]),
                   ("im1", 1, [(250, 24.0), (500, 25.0), (750, 26.0), (1000, 26.5)]),
                   ("im2", 0, [(250, 20.0), (500, 22.0), (750, 23.0), (1000, 24.0)]),
                   ("im3", 0, [(1000, 30.0)])])            # only in a: not compared
    _write_run(b, [("im1", 0, [(250, 22.0), (500, 26.5), (750, 26.0), (1000, 28.0)]),
                   ("im1", 1, [(250, 23.0), (500, 24.0), (750, 25.0), (1000, 25.0)]),
                   ("im2", 0, [(250, 21.0), (500, 22.5), (750, 23.5), (1000, 23.0)])])
    return a, b


def test_compare_runs_matches_hand_computation(two_runs):
    cmp = compare_runs(*two_runs, at=(250, 500))
    assert cmp["count"] == 3
    p = {(q["name"], q["seed"]): q for q in cmp["pairs"]}
    # im1 s0: b behind at 750, ahead at 1000 only -> ahead from 1000; a never reaches 28.0
    assert p["im1", 0]["b_ahead_from"] == 1000 and p["im1", 0]["a_reaches_b_final"] is None
    assert p["im1", 0]["a_at"] == [25.0, 26.0] and p["im1", 0]["b_at"] == [22.0, 26.5]
    # im1 s1: a ahead throughout; a passes b's final 25.0 at 500
    assert p["im1", 1]["b_ahead_from"] is None and p["im1", 1]["a_reaches_b_final"] == 500
    # im2 s0: b ahead at 250..750, behind at 1000 -> not ahead at the end; a reaches 23.0 at 750
    assert p["im2", 0]["b_ahead_from"] is None and p["im2", 0]["a_reaches_b_final"] == 750
    assert cmp["mean_a"] == pytest.approx((27.5 + 26.5 + 24.0) / 3)
    assert cmp["mean_b"] == pytest.approx((28.0 + 25.0 + 23.0) / 3)
    assert cmp["mean_gain"] == pytest.approx(cmp["mean_a"] - cmp["mean_b"])
    # spread across seeds only for im1 (two seeds): population std of {27.5, 26.5} and {28, 25}
    assert cmp["seed_std_a"] == {"im1": pytest.approx(0.5)} and cmp["seed_std_b"] == {"im1": pytest.approx(1.5)}
    assert cmp["mean_a_at"] == pytest.approx([(25 + 24 + 20) / 3, (26 + 25 + 22) / 3])
    assert cmp["mean_b_at"] == pytest.approx([(22 + 23 + 21) / 3, (26.5 + 24 + 22.5) / 3])
    assert cmp["a_wins"] == 2   # im1 s1 and im2 s0
    text = comparison_markdown(cmp, "GLKM", "native")
    assert "GLKM higher on 2 of 3" in text and "GLKM 23.00 / 24.33 dB, native 22.00 / 24.33 dB" in text
    only0 = compare_runs(*two_runs, at=(250, 500), seeds=[0])
    assert [(q["name"], q["seed"]) for q in only0["pairs"]] == [("im1", 0), ("im2", 0)]
    assert only0["mean_a"] == pytest.approx((27.5 + 24.0) / 2) and only0["seed_std_a"] == {}
    assert "| im1 | 0 | 25.00 / 26.00 / **27.50** | 22.00 / 26.50 / **28.00** | 1000 | never |" in text
    assert "GLKM - native = 0.67 dB" in text   # (78 - 76) / 3


def test_compare_runs_script_writes_table(two_runs, tmp_path):
    out = tmp_path / "cmp.md"
    proc = subprocess.run([sys.executable, str(REPO / "examples" / "compare_runs.py"), *map(str, two_runs),
                           "--labels", "GLKM", "native", "-o", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == proc.stdout
    assert json.loads((tmp_path / "cmp.json").read_text())["count"] == 3


def test_compare_runs_needs_result_folders(tmp_path):
    with pytest.raises(InvalidInputError, match="no results/ folder"):
        compare_runs(tmp_path, tmp_path)


def test_compare_runs_refuses_results_without_psnr(tmp_path):
    _write_run(tmp_path / "a", [("im1", 0, [(1000, 25.0)])])
    (tmp_path / "a" / "results" / "im1__s0.json").write_text(json.dumps({"name": "im1", "seed": 0, "psnr": None}))
    with pytest.raises(InvalidInputError, match="cannot read .*im1__s0.json as a result"):
        compare_runs(tmp_path / "a", tmp_path / "a")
