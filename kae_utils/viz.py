"""Plots the notebooks share: training curves, confusion matrix, sample grid, and PNG saving.

Every function returns the matplotlib ``Figure`` so a notebook can adjust it; none calls ``show``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["plot_curves", "plot_confusion", "sample_grid", "save_figure"]


def plot_curves(
    histories: Mapping[str, Mapping[str, Sequence[float]]],
    keys: Sequence[str] = ("train_loss", "val_acc"),
    titles: Sequence[str] | None = None,
) -> plt.Figure:
    """One panel per metric key; one line per named history (e.g. ``{"teacher": h1, "student": h2}``)."""
    if not histories:
        raise ValueError("no histories to plot")
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.2), squeeze=False)
    for ax, key, title in zip(axes[0], keys, titles or keys, strict=True):
        for name, hist in histories.items():
            values = hist[key] if key in hist else None
            if values is not None:
                ax.plot(range(1, len(values) + 1), values, label=name)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_confusion(
    matrix: torch.Tensor | np.ndarray,
    class_names: Sequence[str] | None = None,
    normalize: bool = True,
    title: str = "",
    ax: plt.Axes | None = None,
) -> plt.Figure:
    """Heat map of a confusion matrix (rows: true class, columns: predicted), row-normalised by default."""
    import seaborn as sns

    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"a confusion matrix is square; got shape {m.shape}")
    if normalize:
        m = m / np.clip(m.sum(axis=1, keepdims=True), 1, None)
    names = list(class_names) if class_names is not None else [str(i) for i in range(len(m))]
    if ax is None:
        size = max(3.5, 0.35 * len(m) + 1.5)
        fig, ax = plt.subplots(figsize=(size, size * 0.85))
    else:
        fig = ax.figure
    sns.heatmap(m, ax=ax, cmap="Blues", vmin=0, vmax=1 if normalize else None, square=True,
                xticklabels=names, yticklabels=names, annot=len(m) <= 12, fmt=".2f" if normalize else "g",
                annot_kws={"fontsize": 7}, cbar=False)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def sample_grid(
    images: torch.Tensor,
    labels: Sequence[object] | torch.Tensor | None = None,
    ncols: int = 10,
    cmap: str = "gray_r",
    size: float = 1.0,
) -> plt.Figure:
    """A grid of images ``(N, C, H, W)`` (C = 1 or 3, values in [0, 1]) with an optional caption each."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be (N, 1|3, H, W); got {tuple(images.shape)}")
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows * 1.15), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = images[i].detach().cpu()
        if img.shape[0] == 1:
            ax.imshow(img[0].numpy(), cmap=cmap, vmin=0, vmax=1)
        else:
            ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy())
        if labels is not None:
            label = labels[i]
            ax.set_title(str(label.item() if isinstance(label, torch.Tensor) else label), fontsize=8)
    fig.tight_layout()
    return fig


def save_figure(fig: plt.Figure, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Save ``fig`` as PNG (the only format the stored notebooks and README use) and return the path."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"figures are stored as PNG; got {path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    return path
