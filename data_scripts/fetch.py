"""Download (or take from ``--archive``), verify and prepare a real data set.

Usage::

    python -m data_scripts.fetch NAME [--root DIR] [--archive PATH ...] [--size N] [--force]
    python -m data_scripts.fetch --list

The prepared layouts and their loader are described in :mod:`kae_utils.data.real`.

Checksums: CIFAR-10, CIFAR-100, CUB-200-2011 and Stanford Cars are checked against their published
MD5s (those of torchvision and of the common CUB loaders). Stanford Dogs, FGVC-Aircraft and the NYUv2
files have no published checksum, so they are checked by **trust on first use**: the SHA-256 of the
first copy seen is recorded in ``<root>/raw/<name>/SHA256SUMS`` and later runs verify against it.

Offline: the first address that cannot be reached stops the command within a few seconds (exit 1;
name look-up and connection each time out after ``--timeout``, default 5 s) with a message saying
which file to download elsewhere and how to pass it (``--archive PATH``, or a copy in ``<root>/raw/<name>/``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data_scripts.common import DataScriptError, RemoteFile, data_root, ensure_files, raw_dir
from kae_utils.data.real import NYUV2_DEFAULT_SIZE, REAL_DATASETS, dataset_dir, prepared_files, real_available

__all__ = ["DATASETS", "DatasetSpec", "main", "parse_size", "prepare"]

Log = Callable[[str], None]
Files = dict[str, Path]
#: ``convert(files, out_dir, size, log) -> summary``
Converter = Callable[[Files, Path, Any, Any], dict]

_CIFAR_PAGE = "https://www.cs.toronto.edu/~kriz/cifar.html"
_NYU_PAGE = "https://cs.nyu.edu/~silberman/datasets/nyu_depth_v2.html"
_NYU_META_PAGE = "https://github.com/ankurhanda/nyuv2-meta-data"
_DOGS_PAGE = "http://vision.stanford.edu/aditya86/ImageNetDogs/"
_CUB_PAGE = "https://www.vision.caltech.edu/datasets/cub_200_2011/"
_AIRCRAFT_PAGE = "https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/"
_CARS_PAGE = "https://ai.stanford.edu/~jkrause/cars/car_dataset.html"


@dataclass(frozen=True)
class DatasetSpec:
    """What ``fetch NAME`` needs: the remote files, the converter, and how ``--size`` applies."""

    name: str
    title: str
    remotes: tuple[RemoteFile, ...]
    convert: Converter
    size_help: str  #: what --size means for this set ("" = not accepted)
    note: str = ""


def _cifar(variant: str) -> Converter:
    def convert(files: Files, out: Path, size: object, log: Log | None) -> dict:
        from data_scripts.cifar import convert_cifar

        archive = "cifar-10-python.tar.gz" if variant == "cifar10" else "cifar-100-python.tar.gz"
        return convert_cifar(files[archive], out, variant)

    return convert


def _nyuv2(files: Files, out: Path, size: object, log: Log | None) -> dict:
    from data_scripts.nyuv2 import convert_nyuv2

    hw = size if isinstance(size, tuple) else NYUV2_DEFAULT_SIZE
    return convert_nyuv2(
        files["nyu_depth_v2_labeled.mat"], files["splits.mat"], files["classMapping40.mat"],
        files["class13Mapping.mat"], out, hw, log,
    )


def _dogs(files: Files, out: Path, size: object, log: Log | None) -> dict:
    from data_scripts.finegrained import convert_stanford_dogs

    return convert_stanford_dogs(files["images.tar"], files["lists.tar"], out, size, log)  # type: ignore[arg-type]


def _cub(files: Files, out: Path, size: object, log: Log | None) -> dict:
    from data_scripts.finegrained import convert_cub200

    return convert_cub200(files["CUB_200_2011.tgz"], out, size, log)  # type: ignore[arg-type]


def _aircraft(files: Files, out: Path, size: object, log: Log | None) -> dict:
    from data_scripts.finegrained import convert_fgvc_aircraft

    return convert_fgvc_aircraft(files["fgvc-aircraft-2013b.tar.gz"], out, size, log)  # type: ignore[arg-type]


def _cars(files: Files, out: Path, size: object, log: Log | None) -> dict:
    from data_scripts.finegrained import convert_stanford_cars

    return convert_stanford_cars(
        files["cars_train.tgz"], files["cars_test.tgz"], files["car_devkit.tgz"],
        files["cars_test_annos_withlabels.mat"], out, size, log,  # type: ignore[arg-type]
    )


_FG_SIZE = "also write copies with the shorter side at N px to images_<N>/ (load_real(size=N) reads them)"

#: Every data set ``fetch`` knows, by name (the same names as ``kae_utils.data.real.REAL_DATASETS``).
DATASETS: dict[str, DatasetSpec] = {
    "cifar10": DatasetSpec(
        "cifar10", "CIFAR-10 (60,000 32x32 images, 10 classes)",
        (RemoteFile("cifar-10-python.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                    _CIFAR_PAGE, md5="c58f30108f718f92721af3b95e74349a"),),
        _cifar("cifar10"), "",
    ),
    "cifar100": DatasetSpec(
        "cifar100", "CIFAR-100 (60,000 32x32 images, 100 classes in 20 super-classes)",
        (RemoteFile("cifar-100-python.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                    _CIFAR_PAGE, md5="eb9058c3a382ffc7106e4002c42a8d85"),),
        _cifar("cifar100"), "",
    ),
    "nyuv2": DatasetSpec(
        "nyuv2", "NYU Depth v2 labelled (1,449 RGB-D images: 13-class segmentation, depth, normals)",
        (
            RemoteFile("nyu_depth_v2_labeled.mat",
                       "http://horatio.cs.nyu.edu/mit/silberman/nyu_depth_v2/nyu_depth_v2_labeled.mat", _NYU_PAGE),
            RemoteFile("splits.mat", "http://horatio.cs.nyu.edu/mit/silberman/indoor_seg_sup/splits.mat", _NYU_PAGE),
            RemoteFile("classMapping40.mat",
                       "https://github.com/ankurhanda/nyuv2-meta-data/raw/master/classMapping40.mat", _NYU_META_PAGE),
            RemoteFile("class13Mapping.mat",
                       "https://github.com/ankurhanda/nyuv2-meta-data/raw/master/class13Mapping.mat", _NYU_META_PAGE),
        ),
        _nyuv2,
        f"output size: HxW, or a height N (width 4N/3); default {NYUV2_DEFAULT_SIZE[0]}x{NYUV2_DEFAULT_SIZE[1]}",
        note="needs the h5py package to read the MATLAB v7.3 file (2.8 GB)",
    ),
    "stanford_dogs": DatasetSpec(
        "stanford_dogs", "Stanford Dogs (20,580 images, 120 breeds)",
        (
            RemoteFile("images.tar", "http://vision.stanford.edu/aditya86/ImageNetDogs/images.tar", _DOGS_PAGE),
            RemoteFile("lists.tar", "http://vision.stanford.edu/aditya86/ImageNetDogs/lists.tar", _DOGS_PAGE),
        ),
        _dogs, _FG_SIZE,
    ),
    "cub200": DatasetSpec(
        "cub200", "CUB-200-2011 (11,788 images, 200 bird species)",
        (RemoteFile("CUB_200_2011.tgz", "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz?download=1",
                    _CUB_PAGE, md5="97eceeb196236b17998738112f37df78"),),
        _cub, _FG_SIZE,
    ),
    "fgvc_aircraft": DatasetSpec(
        "fgvc_aircraft", "FGVC-Aircraft 2013b (10,000 images, 100 variants; train = official trainval)",
        (RemoteFile("fgvc-aircraft-2013b.tar.gz",
                    "https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz",
                    _AIRCRAFT_PAGE),),
        _aircraft, _FG_SIZE,
    ),
    "stanford_cars": DatasetSpec(
        "stanford_cars", "Stanford Cars (16,185 images, 196 models)",
        (
            RemoteFile("cars_train.tgz", "https://ai.stanford.edu/~jkrause/car196/cars_train.tgz", _CARS_PAGE,
                       md5="065e5b463ae28d29e77c1b4b166cfe61"),
            RemoteFile("cars_test.tgz", "https://ai.stanford.edu/~jkrause/car196/cars_test.tgz", _CARS_PAGE,
                       md5="4ce7ebf6a94d07f1952d94dd34c4d501"),
            RemoteFile("car_devkit.tgz", "https://ai.stanford.edu/~jkrause/cars/car_devkit.tgz", _CARS_PAGE,
                       md5="c3b158d763b6e2245038c8ad08e45376"),
            RemoteFile("cars_test_annos_withlabels.mat",
                       "https://ai.stanford.edu/~jkrause/car196/cars_test_annos_withlabels.mat", _CARS_PAGE,
                       md5="b0a2b23655a3edd16d84508592a98d10"),
        ),
        _cars, _FG_SIZE,
        note="the original host has been unreliable since 2023; any copy of these four files with the same "
             "MD5s will do (pass them with --archive)",
    ),
}
assert tuple(DATASETS) == REAL_DATASETS


def parse_size(spec: DatasetSpec, text: str | None) -> tuple[int, int] | int | None:
    """``--size`` for ``spec``: ``None``; an int N (fine-grained); ``(H, W)`` (nyuv2: ``HxW`` or ``N``)."""
    if text is None:
        return None
    if not spec.size_help:
        raise ValueError(f"--size does not apply to {spec.name} (resize when loading: load_real(..., size=N))")
    try:
        if spec.name == "nyuv2":
            parts = [int(p) for p in text.lower().split("x")]
            if len(parts) == 1:
                parts = [parts[0], round(parts[0] * 4 / 3)]
            if len(parts) != 2 or min(parts) < 1:
                raise ValueError
            return parts[0], parts[1]
        value = int(text)
        if value < 1:
            raise ValueError
        return value
    except ValueError:
        raise ValueError(f"--size {text!r}: expected {spec.size_help.split(':')[0]}") from None


def prepare(
    name: str,
    root: str | Path | None = None,
    archives: Sequence[str | Path] = (),
    size: tuple[int, int] | int | None = None,
    force: bool = False,
    timeout: float = 5.0,
    log: Log | None = None,
) -> Path:
    """Fetch, verify and convert ``name``; return its prepared folder (already prepared: skip unless ``force``)."""
    spec = DATASETS[name]
    out = dataset_dir(name, root)
    if real_available(name, root) and not force and not size:
        if log is not None:
            log(f"{name} is already prepared in {out} (use --force to rebuild)")
        return out
    files = ensure_files(name, spec.remotes, root, [Path(a) for a in archives], timeout, log)
    if log is not None:
        log(f"converting {name} into {out}")
    summary = spec.convert(files, out, size, log)
    if log is not None:
        log(f"done: {name} " + ", ".join(f"{k}={v}" for k, v in summary.items()))
    return out


def _listing() -> str:
    lines = []
    for spec in DATASETS.values():
        lines.append(f"{spec.name}: {spec.title}")
        for r in spec.remotes:
            check = f"{r.checksum[0]} {r.checksum[1]}" if r.checksum else "sha256 recorded on first use (no published checksum)"
            lines.append(f"    {r.filename:32s} {r.url}")
            lines.append(f"    {'':32s} checksum: {check}")
        lines.append(f"    prepared files: {', '.join(prepared_files(spec.name))}; page: {spec.remotes[0].page}")
        if spec.note:
            lines.append(f"    note: {spec.note}")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m data_scripts.fetch",
        description="Download (or take from --archive), verify and prepare one of the real data sets: "
        + ", ".join(DATASETS) + ".",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "Data root: --root, else $KAE_DATA_DIR, else <repo>/data. Archives are kept in <root>/raw/<name>/,\n"
            "prepared files go to <root>/<name>/ (read them with kae_utils.data.real.load_real).\n\n"
            "Checksums: CIFAR-10/100, CUB-200-2011 and Stanford Cars are checked against published MD5s.\n"
            "Stanford Dogs, FGVC-Aircraft and NYUv2 have none: their SHA-256 is recorded in\n"
            "<root>/raw/<name>/SHA256SUMS the first time (trust on first use) and verified on later runs.\n\n"
            "Offline: download the files listed by --list on another machine, then pass them with\n"
            "--archive PATH (repeatable; a folder holding them works too) or copy them to <root>/raw/<name>/.\n"
            "If an address has moved, download the file manually from the data set's page (see --list)."
        ),
    )
    parser.add_argument("name", nargs="?", metavar="NAME", help="data set: " + ", ".join(DATASETS))
    parser.add_argument("--list", action="store_true", help="list the data sets and the files each needs")
    parser.add_argument("--root", default=None, help="data root (default: $KAE_DATA_DIR or <repo>/data)")
    parser.add_argument("--archive", action="append", default=[], metavar="PATH",
                        help="an already downloaded file (or a folder holding them); repeatable")
    parser.add_argument("--size", default=None, metavar="N",
                        help="fine-grained sets: " + _FG_SIZE + "; nyuv2: output size HxW or height N "
                        f"(default {NYUV2_DEFAULT_SIZE[0]}x{NYUV2_DEFAULT_SIZE[1]})")
    parser.add_argument("--force", action="store_true", help="rebuild the prepared files even if present")
    parser.add_argument("--timeout", type=float, default=5.0,
                        help="network timeout in seconds for name look-up, connection and each read (default 5)")
    return parser


def _log(message: str) -> None:
    print(message, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """The CLI; returns the exit status (argument errors, such as an unknown NAME, exit with 2)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.list:
        print(_listing())
        return 0
    if args.name is None:
        parser.error("NAME is required (or --list); choose one of: " + ", ".join(DATASETS))
    if args.name not in DATASETS:
        parser.error(f"unknown data set {args.name!r}; choose one of: " + ", ".join(DATASETS))
    spec = DATASETS[args.name]
    try:
        size = parse_size(spec, args.size)
    except ValueError as exc:
        parser.error(str(exc))
    root = Path(args.root).expanduser() if args.root else None
    try:
        prepare(spec.name, root, args.archive, size, args.force, args.timeout, _log)
    except DataScriptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if spec.note:
            print(f"note: {spec.note}", file=sys.stderr)
        print(f"(data root: {data_root(root)}; raw files: {raw_dir(spec.name, root)})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
