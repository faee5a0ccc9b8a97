"""One entry point for every data set, offline or real: ``load_dataset(name, split, profile)``.

Offline sets (always available): ``digits`` (scikit-learn's real 8x8 digits), ``shapes`` (generated 2D
shapes with several attributes), ``scenes`` (rendered 3D scenes with dense labels). Real sets (for users
with internet, prepared by ``python -m data_scripts.fetch NAME``): CIFAR-10/100, NYUv2 and the fine-grained
sets of the amalgamation papers. A missing real set raises ``FileNotFoundError`` naming the command.

Offline sets are generated in memory, deterministically; if ``python -m data_scripts.make_offline`` has
materialised them under ``<data>/offline/`` with the same configuration, those files are loaded instead.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from kae_utils.core.params import PROFILES, check_choice
from kae_utils.data.real import REAL_DATASETS, data_root

__all__ = [
    "CLASSIFICATION_LABELS",
    "ClassificationTask",
    "OFFLINE_DATASETS",
    "SPLITS",
    "DataSplit",
    "SceneTasks",
    "all_datasets",
    "classification_task",
    "data_root",
    "load_dataset",
    "load_scene_tasks",
    "load_training_pool",
    "offline_config",
    "offline_sizes",
    "offline_path",
]

OFFLINE_DATASETS: tuple[str, ...] = ("digits", "shapes", "scenes")
SPLITS: tuple[str, ...] = ("train", "test")

#: Sizes of the offline sets in each profile (the test images always come after the training ones).
OFFLINE_SIZES: dict[str, dict[str, dict[str, int]]] = {
    "shapes": {"quick": {"train": 4000, "test": 1000, "image_size": 32},
               "full": {"train": 50000, "test": 10000, "image_size": 32}},
    "scenes": {"quick": {"train": 512, "test": 128, "image_size": 64},
               "full": {"train": 8000, "test": 1000, "image_size": 128}},
}


@dataclass(frozen=True)
class DataSplit:
    """One split of a data set: inputs ``x`` and named targets.

    ``targets`` maps a task name to its tensor (``{"label": y}`` for plain classification; one entry per
    attribute for ``shapes``; one per label map for ``scenes`` and NYUv2). ``classes`` gives the class
    names of each categorical target. ``source`` is ``"offline"`` or ``"real"``.
    """

    name: str
    split: str
    x: torch.Tensor
    targets: dict[str, torch.Tensor]
    classes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    source: str = "offline"
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.x)

    @property
    def y(self) -> torch.Tensor:
        """The ``label`` target (plain classification sets)."""
        if "label" not in self.targets:
            raise KeyError(f"{self.name} has no single 'label' target; targets: {sorted(self.targets)}")
        return self.targets["label"]


def all_datasets() -> tuple[str, ...]:
    """Every name ``load_dataset`` accepts: the offline sets, then the real ones."""
    return OFFLINE_DATASETS + tuple(REAL_DATASETS)


def offline_sizes(name: str, profile: str) -> dict[str, int]:
    """``OFFLINE_SIZES[name][profile]``, at smoke scale when ``KAE_SCALE=smoke`` and ``profile`` is ``full``
    (:mod:`kae_utils.core.scale`: fewer images, the same image size)."""
    from kae_utils.core.scale import scaled

    return scaled(OFFLINE_SIZES[name][profile], profile, where=f"OFFLINE_SIZES[{name!r}]")


def offline_config(name: str, split: str, profile: str, seed: int = 0) -> dict[str, Any]:
    """The full description of an offline split (also the key of its materialised file)."""
    check_choice("offline data set", name, OFFLINE_DATASETS)
    check_choice("split", split, SPLITS)
    check_choice("profile", profile, PROFILES)
    if name == "digits":
        return {"name": name, "split": split, "image_size": 8, "test_fraction": 0.5, "split_seed": 0}
    sizes = offline_sizes(name, profile)
    return {"name": name, "split": split, "profile": profile, "seed": seed, "image_size": sizes["image_size"],
            "n_train": sizes["train"], "n_test": sizes["test"]}


def offline_path(config: dict[str, Any], root: Path | None = None) -> Path:
    """Materialised file of an offline split: ``<data>/offline/<name>/<split>-<hash>.pt``."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]
    return (root or data_root()) / "offline" / config["name"] / f"{config['split']}-{digest}.pt"


