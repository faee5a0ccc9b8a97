"""The scenes teachers of notebooks 04 and 07: one encoder-decoder per dense task.
"""

from __future__ import annotations

from kae_utils.benchmarks.tasks import DENSE_TASKS
from kae_utils.zoo.entries import Recipe, ZooEntry
from kae_utils.zoo.registry.common import SCENES_TEACHER_SEED, scenes_data, scenes_test_data

__all__ = ["scenes_teacher_entries"]


def scenes_teacher_entries() -> list[ZooEntry]:
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
                data=scenes_data(task, size, 0, n, SCENES_TEACHER_SEED), held_out=scenes_test_data(task, profile),
                recipe=recipe, seed=0, used_by=("04", "07"), profile=profile))
        tasks = ["segmentation", "depth"] if profile == "quick" else ["segmentation", "depth", "normals"]
        entries.append(ZooEntry(
            name=f"scenes{size}-multitask",
            task=f"supervised multi-task reference: {', '.join(tasks)} of {size}x{size} scenes",
            arch="mtencdec", arch_args={"tasks": tasks, "widths": list(widths), "encoder_widths": list(trunk)},
            data=scenes_data(tasks, size, 0, n, SCENES_TEACHER_SEED), held_out=scenes_test_data(tasks, profile),
            recipe=recipe, seed=0, used_by=("04",), profile=profile))
    return entries
