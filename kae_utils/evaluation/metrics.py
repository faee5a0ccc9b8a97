"""Metrics on tensors: classification (accuracy, per-class accuracy, confusion matrix) and dense
prediction (IoU, pixel accuracy, depth and surface-normal errors)."""

from __future__ import annotations

import torch

__all__ = [
    "accuracy",
    "per_class_accuracy",
    "confusion_matrix",
    "as_predictions",
    "NORMAL_ANGLE_THRESHOLDS",
    "iou_per_class",
    "mean_iou",
    "pixel_accuracy",
    "depth_metrics",
    "normal_metrics",
]


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


def _ratio_or_nan(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """``numerator / denominator`` per class (float64), ``nan`` where the denominator is 0."""
    out = torch.full(denominator.shape, float("nan"), dtype=torch.float64)
    present = denominator > 0
    out[present] = numerator[present] / denominator[present]
    return out


def per_class_accuracy(outputs: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Recall of each class, ``(C,)`` floats; ``nan`` for classes absent from ``targets``."""
    cm = confusion_matrix(outputs, targets, num_classes).double()
    return _ratio_or_nan(cm.diagonal(), cm.sum(dim=1))


# ------------------------------------------------------------------------------ dense predictions

#: Angle thresholds (degrees) of ``normal_metrics``' ``within_*`` shares.
NORMAL_ANGLE_THRESHOLDS: tuple[float, ...] = (11.25, 22.5, 30.0)


def _dense_pair(
    pred: torch.Tensor, target: torch.Tensor, ignore_index: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels ``(N, H, W)`` from logits ``(N, C, H, W)`` or labels, and the target's valid pixels, flat."""
    pred = pred.detach().cpu()
    target = target.detach().cpu().long()
    if pred.ndim == target.ndim + 1:
        pred = pred.argmax(dim=1)
    elif pred.ndim != target.ndim:
        raise ValueError(
            f"expected logits (N, C, H, W) or labels (N, H, W) for a target (N, H, W); got predictions "
            f"{tuple(pred.shape)} and target {tuple(target.shape)}"
        )
    pred = pred.long()
    if pred.shape != target.shape:
        raise ValueError(f"predictions {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    pred, target = pred.reshape(-1), target.reshape(-1)
    if ignore_index is not None:
        keep = target != ignore_index
        pred, target = pred[keep], target[keep]
    if target.numel() == 0:
        raise ValueError("no pixels to score (empty input, or every pixel is ignore_index)")
    return pred, target


def iou_per_class(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = None
) -> torch.Tensor:
    """Intersection over union of each class, ``(C,)`` float64; ``nan`` for classes absent from both.

    ``pred`` is logits ``(N, C, H, W)`` (argmax over C) or labels ``(N, H, W)``; pixels whose target
    is ``ignore_index`` are left out. IoU of class c = |pred = c and target = c| / |pred = c or target = c|.
    """
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer; got {num_classes!r}")
    pred, target = _dense_pair(pred, target, ignore_index)
    for name, labels in (("predictions", pred), ("targets", target)):
        if labels.min() < 0 or labels.max() >= num_classes:
            raise ValueError(
                f"{name} must lie in [0, {num_classes}) (or equal ignore_index for targets); "
                f"got values in [{labels.min().item()}, {labels.max().item()}]"
            )
    cm = torch.bincount(target * num_classes + pred, minlength=num_classes**2).reshape(num_classes, num_classes)
    cm = cm.double()
    intersection = cm.diagonal()
    return _ratio_or_nan(intersection, cm.sum(dim=0) + cm.sum(dim=1) - intersection)


def mean_iou(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = None
) -> float:
    """Mean of ``iou_per_class`` over the classes present in the prediction or the target, in [0, 1]."""
    return torch.nanmean(iou_per_class(pred, target, num_classes, ignore_index)).item()


def pixel_accuracy(pred: torch.Tensor, target: torch.Tensor, ignore_index: int | None = None) -> float:
    """Share of (non-ignored) pixels whose predicted label equals the target; logits or labels."""
    pred, target = _dense_pair(pred, target, ignore_index)
    return (pred == target).double().mean().item()


def _valid_mask(target: torch.Tensor, mask: torch.Tensor | None, shape: tuple[int, ...]) -> torch.Tensor:
    if mask is None:
        return torch.ones(shape, dtype=torch.bool)
    mask = mask.detach().cpu()
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor; got {mask.dtype}")
    try:
        return torch.broadcast_to(mask, shape)
    except RuntimeError as err:
        raise ValueError(f"mask {tuple(mask.shape)} does not broadcast to {shape}") from err


def depth_metrics(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, float]:
    """Standard monocular-depth errors over the valid pixels (``target > 0`` and ``mask``).

    Returns ``rmse`` (sqrt of the mean squared error), ``abs_rel`` (mean ``|p - t| / t``) and
    ``delta1``/``delta2``/``delta3``, the shares of pixels with ``max(p / t, t / p) < 1.25**k``
    (a prediction <= 0 never counts). ``pred`` and ``target`` have the same shape, e.g. ``(N, 1, H, W)``.
    """
    pred = pred.detach().cpu().double()
    target = target.detach().cpu().double()
    if pred.shape != target.shape:
        raise ValueError(f"predictions {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    valid = _valid_mask(target, mask, tuple(target.shape)) & (target > 0)
    if not valid.any():
        raise ValueError("no valid pixels to score (target > 0 and mask is empty)")
    p, t = pred[valid], target[valid]
    ratio = torch.where(p > 0, torch.maximum(p / t, t / p.clamp_min(1e-300)), torch.tensor(float("inf"), dtype=p.dtype))
    out = {
        "rmse": (p - t).pow(2).mean().sqrt().item(),
        "abs_rel": ((p - t).abs() / t).mean().item(),
    }
    for k in (1, 2, 3):
        out[f"delta{k}"] = (ratio < 1.25**k).double().mean().item()
    return out


def normal_metrics(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, float]:
    """Angular errors of surface normals ``(N, 3, H, W)`` in degrees, after L2-normalising both.

    Valid pixels: ``mask`` (``(N, H, W)`` or ``(N, 1, H, W)``) and a non-zero target vector. Returns
    ``mean_angle``, ``median_angle`` (the mean of the two middle values for an even count) and
    ``within_11.25``, ``within_22.5``, ``within_30``: shares of pixels with an error below those angles.
    """
    pred = pred.detach().cpu().double()
    target = target.detach().cpu().double()
    if pred.shape != target.shape:
        raise ValueError(f"predictions {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    if pred.ndim < 2 or pred.shape[1] != 3:
        raise ValueError(f"normals must be (N, 3, ...); got {tuple(pred.shape)}")
    pixel_shape = (pred.shape[0], *pred.shape[2:])
    if mask is not None and mask.ndim == pred.ndim and mask.shape[1] == 1:
        mask = mask[:, 0]
    t_norm = target.norm(dim=1)
    valid = _valid_mask(target, mask, pixel_shape) & (t_norm > 0)
    if not valid.any():
        raise ValueError("no valid pixels to score (mask is empty or every target normal is zero)")
    cos = (pred * target).sum(dim=1) / (pred.norm(dim=1).clamp_min(1e-12) * t_norm.clamp_min(1e-12))
    angle = torch.rad2deg(torch.arccos(cos[valid].clamp(-1.0, 1.0)))
    ordered = angle.sort().values
    m = len(ordered)
    out = {
        "mean_angle": angle.mean().item(),
        "median_angle": ((ordered[(m - 1) // 2] + ordered[m // 2]) / 2).item(),
    }
    for threshold in NORMAL_ANGLE_THRESHOLDS:
        out[f"within_{threshold:g}"] = (angle < threshold).double().mean().item()
    return out
