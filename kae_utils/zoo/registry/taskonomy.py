"""The task models of the mini-Taskonomy (notebooks 08 and 09).
"""

from __future__ import annotations

from kae_utils.benchmarks import taskonomy
from kae_utils.zoo.entries import Recipe, ZooEntry
from kae_utils.zoo.registry.common import scenes_data

__all__ = ["taskonomy_entries"]


def taskonomy_entries() -> list[ZooEntry]:
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
            data = {**scenes_data(task, size, 0, n, taskonomy.ZOO_SEED), "input": spec.corruption}
            held_out = {**scenes_data(task, size, n, held, taskonomy.ZOO_SEED), "input": spec.corruption}
            role = "" if spec.target else " (source only)"
            entries.append(ZooEntry(
                name=taskonomy.zoo_name(task, profile),
                task=f"mini-Taskonomy{role}: {spec.description} ({task}), {size}x{size} scenes",
                arch="tasknet", arch_args={"task": task, "widths": list(cfg["widths"]),
                                           "code_channels": cfg["code_channels"], "blocks": cfg["blocks"],
                                           "code_relu": True},
                data=data, held_out=held_out, recipe=recipe, seed=0, used_by=("08", "09"), profile=profile))
    return entries
