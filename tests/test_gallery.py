"""gallery.html and the contact sheet(s) of glkm_prior.gallery: content, layout, robustness."""

from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from PIL import Image

from glkm_prior import gallery
from glkm_prior.gallery import contact_sheet, page
from glkm_prior.errors import InvalidInputError
from glkm_prior.gallery import GalleryEntry, format_score, write_gallery

CELL = 32  # small cells keep the tests fast
NAMES = ("alpha", "<a&b> \"q\" photo", "gamma grey")
CATS = (("levin", "im1"), ("lai", "saturated"), ("lai",))
# flat colours: every picture is distinguishable by the colour at its cell's centre
BLURRY = ((200, 40, 40), (40, 200, 40), None)  # the third is a 16-bit grey PNG
RESULT = ((40, 40, 200), (220, 180, 20), (90, 90, 90))
GREY16 = 30000  # -> 30000 / 257 = 117 in 8 bit


def _kernel() -> np.ndarray:
    k = np.full((5, 5), 0.02, np.float32)
    k[2, 2] = 0.2
    return k


@pytest.fixture()
def run(tmp_path):
    """A run folder with images/ and kernels/, blurry inputs elsewhere (folder name with a space)."""
    out = tmp_path / "run out"
    inputs = tmp_path / "my inputs"
    for d in (out / "images", out / "kernels", inputs):
        d.mkdir(parents=True)
    blurry = [inputs / "in 0.png", inputs / "a&b #1.jpg", inputs / "grey16.png"]
    Image.new("RGB", (60, 40), BLURRY[0]).save(blurry[0])
    Image.new("RGB", (60, 40), BLURRY[1]).save(blurry[1], quality=95)
    Image.fromarray(np.full((40, 60), GREY16, np.uint16)).save(blurry[2])
    results = [out / "images" / f"r{i}.png" for i in range(3)]
    Image.new("RGB", (60, 40), RESULT[0]).save(results[0])
    Image.new("RGB", (40, 60), RESULT[1]).save(results[1])
    Image.new("L", (60, 40), RESULT[2][0]).save(results[2])
    kernels = [out / "kernels" / "k0.png", out / "kernels" / "k1.npy", out / "kernels" / "k2.npy"]
    Image.fromarray(np.round(_kernel() / 0.2 * 255).astype(np.uint8)).save(kernels[0])
    np.save(kernels[1], _kernel())
    Image.fromarray(np.full((5, 5), 255, np.uint8)).save(kernels[1].with_suffix(".png"))  # as bench writes it
    np.save(kernels[2], _kernel())  # no sibling .png: the gallery writes a viewing copy
    scores = ({"psnr": 27.31492, "ssim": 0.81234, "error_ratio": None},
              {"psnr": 21.0, "ssim": 0.5, "error_ratio": 2.5},
              {"psnr": float("inf"), "ssim": None, "error_ratio": 1.25})
    entries = [GalleryEntry(NAMES[i], blurry[i], results[i], kernels[i], CATS[i], scores[i]) for i in range(3)]
    return out, entries


def _cell(sheet: Image.Image, row: int, col: int, cell: int = CELL) -> Image.Image:
    """Cell ``col`` (0 blurry, 1 result, 2 kernel) of row ``row`` (0-based), as the module lays it out."""
    x = contact_sheet.MARGIN + col * (cell + contact_sheet.GAP)
    y = contact_sheet.HEADER_H + row * (contact_sheet.CAPTION_H + cell + contact_sheet.ROW_GAP) + contact_sheet.CAPTION_H
    return sheet.crop((x, y, x + cell, y + cell))


