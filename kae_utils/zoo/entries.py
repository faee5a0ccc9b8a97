"""The zoo's types: an entry (:class:`ZooEntry`: architecture, data, recipe, seed, the notebooks that use it), its
training recipe (:class:`Recipe`), the errors, and :func:`make_registry`, which checks a list of entries.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from torch import nn

from kae_utils.benchmarks.tasks import DENSE_TASKS, transfer_task
from kae_utils.core.params import TEACHER_SOURCES as TEACHER_SOURCES  # re-exported (the zoo's callers)
from kae_utils.core.params import check_choice
from kae_utils.models import (
    build_encdec,
    build_model,
    build_multihead,
    build_multitask_encdec,
    build_tasknet,
)

ZOO_FORMAT: int = 1
#: Which notebook profile an entry serves: ``quick`` entries are built and shipped; ``full`` ones need a GPU.
ENTRY_PROFILES: tuple[str, ...] = ("quick", "full")
# TEACHER_SOURCES (the notebooks' TEACHERS parameter) lives in kae_utils.core.params; re-exported here.


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
