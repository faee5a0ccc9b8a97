"""The classifier teachers of notebooks 01-03: digits and shapes teachers of class subsets, and 01's KD teacher.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from kae_utils.data.subsets import split_classes
from kae_utils.zoo.entries import Recipe, ZooEntry
from kae_utils.zoo.registry.common import digits_split, shapes_split

__all__ = [
    "classifier_teacher_entries", "classifier_teacher_name", "kd_teacher_entries", "overlapping_halves",
    "teacher_class_sets",
]


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


def classifier_teacher_entries() -> list[ZooEntry]:
    """The teachers of notebooks 02 and 03, fine-tuned from the pretrained backbones."""
    entries = []
    for dataset, num_classes, split, profile, widths_of, recipe in (
        ("digits", 10, digits_split, "quick", {"convnet": (16, 32, 64), "resnet": (24, 48, 96)},
         Recipe(epochs=25, lr=1e-3, batch_size=128, shift_copies=1)),
        ("shapes", 48, shapes_split, "full", {"convnet": (32, 64, 128), "resnet": (48, 96, 192)},
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


def kd_teacher_entries() -> list[ZooEntry]:
    """The teacher of notebook 01 (knowledge distillation): a ConvNet on all ten digits, trained from random
    weights on the training images and jittered copies, as Hinton et al.'s teacher is trained from scratch."""
    return [ZooEntry(
        name=f"digits-kd-convnet{widths[0]}", task="digits, all 10 classes (the distillation teacher)",
        arch="convnet", arch_args={"num_classes": 10, "in_channels": 1, "widths": list(widths)},
        data=digits_split("train"), held_out=digits_split("test"),
        recipe=Recipe(epochs=epochs, lr=2e-3, batch_size=128, shift_copies=copies), seed=0,
        used_by=("01",), profile=profile)
        for profile, widths, epochs, copies in (("quick", (32, 64, 128), 20, 3), ("full", (64, 128, 256), 60, 8))]
