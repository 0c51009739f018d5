"""Benchmark datasets as the field ships them (read by path; nothing is copied).

A dataset is a list of :class:`Sample` records; images are read lazily with
:func:`glkm_prior.imageio.read_image` and kernels with :func:`glkm_prior.kernel_io.load_kernel`.

Layouts
-------
* :func:`levin` -- Levin et al. 2009: ``imI_kernelJ_img.png`` + ``gt/imI.png`` + ``gt/kernelJ.png``;
  32 grey 255x255 images, sharp and blurry of the same size; category ``kernelJ``.
* :func:`lai_uniform` -- Lai et al. 2016, uniform (synthetic) part: ``sharp/<name>.png``,
  ``<name>_kernel_0J.png`` anywhere under the root (usually ``blurred/``), ``kernels/kernel_0J.png``;
  RGB; category = leading word of ``<name>`` (manmade, natural, people, saturated, text);
  kernel size = the loaded kernel's size (kernel_01 31, kernel_02 51, kernel_03 55, kernel_04 75).
* :func:`folder_dataset` -- generic: ``blurry/`` + ``sharp/`` (+ optional ``kernels/``) with matching
  file stems; an optional ``manifest.json`` supplies ``kernel_size``/``category`` per item (the
  layout :func:`glkm_prior.synthetic_set.build_synthetic_set` writes).
* :func:`load_dataset` -- a folder (layout detected) or the name ``levin``.

Evaluation convention (:mod:`glkm_prior.bench`): colour images are scored on their luma Y,
``metrics.rgb_to_y(..., matlab=True)`` (MATLAB ``rgb2ycbcr``), as Lai et al.'s scripts do; grey
images as they are.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidInputError

# Kernel sizes the SelfDeblur scripts use for Levin kernels 1..8 (the ground-truth kernels
# are 19/17/15/27/13/21/23/23 px).
LEVIN_SELFDEBLUR_KERNEL_SIZE = {1: 17, 2: 15, 3: 13, 4: 27, 5: 11, 6: 19, 7: 21, 8: 21}

#: Lai et al. 2016 (uniform part): kernel sizes of kernel_01..kernel_04 (informative; the
#: loader uses the size of the kernel file it reads).
LAI_KERNEL_SIZES = {1: 31, 2: 51, 3: 55, 4: 75}
LAI_CATEGORIES = ("manmade", "natural", "people", "saturated", "text")

#: File suffixes read as images by the loaders.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
#: Dataset names :func:`load_dataset` understands: folders of that name in the data root.
NAMED_DATASETS = ("levin", "lai_real", "lai_uniform")
#: The data root: ``$GLKM_DATA`` if set, else ``../shared/data`` next to a source checkout.
DATA_ENV = "GLKM_DATA"

_LAI_SHARP_DIRS = ("sharp", "ground_truth", "gt")
_LAI_KERNEL_DIRS = ("kernels", "kernel")
_LAI_BLURRED = re.compile(r"(?P<name>.+)_kernel_(?P<j>0\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class Sample:
    name: str
    blurry: Path
    sharp: Path | None = None
    kernel: Path | None = None
    kernel_size: int | None = None  # the size solvers are told to estimate
    category: str | None = None
    categories: tuple[str, ...] = ()  # several (real photos); ``category`` is then their '+' join


def levin(root: str | Path) -> list[Sample]:
    """Levin et al. 2009: ``imI_kernelJ_img.png`` with ``gt/imI.png`` and ``gt/kernelJ.png``
    (grey, 255x255; sharp and blurry have the same size)."""
    root = Path(root)
    if not root.is_dir():
        raise InvalidInputError(f"Levin dataset folder not found: {root}")
    samples = []
    for path in sorted(root.glob("im*_kernel*_img.png")):
        m = re.fullmatch(r"im(\d+)_kernel(\d+)_img\.png", path.name)
        if not m:
            continue
        i, j = int(m.group(1)), int(m.group(2))
        samples.append(Sample(
            name=f"im{i}_kernel{j}", blurry=path, sharp=root / "gt" / f"im{i}.png",
            kernel=root / "gt" / f"kernel{j}.png", kernel_size=LEVIN_SELFDEBLUR_KERNEL_SIZE.get(j),
            category=f"kernel{j}",
        ))
    if not samples:
        raise InvalidInputError(f"no Levin images (imI_kernelJ_img.png) in {root}")
    return samples


# ----------------------------------------------------------------------------- helpers
def _images_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not p.name.startswith("."))


def _find_stem(folder: Path, stem: str, suffixes=IMAGE_SUFFIXES) -> Path | None:
    for suffix in suffixes:
        for cand in (folder / f"{stem}{suffix}", folder / f"{stem}{suffix.upper()}"):
            if cand.is_file():
                return cand
    return None


def kernel_file_size(path: Path) -> int:
    """Side of a kernel file (the larger one for non-square kernels), read from its header."""
    from .kernel_io import load_kernel

    return int(max(load_kernel(path).shape))


def _first_dir(root: Path, names) -> Path | None:
    for name in names:
        if (root / name).is_dir():
            return root / name
    return None


# ----------------------------------------------------------------------------- Lai
def lai_uniform(root: str | Path) -> list[Sample]:
    """Lai et al. 2016, uniform blur: ``sharp/<name>.png`` (also ``ground_truth/`` or ``gt/``),
    blurred ``<name>_kernel_0J.png`` found anywhere under ``root`` (usually ``blurred/``, or
    directly in ``root``), kernels ``kernels/kernel_0J.png`` (also ``kernel/``; ``.npy`` too).

    RGB images; category = the leading word of ``<name>`` (``manmade_01`` -> ``manmade``);
    ``kernel_size`` = the loaded kernel's side (31/51/55/75 for kernel_01..04).
    """
    root = Path(root)
    if not root.is_dir():
        raise InvalidInputError(f"Lai dataset folder not found: {root}")
    sharp_dir = _first_dir(root, _LAI_SHARP_DIRS)
    kernel_dir = _first_dir(root, _LAI_KERNEL_DIRS)
    if sharp_dir is None or kernel_dir is None:
        raise InvalidInputError(f"Lai dataset {root} needs sharp/ and kernels/ folders")
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*_kernel_0*")):
        if not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES or path.name.startswith("."):
            continue
        if sharp_dir in path.parents or kernel_dir in path.parents:
            continue
        m = _LAI_BLURRED.fullmatch(path.stem)
        if not m:
            continue
        if path.stem in found:
            raise InvalidInputError(f"Lai dataset {root}: blurred image {path.stem} found twice ({found[path.stem]}, {path})")
        found[path.stem] = path
    if not found:
        raise InvalidInputError(f"no Lai blurred images (<name>_kernel_0J.png) under {root}")
    sizes: dict[Path, int] = {}
    samples = []
    for stem in sorted(found):
        m = _LAI_BLURRED.fullmatch(stem)
        name, j = m.group("name"), m.group("j")
        sharp = _find_stem(sharp_dir, name)
        if sharp is None:
            raise InvalidInputError(f"Lai dataset {root}: no sharp image {sharp_dir / name}.png for {found[stem]}")
        kernel = _find_stem(kernel_dir, f"kernel_{j}", (".npy",) + IMAGE_SUFFIXES)
        if kernel is None:
            raise InvalidInputError(f"Lai dataset {root}: no kernel {kernel_dir}/kernel_{j}.png for {found[stem]}")
        if kernel not in sizes:
            sizes[kernel] = kernel_file_size(kernel)
        samples.append(Sample(name=stem, blurry=found[stem], sharp=sharp, kernel=kernel,
                              kernel_size=sizes[kernel], category=name.split("_")[0]))
    return samples


# ----------------------------------------------------------------------------- generic
def read_manifest(root: Path) -> dict:
    """``root/manifest.json`` as a dict (empty if absent); items as ``{name: {...}}``."""
    path = Path(root) / "manifest.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInputError(f"{path}: expected a JSON object")
    items = data.get("items", {})
    if isinstance(items, list):
        items = {str(it.get("name")): it for it in items if isinstance(it, dict)}
    if not isinstance(items, dict):
        raise InvalidInputError(f"{path}: 'items' must be a list or an object")
    return {**data, "items": items}


def folder_dataset(root: str | Path) -> list[Sample]:
    """Generic layout: ``blurry/`` and ``sharp/`` with matching file stems, optional ``kernels/``
    (``<stem>.npy`` preferred over ``<stem>.png``). An optional ``manifest.json`` with
    ``{"items": {stem: {"kernel_size": K, "category": C}}}`` (or a list of items with
    ``"name"``) supplies the kernel size and category; otherwise the kernel size is the kernel
    file's side (None without kernels) and the category None.
    """
    root = Path(root)
    blurry_dir, sharp_dir, kernel_dir = root / "blurry", root / "sharp", root / "kernels"
    if not blurry_dir.is_dir() or not sharp_dir.is_dir():
        raise InvalidInputError(f"dataset folder {root} needs blurry/ and sharp/ subfolders")
    items = read_manifest(root).get("items", {})
    blurry_files = _images_in(blurry_dir)
    if not blurry_files:
        raise InvalidInputError(f"no images in {blurry_dir}")
    samples = []
    seen = set()
    for path in blurry_files:
        stem = path.stem
        if stem in seen:
            raise InvalidInputError(f"two blurry images with the stem {stem!r} in {blurry_dir}")
        seen.add(stem)
        sharp = _find_stem(sharp_dir, stem)
        if sharp is None:
            raise InvalidInputError(f"no sharp image for {path} (expected {sharp_dir / stem}.png)")
        kernel = _find_stem(kernel_dir, stem, (".npy",) + IMAGE_SUFFIXES) if kernel_dir.is_dir() else None
        meta = items.get(stem, {}) if isinstance(items.get(stem, {}), dict) else {}
        size = meta.get("kernel_size")
        if size is not None:
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise InvalidInputError(f"{root / 'manifest.json'}: kernel_size of {stem!r} must be a positive integer, got {size!r}")
        elif kernel is not None:
            size = kernel_file_size(kernel)
        category = meta.get("category")
        samples.append(Sample(name=stem, blurry=path, sharp=sharp, kernel=kernel, kernel_size=size,
                              category=None if category is None else str(category)))
    return samples


def read_attributes(path: Path) -> dict[str, tuple[str, ...]]:
    """Lai et al.'s ``attribute.txt``: one photo per line, its name then its categories."""
    out = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        words = line.split()
        if words:
            out[words[0]] = tuple(words[1:])
    return out


