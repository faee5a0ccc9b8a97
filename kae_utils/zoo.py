"""The model zoo: the repository's own trained teachers and pretrained backbones, shipped and hash-checked.

The papers start from well-trained networks (usually ImageNet-initialised), far more than a notebook's
two-minute quick profile can train. So the expensive models are trained once, from a recipe written
here, and shipped in ``zoo/``; notebooks load them and spend their minutes on the method::

    from kae_utils import zoo

    teacher = zoo.load("scenes64-segmentation", device=device)     # hash-checked, eval mode
    zoo.summary(["scenes64-segmentation"])                          # its recipe and held-out metrics

An entry (:class:`ZooEntry`) is one readable definition: the architecture and its arguments, the data
it is trained on (data set, split, class subset or task), the recipe (:class:`Recipe`: optimiser,
schedule, epochs, augmentation), the seed, the data it is scored on, which entry it starts from
(``init``: the pretrained backbone that stands in for ImageNet), and the notebooks that use it.

On disk, ``zoo/weights/<name>.safetensors`` holds the weights (safetensors: no pickle) with the entry's
config hash in its metadata, and ``zoo/manifest.json`` holds per entry its SHA-256, parameter count,
held-out metrics, learning curve, training time, device and the commit of the code that trained it.

Command line (also ``make zoo``, ``make zoo-list``, ``make zoo-verify``)::

    python -m kae_utils.zoo list                 # name, task, architecture, params, held-out metric, used by
    python -m kae_utils.zoo build [NAMES] [--device auto|cpu|cuda] [--profile auto|quick|full|all]
    python -m kae_utils.zoo verify               # rehash every file; exit 1 on any mismatch

``build`` trains what is missing or *stale* (its registry definition's hash differs from the manifest's),
deterministically for the entry's seed (on one device and thread count), resumes an interrupted training
from its checkpoint, and writes every file atomically, so no half-written file is ever used.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import difflib
import functools
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from kae_utils.benchmarks import taskonomy
from kae_utils.benchmarks.tasks import DENSE_TASKS, dense_task, transfer_task
from kae_utils.core.atomic import atomic_write
from kae_utils.core.params import check_choice
from kae_utils.core.paths import repo_root
from kae_utils.data.digits import augment_shifts, load_digits
from kae_utils.data.scenes import SceneConfig, render_scenes
from kae_utils.data.shapes import ATTRIBUTE_VALUES, ShapesConfig, composite_labels, generate_shapes
from kae_utils.data.subsets import class_subset, split_classes
from kae_utils.evaluation.metrics import accuracy
from kae_utils.models import (
    build_encdec,
    build_model,
    build_multihead,
    build_multitask_encdec,
    build_tasknet,
    count_parameters,
)
from kae_utils.notebook import resolve_device
from kae_utils.training.cache import config_key, load_or_train, sha256_file
from kae_utils.training.numerics import PRECISIONS, Numerics, current, using
from kae_utils.training.predict import Batches, predict_logits, predict_maps
from kae_utils.training.trainer import Checkpoint, Trainer

__all__ = [
    "ADAPTIVE_POOL",
    "ADAPTIVE_REFERENCE_TASKS",
    "ADAPTIVE_REFERENCE_WIDTHS",
    "ADAPTIVE_WIDTHS",
    "ENTRY_PROFILES",
    "REGISTRY",
    "TEACHER_SOURCES",
    "Recipe",
    "Zoo",
    "ZooEntry",
    "ZooError",
    "ZooIntegrityError",
    "adaptive_reference_name",
    "adaptive_source_name",
    "adaptive_source_names",
    "afk_teacher_names",
    "entry",
    "entry_data",
    "linear_probe",
    "load",
    "copy_backbone",
    "make_registry",
    "markdown_index",
    "main",
    "obtain",
    "record",
    "smoke_entry",
    "smoke_registry",
    "summary",
    "train_entry",
    "zoo_dir",
]

#: Version of the manifest layout.
ZOO_FORMAT: int = 1
#: Which notebook profile an entry serves: ``quick`` entries are built and shipped; ``full`` ones need a GPU.
ENTRY_PROFILES: tuple[str, ...] = ("quick", "full")
#: The ``TEACHERS`` parameter of the notebooks: load from the zoo, or retrain with the zoo's recipe.
TEACHER_SOURCES: tuple[str, ...] = ("zoo", "train")
_METADATA_FORMAT = "kae-zoo-1"
_METADATA_KEY = "kae_zoo"


class ZooError(RuntimeError):
    """A zoo entry cannot be loaded: not built, stale, or refused."""


class ZooIntegrityError(ZooError):
    """A weights file does not match the manifest (its hash, or its recorded config)."""


# ------------------------------------------------------------------------------------ definitions


@dataclass(frozen=True)
class Recipe:
    """How an entry is trained. ``shift_copies``: one-pixel shifted copies of every training image added
    to the training set (the jitter augmentation of notebook 01); ``0`` for none."""

    epochs: int
    lr: float
    batch_size: int
    optimizer: str = "adam"
    schedule: str = "cosine"
    weight_decay: float = 0.0
    shift_copies: int = 0


@dataclass(frozen=True)
class ZooEntry:
    """One named model of the zoo: what it is, what it is trained and scored on, and how.

    Attributes:
        name: file and lookup name, ``[a-z0-9-]+``.
        task: what the model does, in words.
        arch: ``convnet``, ``resnet``, ``mlp`` (``kae_utils.models.build_model``) or ``encdec``
            (``kae_utils.models.build_encdec``); ``arch_args`` are the constructor's arguments.
        data: the training data (see :func:`entry_data`); ``held_out``: the data it is scored on, which
            no notebook trains on; ``probe``: optional ``{"train": spec, "test": spec}`` on which a linear
            probe of its pooled features is scored (for pretrained backbones: does the pretraining
            already solve the target task?).
        recipe: optimiser, schedule, epochs, augmentation.
        seed: initial weights and batch order.
        init: the entry whose weights it starts from (all but the classifier), e.g. a pretrained backbone.
        used_by: the notebooks that load it (not part of the config hash).
        profile: ``quick`` (built and shipped) or ``full`` (built on a GPU with ``make zoo``).
    """

    name: str
    task: str
    arch: str
    arch_args: dict[str, Any]
    data: dict[str, Any]
    held_out: dict[str, Any]
    recipe: Recipe
    seed: int = 0
    init: str | None = None
    probe: dict[str, Any] | None = None
    used_by: tuple[str, ...] = ()
    profile: str = "quick"

    @property
    def kind(self) -> str:
        """``dense`` (an encoder-decoder for one pixel task), ``multitask`` (one for several), ``multihead``
        (a classifier with one head per attribute), ``transfer`` (a mini-Taskonomy ``TaskNet`` for one task of
        ``kae_utils.benchmarks.tasks.TRANSFER_TASKS``, notebooks 08 and 09) or ``classifier``."""
        return {"encdec": "dense", "mtencdec": "multitask", "multihead": "multihead",
                "tasknet": "transfer"}.get(self.arch, "classifier")

    @property
    def tasks(self) -> tuple[str, ...]:
        """The tasks of a dense, multi-task, multi-head or transfer entry: pixel tasks, attributes or the
        mini-Taskonomy task (empty for a classifier)."""
        return {"dense": (self.arch_args.get("kind"),), "multitask": tuple(self.arch_args.get("tasks", ())),
                "multihead": tuple(self.arch_args.get("heads", {})),
                "transfer": (self.arch_args.get("task"),)}.get(self.kind, ())

    def own_config(self) -> dict[str, Any]:
        """Every field that determines the weights (``used_by`` is left out); for pixel tasks also their training
        losses in words (a classifier's is cross-entropy); see :meth:`Zoo.config`."""
        cfg = dataclasses.asdict(self)
        cfg.pop("used_by")
        if self.kind in ("dense", "multitask"):
            cfg["loss"] = [DENSE_TASKS[t].loss_words for t in self.tasks]
        if self.kind == "transfer":
            cfg["loss"] = [transfer_task(t).loss_words for t in self.tasks]
        return cfg

    def build_model(self) -> nn.Module:
        """The untrained model, initialised from ``seed`` without touching the global RNG."""
        args = dict(self.arch_args)
        if self.arch == "encdec":
            return build_encdec(args.pop("kind"), args.pop("out_channels"), seed=self.seed, **args)
        if self.arch == "mtencdec":
            tasks = {t: DENSE_TASKS[t].channels for t in args.pop("tasks")}
            return build_multitask_encdec(tasks, seed=self.seed, **args)
        if self.arch == "multihead":
            return build_multihead(args.pop("backbone"), args.pop("heads"), seed=self.seed, **args)
        if self.arch == "tasknet":
            task = transfer_task(args.pop("task"))
            return build_tasknet(task.output, task.channels, seed=self.seed, **args)
        return build_model(self.arch, args.pop("num_classes"), seed=self.seed, **args)


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


def _digits_split(split: str, classes: Sequence[int] | None = None) -> dict[str, Any]:
    return {"source": "digits", "split": split, "classes": None if classes is None else list(classes)}


def _shapes_split(split: str, classes: Sequence[int] | None = None) -> dict[str, Any]:
    """The full profile's ``shapes`` split with shape x colour labels (48 classes), as notebooks 02 and 03 use."""
    return {"source": "shapes-split", "split": split, "profile": "full", "labels": ["shape", "colour"],
            "classes": None if classes is None else list(classes)}


def _pretrain_images(start: int, n: int, view: str, labels: Sequence[str]) -> dict:
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


def _scenes(task: str | list[str], image_size: int, start: int, n: int, seed: int) -> dict:
    return {"source": "scenes", "seed": seed, "start": start, "n": n, "image_size": image_size, "task": task}


def _scenes_test(task: str | list[str], profile: str) -> dict:
    """The test split of notebook 04's profile: the notebooks' own seed 0, after their training images."""
    from kae_utils.data.registry import OFFLINE_SIZES

    sizes = OFFLINE_SIZES["scenes"][profile]
    return _scenes(task, sizes["image_size"], sizes["train"], sizes["test"], seed=0)


def _backbones() -> list[ZooEntry]:
    """Stand-ins for ImageNet pretraining, one per architecture the notebooks start from."""
    families = (  # (prefix, profile, image view, channels, images, labels, probe split, recipe, architectures)
        ("digits", "quick", "silhouette", 1, 30000, DIGITS_PRETRAIN_LABELS, _digits_split,
         Recipe(epochs=15, lr=3e-3, batch_size=256),
         [("convnet", (16, 32, 64)), ("resnet", (24, 48, 96)), ("convnet", (32, 64, 128)), ("resnet", (32, 64, 128))]),
        ("shapes", "full", "rgb", 3, 50000, SHAPES_PRETRAIN_LABELS, _shapes_split,
         Recipe(epochs=10, lr=2e-3, batch_size=256),
         [("convnet", (32, 64, 128)), ("resnet", (48, 96, 192)), ("convnet", (64, 128, 256)), ("resnet", (64, 128, 256))]),
    )
    entries = []
    for prefix, profile, view, channels, n, labels, probe_split, recipe, archs in families:
        classes = math.prod(len(ATTRIBUTE_VALUES[a]) for a in labels)
        for arch, widths in archs:
            teachers_too = (arch, widths) == archs[0]  # the first is also the teachers' (02 and 03) backbone
            entries.append(ZooEntry(
                name=f"{prefix}-pre-{arch}{widths[0]}",
                task=f"pretraining (for {prefix}): {' x '.join(labels)} of {'8x8 shape silhouettes' if view == 'silhouette' else '32x32 shapes'}, {classes} classes",
                arch=arch, arch_args={"num_classes": classes, "in_channels": channels, "widths": list(widths)},
                data=_pretrain_images(0, n, view, labels), held_out=_pretrain_images(n, n // 10, view, labels),
                probe={"train": probe_split("train"), "test": probe_split("test")}, recipe=recipe, seed=0,
                used_by=("02", "03") if teachers_too else ("03",), profile=profile))
    return entries


def _class_set_name(classes: Sequence[int]) -> str:
    return f"c{classes[0]}-{classes[-1]}"


def overlapping_halves(num_classes: int, share: float = 0.6) -> list[tuple[int, ...]]:
    """Two class sets: the first and the last ceil(share * C) classes (they overlap in the middle)."""
    k = math.ceil(share * num_classes)
    return [tuple(range(k)), tuple(range(num_classes - k, num_classes))]


#: The class sets of the teachers of notebook 02 (``two``, ``four``, ``overlapping``) for C classes;
#: notebook 03 uses the ``two`` halves.
def teacher_class_sets(num_classes: int) -> dict[str, list[tuple[int, ...]]]:
    return {"two teachers": split_classes(num_classes, 2), "four teachers": split_classes(num_classes, 4),
            "overlapping": overlapping_halves(num_classes)}


def classifier_teacher_name(dataset: str, arch: str, width: int, classes: Sequence[int]) -> str:
    """Name of the teacher of ``classes`` (global labels) of ``dataset`` (``digits`` or ``shapes``)."""
    return f"{dataset}-{arch}{width}-{_class_set_name(classes)}"


def _classifier_teachers() -> list[ZooEntry]:
    """The teachers of notebooks 02 and 03, fine-tuned from the pretrained backbones."""
    entries = []
    for dataset, num_classes, split, profile, widths_of, recipe in (
        ("digits", 10, _digits_split, "quick", {"convnet": (16, 32, 64), "resnet": (24, 48, 96)},
         Recipe(epochs=25, lr=1e-3, batch_size=128, shift_copies=1)),
        ("shapes", 48, _shapes_split, "full", {"convnet": (32, 64, 128), "resnet": (48, 96, 192)},
         Recipe(epochs=15, lr=1e-3, batch_size=256)),
    ):
        sets = teacher_class_sets(num_classes)
        wanted = [("convnet", c, ("02", "03") if c == sets["two teachers"][0] else ("02",))
                  for setting in sets.values() for c in setting]
        wanted.append(("resnet", sets["two teachers"][1], ("03",)))
        for arch, classes, used_by in wanted:
            widths = widths_of[arch]
            entries.append(ZooEntry(
                name=classifier_teacher_name(dataset, arch, widths[0], classes),
                task=f"{dataset} classes {classes[0]}..{classes[-1]} ({len(classes)}-way)",
                arch=arch, arch_args={"num_classes": len(classes), "in_channels": 1 if dataset == "digits" else 3,
                                      "widths": list(widths)},
                data=split("train", classes), held_out=split("test", classes), recipe=recipe,
                seed=0, init=f"{dataset}-pre-{arch}{widths[0]}", used_by=used_by, profile=profile))
    return entries


def _kd_teachers() -> list[ZooEntry]:
    """The teacher of notebook 01 (knowledge distillation): a ConvNet on all ten digits, trained from random
    weights on the training images and jittered copies, as Hinton et al.'s teacher is trained from scratch."""
    return [ZooEntry(
        name=f"digits-kd-convnet{widths[0]}", task="digits, all 10 classes (the distillation teacher)",
        arch="convnet", arch_args={"num_classes": 10, "in_channels": 1, "widths": list(widths)},
        data=_digits_split("train"), held_out=_digits_split("test"),
        recipe=Recipe(epochs=epochs, lr=2e-3, batch_size=128, shift_copies=copies), seed=0,
        used_by=("01",), profile=profile)
        for profile, widths, epochs, copies in (("quick", (32, 64, 128), 20, 3), ("full", (64, 128, 256), 60, 8))]


def _scenes_teachers() -> list[ZooEntry]:
    """The encoder-decoder teachers of notebooks 04 and 07: one per pixel task, trained with labels on
    the zoo's own rendered scenes (seed ``SCENES_TEACHER_SEED``), scored on notebook 04's test split."""
    entries = []
    for profile, size, widths, n, recipe in (
        ("quick", 64, (16, 32, 64), 2048, Recipe(epochs=30, lr=3e-3, batch_size=32)),
        ("full", 128, (32, 64, 128, 256), 8000, Recipe(epochs=20, lr=2e-3, batch_size=64)),
    ):
        # notebook 04's student trunk: the last encoder stage a quarter wider than a teacher's
        trunk = (*widths[:-1], widths[-1] + widths[-1] // 4)
        for task in ("segmentation", "depth", "normals"):
            entries.append(ZooEntry(
                name=f"scenes{size}-{task}",
                task=f"{task} of {size}x{size} scenes",
                arch="encdec", arch_args={"kind": task, "out_channels": DENSE_TASKS[task].channels,
                                          "widths": list(widths)},
                data=_scenes(task, size, 0, n, SCENES_TEACHER_SEED), held_out=_scenes_test(task, profile),
                recipe=recipe, seed=0, used_by=("04", "07"), profile=profile))
        tasks = ["segmentation", "depth"] if profile == "quick" else ["segmentation", "depth", "normals"]
        entries.append(ZooEntry(
            name=f"scenes{size}-multitask",
            task=f"supervised multi-task reference: {', '.join(tasks)} of {size}x{size} scenes",
            arch="mtencdec", arch_args={"tasks": tasks, "widths": list(widths), "encoder_widths": list(trunk)},
            data=_scenes(tasks, size, 0, n, SCENES_TEACHER_SEED), held_out=_scenes_test(tasks, profile),
            recipe=recipe, seed=0, used_by=("04",), profile=profile))
    return entries


#: The source pool of notebook 05 (adaptive KA), laid out as the paper's Fig. 1: sources "A", "A & B", "C & D",
#: "D & E" with A = position, B = size, C = shape, D = colour and E = size again (``shapes`` has no attribute to
#: spare: the sources are split by the fifth, fill). As (tasks, backbone, the fill patterns it is trained on);
#: a source's first task is its headline metric. Each source sees only two of the four fills (a reason to be
#: unreliable on some images: the notebook's addition, not the paper's).
ADAPTIVE_POOL: tuple[tuple[tuple[str, ...], str, tuple[int, ...]], ...] = (
    (("position",), "convnet", (0, 1)),
    (("position", "size"), "resnet", (2, 3)),
    (("colour", "shape"), "convnet", (0, 2)),
    (("colour", "size"), "resnet", (1, 3)),
)


def adaptive_source_name(tasks: Sequence[str], arch: str, width: int) -> str:
    """Name of the notebook-05 source with ``tasks`` (its heads) on ``arch`` of first width ``width``."""
    return f"shapes-ada-{'-'.join(tasks)}-{arch}{width}"


#: First widths of the notebook-05 sources, by profile and backbone.
ADAPTIVE_WIDTHS: dict[str, dict[str, tuple[int, ...]]] = {
    "quick": {"convnet": (8, 16, 32), "resnet": (12, 24, 48)},
    "full": {"convnet": (32, 64, 128), "resnet": (48, 96, 192)},
}


def adaptive_source_names(profile: str) -> list[str]:
    """The zoo names of notebook 05's source pool in ``profile``, in the order of ``ADAPTIVE_POOL``."""
    widths = ADAPTIVE_WIDTHS[check_choice("profile", profile, ENTRY_PROFILES)]
    return [adaptive_source_name(tasks, arch, widths[arch][0]) for tasks, arch, _ in ADAPTIVE_POOL]


#: The tasks and trunk widths of notebook 05's supervised reference: its target net's architecture (a ConvNet
#: trunk with a head per task) trained with labels on the training split, all fills.
ADAPTIVE_REFERENCE_TASKS: tuple[str, ...] = ("position", "colour")
ADAPTIVE_REFERENCE_WIDTHS: dict[str, tuple[int, ...]] = {"quick": (15, 30, 60), "full": (40, 80, 160)}


def adaptive_reference_name(profile: str) -> str:
    """The zoo name of notebook 05's supervised reference in ``profile`` (uses labels: not a student)."""
    width = ADAPTIVE_REFERENCE_WIDTHS[check_choice("profile", profile, ENTRY_PROFILES)][0]
    return f"shapes-ada-reference-{'-'.join(ADAPTIVE_REFERENCE_TASKS)}-convnet{width}"


def _adaptive_sources() -> list[ZooEntry]:
    """The heterogeneous source pool of notebook 05: multi-head nets (ConvNet or ResNet) trained with labels on
    the training split of ``shapes`` restricted to two fill patterns each, scored on the test split (all fills)."""
    entries = []
    for profile, recipe in (("quick", Recipe(epochs=30, lr=3e-3, batch_size=128)),
                            ("full", Recipe(epochs=15, lr=2e-3, batch_size=256))):
        widths_of = ADAPTIVE_WIDTHS[profile]
        for seed, (tasks, arch, fills) in enumerate(ADAPTIVE_POOL):
            widths = widths_of[arch]
            split = {"source": "shapes-split", "profile": profile, "labels": list(tasks), "per_attribute": True}
            fill_names = " and ".join(ATTRIBUTE_VALUES["fill"][f] for f in fills)
            entries.append(ZooEntry(
                name=adaptive_source_name(tasks, arch, widths[0]),
                task=f"{' & '.join(tasks)} of 32x32 shapes, trained on {fill_names} fills only",
                arch="multihead",
                arch_args={"backbone": arch, "heads": {t: len(ATTRIBUTE_VALUES[t]) for t in tasks}, "in_channels": 3,
                           "widths": list(widths)},
                data={**split, "split": "train", "where": {"fill": list(fills)}}, held_out={**split, "split": "test"},
                recipe=recipe, seed=seed, used_by=("05",), profile=profile))
        tasks = ADAPTIVE_REFERENCE_TASKS
        split = {"source": "shapes-split", "profile": profile, "labels": list(tasks), "per_attribute": True}
        entries.append(ZooEntry(
            name=adaptive_reference_name(profile),
            task=f"supervised reference: {' & '.join(tasks)} of 32x32 shapes, all fills (notebook 05's target net)",
            arch="multihead",
            arch_args={"backbone": "convnet", "heads": {t: len(ATTRIBUTE_VALUES[t]) for t in tasks}, "in_channels": 3,
                       "widths": list(ADAPTIVE_REFERENCE_WIDTHS[profile])},
            data={**split, "split": "train"}, held_out={**split, "split": "test"},
            recipe=recipe, seed=len(ADAPTIVE_POOL), used_by=("05",), profile=profile))
    return entries


def _afk_widths(profile: str) -> tuple[int, ...]:
    return {"quick": (16, 32, 64, 128), "full": (32, 64, 128, 256)}[check_choice("profile", profile, ENTRY_PROFILES)]


def afk_teacher_names(profile: str) -> dict[str, str]:
    """The zoo names of notebook 06's multi-task teachers in ``profile``: ``{"T1": name, "T2": name}``."""
    width = _afk_widths(profile)[0]
    return {f"T{i + 1}": f"shapes-afk-convnet{width}-{'-'.join(tasks)}" for i, tasks in enumerate(AFK_TEACHER_TASKS)}


def _afk_teachers() -> list[ZooEntry]:
    """The multi-task teachers of notebook 06 (Amalgamating Filtered Knowledge): one ConvNet backbone with a
    head per attribute, T1 = shape, colour, size and T2 = position, fill, trained from random weights with
    labels on ``shapes`` images of their own stream (``AFK_TEACHER_SHAPES_SEED``), scored on the notebook's
    test split of the same profile."""
    entries = []
    for profile, n, recipe in (("quick", 30000, Recipe(epochs=20, lr=3e-3, batch_size=128)),
                               ("full", 100000, Recipe(epochs=15, lr=2e-3, batch_size=256))):
        for tasks, name in zip(AFK_TEACHER_TASKS, afk_teacher_names(profile).values(), strict=True):
            heads = {t: len(ATTRIBUTE_VALUES[t]) for t in tasks}
            stream = {"source": "shapes", "seed": AFK_TEACHER_SHAPES_SEED, "start": 0, "n": n, "image_size": 32,
                      "view": "rgb", "labels": list(tasks), "per_attribute": True}
            test = {"source": "shapes-split", "split": "test", "profile": profile, "labels": list(tasks),
                    "per_attribute": True}
            entries.append(ZooEntry(
                name=name, task=f"shapes attributes {', '.join(tasks)} (one head each)", arch="multihead",
                arch_args={"backbone": "convnet", "heads": heads, "in_channels": 3, "widths": list(_afk_widths(profile))},
                data=stream, held_out=test, recipe=recipe, seed=0, used_by=("06",), profile=profile))
    return entries


def _taskonomy() -> list[ZooEntry]:
    """The mini-Taskonomy of notebooks 08 and 09 (``kae_utils.benchmarks.taskonomy``): one ``TaskNet`` per task, all with
    the same encoder architecture, trained with labels on scenes of their own (seed ``taskonomy.ZOO_SEED``) and
    scored on the next scenes of that stream. Quick: 10 tasks at 32 x 32; full: 18 at 64 x 64."""
    entries = []
    for profile, recipe in (("quick", Recipe(epochs=20, lr=3e-3, batch_size=64)),
                            ("full", Recipe(epochs=12, lr=2e-3, batch_size=256))):
        cfg = taskonomy.settings(profile, at_scale=False)  # the registry is the paper's; smoke_entry shrinks it
        size, n, held = cfg["image_size"], cfg["zoo_train"], cfg["zoo_held_out"]
        for task in cfg["tasks"]:
            spec = taskonomy.TASKONOMY_TASKS[task]
            data = {**_scenes(task, size, 0, n, taskonomy.ZOO_SEED), "input": spec.corruption}
            held_out = {**_scenes(task, size, n, held, taskonomy.ZOO_SEED), "input": spec.corruption}
            role = "" if spec.target else " (source only)"
            entries.append(ZooEntry(
                name=taskonomy.zoo_name(task, profile),
                task=f"mini-Taskonomy{role}: {spec.description} ({task}), {size}x{size} scenes",
                arch="tasknet", arch_args={"task": task, "widths": list(cfg["widths"]),
                                           "code_channels": cfg["code_channels"], "blocks": cfg["blocks"],
                                           "code_relu": True},
                data=data, held_out=held_out, recipe=recipe, seed=0, used_by=("08", "09"), profile=profile))
    return entries


def make_registry(entries: Iterable[ZooEntry]) -> dict[str, ZooEntry]:
    """Entries by name, checked: valid and unique names, known profiles, each ``init`` defined before it."""
    out: dict[str, ZooEntry] = {}
    for e in entries:
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", e.name):
            raise ValueError(f"zoo entry names are lower-case letters, digits and '-'; got {e.name!r}")
        if e.name in out:
            raise ValueError(f"zoo entry {e.name!r} is defined twice")
        check_choice(f"profile of zoo entry {e.name!r}", e.profile, ENTRY_PROFILES)
        if e.init is not None and e.init not in out:
            raise ValueError(f"zoo entry {e.name!r} starts from {e.init!r}, which is not defined before it")
        out[e.name] = e
    return out


#: Notebooks that load an entry built for others, as it is: 09's layer-selection sources (a digits teacher of
#: another task and the generic digits backbone).
ALSO_USED_BY: dict[str, tuple[str, ...]] = {"digits-pre-convnet16": ("09",), "digits-convnet16-c0-4": ("09",)}


def _also_used(entries: Iterable[ZooEntry]) -> list[ZooEntry]:
    return [dataclasses.replace(e, used_by=(*e.used_by, *ALSO_USED_BY.get(e.name, ()))) for e in entries]


#: Every entry, by name, in build order (an entry's ``init`` comes before it).
REGISTRY: dict[str, ZooEntry] = make_registry(_also_used([*_backbones(), *_classifier_teachers(), *_kd_teachers(),
                                                          *_scenes_teachers(), *_afk_teachers(), *_adaptive_sources(),
                                                          *_taskonomy()]))


# ------------------------------------------------------------------------------ the smoke scale


def _smoke_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """A data spec at smoke scale: a stream (``shapes``, ``scenes``) on fewer images (``kae_utils.core.scale``); a
    ``shapes-split`` of the full profile is shrunk by ``load_dataset`` itself under ``KAE_SCALE=smoke``; ``digits``
    is one small split in every profile. Marked ``"scale": "smoke"`` so its config hash is never a shipped one's."""
    from kae_utils.core.scale import shrink_images

    out = {**spec, "scale": "smoke"}
    if spec["source"] in ("shapes", "scenes"):
        out["n"] = shrink_images(spec["n"], spec.get("image_size"), record=False)
    return out


def smoke_entry(e: ZooEntry) -> ZooEntry:
    """A full-profile entry at smoke scale (``KAE_SCALE=smoke``): the same architecture, image size, data source,
    start (``init``) and recipe, trained for one epoch on a few images; a quick entry unchanged.

    Built into a zoo of its own (``KAE_ZOO_DIR``, never ``zoo/``) so that every notebook's full profile can run end to
    end on a CPU; its weights say nothing about the paper-scale model."""
    if e.profile != "full":
        return e
    probe = None if e.probe is None else {part: _smoke_spec(spec) for part, spec in e.probe.items()}
    return dataclasses.replace(e, data=_smoke_spec(e.data), held_out=_smoke_spec(e.held_out), probe=probe,
                               recipe=dataclasses.replace(e.recipe, epochs=1))


def _images(spec: dict[str, Any], written: bool) -> int:
    """How many images a data spec draws before any filter: as written, or at the scale in force."""
    if spec["source"] in ("shapes", "scenes"):
        return int(spec["n"])
    if spec["source"] == "shapes-split":
        from kae_utils.data.registry import OFFLINE_SIZES, offline_sizes

        sizes = OFFLINE_SIZES["shapes"][spec["profile"]] if written else offline_sizes("shapes", spec["profile"])
        return int(sizes[spec["split"]])
    return 1  # digits: the same split at every scale


def _paper_counts(e: ZooEntry) -> contextlib.AbstractContextManager:
    """The counts of ``e`` as written (its epochs; its images per image at smoke scale), for the work log."""
    from kae_utils.core.scale import paper_counts

    written = REGISTRY[e.name]
    return paper_counts(epochs=written.recipe.epochs,
                        samples_factor=_images(written.data, True) / max(_images(e.data, False), 1))


@functools.cache
def smoke_registry() -> dict[str, ZooEntry]:
    """:data:`REGISTRY` with every full entry at smoke scale (:func:`smoke_entry`), the quick ones as they are."""
    return make_registry(smoke_entry(e) for e in REGISTRY.values())


# ------------------------------------------------------------------------------------------- data


# The entries of one build share their images (the three scenes teachers and the reference render the same
# scenes; several backbones see the same shapes): the last few generated sets are kept, read-only.
@functools.lru_cache(maxsize=2)
def _shapes(n: int, seed: int, start: int, image_size: int, masks: bool) -> Any:
    return generate_shapes(n, seed=seed, config=ShapesConfig(image_size=image_size), start=start, return_masks=masks)


@functools.lru_cache(maxsize=2)
def _scenes_batch(n: int, seed: int, start: int, image_size: int) -> Any:
    return render_scenes(n, seed=seed, config=SceneConfig(image_size=image_size), start=start)


def _where(x: torch.Tensor, labels: dict[str, torch.Tensor], where: dict[str, list[int]] | None):
    """Keep the ``shapes`` images whose attributes take the listed values, e.g. ``{"fill": [0, 1]}``."""
    if not where:
        return x, labels
    keep = torch.ones(len(x), dtype=torch.bool)
    for attribute, values in where.items():
        keep &= torch.isin(labels[attribute], torch.as_tensor(values))
    return x[keep], {a: v[keep] for a, v in labels.items()}


def entry_data(spec: dict[str, Any]) -> tuple[torch.Tensor, Any]:
    """Images and targets of a data spec (an entry's ``data``, ``held_out`` or ``probe`` parts).

    Sources: ``digits`` (the notebooks' fixed split), ``shapes-split`` (``load_dataset("shapes", ...)``),
    ``shapes`` (the zoo's own image stream), ``scenes`` (rendered scenes with one task's labels, or a dict of
    several). ``shapes`` labels are one composite label of ``labels``, or with ``per_attribute`` a dict of
    them; ``where`` keeps images by attribute values (``{"fill": [0, 1]}``). A ``classes`` list keeps those
    classes, relabelled ``0..k-1``.
    """
    source = check_choice("data source", spec["source"], ("digits", "shapes-split", "shapes", "scenes"))
    if source == "digits":
        d = load_digits(size=8, test_fraction=0.5, seed=0)
        x, y = (d.x_train, d.y_train) if spec["split"] == "train" else (d.x_test, d.y_test)
    elif source in ("shapes-split", "shapes"):
        if source == "shapes-split":
            from kae_utils.data.registry import load_dataset

            split = load_dataset("shapes", spec["split"], spec["profile"])
            x, labels = split.x, split.targets
        else:
            silhouette = spec["view"] == "silhouette"
            batch = _shapes(spec["n"], spec["seed"], spec["start"], spec["image_size"], silhouette)
            x, labels = (silhouettes(batch.masks, batch.labels["position"]) if silhouette else batch.images), batch.labels
        x, labels = _where(x, labels, spec.get("where"))
        y = ({a: labels[a].long() for a in spec["labels"]} if spec.get("per_attribute")
             else composite_labels(labels, spec["labels"])[0])
    else:
        batch = _scenes_batch(spec["n"], spec["seed"], spec["start"], spec["image_size"])
        tasks = spec["task"]
        x = batch.rgb
        if spec.get("input", "clean") != "clean":  # the corrupted input of a mini-Taskonomy task (denoising ...)
            x = taskonomy.corrupt(x, spec["input"], taskonomy.input_seed(spec["seed"], spec["start"]))
        y = _scene_label(batch, tasks) if isinstance(tasks, str) else {t: _scene_label(batch, t).contiguous()
                                                                       for t in tasks}
    if spec.get("classes") is not None:
        sub = class_subset(x, y, spec["classes"])
        x, y = sub.x, sub.y
    return x.contiguous(), (y if isinstance(y, dict) else y.contiguous())


def _scene_label(batch: Any, task: str) -> torch.Tensor:
    """A ``scenes`` task's target, or a label the mini-Taskonomy derives from the rendered maps."""
    from kae_utils.data.scenes import TASKS as SCENE_TASKS

    return batch.target(task) if task in SCENE_TASKS else taskonomy.scene_target(batch, task)


# ------------------------------------------------------------------------------------ training


def _as_dict(e: ZooEntry, out: torch.Tensor | dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A dense or multi-task model's output as ``{task: map}``."""
    return out if isinstance(out, dict) else {e.tasks[0]: out}


def _loss_fn(e: ZooEntry) -> Callable[[nn.Module, Sequence[torch.Tensor]], torch.Tensor]:
    """The training loss: cross-entropy for classifiers, the sum of each pixel task's ground-truth loss."""
    if e.kind == "classifier":
        return lambda model, batch: F.cross_entropy(model(batch[0]), batch[1])

    def loss(model: nn.Module, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        out = _as_dict(e, model(batch[0]))
        if e.kind == "multihead":
            return sum(F.cross_entropy(out[t], y) for t, y in zip(e.tasks, batch[1:], strict=True))
        if e.kind == "transfer":
            return sum(transfer_task(t).supervised_loss(out[t], y) for t, y in zip(e.tasks, batch[1:], strict=True))
        return sum(dense_task(t).supervised_loss(out[t], y) for t, y in zip(e.tasks, batch[1:], strict=True))

    return loss


def _scores(e: ZooEntry, model: nn.Module, x: torch.Tensor, y: Any) -> dict[str, float]:
    """Held-out metrics: accuracy, one task's metrics, or every task's (``"<task> <metric>"``)."""
    if e.kind == "classifier":
        return {"accuracy": accuracy(predict_logits(model, x), y)}
    maps = predict_maps(model, x, batch_size=256, name=e.tasks[0])
    if e.kind == "multihead":
        return {f"{t} accuracy": accuracy(maps[t], y[t]) for t in e.tasks}
    if e.kind == "dense":
        return dense_task(e.tasks[0]).metrics(maps[e.tasks[0]], y)
    if e.kind == "transfer":
        return transfer_task(e.tasks[0]).metrics(maps[e.tasks[0]], y)
    return {f"{t} {k}": v for t in e.tasks for k, v in dense_task(t).metrics(maps[t], y[t]).items()}


def headline(e: ZooEntry) -> tuple[str, bool]:
    """The metric a table shows for ``e`` (a multi-task entry: its first task's) and whether higher is better."""
    if e.kind == "classifier":
        return "accuracy", True
    if e.kind == "multihead":
        return f"{e.tasks[0]} accuracy", True
    if e.kind == "transfer":
        task = transfer_task(e.tasks[0])
        return task.headline, task.higher_is_better
    task = dense_task(e.tasks[0])
    return (task.headline if e.kind == "dense" else f"{task.name} {task.headline}"), task.higher_is_better


def copy_backbone(model: nn.Module, base_model: nn.Module) -> nn.Module:
    """Copy ``base_model``'s weights into ``model``, all but the classifier (its classes differ); returns ``model``.

    How a teacher or student starts from a pretrained backbone, as the papers' networks start from ImageNet
    weights. Every other tensor must exist in the backbone with the same shape (``ValueError`` otherwise).
    """
    base, own = base_model.state_dict(), model.state_dict()
    copied = {k: v for k, v in base.items() if k in own and own[k].shape == v.shape and not k.startswith("classifier.")}
    missing = [k for k in own if k not in copied and not k.startswith("classifier.")]
    if missing:
        raise ValueError(f"the backbone has no weights of the same shape for {missing[:4]}"
                         f"{' ...' if len(missing) > 4 else ''}: is it the same architecture and width?")
    model.load_state_dict(copied, strict=False)
    return model


def start_depth_head(e: ZooEntry, model: nn.Module, targets: Sequence[torch.Tensor]) -> None:
    """A depth head starts with its bias at the mean log-depth of the training labels (as in notebook 04),
    so training does not spend its first steps moving the output to the right scale."""
    if e.kind == "transfer":
        if transfer_task(e.tasks[0]).output == "depth":
            nn.init.constant_(model.decoder.proj.bias, targets[0].clamp_min(1e-6).log().mean().item())
        return
    if "depth" not in e.tasks:
        return
    head = model.heads["depth"] if e.kind == "multitask" else model.head
    nn.init.constant_(head.proj.bias, targets[e.tasks.index("depth")].clamp_min(1e-6).log().mean().item())


def train_entry(e: ZooEntry, device: torch.device | str = "cpu", *, init_model: nn.Module | None = None,
                checkpoint: Path | None = None, progress: bool = True,
                callbacks: Sequence[Any] = ()) -> tuple[nn.Module, dict[str, Any]]:
    """Train ``e`` from its recipe; returns the model (eval mode) and ``{"history", "train_seconds"}``.

    ``init_model``: the trained ``e.init`` entry, whose weights (all but the classifier) are the start.
    ``checkpoint``: a file to save the training state to after every epoch and to resume from (what
    makes an interrupted ``build`` continue). The history holds the training loss and the held-out
    metrics after every epoch (the learning curve).
    """
    device = torch.device(device)
    model = e.build_model()
    if (e.init is None) != (init_model is None):
        raise ValueError(f"zoo entry {e.name!r} starts from {e.init or 'random weights'}; pass init_model accordingly")
    if init_model is not None:
        copy_backbone(model, init_model)
    x, y = entry_data(e.data)
    targets = [y[t] for t in e.tasks] if isinstance(y, dict) else [y]
    start_depth_head(e, model, targets)
    if e.recipe.shift_copies:
        x, targets[0] = augment_shifts(x, targets[0], copies=e.recipe.shift_copies, max_shift=1, seed=e.seed)
    x_val, y_val = entry_data(e.held_out)
    extra = [Checkpoint(checkpoint)] if checkpoint is not None else []
    trainer = Trainer(model, epochs=e.recipe.epochs, lr=e.recipe.lr, batch_size=e.recipe.batch_size,
                      optimizer=e.recipe.optimizer, schedule=e.recipe.schedule, weight_decay=e.recipe.weight_decay,
                      step_fn=_loss_fn(e), eval_fn=lambda m, _: _scores(e, m, x_val, y_val), device=device,
                      seed=e.seed, callbacks=[*extra, *callbacks], progress=progress, desc=f"zoo: {e.name}")
    start = time.perf_counter()
    history = trainer.fit((x, *targets), val_data=True)
    return model.eval(), {"history": history.to_dict(), "train_seconds": time.perf_counter() - start}


@torch.no_grad()
def _pooled(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    device = next(model.parameters()).device
    model.eval()
    return torch.cat([model(xb.to(device), return_features=True)[1]["pool"].cpu()
                      for (xb,) in Batches([x], batch_size=512)])


def linear_probe(model: nn.Module | None, probe: dict[str, Any]) -> float:
    """Test accuracy of a logistic regression on the model's pooled features (raw pixels if ``model`` is None).

    Fitted on ``probe["train"]``, scored on ``probe["test"]``: if a pretrained backbone's features already
    solved the target task, this would be close to a fine-tuned teacher.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    (x_tr, y_tr), (x_te, y_te) = entry_data(probe["train"]), entry_data(probe["test"])
    feats = (lambda x: x.flatten(1)) if model is None else (lambda x: _pooled(model, x))
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    clf.fit(feats(x_tr).numpy(), y_tr.numpy())
    return float(clf.score(feats(x_te).numpy(), y_te.numpy()))


# ------------------------------------------------------------------------------------ files


def zoo_dir() -> Path:
    """The zoo folder: ``KAE_ZOO_DIR`` or ``<repo>/zoo``.

    With ``KAE_SCALE=smoke`` the zoo is a smoke zoo (:func:`smoke_entry`): ``KAE_ZOO_DIR`` must name a folder of its
    own, never the shipped ``zoo/`` (``ZooError`` otherwise), so smoke weights never mix with real ones."""
    from kae_utils.core.scale import current_scale

    env = os.environ.get("KAE_ZOO_DIR")
    shipped = repo_root() / "zoo"
    if current_scale() == "smoke" and (not env or Path(env).expanduser().resolve() == shipped.resolve()):
        raise ZooError("KAE_SCALE=smoke trains and loads its full-profile zoo entries at smoke scale, in a zoo of its "
                       f"own: set KAE_ZOO_DIR to a temporary folder (never {shipped})")
    return Path(env).expanduser() if env else shipped


def _git_commit() -> str:
    """The commit of the code that trains (``-dirty`` when ``kae_utils`` has uncommitted changes)."""
    try:
        root = repo_root()
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "kae_utils"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
        return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _device_words(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def _rounded(value: Any, digits: int = 5) -> Any:
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v, digits) for v in value]
    return value


def _fp16_scores(e: ZooEntry, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Held-out metrics after rounding every weight to float16 and back (would fp16 storage lose anything?)."""
    import copy

    rounded = copy.deepcopy(model)
    with torch.no_grad():
        for t in rounded.state_dict().values():
            if t.is_floating_point():
                t.copy_(t.half().float())
    return _scores(e, rounded, x, y)


def _architecture(e: ZooEntry) -> str:
    words = f"{e.arch} {tuple(e.arch_args.get('widths', ()))}"
    if "encoder_widths" in e.arch_args:
        words += f", encoder {tuple(e.arch_args['encoder_widths'])}"
    return words


def _recipe_words(r: Recipe) -> str:
    words = f"{r.optimizer} lr {r.lr:g}, {r.schedule}, {r.epochs} epochs, batch {r.batch_size}"
    if r.shift_copies:
        words += f", +{r.shift_copies} shifted cop{'y' if r.shift_copies == 1 else 'ies'}"
    return words


# ------------------------------------------------------------------------------------------ the zoo


class Zoo:
    """A zoo folder (``weights/`` and ``manifest.json``) together with the registry that defines its entries.

    ``Zoo()`` is the repository's own (``zoo/`` and :data:`REGISTRY`); tests make small ones in a temporary
    folder. The module-level functions (:func:`load`, :func:`build`, ...) act on ``Zoo()``.
    """

    def __init__(self, root: str | os.PathLike | None = None, registry: dict[str, ZooEntry] | None = None) -> None:
        from kae_utils.core.scale import current_scale

        self.root = Path(root) if root is not None else zoo_dir()
        self.smoke = registry is None and current_scale() == "smoke"
        self.registry = (smoke_registry() if self.smoke else REGISTRY) if registry is None else registry
        self._repository_registry = registry is None or registry is REGISTRY

    # -- definitions
    def entry(self, name: str) -> ZooEntry:
        """The entry ``name``; an unknown name raises ``KeyError`` listing the closest ones."""
        if name in self.registry:
            return self.registry[name]
        close = difflib.get_close_matches(str(name), list(self.registry), n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"no zoo entry named {name!r}{hint} (`python -m kae_utils.zoo list` shows them all)")

    def config(self, name: str) -> dict[str, Any]:
        """Everything that determines the weights of ``name``; the ``init`` entry enters by its own hash."""
        e = self.entry(name)
        cfg = e.own_config()
        cfg["init"] = None if e.init is None else {"name": e.init, "config_hash": self.config_hash(e.init)}
        return cfg

    def config_hash(self, name: str) -> str:
        return config_key(self.config(name))

    # -- files
    def weights_path(self, name: str) -> Path:
        return self.root / "weights" / f"{name}.safetensors"

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    def manifest(self) -> dict[str, Any]:
        """The manifest ``{"format": 1, "entries": {name: record}}`` (empty when there is none yet)."""
        if not self.manifest_path.exists():
            return {"format": ZOO_FORMAT, "entries": {}}
        data = json.loads(self.manifest_path.read_text())
        if data.get("format") != ZOO_FORMAT:
            raise ZooError(f"{self.manifest_path} has format {data.get('format')!r}; this code reads {ZOO_FORMAT}")
        return data

    def _write_manifest(self, data: dict[str, Any]) -> None:
        text = json.dumps({"format": ZOO_FORMAT, "entries": dict(sorted(data["entries"].items()))}, indent=1) + "\n"
        atomic_write(self.manifest_path, lambda f: f.write(text.encode()))

    def _save_weights(self, name: str, model: nn.Module) -> Path:
        from safetensors.torch import save

        tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        # one metadata key: safetensors writes several in a random order, and the bytes must be reproducible
        meta = json.dumps({"format": _METADATA_FORMAT, "name": name, "config_hash": self.config_hash(name)},
                          sort_keys=True)
        data = save(tensors, metadata={_METADATA_KEY: meta})
        return atomic_write(self.weights_path(name), lambda f: f.write(data))

    def status(self, name: str, data: dict[str, Any] | None = None) -> str:
        """``built``, ``missing`` (no manifest record or no file) or ``stale`` (the recipe changed since)."""
        record = (data or self.manifest())["entries"].get(self.entry(name).name)
        if record is None or not self.weights_path(name).exists():
            return "missing"
        return "built" if record["config_hash"] == self.config_hash(name) else "stale"

    # -- building
    def _record(self, e: ZooEntry, model: nn.Module, info: dict[str, Any], path: Path, device: torch.device,
                commit: str) -> dict:
        x_val, y_val = entry_data(e.held_out)
        record = {
            "config_hash": self.config_hash(e.name),
            "file": f"weights/{path.name}",
            "sha256": sha256_file(path),
            "bytes": path.stat().st_size,
            "dtype": "float32",
            "parameters": count_parameters(model),
            "profile": e.profile,
            "task": e.task,
            "architecture": _architecture(e),
            "starts_from": e.init,
            "used_by": list(e.used_by),
            "metrics": _scores(e, model, x_val, y_val),
            "metrics_if_fp16": _fp16_scores(e, model, x_val, y_val),
            "history": info["history"],
            "train_seconds": info["train_seconds"],
            "device": _device_words(device),
            **current(device).manifest(),
            "torch": torch.__version__,
            "commit": commit,
            "built": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "recipe": self.config(e.name),
        }
        if e.probe is not None:
            record["probe"] = {"features": linear_probe(model, e.probe), "raw pixels": linear_probe(None, e.probe)}
        return _rounded(record)

    def _selected(self, names: Sequence[str], profile: str) -> list[ZooEntry]:
        if not names:
            wanted = ENTRY_PROFILES if profile == "all" else (profile,)
            return [e for e in self.registry.values() if e.profile in wanted]
        chosen = set()
        for name in names:  # an entry's init comes along
            current: str | None = self.entry(name).name
            while current is not None:
                chosen.add(current)
                current = self.registry[current].init
        return [e for n, e in self.registry.items() if n in chosen]

    def build(self, names: Sequence[str] = (), *, device: str = "auto", profile: str = "auto",
              precision: str = "auto", log: Callable[[str], None] = print,
              callbacks: Sequence[Any] = ()) -> list[str]:
        """Train every selected entry that is missing or stale; returns the names it (re)built.

        ``names``: entries to build (and the entries they start from); default every entry of ``profile``:
        ``quick``, ``full``, ``all``, or ``auto`` (``all`` on a GPU, ``quick`` on a CPU). The training state
        is checkpointed under ``<zoo>/.partial/`` after every epoch, so an interrupted build resumes there.
        ``precision``: the numerics of training and scoring (:mod:`kae_utils.training.numerics`), recorded in the
        manifest with the memory format; the same device, threads and precision give the same bytes.
        """
        check_choice("profile", profile, ("auto", "all", *ENTRY_PROFILES))
        dev = resolve_device(device)
        if profile == "auto":
            profile = "all" if dev.type == "cuda" else "quick"
        shipped = repo_root() / "zoo"
        if self._repository_registry and self.root.resolve() != shipped.resolve():
            # a zoo of its own (KAE_ZOO_DIR: a smoke zoo, or the full entries built apart from zoo/) starts with a
            # copy of the shipped quick entries, which the full profiles use too (09, 02 and 03 on digits)
            adopted = self.adopt(Zoo(shipped, REGISTRY), [n for n, e in self.registry.items() if e.profile == "quick"])
            if adopted:
                log(f"zoo {self.root}: {len(adopted)} quick entries copied from the shipped zoo {shipped}")
        with using(precision, dev) as numerics:
            return self._build(names, dev, profile, numerics, log, callbacks)

    def _build(self, names: Sequence[str], dev: torch.device, profile: str, numerics: Numerics,
               log: Callable[[str], None], callbacks: Sequence[Any]) -> list[str]:
        built, commit = [], _git_commit()  # the code as it was when the build started (and was imported)
        for e in self._selected(names, profile):
            state = self.status(e.name)
            if state == "built":
                log(f"{e.name}: up to date")
                continue
            log(f"{e.name}: {state}, training ({e.recipe.epochs} epochs on {_device_words(dev)}, "
                f"{numerics.describe().removeprefix('numerics: ')})")
            partial = self.root / ".partial" / f"{e.name}-{self.config_hash(e.name)}.ckpt"
            init_model = self.load(e.init, dev) if e.init is not None else None
            with _paper_counts(e) if self.smoke else contextlib.nullcontext():  # for the work log (kae_utils.core.scale)
                model, info = train_entry(e, dev, init_model=init_model, checkpoint=partial, callbacks=callbacks)
            path = self._save_weights(e.name, model)
            data = self.manifest()
            data["entries"][e.name] = self._record(e, model, info, path, dev, commit)
            self._write_manifest(data)
            partial.unlink(missing_ok=True)
            metric, _ = headline(e)
            log(f"{e.name}: built, held-out {metric} {data['entries'][e.name]['metrics'][metric]:.4f}")
            built.append(e.name)
        return built

    def adopt(self, source: Zoo, names: Sequence[str]) -> list[str]:
        """Copy the entries ``names`` that ``source`` has built (file and manifest record, hash-checked) into this
        zoo, where this zoo's registry defines them the same way; returns the names copied (those missing here)."""
        data, theirs, copied = self.manifest(), source.manifest(), []
        for name in names:
            if self.status(name, data) == "built" or source.status(name, theirs) != "built":
                continue
            if source.config_hash(name) != self.config_hash(name):
                continue
            payload = source.weights_path(name).read_bytes()
            if hashlib.sha256(payload).hexdigest() != theirs["entries"][name]["sha256"]:
                raise ZooIntegrityError(f"refusing to copy {source.weights_path(name)}: its SHA-256 does not match "
                                        f"{source.manifest_path}")
            atomic_write(self.weights_path(name), lambda f, payload=payload: f.write(payload))
            data["entries"][name] = theirs["entries"][name]
            copied.append(name)
        if copied:
            self._write_manifest(data)
        return copied

    def verify(self) -> list[str]:
        """Problems found by rehashing every weights file against the manifest (an empty list: all good).

        A problem is a listed file that is missing, a file whose SHA-256 differs from the manifest's, or a
        file in ``weights/`` that the manifest does not list.
        """
        data, problems = self.manifest(), []
        for name, record in sorted(data["entries"].items()):
            path = self.root / record["file"]
            if not path.exists():
                problems.append(f"missing: {path} (listed in the manifest as {name!r})")
            elif sha256_file(path) != record["sha256"]:
                problems.append(f"hash mismatch: {path} does not match the manifest's SHA-256 for {name!r}")
        listed = {Path(r["file"]).name for r in data["entries"].values()}
        folder = self.root / "weights"
        if folder.exists():
            problems += [f"unlisted: {p} (not in the manifest)" for p in sorted(folder.iterdir()) if p.name not in listed]
        return problems

    # -- loading
    def load(self, name: str, device: torch.device | str = "cpu") -> nn.Module:
        """The trained model ``name``, in eval mode on ``device``, after checking its hash.

        Raises ``KeyError`` for an unknown name (listing the close ones), :class:`ZooError` when it is not
        built or stale (naming the command that builds it), :class:`ZooIntegrityError` when the file does not
        match the manifest (refused, with its path).
        """
        from safetensors import safe_open
        from safetensors.torch import load as load_bytes

        e = self.entry(name)
        path, record = self.weights_path(name), self.manifest()["entries"].get(name)
        how = f"run `make zoo NAMES={name}` (or `python -m kae_utils.zoo build {name}`)"
        if record is None or not path.exists():
            where = " (a full-profile entry, meant to be built on a GPU)" if e.profile == "full" else ""
            raise ZooError(f"zoo entry {name!r} is not built{where}: {how}")
        if record["config_hash"] != self.config_hash(name):
            raise ZooError(f"zoo entry {name!r} is stale (its recipe changed since {path} was built): {how}")
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != record["sha256"]:
            raise ZooIntegrityError(f"refusing to load {path}: its SHA-256 does not match {self.manifest_path} "
                                    f"(the file was changed or damaged); {how}")
        with safe_open(str(path), framework="pt") as f:
            recorded = json.loads((f.metadata() or {}).get(_METADATA_KEY, "{}")).get("config_hash")
        if recorded != self.config_hash(name):
            raise ZooIntegrityError(f"refusing to load {path}: its metadata names config {recorded!r}, "
                                    f"the registry {self.config_hash(name)!r}; {how}")
        model = e.build_model()
        model.load_state_dict(load_bytes(data))
        device = torch.device(device)
        return current(device).prepare_model(model.to(device)).eval()

    def obtain(self, name: str, source: str = "zoo", device: torch.device | str = "cpu") -> nn.Module:
        """What a notebook's ``TEACHERS`` parameter asks for: ``"zoo"`` loads the shipped weights; ``"train"``
        retrains with the same recipe (its ``init`` entry too) through the teacher cache (``kae_utils.training.cache``),
        so a reader can watch it being made."""
        check_choice("TEACHERS", source, TEACHER_SOURCES)
        if source == "zoo":
            return self.load(name, device)
        e, dev = self.entry(name), torch.device(device)
        init_model = self.obtain(e.init, "train", dev) if e.init is not None else None

        def train(model: nn.Module) -> dict:
            trained, info = train_entry(e, dev, init_model=init_model)
            model.load_state_dict(trained.state_dict())
            return {"train_seconds": info["train_seconds"]}

        # the precision enters the cache key: bf16 and fp32 training give different weights
        config = {**self.config(name), "numerics": current(dev).manifest()}
        model, _ = load_or_train(f"zoo-{name}", config, e.build_model, train)
        return current(dev).prepare_model(model.to(dev)).eval()

    # -- tables
    def summary(self, names: Iterable[str]) -> list[dict[str, Any]]:
        """One row per entry for a notebook: task, architecture, start, recipe, parameters, held-out metric."""
        data, rows = self.manifest(), []
        for name in names:
            e, record = self.entry(name), data["entries"].get(name, {})
            metric, _ = headline(e)
            rows.append({"entry": name, "task": e.task, "architecture": _architecture(e),
                         "starts from": e.init or "random weights", "recipe": _recipe_words(e.recipe),
                         "parameters": record.get("parameters", count_parameters(e.build_model())),
                         f"held-out {metric}": record.get("metrics", {}).get(metric),
                         "status": self.status(name, data)})
        return rows

    def list_rows(self) -> list[dict[str, Any]]:
        """The rows of ``python -m kae_utils.zoo list``."""
        data, rows = self.manifest(), []
        for name, e in self.registry.items():
            record, state = data["entries"].get(name), self.status(name, data)
            metric, _ = headline(e)
            value = record["metrics"][metric] if record and state == "built" else None
            rows.append({"name": name, "profile": e.profile, "task": e.task, "architecture": _architecture(e),
                         "params": record["parameters"] if record else "",
                         "held-out": f"{metric} {value:.4f}" if value is not None else "",
                         "used by": ", ".join(e.used_by), "status": "not built" if state == "missing" else state})
        return rows


# ------------------------------------------------------------------------- the repository's own zoo


def entry(name: str) -> ZooEntry:
    """The registry entry ``name`` (``KeyError`` listing the close ones when unknown)."""
    return Zoo().entry(name)


def load(name: str, device: torch.device | str = "cpu") -> nn.Module:
    """The shipped model ``name`` in eval mode on ``device``, hash-checked; see :meth:`Zoo.load`."""
    return Zoo().load(name, device)


def obtain(name: str, source: str = "zoo", device: torch.device | str = "cpu") -> nn.Module:
    """``TEACHERS="zoo"``: load ``name``; ``"train"``: retrain it with its recipe; see :meth:`Zoo.obtain`."""
    return Zoo().obtain(name, source, device)


def summary(names: Iterable[str]) -> list[dict[str, Any]]:
    """Recipe and held-out metrics of ``names``, one row each (for ``pandas.DataFrame``)."""
    return Zoo().summary(names)


def record(name: str) -> dict[str, Any]:
    """The manifest record of ``name`` (metrics, learning curve, training time, commit ...)."""
    data = Zoo().manifest()["entries"]
    if name not in data:
        raise ZooError(f"zoo entry {entry(name).name!r} is not built: run `make zoo NAMES={name}`")
    return data[name]


def markdown_index(zoo: Zoo | None = None) -> str:
    """The zoo as a markdown table (for the README): one row per entry, from the registry and the manifest."""
    rows = (zoo or Zoo()).list_rows()
    columns = ("name", "profile", "task", "architecture", "params", "held-out", "used by", "status")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r[c]).replace("|", "\\|") for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def _format_table(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    cells = [list(columns)] + [["" if r.get(c) is None else str(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, zoo: Zoo | None = None) -> int:
    """``python -m kae_utils.zoo list | build [NAMES] [--device] [--profile] | verify``."""
    parser = argparse.ArgumentParser(prog="python -m kae_utils.zoo",
                                     description="The repository's trained teachers and pretrained backbones.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="a table of the entries: name, task, architecture, params, held-out metric, used by")
    b = sub.add_parser("build", help="train the entries that are missing or stale")
    b.add_argument("names", nargs="*", help="entries to build (default: every entry of --profile)")
    b.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    b.add_argument("--profile", default="auto", choices=("auto", "all", *ENTRY_PROFILES),
                   help="which entries when no names are given (auto: all on a GPU, quick on a CPU)")
    b.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="numerics of the training (auto: bf16 where the hardware runs it natively; KAE_PRECISION)")
    sub.add_parser("verify", help="rehash every weights file against the manifest; exit 1 on any problem")
    args = parser.parse_args(argv)
    zoo = zoo or Zoo()
    if args.command == "list":
        print(_format_table(zoo.list_rows(), ("name", "profile", "task", "architecture", "params", "held-out",
                                              "used by", "status")))
        return 0
    if args.command == "build":
        try:
            for name in args.names:
                zoo.entry(name)
        except KeyError as exc:
            print(exc.args[0], file=sys.stderr)
            return 2
        zoo.build(args.names, device=args.device, profile=args.profile, precision=args.precision)
        return 0
    problems = zoo.verify()
    for p in problems:
        print(p)
    print(f"zoo: {len(zoo.manifest()['entries'])} entries checked, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
