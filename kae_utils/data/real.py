"""Loaders of the real data sets that ``python -m data_scripts.fetch NAME`` prepares.

The fetch scripts download (or take from ``--archive``) the official archives and write a prepared
layout under the data root (``KAE_DATA_DIR``, else ``<repo>/data``, git-ignored):

* ``cifar10``, ``cifar100``: ``<root>/<name>/{train,test}.pt``, each a dict with ``images`` (uint8,
  ``(N, 3, 32, 32)``), ``labels`` (int64), ``classes`` and, for CIFAR-100, ``coarse_labels`` and
  ``coarse_classes``; plus ``splits.json``.
* ``nyuv2``: ``<root>/nyuv2/{train,test}.pt``, each a dict with ``rgb`` (uint8 ``(N, 3, H, W)``),
  ``seg13`` (int64 ``(N, H, W)``, 0 = unlabelled, 1..13 = :data:`NYU13_CLASSES` ``[1:]``), ``depth``
  (float32 ``(N, 1, H, W)``, metres) and ``normals`` (float32 ``(N, 3, H, W)``, unit length).
* the fine-grained sets ``stanford_dogs``, ``cub200``, ``fgvc_aircraft``, ``stanford_cars``:
  ``<root>/<name>/images/...`` (the original JPEGs), ``index_{train,test}.csv`` (columns ``path``,
  relative to ``images/``, and ``label``, 0-based), ``classes.txt`` (one name a line, line i = label
  i), ``splits.json`` (class-disjoint parts for multi-teacher experiments) and, when fetched with
  ``--size N``, ``images_<N>/`` with copies whose shorter side is N pixels.

Nothing here downloads or prints; a missing set raises ``FileNotFoundError`` naming the command
that prepares it.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from kae_utils.core.paths import repo_root

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

__all__ = [
    "CLASSIFICATION_DATASETS",
    "FINE_GRAINED_DATASETS",
    "NYU13_CLASSES",
    "NYUV2_DEFAULT_SIZE",
    "REAL_DATASETS",
    "NYUv2Split",
    "RealClassification",
    "data_root",
    "dataset_dir",
    "fetch_command",
    "load_class_splits",
    "load_real",
    "prepared_files",
    "real_available",
    "resize_center_crop",
]

#: Names accepted by :func:`load_real` and by ``python -m data_scripts.fetch``.
REAL_DATASETS: tuple[str, ...] = (
    "cifar10",
    "cifar100",
    "nyuv2",
    "stanford_dogs",
    "cub200",
    "fgvc_aircraft",
    "stanford_cars",
)
#: The fine-grained classification sets (JPEG folders with CSV indexes).
FINE_GRAINED_DATASETS: tuple[str, ...] = ("stanford_dogs", "cub200", "fgvc_aircraft", "stanford_cars")
#: Every classification set (all but ``nyuv2``).
CLASSIFICATION_DATASETS: tuple[str, ...] = ("cifar10", "cifar100", *FINE_GRAINED_DATASETS)
#: NYUv2's 13 classes (Couprie et al. 2013); index = value in ``seg13``, 0 = unlabelled.
NYU13_CLASSES: tuple[str, ...] = (
    "unlabelled",
    "bed",
    "books",
    "ceiling",
    "chair",
    "floor",
    "furniture",
    "objects",
    "picture",
    "sofa",
    "table",
    "tv",
    "wall",
    "window",
)
#: (height, width) of the prepared NYUv2 tensors unless ``--size`` says otherwise: a fifth of the
#: original 480x640, keeping its 3:4 aspect ratio, divisible by 32 (five stride-2 stages fit).
NYUV2_DEFAULT_SIZE: tuple[int, int] = (96, 128)

_SPLITS: tuple[str, ...] = ("train", "test")
_NYU_KEYS: tuple[str, ...] = ("rgb", "seg13", "depth", "normals")


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The data root: ``root`` if given, else ``KAE_DATA_DIR``, else ``<repo>/data`` (not created)."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("KAE_DATA_DIR")
    return Path(env).expanduser() if env else repo_root() / "data"


def _check_name(name: str) -> str:
    if name not in REAL_DATASETS:
        raise ValueError(f"unknown real data set {name!r}; choose one of {', '.join(REAL_DATASETS)}")
    return name


def dataset_dir(name: str, root: str | os.PathLike[str] | None = None) -> Path:
    """Folder of the prepared data set ``name`` under the data root."""
    return data_root(root) / _check_name(name)


def prepared_files(name: str) -> tuple[str, ...]:
    """The files (relative to :func:`dataset_dir`) whose presence marks ``name`` as prepared."""
    _check_name(name)
    if name in FINE_GRAINED_DATASETS:
        return ("index_train.csv", "index_test.csv", "classes.txt")
    return ("train.pt", "test.pt")


def fetch_command(name: str, root: str | os.PathLike[str] | None = None) -> str:
    """The shell command that prepares ``name`` (with ``--root`` when a root was given)."""
    cmd = f"python -m data_scripts.fetch {_check_name(name)}"
    if root is None or Path(root).expanduser().resolve() == data_root().resolve():
        return cmd
    return f"{cmd} --root {root}"


def real_available(name: str, root: str | os.PathLike[str] | None = None) -> bool:
    """Whether ``name`` has been prepared under the data root (every file of :func:`prepared_files`)."""
    folder = dataset_dir(name, root)
    return all((folder / f).is_file() for f in prepared_files(name))


def _require(name: str, root: str | os.PathLike[str] | None) -> Path:
    folder = dataset_dir(name, root)
    missing = [f for f in prepared_files(name) if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"the real data set {name!r} is not prepared: {folder / missing[0]} is missing. "
            f"Prepare it with:  {fetch_command(name, root)}  "
            "(it needs internet, or the official archives passed with --archive; see --help)"
        )
    return folder


def _check_split(split: str) -> str:
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}; got {split!r}")
    return split


# ------------------------------------------------------------------------------------ result types


@dataclass(frozen=True, eq=False)
class RealClassification:
    """A classification split: ``x`` ``(N, 3, H, W)`` float32 in [0, 1], ``y`` ``(N,)`` int64, ``classes``.

    Unpacks like a tuple, ``x, y, classes = load_real(...)``; CIFAR-100 also fills ``coarse_y`` and
    ``coarse_classes`` (its 20 super-classes).
    """

    x: torch.Tensor
    y: torch.Tensor
    classes: tuple[str, ...]
    coarse_y: torch.Tensor | None = None
    coarse_classes: tuple[str, ...] | None = None

    def __iter__(self) -> Iterator[object]:
        return iter((self.x, self.y, self.classes))

    def __getitem__(self, index: int) -> object:
        return (self.x, self.y, self.classes)[index]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def dataset(self) -> TensorDataset:
        return TensorDataset(self.x, self.y)


@dataclass(frozen=True, eq=False)
class NYUv2Split(Mapping):
    """A NYUv2 split, readable as a dict (``split["depth"]``) or by attribute (``split.depth``).

    ``rgb`` ``(N, 3, H, W)`` float32 in [0, 1]; ``seg13`` ``(N, H, W)`` int64 with 0 = unlabelled and
    1..13 the classes of :data:`NYU13_CLASSES` (train 13-way heads on ``seg13 - 1`` with
    ``ignore_index=-1``); ``depth`` ``(N, 1, H, W)`` float32 metres; ``normals`` ``(N, 3, H, W)``
    float32, unit length, camera frame (x right, y down, z forward), facing the camera.
    """

    rgb: torch.Tensor
    seg13: torch.Tensor
    depth: torch.Tensor
    normals: torch.Tensor
    classes: tuple[str, ...] = NYU13_CLASSES

    def __getitem__(self, key: str) -> torch.Tensor:
        if key not in _NYU_KEYS:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(_NYU_KEYS)

    def __len__(self) -> int:
        return len(_NYU_KEYS)

    @property
    def num_samples(self) -> int:
        return int(self.rgb.shape[0])

    def dataset(self) -> TensorDataset:
        return TensorDataset(self.rgb, self.seg13, self.depth, self.normals)


# ----------------------------------------------------------------------------------------- loading


def resize_center_crop(image: PILImage, size: int) -> PILImage:
    """Resize a PIL image so that its shorter side is ``size`` (bicubic), then crop the centre square."""
    from PIL import Image

    w, h = image.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    if (nw, nh) != (w, h):
        image = image.resize((nw, nh), Image.Resampling.BICUBIC)
    left, top = (nw - size) // 2, (nh - size) // 2
    return image.crop((left, top, left + size, top + size))


def _resize_images(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True).clamp_(0.0, 1.0)


def _check_size(size: object) -> None:
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
        raise ValueError(f"size must be a positive integer or None; got {size!r}")


def _load_cifar(name: str, split: str, folder: Path, size: int | None) -> RealClassification:
    data = torch.load(folder / f"{split}.pt", weights_only=True)
    x = data["images"].float().div_(255.0)
    if size is not None:
        x = _resize_images(x, (size, size))
    coarse = data.get("coarse_labels")
    return RealClassification(
        x=x.contiguous(),
        y=data["labels"].long(),
        classes=tuple(data["classes"]),
        coarse_y=None if coarse is None else coarse.long(),
        coarse_classes=None if coarse is None else tuple(data["coarse_classes"]),
    )


def _read_index(path: Path) -> tuple[list[str], list[int]]:
    paths, labels = [], []
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            paths.append(row["path"])
            labels.append(int(row["label"]))
    return paths, labels


def _load_fine_grained(name: str, split: str, folder: Path, size: int | None) -> RealClassification:
    from PIL import Image

    paths, labels = _read_index(folder / f"index_{split}.csv")
    classes = tuple(line for line in (folder / "classes.txt").read_text(encoding="utf-8").splitlines() if line)
    image_dir = folder / "images"
    if size is not None and (folder / f"images_{size}").is_dir():
        image_dir = folder / f"images_{size}"
    arrays: list[np.ndarray] = []
    for rel in paths:
        with Image.open(image_dir / rel) as img:
            img = img.convert("RGB")
            if size is not None:
                img = resize_center_crop(img, size)
            arrays.append(np.asarray(img, dtype=np.uint8))
        if arrays[-1].shape != arrays[0].shape:
            raise ValueError(
                f"the images of {name!r} have different sizes ({rel}: {arrays[-1].shape[:2]} vs "
                f"{arrays[0].shape[:2]}); pass size=N to resize and centre-crop them to N x N"
            )
    if arrays:
        x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div_(255.0)
    else:
        side = size or 0
        x = torch.zeros((0, 3, side, side), dtype=torch.float32)
    return RealClassification(x=x.contiguous(), y=torch.tensor(labels, dtype=torch.int64), classes=classes)


def _nyu_size(size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int) and not isinstance(size, bool) and size > 0:
        return size, round(size * 4 / 3)
    if isinstance(size, tuple) and len(size) == 2 and all(isinstance(s, int) and s > 0 for s in size):
        return size
    raise ValueError(f"size for nyuv2 must be None, a height (width = 4/3 of it) or (height, width); got {size!r}")


def _load_nyuv2(split: str, folder: Path, size: int | tuple[int, int] | None) -> NYUv2Split:
    data = torch.load(folder / f"{split}.pt", weights_only=True)
    rgb = data["rgb"].float().div_(255.0)
    seg, depth, normals = data["seg13"].long(), data["depth"].float(), data["normals"].float()
    target = _nyu_size(size)
    if target is not None and tuple(rgb.shape[-2:]) != target:
        rgb = _resize_images(rgb, target)
        seg = F.interpolate(seg[:, None].float(), size=target, mode="nearest-exact")[:, 0].long()
        depth = F.interpolate(depth, size=target, mode="bilinear", align_corners=False, antialias=True)
        normals = F.interpolate(normals, size=target, mode="bilinear", align_corners=False, antialias=True)
        normals = F.normalize(normals, dim=1)
    return NYUv2Split(rgb=rgb.contiguous(), seg13=seg, depth=depth, normals=normals)


def load_real(
    name: str,
    split: str,
    root: str | os.PathLike[str] | None = None,
    size: int | tuple[int, int] | None = None,
) -> RealClassification | NYUv2Split:
    """Load a prepared real data set (see the module docstring for the layouts).

    Args:
        name: one of :data:`REAL_DATASETS`.
        split: ``"train"`` or ``"test"`` (FGVC-Aircraft's ``train`` is its official trainval).
        root: data root (default: ``KAE_DATA_DIR`` or ``<repo>/data``).
        size: classification sets: side N of square images (CIFAR: bilinear resize; fine-grained:
            shorter side to N then centre crop, read from ``images_<N>/`` when it was prepared);
            ``None`` keeps the stored size (fine-grained images must then all have one size).
            ``nyuv2``: a height (width 4/3 of it) or ``(height, width)``; ``None`` keeps the stored size.

    Returns:
        :class:`RealClassification` (``x, y, classes``) or, for ``nyuv2``, :class:`NYUv2Split`.
        Everything is loaded into memory: a full fine-grained set at 224 px is several GB of float32,
        so notebooks on small machines should use a small ``size`` (or the CSV indexes with their
        own streaming dataset).

    Raises:
        FileNotFoundError: the set is not prepared; the message gives the fetch command.
    """
    _check_name(name)
    _check_split(split)
    folder = _require(name, root)
    if name == "nyuv2":
        return _load_nyuv2(split, folder, size)
    _check_size(size)
    if name in FINE_GRAINED_DATASETS:
        return _load_fine_grained(name, split, folder, size)  # type: ignore[arg-type]
    return _load_cifar(name, split, folder, size)  # type: ignore[arg-type]


def load_class_splits(name: str, root: str | os.PathLike[str] | None = None) -> dict[str, list[list[int]]]:
    """The class-disjoint parts of ``splits.json`` (``{"2_parts": [[0, ...], [...]], "4_parts": ...}``)."""
    if name == "nyuv2":
        raise ValueError("nyuv2 has no class splits (it is a dense multi-task set)")
    folder = _require(name, root)
    path = folder / "splits.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; re-run  {fetch_command(name, root)} --force")
    return json.loads(path.read_text())