def photo_folder(root: str | Path) -> list[Sample]:
    """Real blurry photos without ground truth: the images directly in ``root``; an optional
    ``attribute.txt`` (Lai et al.'s real set) gives each photo's categories. Kernel size: None
    (the runner's default, the prior's canvas)."""
    root = Path(root)
    files = _images_in(root)
    if not files:
        raise InvalidInputError(f"no images in {root}")
    attrs = read_attributes(root / "attribute.txt") if (root / "attribute.txt").is_file() else {}
    samples, seen = [], set()
    for path in files:
        if path.stem in seen:
            raise InvalidInputError(f"two photos with the stem {path.stem!r} in {root}")
        seen.add(path.stem)
        cats = attrs.get(path.stem, ())
        samples.append(Sample(name=path.stem, blurry=path, category="+".join(cats) if cats else None, categories=cats))
    return samples


# ----------------------------------------------------------------------------- detection
def repo_root() -> Path:
    """The folder holding the ``glkm_prior`` package (the repository root of a source checkout)."""
    return Path(__file__).resolve().parent.parent


def detect_layout(root: str | Path) -> str:
    """``'levin'``, ``'lai'``, ``'folder'`` or ``'photos'`` (images, no ground truth) for a dataset
    folder; InvalidInputError otherwise."""
    root = Path(root)
    if not root.is_dir():
        raise InvalidInputError(f"dataset folder not found: {root}")
    if (root / "gt").is_dir() and any(root.glob("im*_kernel*_img.png")):
        return "levin"
    if _first_dir(root, _LAI_SHARP_DIRS) and _first_dir(root, _LAI_KERNEL_DIRS) and any(
        p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES for p in root.rglob("*_kernel_0*")
    ):
        return "lai"
    if (root / "blurry").is_dir() and (root / "sharp").is_dir():
        return "folder"
    if _images_in(root):
        return "photos"
    if not any(root.iterdir()):
        raise InvalidInputError(f"dataset folder {root} is empty")
    raise InvalidInputError(
        f"unknown dataset layout in {root}: expected Levin (imI_kernelJ_img.png + gt/), "
        "Lai (sharp/ + kernels/ + <name>_kernel_0J.png), blurry/ + sharp/ [+ kernels/], or a folder of photos")


