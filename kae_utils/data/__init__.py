"""Data sets, offline and real, behind one loader: ``load_dataset(name, split, profile)``.

* ``digits``: scikit-learn's real 8x8 handwritten digits (stands in for MNIST).
* ``shapes``: generated 2D shapes with five attributes (stands in for the fine-grained sets).
* ``scenes``: rendered 3D scenes with dense labels (stands in for NYUv2 and Taskonomy).
* real sets prepared by ``python -m data_scripts.fetch NAME`` (``kae_utils.data.real``).
"""

from kae_utils.data.digits import DIGITS_CLASSES, DigitsSplit, augment_shifts, load_digits
from kae_utils.data.real import REAL_DATASETS, load_real, real_available
from kae_utils.data.registry import (
    OFFLINE_DATASETS,
    ClassificationTask,
    DataSplit,
    SceneTasks,
    all_datasets,
    classification_task,
    data_root,
    load_dataset,
    load_scene_tasks,
    load_training_pool,
)
from kae_utils.data.scene_spec import DOMAINS, SCENE_CLASSES, SCENE_TASKS, SceneBatch, SceneConfig
from kae_utils.data.scenes import render_scenes
from kae_utils.data.shapes import (
    ShapesBatch,
    ShapesSplit,
    composite_labels,
    generate_shapes,
    make_shapes_split,
)
from kae_utils.data.shapes_config import ATTRIBUTE_VALUES, ATTRIBUTES, ShapesConfig
from kae_utils.data.subsets import ClassSubset, class_subset, split_classes

__all__ = [
    "ATTRIBUTES",
    "ATTRIBUTE_VALUES",
    "DIGITS_CLASSES",
    "DOMAINS",
    "OFFLINE_DATASETS",
    "REAL_DATASETS",
    "SCENE_CLASSES",
    "SCENE_TASKS",
    "ClassSubset",
    "ClassificationTask",
    "DataSplit",
    "DigitsSplit",
    "SceneBatch",
    "SceneConfig",
    "SceneTasks",
    "ShapesBatch",
    "ShapesConfig",
    "ShapesSplit",
    "all_datasets",
    "augment_shifts",
    "class_subset",
    "classification_task",
    "composite_labels",
    "data_root",
    "generate_shapes",
    "load_dataset",
    "load_digits",
    "load_real",
    "load_scene_tasks",
    "load_training_pool",
    "make_shapes_split",
    "real_available",
    "render_scenes",
    "split_classes",
]
