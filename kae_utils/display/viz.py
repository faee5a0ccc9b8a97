"""Plots the notebooks share: training curves, confusion matrix, sample grid, dense label maps
(segmentation, depth, normals, a whole rendered scene), and PNG saving.

Every plotting function returns the matplotlib ``Figure`` so a notebook can adjust it; none calls
``show``. The ``colorize_*`` helpers return ``(..., H, W, 3)`` float RGB arrays for ``imshow``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = [
    "plot_curves",
    "plot_confusion",
    "sample_grid",
    "save_figure",
    "segmentation_palette",
    "colorize_segmentation",
    "colorize_depth",
    "colorize_normals",
    "plot_scene",
]


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


# ------------------------------------------------------------------------------------- dense maps

#: First colours of ``segmentation_palette`` (matplotlib's tab10 then the light half of tab20).
_BASE_PALETTE: tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
    "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7",
    "#dbdb8d", "#9edae5",
)


def _to_numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def segmentation_palette(num_classes: int) -> np.ndarray:
    """``(num_classes, 3)`` float RGB in [0, 1], the same on every call: tab10 and tab20 colours first,
    then hues spaced by the golden ratio."""
    import matplotlib.colors as mcolors

    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer; got {num_classes!r}")
    colours = [mcolors.to_rgb(c) for c in _BASE_PALETTE[:num_classes]]
    for i in range(len(colours), num_classes):
        hue = (i * 0.6180339887498949) % 1.0
        colours.append(mcolors.hsv_to_rgb((hue, 0.65, 0.85 if i % 2 else 0.6)))
    return np.asarray(colours, dtype=np.float32)


def colorize_segmentation(labels: torch.Tensor | np.ndarray, num_classes: int) -> np.ndarray:
    """Colour a label map ``(..., H, W)`` with ``segmentation_palette``; returns ``(..., H, W, 3)`` float32.

    Negative labels (e.g. an ignore index of -1) are drawn black; labels >= ``num_classes`` raise.
    """
    lab = _to_numpy(labels)
    if not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(f"labels must be integers; got dtype {lab.dtype}")
    if lab.ndim < 2:
        raise ValueError(f"labels must be (..., H, W); got shape {lab.shape}")
    if lab.size and lab.max() >= num_classes:
        raise ValueError(f"labels must be < num_classes = {num_classes}; got {lab.max()}")
    palette = np.concatenate([segmentation_palette(num_classes), np.zeros((1, 3), dtype=np.float32)])
    return palette[np.where(lab < 0, num_classes, lab)]


def colorize_depth(
    depth: torch.Tensor | np.ndarray,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = "viridis",
) -> np.ndarray:
    """Colour depth maps with a perceptually uniform colour map; returns ``(..., H, W, 3)`` float32.

    ``depth`` is ``(H, W)``, ``(N, H, W)`` or with a channel of 1 (``(1, H, W)``, ``(N, 1, H, W)``).
    Each image is scaled min-max over its finite values unless ``vmin``/``vmax`` fix the range
    (then shared by all images). Non-finite pixels are black.
    """
    import matplotlib

    d = _to_numpy(depth).astype(np.float64)
    if d.ndim >= 3 and d.shape[-3] == 1:
        d = d[..., 0, :, :]
    if d.ndim < 2:
        raise ValueError(f"depth must be (..., H, W) or (..., 1, H, W); got shape {d.shape}")
    if vmin is not None and vmax is not None and vmax <= vmin:
        raise ValueError(f"vmax must exceed vmin; got vmin={vmin}, vmax={vmax}")
    finite = np.isfinite(d)
    flat = np.where(finite, d, np.nan).reshape(-1, *d.shape[-2:])
    with np.errstate(all="ignore"):
        low = np.full(len(flat), vmin, dtype=np.float64) if vmin is not None else np.nanmin(flat, axis=(1, 2))
        high = np.full(len(flat), vmax, dtype=np.float64) if vmax is not None else np.nanmax(flat, axis=(1, 2))
    low, high = np.nan_to_num(low), np.nan_to_num(high)
    span = np.where(high > low, high - low, 1.0)
    scaled = np.clip((flat - low[:, None, None]) / span[:, None, None], 0.0, 1.0).reshape(d.shape)
    rgb = matplotlib.colormaps[cmap](np.nan_to_num(scaled))[..., :3].astype(np.float32)
    rgb[~finite] = 0.0
    return rgb


def colorize_normals(normals: torch.Tensor | np.ndarray) -> np.ndarray:
    """Unit normals ``(..., 3, H, W)`` as colours ``(n + 1) / 2``, clipped; returns ``(..., H, W, 3)`` float32."""
    n = _to_numpy(normals).astype(np.float32)
    if n.ndim < 3 or n.shape[-3] != 3:
        raise ValueError(f"normals must be (..., 3, H, W); got shape {n.shape}")
    return np.clip((np.moveaxis(n, -3, -1) + 1.0) / 2.0, 0.0, 1.0)


def plot_scene(batch: object, index: int = 0, tasks: Sequence[str] | None = None, size: float = 2.2) -> plt.Figure:
    """One scene of a ``kae_utils.data.scene_spec.SceneBatch`` with its label maps, one titled panel each.

    ``tasks`` are keys of ``scene_spec.SCENE_TASKS`` (default: every dense one; the image itself always comes
    first); the per-image labels (object count, largest class) go into the figure's title.
    """
    from kae_utils.data.scene_spec import SCENE_CLASSES, SCENE_TASKS

    n = len(batch)  # type: ignore[arg-type]
    if not isinstance(index, int) or not -n <= index < n:
        raise ValueError(f"index must be an integer in [{-n}, {n}); got {index!r}")
    if tasks is None:
        tasks = [name for name, spec in SCENE_TASKS.items() if spec.dense and name != "autoencoding"]
    unknown = [t for t in tasks if t not in SCENE_TASKS]
    if unknown:
        choices = ", ".join(repr(t) for t in SCENE_TASKS)
        raise ValueError(f"tasks must be among {choices}; got {unknown}")
    panels: list[tuple[str, np.ndarray, dict]] = [("rgb", _to_numpy(batch.rgb[index]).transpose(1, 2, 0), {})]
    for name in tasks:
        spec = SCENE_TASKS[name]
        if not spec.dense or name == "autoencoding":
            continue
        target = batch.target(name)[index]
        if name in ("normals",):
            panels.append((name, colorize_normals(target), {}))
        elif name.startswith("depth"):
            panels.append((name, colorize_depth(target), {}))
        elif spec.kind in ("segmentation", "instances"):
            panels.append((name, colorize_segmentation(target, spec.channels), {}))
        elif spec.channels == 3:
            panels.append((name, np.clip(_to_numpy(target).transpose(1, 2, 0), 0, 1), {}))
        else:
            values = _to_numpy(target)[0]
            high = 1.0 if spec.kind == "binary" else max(float(values.max()), 1e-6)
            panels.append((name, values, {"cmap": "gray", "vmin": 0.0, "vmax": high}))
    ncols = min(4, len(panels))
    nrows = int(np.ceil(len(panels) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows * 1.1), squeeze=False)
    for ax in axes.flat[len(panels):]:
        fig.delaxes(ax)
    classes = getattr(batch, "classes", SCENE_CLASSES)
    for ax, (name, image, kwargs) in zip(axes.flat, panels, strict=False):
        ax.imshow(image, interpolation="nearest", **kwargs)
        ax.set_title(name, fontsize=9)
        ax.axis("off")
        if name == "segmentation":  # a key to the classes in view
            from matplotlib.patches import Patch

            palette = segmentation_palette(len(classes))
            present = sorted(set(_to_numpy(batch.segmentation[index]).ravel().tolist()))
            handles = [Patch(color=palette[c], label=classes[c]) for c in present]
            ax.legend(handles=handles, fontsize=6, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3,
                      frameon=False, handlelength=1.0, columnspacing=0.8)
    largest = int(batch.largest_class[index])
    largest_name = classes[largest] if largest >= 0 else "none"
    domain = getattr(getattr(batch, "config", None), "domain", "")
    fig.suptitle(
        f"scene {int(batch.indices[index])} ({domain}): {int(batch.object_count[index])} objects, "
        f"largest: {largest_name}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig
