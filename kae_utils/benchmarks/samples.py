"""A task's labels at the resolution of a representation, and samples for the label-based transferability estimators.

Notebook 08 scores a source's representation of the target images against the target's labels with estimators
that need samples and targets (H-score, TransRate, GBC, (N-)LEEP, LogME, ...: ``kae_utils.methods.transferability``).
The mini-Taskonomy's transfers train their heads at the representation's resolution too. Both take the labels from
here: :func:`labels_at` (a dense task's labels at ``size x size``), :func:`categorical` (whether a task's labels are
classes) and :func:`estimator_samples`. ``kae_utils.benchmarks.taskonomy`` imports and re-exports all three.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from kae_utils.benchmarks.tasks import transfer_task

__all__ = ["categorical", "estimator_samples", "labels_at"]


def labels_at(labels: torch.Tensor, task: str, size: int) -> torch.Tensor:
    """A dense task's labels at ``size x size``: class maps by nearest neighbour, binary maps by max-pooling (an
    edge anywhere in the cell), numbers by area averaging (normals renormalised). Image-level labels unchanged."""
    spec = transfer_task(task)
    if not spec.dense or labels.shape[-1] == size:
        return labels
    if spec.output == "classes":
        return F.interpolate(labels[:, None].float(), size=(size, size), mode="nearest")[:, 0].long()
    if spec.output == "binary":
        return F.adaptive_max_pool2d(labels.float(), size)
    out = F.adaptive_avg_pool2d(labels.float(), size)
    return F.normalize(out, dim=1, eps=1e-6) if spec.output == "normals" else out


def categorical(task: str) -> bool:
    """Whether ``task``'s labels are classes (per pixel or per image): where H-score, TransRate, GBC and
    (N-)LEEP apply."""
    return transfer_task(task).output in ("classes", "binary", "image-classes")


def estimator_samples(features: torch.Tensor, labels: torch.Tensor, task: str, max_samples: int = 8192,
                      neighbourhood: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Samples and targets for a label-based estimator (``kae_utils.methods.transferability``) from a source's
    representation ``(N, C, h, w)`` of the target images and the target's labels.

    Dense targets: every location of the representation is a sample (its ``neighbourhood x neighbourhood``
    window of C-vectors, zero-padded: what a 3 x 3 convolution sees), the labels taken at the representation's
    grid (:func:`labels_at`), at most ``max_samples`` locations drawn at random. Image-level targets: the flattened
    representation, one sample per image. Targets: class indices (binary maps as 0/1) or float columns.
    """
    from kae_utils.methods.transferability import pixels_as_samples

    spec = transfer_task(task)
    if not spec.dense:
        y = labels.numpy()
        keep = y >= 0 if spec.output == "image-classes" else np.ones(len(y), dtype=bool)
        samples = features.flatten(1).double().numpy()[keep]
        targets = (y[keep].astype(np.int64) if spec.output == "image-classes"
                   else y[keep].astype(np.float64).reshape(int(keep.sum()), -1))
        return samples, targets
    grid = labels_at(labels, task, features.shape[-1])
    if spec.output == "binary":
        grid = (grid > 0.5).long()[:, 0]
    return pixels_as_samples(features, grid, max_samples=max_samples, seed=seed, neighbourhood=neighbourhood)