def _centre(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"))[img.height // 2, img.width // 2].astype(int)


def _cards(text: str) -> list[str]:
    return re.findall(r'<article class="card".*?</article>', text, flags=re.S)


def test_html_page(run):
    out, entries = run
    res = write_gallery(entries, out, "Run <1> & co", cell=CELL)
    assert res["problems"] == [] and res["html"] == out / "gallery.html"
    text = res["html"].read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in text
    assert "<title>Run &lt;1&gt; &amp; co</title>" in text
    assert not re.search(r"https?://", text) and "<link" not in text and "<script src" not in text

    cards = _cards(text)
    assert len(cards) == 3
    for card, name in zip(cards, NAMES):
        assert card.count(html.escape(name)) == 1
        assert all(other == name or html.escape(other) not in card for other in NAMES)
    assert "<a&b>" not in text  # never unescaped

    srcs = re.findall(r'<img [^>]*src="([^"]*)"', text)
    assert len(srcs) == 9
    for src in srcs:
        assert not src.startswith(("/", "file:"))
        assert (out / unquote(html.unescape(src))).is_file(), src
    assert any("my%20inputs/a%26b%20%231.jpg" in s for s in srcs)  # outside the run folder, quoted
    assert not any(s.endswith(".npy") for s in srcs)  # browsers cannot show .npy
    assert 'src="kernels/k1.png"' in text  # the sibling .png of a .npy kernel
    assert list((out / page.ASSET_DIR).glob("*.png"))  # a viewing copy of the lone .npy
    assert re.search(r'<img class="kernel"', text) and "image-rendering:pixelated" in text

    cat_select = re.search(r'<select id="cat">(.*?)</select>', text, flags=re.S).group(1)
    options = [html.unescape(v) for v in re.findall(r'<option value="([^"]*)"', cat_select)]
    assert options == ["", "im1", "lai", "levin", "saturated"] and ">all</option>" in cat_select
    sort_select = re.search(r'<select id="sort">(.*?)</select>', text, flags=re.S).group(1)
    assert {"name", "psnr", "ssim", "error_ratio"} <= set(re.findall(r'<option value="([^"]*)"', sort_select))
    script = re.search(r"<script>(.*?)</script>", text, flags=re.S).group(1)
    assert "dataset.scores" in script and "dataset.cats" in script and ".sort(" in script
    assert 'data-cats="[&quot;lai&quot;, &quot;saturated&quot;]"' in cards[1]
    # scores: 4 significant digits, None as an em dash, inf kept sortable
    assert "<td>27.31</td>" in cards[0] and "<td>0.8123</td>" in cards[0] and "<td>\u2014</td>" in cards[0]
    assert "&quot;psnr&quot;: &quot;Infinity&quot;" in cards[2]


def test_contact_sheet_layout_and_pixels(run):
    out, entries = run
    res = write_gallery(entries, out, "sheet", cell=CELL)
    [path] = res["contact_sheets"]
    assert path == out / "contact_sheet.png"
    sheet = Image.open(path)
    width = 2 * contact_sheet.MARGIN + 3 * CELL + 2 * contact_sheet.GAP
    height = contact_sheet.HEADER_H + 3 * (contact_sheet.CAPTION_H + CELL + contact_sheet.ROW_GAP) + contact_sheet.MARGIN
    assert sheet.size == (width, height) == gallery.sheet_size(3, CELL)
    sheet = sheet.convert("RGB")
    for row in range(3):  # every result cell shows its picture
        assert np.abs(_centre(_cell(sheet, row, 1)) - RESULT[row]).max() <= 2
    assert np.abs(_centre(_cell(sheet, 0, 0)) - BLURRY[0]).max() <= 2
    assert np.abs(_centre(_cell(sheet, 1, 0)) - BLURRY[1]).max() <= 8  # JPEG
    assert np.abs(_centre(_cell(sheet, 2, 0)) - round(GREY16 / 257)).max() <= 1  # 16-bit grey
    # the 40x60 result of row 2 is fitted (aspect kept) and letterboxed left and right
    r1 = np.asarray(_cell(sheet, 1, 1)).astype(int)
    assert np.abs(r1[:, CELL // 2] - RESULT[1]).max() <= 2
    assert np.abs(r1[CELL // 2, 0] - contact_sheet.LETTERBOX).max() == 0
    # .npy kernel: 5 px enlarged 6x (nearest) and centred; its maximum is white
    k = np.asarray(_cell(sheet, 1, 2).convert("L")).astype(int)
    off = (CELL - 5 * (CELL // 5)) // 2
    assert k[CELL // 2, CELL // 2] == 255
    assert abs(k[off + 1, off + 1] - 0.02 / 0.2 * 255) <= 1
    assert np.all(k[off:off + 6, off:off + 6] == k[off, off])  # one kernel pixel = one flat block


def test_missing_and_unreadable_files(run):
    out, entries = run
    entries[1].result.unlink()
    entries[2].kernel.write_bytes(b"not an npy file")
    res = write_gallery(entries, out, "with problems", cell=CELL)
    assert len(res["problems"]) == 2
    assert NAMES[1] in res["problems"][0] and "result" in res["problems"][0] and "not found" in res["problems"][0]
    assert NAMES[2] in res["problems"][1] and "kernel" in res["problems"][1]

    sheet = Image.open(res["contact_sheets"][0]).convert("RGB")
    missing = np.asarray(_cell(sheet, 1, 1)).reshape(-1, 3)
    assert (missing == contact_sheet.PLACEHOLDER).all(axis=1).mean() > 0.5  # placeholder background ...
    assert (missing == contact_sheet.TEXT).all(axis=1).any()  # ... with its word written on it
    assert np.abs(_centre(_cell(sheet, 2, 1)) - RESULT[2]).max() <= 2  # the rest is drawn
    assert np.abs(_centre(_cell(sheet, 1, 0)) - BLURRY[1]).max() <= 8

    text = res["html"].read_text(encoding="utf-8")
    assert '<div class="problems">' in text and html.escape(res["problems"][0]) in text
    cards = _cards(text)
    assert '<div class="ph">missing</div>' in cards[1] and '<div class="ph">unreadable</div>' in cards[2]
    for src in re.findall(r'<img [^>]*src="([^"]*)"', text):
        assert (out / unquote(html.unescape(src))).is_file()
    assert len(re.findall(r"<img ", text)) == 7


def test_no_kernel_is_not_a_problem(run):
    out, entries = run
    entries[0].kernel = None
    res = write_gallery(entries[:1], out, "no kernel", cell=CELL)
    assert res["problems"] == []
    assert '<div class="ph">no kernel</div>' in res["html"].read_text(encoding="utf-8")


def test_max_rows_cap_and_height_split(run):
    out, entries = run
    many = [GalleryEntry(f"e{i}", e.blurry, e.result, e.kernel, e.categories, e.scores)
            for i, e in enumerate(entries * 3)]  # 9 entries
    (out / "contact_sheet_7.png").write_bytes(b"stale")

    capped = write_gallery(many, out, "capped", cell=16, max_rows=4)
    [path] = capped["contact_sheets"]
    assert Image.open(path).size == gallery.sheet_size(4, 16)
    assert not (out / "contact_sheet_7.png").exists()  # stale sheets of another run are removed
    assert len(_cards(capped["html"].read_text(encoding="utf-8"))) == 9  # the page shows every entry

    row_h = contact_sheet.CAPTION_H + 16 + contact_sheet.ROW_GAP
    split = write_gallery(many, out, "split", cell=16, max_height=gallery.sheet_size(4, 16)[1] + row_h - 1)
    paths = split["contact_sheets"]
    assert [p.name for p in paths] == ["contact_sheet_1.png", "contact_sheet_2.png", "contact_sheet_3.png"]
    assert [Image.open(p).size for p in paths] == [gallery.sheet_size(n, 16) for n in (4, 4, 1)]
    assert not (out / "contact_sheet.png").exists()
    last = Image.open(paths[2]).convert("RGB")
    assert np.abs(_centre(_cell(last, 0, 1, 16)) - RESULT[2]).max() <= 2  # entry 9 = third photo
    assert all(p.stat().st_size > 100 for p in paths)


def test_problems_found_beyond_max_rows(run):
    out, entries = run
    entries[2].blurry.unlink()
    res = write_gallery(entries, out, "cap", cell=CELL, max_rows=1)
    assert len(res["problems"]) == 1 and NAMES[2] in res["problems"][0]
    assert '<div class="ph">missing</div>' in _cards(res["html"].read_text(encoding="utf-8"))[2]


@pytest.mark.parametrize("change, message", [
    ({"entries": []}, "no entries"),
    ({"entries": ["x.png"]}, "GalleryEntry"),
    ({"columns": 0}, "columns"),
    ({"max_rows": 0}, "max_rows"),
    ({"cell": 4}, "cell"),
    ({"max_height": 50}, "max_height"),
    ({"score_keys": "psnr"}, "score_keys"),
    ({"title": None}, "title"),
])
def test_invalid_arguments(run, change, message):
    out, entries = run
    kwargs = {"entries": entries, "out_dir": out, "title": "t", **change}
    with pytest.raises(InvalidInputError, match=message):
        write_gallery(**kwargs)
    assert not (out / "gallery.html").exists()


def test_out_dir_cannot_be_created(run, tmp_path):
    _, entries = run
    blocker = tmp_path / "a file"
    blocker.write_text("x")
    with pytest.raises(InvalidInputError, match="not a folder"):
        write_gallery(entries, blocker, "t")
    with pytest.raises(InvalidInputError, match="cannot create"):
        write_gallery(entries, blocker / "sub", "t")


def test_entry_validation():
    with pytest.raises(InvalidInputError, match="score 'psnr'"):
        GalleryEntry("x", Path("a.png"), Path("b.png"), None, (), {"psnr": "high"})
    e = GalleryEntry("x", "a.png", "b.png", "k.npy", "levin", {"n": np.float32(2.5)})
    assert e.categories == ("levin",) and e.kernel == Path("k.npy") and e.scores == {"n": 2.5}


def test_format_score():
    assert [format_score(v) for v in (None, 27.31492, 0.81234, 0.00123456, 1234.4, 500.0, 0.0)] == \
        ["\u2014", "27.31", "0.8123", "0.001235", "1234", "500.0", "0"]
    assert format_score(25.0) == "25.00" and format_score(-0.5) == "-0.5000"
    assert format_score(2.5e-5) == "2.5e-05" and format_score(3.2e7) == "3.2e+07"
    assert format_score(float("inf")) == "inf" and format_score(float("nan")) == "nan"
    assert format_score(None, "-") == "-"