LOADERS = {"levin": levin, "lai": lai_uniform, "folder": folder_dataset, "photos": photo_folder}


def data_root() -> Path:
    """Where named datasets live: ``$GLKM_DATA``, else ``<repository>/../shared/data``."""
    env = os.environ.get(DATA_ENV)
    return Path(env) if env else repo_root().parent / "shared" / "data"


def resolve_dataset(spec: str | Path) -> tuple[Path, str]:
    """``(folder, layout)`` for a dataset spec: a folder path or a name of :data:`NAMED_DATASETS`."""
    path = Path(spec)
    if path.is_dir():
        return path, detect_layout(path)
    name = str(spec).lower()
    if name in NAMED_DATASETS:
        folder = (data_root() / name).resolve()
        if not folder.is_dir():
            raise InvalidInputError(f"dataset {spec!r} is not available at {folder}; pass the dataset folder instead "
                                    f"(or set {DATA_ENV} to the folder that holds it)")
        return folder, detect_layout(folder)
    if path.exists():
        raise InvalidInputError(f"dataset {spec!r} is a file, not a folder")
    raise InvalidInputError(f"unknown dataset {str(spec)!r}: not a folder and not one of: {', '.join(sorted(NAMED_DATASETS))}")


def load_dataset(spec: str | Path) -> list[Sample]:
    """Samples of a dataset folder (layout detected by :func:`detect_layout`) or of a named
    dataset (``levin`` = ``levin/`` in :func:`data_root`, if present)."""
    folder, layout = resolve_dataset(spec)
    return LOADERS[layout](folder)
