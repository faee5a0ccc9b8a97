"""The registry: every entry of the zoo by name, split per notebook family (:mod:`.backbones`, :mod:`.classifiers`
for 01-03, :mod:`.scenes` for 04/07, :mod:`.attributes` for 05/06, :mod:`.taskonomy` for 08/09).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from kae_utils.zoo.entries import ZooEntry, make_registry
from kae_utils.zoo.registry.attributes import adaptive_source_entries, afk_teacher_entries
from kae_utils.zoo.registry.backbones import backbone_entries
from kae_utils.zoo.registry.classifiers import classifier_teacher_entries, kd_teacher_entries
from kae_utils.zoo.registry.scenes import scenes_teacher_entries
from kae_utils.zoo.registry.taskonomy import taskonomy_entries

__all__ = ["ALSO_USED_BY", "REGISTRY"]

#: Notebooks that load an entry built for others, as it is: 09's layer-selection sources (a digits teacher of
#: another task and the generic digits backbone).
ALSO_USED_BY: dict[str, tuple[str, ...]] = {"digits-pre-convnet16": ("09",), "digits-convnet16-c0-4": ("09",)}


def _also_used(entries: Iterable[ZooEntry]) -> list[ZooEntry]:
    return [dataclasses.replace(e, used_by=(*e.used_by, *ALSO_USED_BY.get(e.name, ()))) for e in entries]


#: Every entry, by name, in build order (an entry's ``init`` comes before it).
REGISTRY: dict[str, ZooEntry] = make_registry(_also_used([
    *backbone_entries(), *classifier_teacher_entries(), *kd_teacher_entries(), *scenes_teacher_entries(),
    *afk_teacher_entries(), *adaptive_source_entries(), *taskonomy_entries()]))
