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

from kae_utils.zoo.cli import main
from kae_utils.zoo.entries import (
    ENTRY_PROFILES,
    TEACHER_SOURCES,
    Recipe,
    ZooEntry,
    ZooError,
    ZooIntegrityError,
    make_registry,
)
from kae_utils.zoo.recipes import (
    copy_backbone,
    entry_data,
    headline,
    linear_probe,
    start_depth_head,
    train_entry,
)
from kae_utils.zoo.registry import ALSO_USED_BY, REGISTRY
from kae_utils.zoo.registry.attributes import (
    ADAPTIVE_POOL,
    ADAPTIVE_REFERENCE_TASKS,
    ADAPTIVE_REFERENCE_WIDTHS,
    ADAPTIVE_WIDTHS,
    adaptive_reference_name,
    adaptive_source_name,
    adaptive_source_names,
    afk_teacher_names,
)
from kae_utils.zoo.registry.classifiers import classifier_teacher_name, teacher_class_sets
from kae_utils.zoo.registry.common import (
    AFK_TEACHER_SHAPES_SEED,
    SCENES_TEACHER_SEED,
    SHAPES_PRETRAIN_LABELS,
    silhouettes,
)
from kae_utils.zoo.smoke import smoke_entry, smoke_registry
from kae_utils.zoo.store import Zoo, entry, load, markdown_index, obtain, record, summary, zoo_dir

__all__ = [
    "ADAPTIVE_POOL",
    "ADAPTIVE_REFERENCE_TASKS",
    "ADAPTIVE_REFERENCE_WIDTHS",
    "ADAPTIVE_WIDTHS",
    "AFK_TEACHER_SHAPES_SEED",
    "ALSO_USED_BY",
    "ENTRY_PROFILES",
    "REGISTRY",
    "Recipe",
    "SCENES_TEACHER_SEED",
    "SHAPES_PRETRAIN_LABELS",
    "TEACHER_SOURCES",
    "Zoo",
    "ZooEntry",
    "ZooError",
    "ZooIntegrityError",
    "adaptive_reference_name",
    "adaptive_source_name",
    "adaptive_source_names",
    "afk_teacher_names",
    "classifier_teacher_name",
    "copy_backbone",
    "entry",
    "entry_data",
    "headline",
    "linear_probe",
    "load",
    "main",
    "make_registry",
    "markdown_index",
    "obtain",
    "record",
    "silhouettes",
    "smoke_entry",
    "smoke_registry",
    "start_depth_head",
    "summary",
    "teacher_class_sets",
    "train_entry",
    "zoo_dir",
]
