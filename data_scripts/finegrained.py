"""The fine-grained classification sets of the amalgamation papers, from their official archives.

Every converter streams its archives once, copies the images under ``<out_dir>/images/`` and writes
``index_train.csv`` / ``index_test.csv`` (``path`` relative to ``images/``, 0-based ``label``),
``classes.txt`` (the data set's own class names, line i = label i) and ``splits.json``
(class-disjoint contiguous parts, :func:`data_scripts.common.class_splits`). With ``size`` it also
writes ``images_<size>/``: copies whose shorter side is ``size`` pixels (aspect ratio kept).

* Stanford Dogs (Khosla et al. 2011): ``images.tar`` (``Images/<wnid>-<breed>/*.jpg``) and
  ``lists.tar`` (``train_list.mat`` / ``test_list.mat``: ``file_list`` relative to ``Images/``,
  ``labels`` 1-based). Class i is the folder of the images labelled i + 1.
* CUB-200-2011 (Wah et al. 2011): ``CUB_200_2011.tgz`` with ``CUB_200_2011/{images.txt,
  image_class_labels.txt, train_test_split.txt, classes.txt}`` (ids and class ids 1-based;
  ``is_training_image`` 1 = train) and ``CUB_200_2011/images/<class>/*.jpg``.
* FGVC-Aircraft 2013b (Maji et al. 2013), variant level (100 classes): ``fgvc-aircraft-2013b.tar.gz``
  with ``data/images/<id>.jpg``, ``data/variants.txt`` (class order) and
  ``data/images_variant_{train,val,test}.txt`` (``<id> <variant name>``). Our ``train`` is the
  official trainval (train + val). The images keep their 20-pixel copyright banner at the bottom.
* Stanford Cars (Krause et al. 2013): ``cars_train.tgz`` (``cars_train/*.jpg``), ``cars_test.tgz``
  (``cars_test/*.jpg``), ``car_devkit.tgz`` (``devkit/cars_meta.mat``: ``class_names``;
  ``devkit/cars_train_annos.mat``: struct array ``annotations`` with ``fname``, ``class`` 1-based,
  ``bbox_*``) and ``cars_test_annos_withlabels.mat`` (same struct for the test images). Images go
  to ``images/train/`` and ``images/test/`` (their file names overlap).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from data_scripts.common import (
    DataScriptError,
    copy_stream,
    iter_archive_files,
    read_member_bytes,
    resize_copies,
    safe_join,
    write_class_splits,
    write_classes,
    write_index,
)

__all__ = [
    "convert_cub200",
    "convert_fgvc_aircraft",
    "convert_stanford_cars",
    "convert_stanford_dogs",
    "mat_strings",
]

Log = Callable[[str], None]
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def mat_strings(value: Any) -> list[str]:
    """Flatten a MATLAB cell array of strings (as ``scipy.io.loadmat`` returns it) into ``str``\\ s."""
    arr = np.asarray(value, dtype=object).reshape(-1)
    out: list[str] = []
    for item in arr:
        while isinstance(item, np.ndarray):
            if item.dtype.kind in "US" and item.size == 1:
                item = item.reshape(-1)[0]
                break
            if item.size != 1:
                raise DataScriptError(f"expected one string per cell, got an array of shape {item.shape}")
            item = item.reshape(-1)[0]
        out.append(item.decode("utf-8") if isinstance(item, bytes) else str(item))
    return out


def _mat_ints(value: Any) -> list[int]:
    return [int(v) for v in np.asarray(value, dtype=np.int64).reshape(-1)]


def _loadmat_bytes(data: bytes, name: str, **kwargs: Any) -> dict[str, Any]:
    from scipy.io import loadmat

    try:
        return loadmat(io.BytesIO(data), **kwargs)
    except Exception as exc:  # scipy raises several types for a damaged file
        raise DataScriptError(f"cannot read {name} as a MATLAB (v5) file: {exc}") from exc


def _extract_images(
    archive: str | Path, prefix: str, dest: Path, log: Log | None = None, collect: Iterable[str] = ()
) -> tuple[set[str], dict[str, bytes]]:
    """Copy the image members under ``prefix`` to ``dest`` (prefix stripped); also return ``collect``'s bytes."""
    written: set[str] = set()
    wanted = set(collect)
    found: dict[str, bytes] = {}
    for rel, f in iter_archive_files(archive):
        if rel in wanted:
            found[rel] = f.read()
            continue
        if not rel.startswith(prefix) or not rel.lower().endswith(_IMAGE_SUFFIXES):
            continue
        sub = rel[len(prefix):]
        copy_stream(f, safe_join(dest, sub, archive))
        written.add(sub)
        if log is not None and len(written) % 2000 == 0:
            log(f"  {Path(archive).name}: {len(written)} images")
    missing = sorted(wanted - set(found))
    if missing:
        raise DataScriptError(f"{archive} lacks {', '.join(missing)}: is it the right (complete) archive?")
    return written, found


