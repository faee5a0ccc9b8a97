"""Helpers the knowledge-amalgamation notebooks share: running several frozen teachers, amalgamating
their score vectors, the teachers' ensemble, per-teacher evaluation of a student, a guard that
keeps labels out of a student's transfer set, and the supervised ceiling.

The **supervised ceiling** of an experiment is the student's own architecture trained with the *true labels*
of the same transfer images for the same budget. No label-free method can be expected to beat it, so a claim
"the student matches its teacher" is only testable where the ceiling reaches the teacher (within the claim's
own tolerance); :func:`ceiling_reaches` says whether it does.

The papers' own methods (auto-encoders, adapters, branch search ...) stay in the notebooks.

Class sets are tuples of *global* class indices; teacher ``i``'s logit ``j`` scores global class
``class_sets[i][j]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from kae_utils.data.subsets import class_subset
from kae_utils.evaluation.metrics import accuracy
from kae_utils.models.taps import FeatureTaps
from kae_utils.training.numerics import current
from kae_utils.training.predict import predict_logits
from kae_utils.training.trainer import Trainer

__all__ = [
    "amalgamate_scores",
    "ceiling_reaches",
    "check_images_only",
    "ensemble_predict",
    "restricted_accuracy",
    "teacher_accuracy",
    "teacher_outputs",
    "train_ceiling",
]


def _check_class_sets(class_sets: Sequence[Sequence[int]], num_classes: int) -> list[tuple[int, ...]]:
    sets = [tuple(int(c) for c in s) for s in class_sets]
    if not sets:
        raise ValueError("need at least one teacher's class set")
    for s in sets:
        if not s or len(set(s)) != len(s):
            raise ValueError(f"a class set must be non-empty and without repeats; got {s}")
        if min(s) < 0 or max(s) >= num_classes:
            raise ValueError(f"class set {s} has classes outside [0, {num_classes})")
    return sets


def amalgamate_scores(
    teacher_logits: Sequence[torch.Tensor], class_sets: Sequence[Sequence[int]], num_classes: int
) -> torch.Tensor:
    """One score vector over ``num_classes`` global classes from teachers that know subsets of them.

    Each global class gets the mean of the logits of the teachers that know it: for disjoint class
    sets this is the concatenation of the teachers' scores, placed at their global indices; for a class
    shared by several teachers it is their average (the amalgamation notebooks' rule for overlapping
    classes). A class no teacher knows raises ``ValueError``.
    """
    sets = _check_class_sets(class_sets, num_classes)
    if len(teacher_logits) != len(sets):
        raise ValueError(f"{len(teacher_logits)} logit tensors for {len(sets)} class sets")
    n = teacher_logits[0].shape[0]
    total = torch.zeros(n, num_classes, dtype=teacher_logits[0].dtype, device=teacher_logits[0].device)
    count = torch.zeros(num_classes, dtype=teacher_logits[0].dtype, device=teacher_logits[0].device)
    for z, s in zip(teacher_logits, sets, strict=True):
        if z.ndim != 2 or z.shape != (n, len(s)):
            raise ValueError(f"logits of shape {tuple(z.shape)} do not fit a class set of {len(s)} classes and {n} rows")
        index = torch.as_tensor(s, device=z.device)
        total[:, index] += z
        count[index] += 1
    if (count == 0).any():
        missing = torch.nonzero(count == 0).flatten().tolist()
        raise ValueError(f"classes {missing} are known by no teacher")
    return total / count


def ensemble_predict(
    teacher_logits: Sequence[torch.Tensor], class_sets: Sequence[Sequence[int]], num_classes: int
) -> torch.Tensor:
    """The teachers' ensemble: argmax over the amalgamated scores (global labels, ``(N,)`` int64)."""
    return amalgamate_scores(teacher_logits, class_sets, num_classes).argmax(dim=1)


def restricted_accuracy(logits: torch.Tensor, labels: torch.Tensor, classes: Sequence[int]) -> float:
    """Accuracy of a many-class model on one teacher's sub-task.

    ``logits`` are the model's scores over all global classes, ``labels`` the *global* labels of the
    teacher's test images (all in ``classes``); the prediction is the argmax over the columns of
    ``classes`` only, as if the model were asked the teacher's question.
    """
    classes = [int(c) for c in classes]
    if logits.ndim != 2 or len(logits) != len(labels):
        raise ValueError(f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} do not match")
    if len(labels) == 0:
        raise ValueError("cannot score an empty set")
    index = torch.as_tensor(classes, device=logits.device)
    local = logits.index_select(1, index).argmax(dim=1).cpu()
    predicted = torch.as_tensor(classes)[local]
    if not torch.isin(labels.cpu(), torch.as_tensor(classes)).all():
        raise ValueError(f"labels outside the classes {tuple(classes)}")
    return (predicted == labels.cpu()).float().mean().item()


