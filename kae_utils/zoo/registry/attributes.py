"""The attribute teachers of notebooks 05 (the adaptive source pool and its reference) and 06 (the multi-task
teachers of filtered amalgamation).
"""

from __future__ import annotations

from collections.abc import Sequence

from kae_utils.core.params import check_choice
from kae_utils.data.shapes_config import ATTRIBUTE_VALUES
from kae_utils.zoo.entries import ENTRY_PROFILES, Recipe, ZooEntry
from kae_utils.zoo.registry.common import AFK_TEACHER_SHAPES_SEED, AFK_TEACHER_TASKS

__all__ = [
    "ADAPTIVE_POOL", "ADAPTIVE_REFERENCE_TASKS", "ADAPTIVE_REFERENCE_WIDTHS", "ADAPTIVE_WIDTHS",
    "adaptive_reference_name", "adaptive_source_entries", "adaptive_source_name", "adaptive_source_names",
    "afk_teacher_entries", "afk_teacher_names",
]

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


def adaptive_source_entries() -> list[ZooEntry]:
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


def afk_teacher_entries() -> list[ZooEntry]:
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