def _generate_offline(config: dict[str, Any]) -> DataSplit:
    name, split = config["name"], config["split"]
    if name == "digits":
        from kae_utils.data.digits import DIGITS_CLASSES, load_digits

        data = load_digits(size=8, test_fraction=config["test_fraction"], seed=config["split_seed"])
        x, y = (data.x_train, data.y_train) if split == "train" else (data.x_test, data.y_test)
        return DataSplit(name, split, x, {"label": y}, {"label": DIGITS_CLASSES}, info=config)
    start = 0 if split == "train" else config["n_train"]
    count = config["n_train"] if split == "train" else config["n_test"]
    if name == "shapes":
        from kae_utils.data.shapes import generate_shapes
        from kae_utils.data.shapes_config import ATTRIBUTE_VALUES, ShapesConfig

        batch = generate_shapes(count, seed=config["seed"], config=ShapesConfig(image_size=config["image_size"]),
                                start=start)
        return DataSplit(name, split, batch.images, dict(batch.labels), dict(ATTRIBUTE_VALUES), info=config)
    from kae_utils.data.scene_spec import SCENE_CLASSES, SCENE_TASKS, SceneConfig
    from kae_utils.data.scenes import render_scenes

    batch = render_scenes(count, seed=config["seed"], config=SceneConfig(image_size=config["image_size"]),
                          start=start)
    targets = {task: batch.target(task) for task in SCENE_TASKS}
    return DataSplit(name, split, batch.rgb, targets, {"segmentation": tuple(SCENE_CLASSES)}, info=config)


def _load_materialised(path: Path, config: dict[str, Any]) -> DataSplit | None:
    if not path.exists():
        return None
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("config") != config:
        return None
    return DataSplit(config["name"], config["split"], payload["x"], dict(payload["targets"]),
                     {k: tuple(v) for k, v in payload["classes"].items()}, info=config)


def load_dataset(name: str, split: str = "train", profile: str = "quick", *, seed: int = 0,
                 root: str | os.PathLike | None = None, size: int | None = None) -> DataSplit:
    """Load ``split`` of data set ``name`` for ``profile``.

    Offline sets are generated (or read from their materialised files); real sets are read from
    ``<root>/<name>/`` as prepared by ``python -m data_scripts.fetch <name>``. ``seed`` chooses the
    offline generators' images; ``size`` resizes real images.
    """
    check_choice("DATASET", name, all_datasets())
    check_choice("split", split, SPLITS)
    check_choice("PROFILE", profile, PROFILES)
    base = Path(root) if root is not None else data_root()
    if name in OFFLINE_DATASETS:
        config = offline_config(name, split, profile, seed)
        return _load_materialised(offline_path(config, base), config) or _generate_offline(config)
    from kae_utils.data.real import load_real

    real = load_real(name, split, root=base, size=size)
    return _from_real(name, split, real)


def load_training_pool(name: str, profile: str, n: int, *, seed: int = 0) -> DataSplit:
    """The first ``n`` training images of a generated set (``shapes`` or ``scenes``), with their labels.

    The profile's training split comes first (``load_dataset(name, "train", profile)``); beyond its size, the images
    are drawn from the same stream *after* the test split, so they never overlap it. For a student whose transfer
    set should be as large as its teachers' training set: generated images cost no labels. ``n`` at most the
    training split's size returns its first ``n`` images.
    """
    check_choice("generated data set", name, ("shapes", "scenes"))
    check_choice("PROFILE", profile, PROFILES)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be an integer >= 1; got {n!r}")
    train = load_dataset(name, "train", profile, seed=seed)
    x, targets = train.x[:n], {k: v[:n] for k, v in train.targets.items()}
    extra = n - len(train)
    if extra > 0:
        sizes = OFFLINE_SIZES[name][profile]
        start = sizes["train"] + sizes["test"]
        if name == "shapes":
            from kae_utils.data.shapes import generate_shapes
            from kae_utils.data.shapes_config import ShapesConfig

            batch = generate_shapes(extra, seed=seed, config=ShapesConfig(image_size=sizes["image_size"]), start=start)
            more_x, more = batch.images, dict(batch.labels)
        else:
            from kae_utils.data.scene_spec import SCENE_TASKS, SceneConfig
            from kae_utils.data.scenes import render_scenes

            batch = render_scenes(extra, seed=seed, config=SceneConfig(image_size=sizes["image_size"]), start=start)
            more_x, more = batch.rgb, {task: batch.target(task) for task in SCENE_TASKS}
        x = torch.cat([x, more_x])
        targets = {k: torch.cat([v, more[k]]) for k, v in targets.items()}
    info = {**train.info, "n": n, "extra_start": OFFLINE_SIZES[name][profile]["train"] + OFFLINE_SIZES[name][profile]["test"]}
    return DataSplit(name, "train", x, targets, dict(train.classes), info=info)