@torch.no_grad()
def teacher_outputs(
    teachers: Sequence[nn.Module], x: torch.Tensor, layers: Sequence[str], batch_size: int = 512
) -> tuple[list[dict[str, torch.Tensor]], list[torch.Tensor]]:
    """Run frozen teachers on ``x`` (eval mode, batched) and return their tapped features and logits.

    ``layers`` are sub-module names of ``named_modules()`` (the same for every teacher). The output of
    each is *copied* when recorded, so a later in-place operation (``ReLU(inplace=True)``) does not
    change it: a tap on a BatchNorm gives the pre-activation feature. Returns, per teacher, a dict
    ``{layer: (N, ...)}`` and the logits ``(N, C_i)``, all on the CPU in float32 (computed with the
    process's numerics, :mod:`kae_utils.training.numerics`).
    """
    features: list[dict[str, torch.Tensor]] = []
    logits: list[torch.Tensor] = []
    for teacher in teachers:
        taps = FeatureTaps(teacher, layers, clone=True)  # raises KeyError for unknown names
        device = next(teacher.parameters()).device
        numerics = current(device)
        was_training = teacher.training
        teacher.eval()
        store: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
        outs: list[torch.Tensor] = []
        try:
            with taps, numerics.autocast():
                for start in range(0, len(x), batch_size):
                    outs.append(teacher(numerics.prepare_input(x[start:start + batch_size].to(device))).float().cpu())
                    for name in layers:
                        store[name].append(taps.features[name].float().cpu().contiguous())
        finally:
            teacher.train(was_training)
        features.append({name: torch.cat(parts) for name, parts in store.items()})
        logits.append(torch.cat(outs))
    return features, logits


def check_images_only(train_data: object, image_shape: Sequence[int] | None = None) -> torch.Tensor:
    """Guard for label-free training: ``train_data`` must be a floating-point image tensor ``(N, C, H, W)``
    (or a 1-tuple holding one); anything else, e.g. an ``(images, labels)`` pair, raises ``ValueError``.

    Returns the image tensor. ``image_shape`` (``(C, H, W)``) is checked when given.
    """
    if isinstance(train_data, (tuple, list)):
        if len(train_data) != 1:
            raise ValueError(
                f"a label-free transfer set is images only; got a sequence of {len(train_data)} items "
                "(were labels passed?)"
            )
        train_data = train_data[0]
    if not isinstance(train_data, torch.Tensor) or not train_data.is_floating_point() or train_data.ndim != 4:
        desc = f"tensor {train_data.dtype} {tuple(train_data.shape)}" if isinstance(train_data, torch.Tensor) \
            else type(train_data).__name__
        raise ValueError(f"a label-free transfer set is a float image tensor (N, C, H, W); got {desc}")
    if image_shape is not None and tuple(train_data.shape[1:]) != tuple(image_shape):
        raise ValueError(f"images of shape {tuple(image_shape)} expected; got {tuple(train_data.shape[1:])}")
    return train_data


def train_ceiling(
    student: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor | Mapping[str, torch.Tensor],
    loss: Callable[[Any, Any], torch.Tensor],
    **trainer_args: Any,
) -> tuple[nn.Module, Any]:
    """The supervised ceiling: train ``student`` (a fresh copy of the student's architecture, initialised as the
    student is) with the **true labels** of the transfer ``images``; returns ``(student, history)``.

    ``labels`` is one tensor, or ``{task: tensor}`` for a multi-task student; ``loss(student(x), y)`` gets the
    output and the batch's labels in the same form. ``trainer_args`` go to :class:`kae_utils.training.trainer.Trainer`
    (``epochs``, ``lr``, ``batch_size``, ``device``, ``seed``, ``optimizer``, ``schedule``, ...): pass the
    student's own budget, so that the ceiling is what any method could reach with these images and steps.
    """
    images = check_images_only(images)
    keys = list(labels) if isinstance(labels, Mapping) else None
    columns = [labels[k] for k in keys] if keys is not None else [labels]
    if any(len(c) != len(images) for c in columns):
        raise ValueError(f"{len(images)} images but labels of lengths {[len(c) for c in columns]}")

    def step(model: nn.Module, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        x, *ys = batch
        return loss(model(x), dict(zip(keys, ys, strict=True)) if keys is not None else ys[0])

    trainer_args.setdefault("desc", "supervised ceiling")
    history = Trainer(student, step_fn=step, **trainer_args).fit((images, *columns))
    return student, history


def teacher_accuracy(teacher: nn.Module, images: torch.Tensor, labels: torch.Tensor, classes: Sequence[int]) -> float:
    """Accuracy of a teacher on the images of its own ``classes`` (its own question), among those classes only.

    ``classes`` are global labels in the order of the teacher's logits: the images of those classes are kept and
    relabelled ``0..len(classes)-1`` (:func:`kae_utils.data.class_subset`), then scored by the teacher's batched
    eval-mode logits (:func:`kae_utils.training.predict.predict_logits`).
    """
    sub = class_subset(images, labels, classes)
    return accuracy(predict_logits(teacher, sub.x), sub.y)


def ceiling_reaches(ceiling: float, teacher: float, *, tolerance: float, higher_is_better: bool = True,
                    relative: bool = False) -> bool:
    """Whether the supervised ceiling is within ``tolerance`` of the teacher (or better).

    The same test a claim "the student matches the teacher" applies to the student: with ``relative``, the
    tolerance is a fraction of the teacher's value (``0.05``: 5 % worse at most); otherwise it is absolute
    (``0.01``: one point of accuracy). Where it returns ``False`` the experiment cannot test that claim.
    """
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0; got {tolerance}")
    margin = tolerance * abs(teacher) if relative else tolerance
    return ceiling >= teacher - margin if higher_is_better else ceiling <= teacher + margin