def _check_labels(split: str, labels: Sequence[int], num_classes: int) -> None:
    bad = [y for y in labels if not 0 <= y < num_classes]
    if bad:
        raise DataScriptError(f"{split}: labels {sorted(set(bad))[:5]} outside 1..{num_classes} (1-based)")


def _check_present(split: str, paths: Sequence[str], written: set[str]) -> None:
    missing = [p for p in paths if p not in written]
    if missing:
        raise DataScriptError(
            f"{split}: {len(missing)} listed images are not in the image archive (first: {missing[0]})"
        )


def _finish(
    out: Path,
    classes: Sequence[str],
    train: Sequence[tuple[str, int]],
    test: Sequence[tuple[str, int]],
    size: int | None,
    log: Log | None,
) -> dict[str, int]:
    write_classes(out / "classes.txt", classes)
    write_class_splits(out, len(classes))
    if size is not None:
        rels = sorted({p for p, _ in (*train, *test)})
        if log is not None:
            log(f"writing copies with the shorter side at {size} px to {out / f'images_{size}'}")
        resize_copies(out / "images", out / f"images_{size}", size, rels, log)
    # the indexes last: their presence marks the set as prepared (kae_utils.data.real.real_available)
    write_index(out / "index_test.csv", test)
    write_index(out / "index_train.csv", train)
    return {"train": len(train), "test": len(test), "classes": len(classes)}


def _start(out_dir: str | Path) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("index_train.csv", "index_test.csv"):
        (out / stale).unlink(missing_ok=True)
    return out


# -------------------------------------------------------------------------------------- converters


def convert_stanford_dogs(
    images_tar: str | Path, lists_tar: str | Path, out_dir: str | Path, size: int | None = None, log: Log | None = None
) -> dict[str, int]:
    """Stanford Dogs (120 breeds, 12,000 train / 8,580 test) from ``images.tar`` and ``lists.tar``."""
    out = _start(out_dir)
    lists = read_member_bytes(lists_tar, ["train_list.mat", "test_list.mat"])
    written, _ = _extract_images(images_tar, "Images/", out / "images", log)
    splits: dict[str, list[tuple[str, int]]] = {}
    folder_of: dict[int, str] = {}
    for split in ("train", "test"):
        m = _loadmat_bytes(lists[f"{split}_list.mat"], f"{split}_list.mat")
        if "file_list" not in m or "labels" not in m:
            raise DataScriptError(f"{split}_list.mat lacks 'file_list' or 'labels'")
        files, labels = mat_strings(m["file_list"]), [y - 1 for y in _mat_ints(m["labels"])]
        if len(files) != len(labels):
            raise DataScriptError(f"{split}_list.mat: {len(files)} files but {len(labels)} labels")
        for rel, y in zip(files, labels, strict=True):
            folder = rel.split("/", 1)[0]
            if folder_of.setdefault(y, folder) != folder:
                raise DataScriptError(f"label {y + 1} covers two folders: {folder_of[y]} and {folder}")
        _check_present(split, files, written)
        splits[split] = list(zip(files, labels, strict=True))
    num_classes = max(folder_of) + 1
    if sorted(folder_of) != list(range(num_classes)):
        raise DataScriptError("the lists do not use every label 1..C")
    classes = [folder_of[i] for i in range(num_classes)]
    return _finish(out, classes, splits["train"], splits["test"], size, log)


def _read_table(text: str, name: str, columns: int) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if line.strip():
            parts = line.split(maxsplit=columns - 1)
            if len(parts) != columns:
                raise DataScriptError(f"{name}: malformed line {line!r}")
            rows.append(parts)
    return rows


def convert_cub200(
    archive: str | Path, out_dir: str | Path, size: int | None = None, log: Log | None = None
) -> dict[str, int]:
    """CUB-200-2011 (200 bird species, 5,994 train / 5,794 test) from ``CUB_200_2011.tgz``."""
    out = _start(out_dir)
    base = "CUB_200_2011/"
    texts = [f"{base}{n}.txt" for n in ("images", "image_class_labels", "train_test_split", "classes")]
    written, found = _extract_images(archive, base + "images/", out / "images", log, collect=texts)
    table = {n: _read_table(found[f"{base}{n}.txt"].decode("utf-8"), f"{n}.txt", 2)
             for n in ("images", "image_class_labels", "train_test_split", "classes")}
    class_rows = sorted((int(i), name.strip()) for i, name in table["classes"])
    if [i for i, _ in class_rows] != list(range(1, len(class_rows) + 1)):
        raise DataScriptError("classes.txt: class ids are not 1..C")
    classes = [name for _, name in class_rows]
    path_of = {int(i): p.strip() for i, p in table["images"]}
    label_of = {int(i): int(c) - 1 for i, c in table["image_class_labels"]}
    is_train = {int(i): t.strip() == "1" for i, t in table["train_test_split"]}
    if set(path_of) != set(label_of) or set(path_of) != set(is_train):
        raise DataScriptError("images.txt, image_class_labels.txt and train_test_split.txt list different ids")
    train = [(path_of[i], label_of[i]) for i in sorted(path_of) if is_train[i]]
    test = [(path_of[i], label_of[i]) for i in sorted(path_of) if not is_train[i]]
    for split, rows in (("train", train), ("test", test)):
        _check_labels(split, [y for _, y in rows], len(classes))
        _check_present(split, [p for p, _ in rows], written)
    return _finish(out, classes, train, test, size, log)


