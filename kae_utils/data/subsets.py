"""Class-subset views: what a teacher that knows only some classes sees.

A teacher trained on classes {5, 6, 7, 8, 9} sees only images of those classes, relabelled 0..4;
the view keeps the mapping back to the global labels so its predictions can be compared with,
or concatenated into, a student that knows every class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import TensorDataset

__all__ = ["ClassSubset", "class_subset", "split_classes"]


@dataclass(frozen=True)
class ClassSubset:
    """Images of a subset of classes, with local labels ``0..k-1`` and the map back to global labels."""

    x: torch.Tensor
    y: torch.Tensor
    classes: tuple[int, ...]  #: global label of each local label, ``classes[local] == global``

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to_global(self, local_labels: torch.Tensor) -> torch.Tensor:
        """Map local labels (or predictions) back to global labels."""
        return torch.as_tensor(self.classes, device=local_labels.device)[local_labels]

    def to_local(self, global_labels: torch.Tensor) -> torch.Tensor:
        """Map global labels of this subset's classes to local ones (``ValueError`` for other classes)."""
        lookup = torch.full((max(self.classes) + 1,), -1, dtype=torch.int64)
        lookup[list(self.classes)] = torch.arange(len(self.classes))
        g = global_labels.cpu()
        if (g < 0).any() or (g > max(self.classes)).any() or (lookup[g.clamp(0, max(self.classes))] < 0).any():
            raise ValueError(f"labels outside this subset's classes {self.classes}")
        return lookup[g].to(global_labels.device)

    def dataset(self) -> TensorDataset:
        return TensorDataset(self.x, self.y)

    def __len__(self) -> int:
        return len(self.y)


def class_subset(x: torch.Tensor, y: torch.Tensor, classes: Sequence[int]) -> ClassSubset:
    """The images of ``classes`` (global labels, in the order given) relabelled to ``0..len(classes)-1``."""
    classes = tuple(int(c) for c in classes)
    if not classes:
        raise ValueError("classes must not be empty")
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct; got {classes}")
    present = set(torch.unique(y).tolist())
    missing = [c for c in classes if c not in present]
    if missing:
        raise ValueError(f"classes {missing} do not occur in the labels (present: {sorted(present)})")
    mask = torch.zeros_like(y, dtype=torch.bool)
    for c in classes:
        mask |= y == c
    sub = ClassSubset(x=x[mask], y=y[mask], classes=classes)
    return ClassSubset(x=sub.x, y=sub.to_local(sub.y), classes=classes)


def split_classes(num_classes: int, parts: int) -> list[tuple[int, ...]]:
    """Split ``0..num_classes-1`` into ``parts`` contiguous, disjoint, near-equal class sets."""
    if not 1 <= parts <= num_classes:
        raise ValueError(f"parts must be in [1, {num_classes}]; got {parts}")
    bounds = [round(i * num_classes / parts) for i in range(parts + 1)]
    return [tuple(range(bounds[i], bounds[i + 1])) for i in range(parts)]
