"""CIFAR-10 and CIFAR-100 from the official "python version" tarballs (Krizhevsky, 2009).

``cifar-10-python.tar.gz`` holds ``cifar-10-batches-py/data_batch_{1..5}``, ``test_batch`` and
``batches.meta``; ``cifar-100-python.tar.gz`` holds ``cifar-100-python/{train,test,meta}``. Each is
a Python 2 pickle of a dict with ``data`` (``N x 3072`` uint8, the red, green then blue planes of
32x32 images, row-major), the labels and, in the meta files, the class names. The pickles are read
straight from the tarball with an unpickler that only admits NumPy arrays and builtins.

Output: ``<out_dir>/{train,test}.pt`` (see :mod:`kae_utils.data.real`) and ``splits.json``.
"""

from __future__ import annotations

import io
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from data_scripts.common import DataScriptError, iter_archive_files, write_class_splits

__all__ = ["convert_cifar", "safe_unpickle"]

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
    ("copy_reg", "_reconstructor"),
    ("copyreg", "_reconstructor"),
    ("__builtin__", "object"),
    ("builtins", "object"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"CIFAR pickle refers to {module}.{name}, which is not allowed")


def safe_unpickle(data: bytes) -> dict[str, Any]:
    """Unpickle a CIFAR batch (Python 2 pickle, ``bytes`` keys) into a dict with ``str`` keys."""
    obj = _RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    if not isinstance(obj, dict):
        raise DataScriptError("a CIFAR batch is not a pickled dict")
    return {(k.decode("latin1") if isinstance(k, bytes) else str(k)): v for k, v in obj.items()}


def _names(values: Any) -> list[str]:
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def _images(batch: dict[str, Any], member: str) -> np.ndarray:
    data = np.asarray(batch["data"], dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataScriptError(f"{member}: data has shape {data.shape}, expected (N, 3072)")
    return data.reshape(-1, 3, 32, 32)


def _save(path: Path, images: np.ndarray, labels: list[int], classes: list[str], extra: dict[str, Any]) -> None:
    labels_t = torch.tensor(labels, dtype=torch.int64)
    if len(labels_t) != len(images):
        raise DataScriptError(f"{path.name}: {len(images)} images but {len(labels_t)} labels")
    if len(labels_t) and (labels_t.min() < 0 or labels_t.max() >= len(classes)):
        raise DataScriptError(f"{path.name}: labels outside 0..{len(classes) - 1}")
    payload = {"images": torch.from_numpy(np.ascontiguousarray(images)), "labels": labels_t, "classes": classes}
    payload.update(extra)
    torch.save(payload, path)


def convert_cifar(archive: str | Path, out_dir: str | Path, variant: str = "cifar10") -> dict[str, int]:
    """Convert the official CIFAR python tarball to ``out_dir/{train,test}.pt`` (+ ``splits.json``).

    Args:
        archive: ``cifar-10-python.tar.gz`` or ``cifar-100-python.tar.gz``.
        out_dir: output folder (created).
        variant: ``"cifar10"`` or ``"cifar100"``.

    Returns:
        ``{"train": n_train, "test": n_test, "classes": n_classes}``.
    """
    if variant not in ("cifar10", "cifar100"):
        raise ValueError(f"variant must be 'cifar10' or 'cifar100'; got {variant!r}")
    folder = "cifar-10-batches-py" if variant == "cifar10" else "cifar-100-python"
    batches: dict[str, dict[str, Any]] = {}
    for rel, f in iter_archive_files(archive):
        parent, _, base = rel.rpartition("/")
        if parent == folder and (base in ("batches.meta", "meta", "train", "test", "test_batch")
                                 or re.fullmatch(r"data_batch_\d+", base)):
            batches[base] = safe_unpickle(f.read())
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if variant == "cifar10":
        train_names = sorted((b for b in batches if b.startswith("data_batch_")), key=lambda b: int(b.rsplit("_", 1)[1]))
        missing = [m for m in ("batches.meta", "test_batch") if m not in batches] + ([] if train_names else ["data_batch_*"])
        if missing:
            raise DataScriptError(f"{archive} lacks {folder}/{', '.join(missing)}: not the CIFAR-10 python tarball?")
        classes = _names(batches["batches.meta"]["label_names"])
        train_x = np.concatenate([_images(batches[b], b) for b in train_names])
        train_y = [int(v) for b in train_names for v in batches[b]["labels"]]
        _save(out / "train.pt", train_x, train_y, classes, {})
        test = batches["test_batch"]
        _save(out / "test.pt", _images(test, "test_batch"), [int(v) for v in test["labels"]], classes, {})
        n_train, n_test = len(train_y), len(test["labels"])
    else:
        missing = [m for m in ("meta", "train", "test") if m not in batches]
        if missing:
            raise DataScriptError(f"{archive} lacks {folder}/{', '.join(missing)}: not the CIFAR-100 python tarball?")
        classes = _names(batches["meta"]["fine_label_names"])
        coarse_classes = _names(batches["meta"]["coarse_label_names"])
        sizes = {}
        for split in ("train", "test"):
            b = batches[split]
            coarse = torch.tensor([int(v) for v in b["coarse_labels"]], dtype=torch.int64)
            extra = {"coarse_labels": coarse, "coarse_classes": coarse_classes}
            _save(out / f"{split}.pt", _images(b, split), [int(v) for v in b["fine_labels"]], classes, extra)
            sizes[split] = len(coarse)
        n_train, n_test = sizes["train"], sizes["test"]
    write_class_splits(out, len(classes))
    return {"train": n_train, "test": n_test, "classes": len(classes)}