def convert_fgvc_aircraft(
    archive: str | Path, out_dir: str | Path, size: int | None = None, log: Log | None = None
) -> dict[str, int]:
    """FGVC-Aircraft 2013b, 100 variants (6,667 trainval / 3,333 test) from ``fgvc-aircraft-2013b.tar.gz``."""
    out = _start(out_dir)
    base = "fgvc-aircraft-2013b/data/"
    lists = [f"{base}images_variant_{s}.txt" for s in ("train", "val", "test")]
    written, found = _extract_images(archive, base + "images/", out / "images", log, collect=[f"{base}variants.txt", *lists])
    classes = [line.strip() for line in found[f"{base}variants.txt"].decode("utf-8").splitlines() if line.strip()]
    class_id = {name: i for i, name in enumerate(classes)}
    if len(class_id) != len(classes):
        raise DataScriptError("variants.txt lists a variant twice")
    rows: dict[str, list[tuple[str, int]]] = {}
    for s in ("train", "val", "test"):
        rows[s] = []
        for image_id, variant in _read_table(found[f"{base}images_variant_{s}.txt"].decode("utf-8"), s, 2):
            variant = variant.strip()
            if variant not in class_id:
                raise DataScriptError(f"images_variant_{s}.txt: unknown variant {variant!r}")
            rows[s].append((f"{image_id}.jpg", class_id[variant]))
    train, test = rows["train"] + rows["val"], rows["test"]
    for split, r in (("trainval", train), ("test", test)):
        _check_present(split, [p for p, _ in r], written)
    return _finish(out, classes, train, test, size, log)


def _annotations(m: dict[str, Any], name: str) -> list[tuple[str, int]]:
    """``(fname, 0-based class)`` of a Stanford Cars annotation struct array (``loadmat(squeeze_me=True)``)."""
    if "annotations" not in m:
        raise DataScriptError(f"{name} has no variable 'annotations'")
    annos = np.atleast_1d(m["annotations"])
    fields = annos.dtype.names or ()
    if "fname" not in fields or "class" not in fields:
        raise DataScriptError(
            f"{name}: the annotations lack 'fname' or 'class' (the test labels are in "
            "cars_test_annos_withlabels.mat; cars_test_annos.mat has none)"
        )
    return [(str(a["fname"]), int(a["class"]) - 1) for a in annos]


def convert_stanford_cars(
    train_tgz: str | Path,
    test_tgz: str | Path,
    devkit_tgz: str | Path,
    test_annos_mat: str | Path,
    out_dir: str | Path,
    size: int | None = None,
    log: Log | None = None,
) -> dict[str, int]:
    """Stanford Cars (196 models, 8,144 train / 8,041 test) from the three tarballs and the test labels."""
    out = _start(out_dir)
    devkit = read_member_bytes(devkit_tgz, ["devkit/cars_meta.mat", "devkit/cars_train_annos.mat"])
    meta = _loadmat_bytes(devkit["devkit/cars_meta.mat"], "cars_meta.mat", squeeze_me=True)
    if "class_names" not in meta:
        raise DataScriptError("cars_meta.mat has no variable 'class_names'")
    classes = [str(c) for c in np.atleast_1d(meta["class_names"])]
    test_mat = _loadmat_bytes(Path(test_annos_mat).read_bytes(), Path(test_annos_mat).name, squeeze_me=True)
    train_m = _loadmat_bytes(devkit["devkit/cars_train_annos.mat"], "cars_train_annos.mat", squeeze_me=True)
    annos = {
        "train": _annotations(train_m, "cars_train_annos.mat"),
        "test": _annotations(test_mat, Path(test_annos_mat).name),
    }
    rows: dict[str, list[tuple[str, int]]] = {}
    for split, archive in (("train", train_tgz), ("test", test_tgz)):
        written, _ = _extract_images(archive, f"cars_{split}/", out / "images" / split, log)
        _check_present(split, [f for f, _ in annos[split]], written)
        _check_labels(split, [y for _, y in annos[split]], len(classes))
        rows[split] = [(f"{split}/{f}", y) for f, y in annos[split]]
    return _finish(out, classes, rows["train"], rows["test"], size, log)

