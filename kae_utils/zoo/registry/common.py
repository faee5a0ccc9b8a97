"""What the registry's families share: the seeds of the zoo's own image streams and the data specs of an entry
(digits and shapes splits, pretraining images and their silhouettes, scenes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from kae_utils.core.params import check_choice

__all__ = [
    "AFK_TEACHER_SHAPES_SEED", "AFK_TEACHER_TASKS", "DIGITS_PRETRAIN_LABELS", "PRETRAIN_SHAPES_SEED",
    "SCENES_TEACHER_SEED", "SHAPES_PRETRAIN_LABELS", "digits_split", "pretrain_images", "scenes_data",
    "scenes_test_data", "shapes_split", "silhouettes",
]

# ------------------------------------------------------------------------------------- the registry

#: Seeds of the image streams the zoo trains on. The notebooks draw ``shapes`` and ``scenes`` with seed 0,
#: so these streams are disjoint from every notebook's images (tested in tests/test_zoo.py).
PRETRAIN_SHAPES_SEED: int = 101
SCENES_TEACHER_SEED: int = 1
#: The image stream of notebook 06's multi-task teachers (disjoint from the notebooks' seed-0 images).
AFK_TEACHER_SHAPES_SEED: int = 2
#: The tasks of notebook 06's two multi-task teachers; its student takes any subset of their union.
AFK_TEACHER_TASKS: tuple[tuple[str, ...], ...] = (("shape", "colour", "size"), ("position", "fill"))
#: The attributes the backbones are pretrained on: never the notebooks' target labels (shape x colour, digits).
DIGITS_PRETRAIN_LABELS: tuple[str, ...] = ("shape", "size")
SHAPES_PRETRAIN_LABELS: tuple[str, ...] = ("size", "position", "fill")


def digits_split(split: str, classes: Sequence[int] | None = None) -> dict[str, Any]:
    """The data spec of the ``digits`` split ``split`` (``train`` or ``test``), of ``classes`` if given."""
    return {"source": "digits", "split": split, "classes": None if classes is None else list(classes)}


def shapes_split(split: str, classes: Sequence[int] | None = None) -> dict[str, Any]:
    """The full profile's ``shapes`` split with shape x colour labels (48 classes), as notebooks 02 and 03 use."""
    return {"source": "shapes-split", "split": split, "profile": "full", "labels": ["shape", "colour"],
            "classes": None if classes is None else list(classes)}


def pretrain_images(start: int, n: int, view: str, labels: Sequence[str]) -> dict:
    """``shapes`` images of the zoo's own stream (32x32), labelled by attributes the notebooks never predict.

    ``view``: ``rgb`` keeps the images; ``silhouette`` (the stand-in for ImageNet of the 8x8 grey
    ``digits`` notebooks) takes the main object's coverage mask, crops the 16x16 window around its grid
    cell and averages it down to 8x8: a bright shape on a dark ground, at the scale of a digit.
    """
    return {"source": "shapes", "seed": PRETRAIN_SHAPES_SEED, "start": start, "n": n, "image_size": 32,
            "view": check_choice("view", view, ("rgb", "silhouette")), "labels": list(labels)}


def silhouettes(masks: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """8x8 grey crops ``(N, 1, 8, 8)`` of 32x32 object masks ``(N, 32, 32)``: the 16x16 window around the
    object's grid cell (``positions``: the 3x3 cell, row-major), averaged over 2x2 pixels."""
    if masks.ndim != 3 or masks.shape[1:] != (32, 32):
        raise ValueError(f"silhouettes expects masks (N, 32, 32); got {tuple(masks.shape)}")
    starts = torch.tensor([0, 8, 16])
    rows, cols = starts[positions // 3], starts[positions % 3]
    offsets = torch.arange(16)
    r_idx = (rows[:, None] + offsets)[:, :, None]
    c_idx = (cols[:, None] + offsets)[:, None, :]
    crops = masks[torch.arange(len(masks))[:, None, None], r_idx, c_idx]
    return F.avg_pool2d(crops[:, None], 2)


def scenes_data(task: str | list[str], image_size: int, start: int, n: int, seed: int) -> dict:
    """The data spec of scenes ``start .. start + n - 1`` of stream ``seed`` at ``image_size``, labelled for
    ``task`` (one task, or a list of tasks)."""
    return {"source": "scenes", "seed": seed, "start": start, "n": n, "image_size": image_size, "task": task}


def scenes_test_data(task: str | list[str], profile: str) -> dict:
    """The test split of notebook 04's profile: the notebooks' own seed 0, after their training images."""
    from kae_utils.data.registry import OFFLINE_SIZES

    sizes = OFFLINE_SIZES["scenes"][profile]
    return scenes_data(task, sizes["image_size"], sizes["train"], sizes["test"], seed=0)
