"""The registry: every entry of the zoo by name, split per notebook family (:mod:`.backbones`, :mod:`.classifiers`
for 01-03, :mod:`.scenes` for 04/07, :mod:`.attributes` for 05/06, :mod:`.taskonomy` for 08/09).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from kae_utils.zoo.entries import ZooEntry, make_registry
from kae_utils.zoo.registry.attributes import _adaptive_sources, _afk_teachers
from kae_utils.zoo.registry.backbones import _backbones
from kae_utils.zoo.registry.classifiers import _classifier_teachers, _kd_teachers
from kae_utils.zoo.registry.scenes import _scenes_teachers
from kae_utils.zoo.registry.taskonomy import _taskonomy

#: Notebooks that load an entry built for others, as it is: 09's layer-selection sources (a digits teacher of
#: another task and the generic digits backbone).
ALSO_USED_BY: dict[str, tuple[str, ...]] = {"digits-pre-convnet16": ("09",), "digits-convnet16-c0-4": ("09",)}


def _also_used(entries: Iterable[ZooEntry]) -> list[ZooEntry]:
    return [dataclasses.replace(e, used_by=(*e.used_by, *ALSO_USED_BY.get(e.name, ()))) for e in entries]


#: Every entry, by name, in build order (an entry's ``init`` comes before it).
REGISTRY: dict[str, ZooEntry] = make_registry(_also_used([*_backbones(), *_classifier_teachers(), *_kd_teachers(),
                                                          *_scenes_teachers(), *_afk_teachers(), *_adaptive_sources(),
                                                          *_taskonomy()]))
