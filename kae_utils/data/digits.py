"""scikit-learn's ``digits``: 1,797 real 8x8 handwritten digits, shipped with the package (no download).

It stands in for MNIST in the offline profile. Images are scaled to [0, 1], optionally resized
(bilinear) to a larger square, and split once with a fixed seed, stratified by class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from kae_utils.core.scale import log_data

__all__ = ["DIGITS_CLASSES", "DigitsSplit", "load_digits", "augment_shifts"]

#: Class names of ``digits`` (index = label).
DIGITS_CLASSES: tuple[str, ...] = tuple(str(i) for i in range(10))


@dataclass(frozen=True)
class DigitsSplit:
    """Train and test tensors of ``digits``: images ``(N, 1, size, size)`` in [0, 1], labels ``(N,)`` int64."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[str, ...] = DIGITS_CLASSES

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    def train_set(self) -> TensorDataset:
        return TensorDataset(self.x_train, self.y_train)

    def test_set(self) -> TensorDataset:
        return TensorDataset(self.x_test, self.y_test)


def _stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    train_idx, test_idx = train_test_split(
        idx, test_size=test_fraction, random_state=seed, stratify=labels
    )
    return np.sort(train_idx), np.sort(test_idx)


def load_digits(size: int = 8, test_fraction: float = 0.5, seed: int = 0) -> DigitsSplit:
    """Load ``digits`` as tensors with a fixed, seeded, class-stratified train/test split.

    Args:
        size: side of the square images; 8 keeps the originals, larger values resize bilinearly.
        test_fraction: share of the 1,797 images held out for testing, in (0, 1).
        seed: seed of the split (independent of the training seed, so every notebook sees the same split).
    """
    from sklearn.datasets import load_digits as _sk_load_digits

    if not isinstance(size, int) or size < 8:
        raise ValueError(f"size must be an integer >= 8 (the originals are 8x8); got {size!r}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1); got {test_fraction!r}")
    bunch = _sk_load_digits()
    log_data("digits", size, len(bunch.images))  # the work log (KAE_WORK_LOG, kae_utils.core.scale): nothing otherwise
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    if size != 8:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
        images = images.clamp_(0.0, 1.0)
    labels = torch.tensor(bunch.target, dtype=torch.int64)
    train_idx, test_idx = _stratified_split(bunch.target, test_fraction, seed)
    return DigitsSplit(
        x_train=images[train_idx].contiguous(),
        y_train=labels[train_idx].contiguous(),
        x_test=images[test_idx].contiguous(),
        y_test=labels[test_idx].contiguous(),
    )


def augment_shifts(
    images: torch.Tensor, labels: torch.Tensor, copies: int, max_shift: int = 1, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Enlarge a set with ``copies`` randomly shifted copies of every image (the originals come first).

    Shifts are whole pixels in [-max_shift, max_shift] on each axis, filled with zeros, as the
    "jittered" training of Hinton et al. (2015). Deterministic for a given seed.
    """
    if copies < 0 or max_shift < 0:
        raise ValueError("copies and max_shift must be >= 0")
    gen = torch.Generator().manual_seed(seed)
    out_x, out_y = [images], [labels]
    n, _, h, w = images.shape
    padded = F.pad(images, (max_shift,) * 4)
    for _ in range(copies):
        shifts = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=gen)
        rows = shifts[:, 0, None] + torch.arange(h)[None, :]
        cols = shifts[:, 1, None] + torch.arange(w)[None, :]
        shifted = padded[torch.arange(n)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
        out_x.append(shifted.permute(0, 3, 1, 2).contiguous())
        out_y.append(labels)
    return torch.cat(out_x), torch.cat(out_y)
