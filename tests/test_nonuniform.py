"""Non-uniform (SVOLA) adapter: global-to-local latents, patch-wise deconvolution, seams, CLI, DIP."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from glkm_adapters import glkm_branch, native_branch, svola
from glkm_adapters.nonblind import nonblind
from glkm_prior.camera_motion import CameraMotion
from glkm_prior.cli import main
from glkm_prior.errors import InvalidInputError
from glkm_prior.metrics import seam_errors
from glkm_prior.physics import blur
from glkm_prior.svola import svola_blur, svola_windows

TINY = {"iters": 1, "kernel_steps": 2}


def _scene(H=120, W=150, K=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.avg_pool2d(torch.rand(1, 1, H + K - 1 + 3, W + K - 1 + 3, generator=g), 4, stride=1)


def _line(K, vertical=False, length=None):
    k = torch.zeros(1, 1, K, K)
    n = length or K - 2
    s = slice(K // 2 - n // 2, K // 2 - n // 2 + n)
    if vertical:
        k[0, 0, s, K // 2] = 1 / n
    else:
        k[0, 0, K // 2, s] = 1 / n
    return k


def test_grid_parsing():
    assert svola.parse_grid("3x4") == (3, 4) and svola.parse_grid((2, 2)) == (2, 2)
    for bad in ("3", "axb", "1x1", (0, 3)):
        with pytest.raises(InvalidInputError):
            svola.parse_grid(bad)


def test_cell_latents_start_at_the_global_kernel(tiny_prior):
    y = _scene()[..., :100, :100]
    glob = glkm_branch.make_glkm_branch(y, 31, prior=tiny_prior, init="random", seed=7)
    cells = svola.make_patch_kernels("glkm", y, 31, 4, global_branch=glob, prior=tiny_prior)
    with torch.no_grad():
        k, g = cells(), glob()
    assert k.shape == (4, 1, 31, 31)
    assert torch.allclose(k, g.expand_as(k), atol=1e-6)
    # each cell owns its latent: exactly the cells' w are the parameters, and they are copies
    params = list(cells.parameters())
    assert len(params) == 4 and all(p.shape == glob.w.shape for p in params)
    assert all(p.data_ptr() != glob.w.data_ptr() for p in params)
    # the batched generator pass equals one pass per cell
    with torch.no_grad():
        cells.branches[1].w.add_(0.3 * torch.randn_like(cells.branches[1].w))
        assert torch.allclose(cells(), torch.cat([b() for b in cells.branches]), atol=1e-6)


def test_native_cells_start_random_and_different():
    y = _scene()[..., :100, :100]
    cells = svola.make_patch_kernels("native", y, 9, 4, seed=0)
    with torch.no_grad():
        k = cells()
    assert k.shape == (4, 1, 9, 9) and not torch.allclose(k[0], k[1])


def test_patchwise_deconvolution_with_identical_kernels_is_the_uniform_one():
    K = 9
    y = blur(_scene(K=K), _line(K), "valid")
    k = _line(K)
    assert torch.allclose(svola.svola_deconvolve(y, k.repeat(4, 1, 1, 1), (2, 2)), nonblind(y, k), atol=1e-5)


def test_patchwise_deconvolution_beats_one_kernel_on_camera_rotation_blur():
    """Dense blur of a camera rolling 1.5 degrees while moving 6 px (not the SVOLA model):
    SVOLA deconvolution with the exact kernels at the 3x3 cell centres is closer to the truth
    than uniform deconvolution with the centre kernel, and than the blurry image."""
    K, H, W, T = 15, 120, 160, 64
    t = np.linspace(0, 1, T)
    motion = CameraMotion(np.radians(1.5) * (t - 0.5), np.stack([np.zeros(T), 6 * (t - 0.5)], 1), 1.0, 0.0, H, W, K)
    field = torch.from_numpy(motion.kernel_field((3, 3))).reshape(9, 1, K, K)
    for seed in (1, 2):
        x = _scene(H=H, W=W, K=K, seed=seed)[..., : H + K - 1, : W + K - 1]
        y = motion.blur(x.double()).float()
        truth = x[..., K // 2: K // 2 + H, K // 2: K // 2 + W]

        def mse(img):
            return float(((img - truth)[..., 15:-15, 15:-15] ** 2).mean())

        cells = svola.svola_deconvolve(y, field, (3, 3))
        assert mse(cells) < 0.9 * mse(nonblind(y, field[4:5])) and mse(cells) < 0.75 * mse(y)


def test_estimation_windows_cover_the_image_around_each_centre():
    boxes = svola.estimation_windows(100, 160, (3, 3), scale=1.5)
    assert len(boxes) == 9
    t, l, h, w = boxes[4]  # centre cell: 1.5 cell spacings around (49.5, 79.5)
    assert abs((t + h / 2) - 50) <= 1 and abs((l + w / 2) - 80) <= 1
    assert h == pytest.approx(1.5 * 49.5, abs=2) and w == pytest.approx(1.5 * 79.5, abs=2)
    assert boxes[0][:2] == (0, 0)


@pytest.mark.parametrize("branch", ["glkm", "native"])
def test_svola_fast_tiny_run(tiny_prior, branch):
    K = 9
    y = svola_blur(_scene(H=100, W=120, K=K), torch.cat([_line(K), _line(K, True)] * 2),
                   svola_windows(100 + K - 1, 120 + K - 1, (2, 2)))
    out = svola.run_svola_fast(y, kernel_size=K, kernel_branch=branch, grid="2x2",
                               prior=tiny_prior if branch == "glkm" else None, **TINY)
    assert out["grid"] == (2, 2) and out["kernels"].shape == (4, 1, K, K) and out["kernel"].shape == (1, 1, K, K)
    assert float(out["kernels"].min()) >= 0
    assert torch.allclose(out["kernels"].sum(dim=(-2, -1)), torch.ones(4, 1), atol=1e-5)
    assert out["image"].shape == y.shape and torch.isfinite(out["image"]).all()
    assert out["info"]["kernel_steps_cells"] == 2  # one alternation x 2 steps at the finest level


def test_svola_fast_rejects_cells_smaller_than_the_kernel(tiny_prior):
    y = _scene(H=80, W=80)[..., :80, :80]
    with pytest.raises(InvalidInputError, match="coarser --grid"):
        svola.run_svola_fast(y, kernel_size=25, grid=(4, 4), prior=tiny_prior, **TINY)


def test_svola_dip_optimises_image_net_and_cell_latents_only(tiny_prior):
    K = 7
    y = blur(_scene(H=64, W=64, K=K), _line(K), "valid")
    out = svola.run_svola_dip(y, kernel_size=K, grid=(2, 2), prior=tiny_prior, iters=2, global_iters=1,
                              progress=False, channels=(8, 8), skip_channels=(4, 4))
    assert out["kernels"].shape == (4, 1, K, K) and out["grid"] == (2, 2)
    assert torch.allclose(out["kernels"].sum(dim=(-2, -1)), torch.ones(4, 1), atol=1e-5)
    assert out["image"].shape == y.shape and out["info"]["global_iters"] == 1
    # the loop's optimiser: group 0 the image network, group 1 exactly the 4 cell latents
    cells = svola.make_patch_kernels("glkm", y, K, 4, prior=tiny_prior,
                                     global_branch=glkm_branch.make_glkm_branch(y, K, prior=tiny_prior))
    loop = svola.SVOLASelfDeblur(y, K, grid=(2, 2), kernel_branch=cells, config=svola.make_config(iters=1))
    group = loop.optimizer.param_groups[1]["params"]
    assert len(group) == 4 and {id(p) for p in group} == {id(b.w) for b in cells.branches}
    # its forward model is SVOLA: identical cell kernels give the uniform blur
    x = torch.rand(1, 1, 64 + K - 1, 64 + K - 1)
    k = cells()
    assert torch.allclose(loop.forward_model(x, k), blur(x, k[:1], "valid"), atol=1e-5)


def test_seam_errors_separate_boundary_bands_from_cell_interiors():
    H, W, border = 61, 81, 5
    truth = np.zeros((H - 2 * border, W - 2 * border))
    est = truth.copy()
    rows = np.arange(H)[border: H - border]
    est[np.abs(rows - 30) <= 1, :] = 0.2  # an error stripe exactly on the 2x2 grid's row boundary
    seam, inside = seam_errors(est, truth, (2, 2), (H, W), border, band=2)
    # the boundary bands: rows 28..32 (5 rows) and columns 38..42 (5 columns)
    n_band = 5 * est.shape[1] + 5 * est.shape[0] - 25
    assert seam == pytest.approx(np.sqrt(3 * est.shape[1] * 0.04 / n_band))
    assert inside == 0.0
    with pytest.raises(InvalidInputError):
        seam_errors(est, truth, (2, 2), (H + 1, W), border)


def test_cli_nonuniform_writes_the_kernel_field(tmp_path, example_dir):
    out = tmp_path / "nu.png"
    assert main(["deblur", str(example_dir / "blurry.png"), "-o", str(out), "--kernel-size", "15", "--iters", "1",
                 "--nonuniform", "--grid", "2x3"]) == 0
    field = np.load(tmp_path / "nu_kernel_field.npy")
    assert field.shape == (2, 3, 15, 15) and np.allclose(field.sum(axis=(-2, -1)), 1, atol=1e-4)
    picture = np.asarray(Image.open(tmp_path / "nu_kernel_field.png"))
    assert picture.shape[0] < picture.shape[1]  # 2 rows x 3 columns of kernels
    report = json.loads((tmp_path / "nu.json").read_text())
    assert report["method"] == "svola-fast" and report["grid"] == "2x3"


def test_cli_grid_needs_nonuniform(tmp_path, example_dir, capsys):
    assert main(["deblur", str(example_dir / "blurry.png"), "-o", str(tmp_path / "a.png"), "--grid", "2x2"]) == 2
    assert "--nonuniform" in capsys.readouterr().err
    assert main(["deblur", str(example_dir / "blurry.png"), "-o", str(tmp_path / "a.png"), "--nonuniform",
                 "--method", "identity"]) == 2
    assert "no non-uniform" in capsys.readouterr().err
    assert not (tmp_path / "a.png").exists()


def test_eval_on_a_camera_motion_set_reports_seam_and_interior_errors(tmp_path):
    from glkm_prior.synthetic_set import build_synthetic_set

    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):  # smooth random scenes
        img = F.avg_pool2d(torch.rand(1, 3, 110, 130, generator=torch.Generator().manual_seed(i)), 5, stride=1)
        Image.fromarray((img[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(src / f"s{i}.png")
    build_synthetic_set(src, tmp_path / "set", motion="camera", kernel_size=15, noise=0.0)
    out = tmp_path / "run"
    assert main(["eval", str(tmp_path / "set"), "--method", "svola-fast", "--iters", "1", "--out", str(out),
                 "--no-progress"]) == 0
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert len(rows) == 2
    for row in rows:
        assert row["grid"] == "3x3" and row["seam_rmse"] > 0 and row["interior_rmse"] > 0
    assert "seam RMSE" in (out / "summary.md").read_text()