@dataclass(frozen=True)
class SceneTasks:
    """The images and per-task labels of a dense-task notebook (04, 07): a transfer set and the test split.

    ``x_transfer`` is :func:`load_training_pool`'s: the training split first (``train_split_size`` images), then
    scenes rendered after the test split. Its labels ``gt_transfer`` are for the supervised ceiling only; a student
    sees the images alone. ``gt_test`` is the test split's ground truth, for evaluation.
    """

    tasks: tuple[str, ...]
    x_transfer: torch.Tensor
    gt_transfer: dict[str, torch.Tensor]
    x_test: torch.Tensor
    gt_test: dict[str, torch.Tensor]
    train_split_size: int

    @property
    def image_shape(self) -> tuple[int, ...]:
        """``(C, H, W)`` of one image."""
        return tuple(self.x_transfer.shape[1:])


def load_scene_tasks(name: str, profile: str, transfer_images: int, tasks: Sequence[str]) -> SceneTasks:
    """The first ``transfer_images`` training scenes (:func:`load_training_pool`) and the test split, with the
    labels of ``tasks`` only (in that order)."""
    pool = load_training_pool(name, profile, transfer_images)
    test_split = load_dataset(name, "test", profile)
    for task in tasks:
        check_choice("task", task, tuple(pool.targets))
    return SceneTasks(
        tasks=tuple(tasks),
        x_transfer=pool.x,
        gt_transfer={task: pool.targets[task] for task in tasks},
        x_test=test_split.x,
        gt_test={task: test_split.targets[task] for task in tasks},
        train_split_size=int(pool.info["n_train"]),
    )


def _from_real(name: str, split: str, real: Any) -> DataSplit:
    """Adapt the object returned by ``kae_utils.data.real.load_real`` to a :class:`DataSplit`."""
    if hasattr(real, "y"):
        return DataSplit(name, split, real.x, {"label": real.y}, {"label": tuple(real.classes)}, source="real")
    targets = {k: v for k, v in dict(real).items() if k != "rgb"}
    return DataSplit(name, split, dict(real)["rgb"], targets, source="real")


#: The class labels of each offline classification task of notebooks 02 and 03: the ten digits, or the 48
#: shape x colour classes of ``shapes``.
CLASSIFICATION_LABELS: dict[str, tuple[str, ...]] = {"digits": ("label",), "shapes": ("shape", "colour")}


@dataclass(frozen=True)
class ClassificationTask:
    """Train and test images with one class label each, and the class names (index = label)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def classification_task(name: str, profile: str = "quick") -> ClassificationTask:
    """The multi-class task a data set stands for: ``digits`` (10 classes, the fixed split) or ``shapes``
    (shape x colour, 48 classes, the profile's split); see :data:`CLASSIFICATION_LABELS`."""
    from kae_utils.data.shapes import composite_labels

    check_choice("DATASET", name, CLASSIFICATION_LABELS)
    train, test = load_dataset(name, "train", profile), load_dataset(name, "test", profile)
    if name == "digits":
        return ClassificationTask(train.x, train.y, test.x, test.y, train.classes["label"])
    labels = CLASSIFICATION_LABELS[name]
    (y_train, classes), (y_test, _) = composite_labels(train.targets, labels), composite_labels(test.targets, labels)
    return ClassificationTask(train.x, y_train, test.x, y_test, classes)
