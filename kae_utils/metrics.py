"""Classification metrics on tensors: accuracy, per-class accuracy, confusion matrix."""

from __future__ import annotations

import torch

__all__ = ["accuracy", "per_class_accuracy", "confusion_matrix", "as_predictions"]


def as_predictions(outputs: torch.Tensor) -> torch.Tensor:
    """Class predictions from logits ``(N, C)`` (argmax) or labels ``(N,)`` (unchanged)."""
    if outputs.ndim == 2:
        return outputs.argmax(dim=1)
    if outputs.ndim == 1:
        return outputs.long()
    raise ValueError(f"expected logits (N, C) or labels (N,); got shape {tuple(outputs.shape)}")


def _check_pair(preds: torch.Tensor, targets: torch.Tensor) -> None:
    if preds.shape != targets.shape:
        raise ValueError(f"predictions {tuple(preds.shape)} and targets {tuple(targets.shape)} differ in shape")
    if preds.numel() == 0:
        raise ValueError("cannot score an empty set")


def accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Share of correct predictions, in [0, 1]; ``outputs`` are logits or predicted labels."""
    preds = as_predictions(outputs).cpu()
    targets = targets.cpu()
    _check_pair(preds, targets)
    return (preds == targets).float().mean().item()


def confusion_matrix(outputs: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(C, C)`` counts: row = true class, column = predicted class."""
    preds = as_predictions(outputs).cpu()
    targets = targets.cpu().long()
    _check_pair(preds, targets)
    if preds.max() >= num_classes or targets.max() >= num_classes or preds.min() < 0 or targets.min() < 0:
        raise ValueError(f"labels must lie in [0, {num_classes})")
    flat = targets * num_classes + preds
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_accuracy(outputs: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Recall of each class, ``(C,)`` floats; ``nan`` for classes absent from ``targets``."""
    cm = confusion_matrix(outputs, targets, num_classes).double()
    support = cm.sum(dim=1)
    correct = cm.diagonal()
    out = torch.full((num_classes,), float("nan"), dtype=torch.float64)
    present = support > 0
    out[present] = correct[present] / support[present]
    return out
