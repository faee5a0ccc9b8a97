"""``shapes``: synthetic 2D images whose main object has five attributes, rendered offline in torch.

It stands in for the fine-grained data sets of the amalgamation papers (Stanford Dogs, CUB-200, ...)
in notebooks where teachers are experts on different class subsets or different attributes. Every
image shows one main object with a ``shape`` (8 kinds), ``colour`` (6), ``size`` (3 bins),
``position`` (the 3x3 grid cell of its centre) and ``fill`` pattern (4), on a cluttered background
with pixel noise, smaller distractor objects behind it and, sometimes, an occluding bar in front;
shape x colour gives a 48-way task (:func:`composite_labels`).

Rendering is vectorised over images and pixels: per-image parameters are drawn from a
counter-based hash of ``(seed, image index, parameter name)``, then signed distances of every shape
are evaluated on the pixel grid of all images at once and turned into anti-aliased coverage. Image
``i`` of a seed is the same whichever chunk it is generated in, so sets can be materialised piece
by piece: ``generate_shapes(50, start=50)`` equals the second half of ``generate_shapes(100)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch.utils.data import TensorDataset

from kae_utils.core.scale import log_data
from kae_utils.data.shape_drawing import block_noise, render_block
from kae_utils.data.shapes_config import ATTRIBUTE_VALUES, ATTRIBUTES, BLOCK, ShapesConfig
from kae_utils.data.subsets import ClassSubset, class_subset

__all__ = ["ShapesBatch", "ShapesClassView", "ShapesSplit", "composite_class_names", "composite_labels", "generate_shapes", "make_shapes_split"]


# ---------------------------------------------------------------------------------------- batches


def _index_labels(labels: dict[str, torch.Tensor], indices: object) -> dict[str, torch.Tensor]:
    return {k: v[indices] for k, v in labels.items()}  # type: ignore[index]


@dataclass(frozen=True)
class ShapesBatch:
    """Images ``(n, 3, H, W)`` float32 in [0, 1], one int64 label vector ``(n,)`` per attribute.

    ``masks`` (only when asked for) is the visible coverage ``(n, H, W)`` in [0, 1] of the main object.
    """

    images: torch.Tensor
    labels: dict[str, torch.Tensor]
    masks: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, indices: torch.Tensor | Sequence[int] | slice) -> ShapesBatch:
        """The images at ``indices`` (positions, a boolean mask or a slice) with their labels and masks."""
        if not isinstance(indices, (torch.Tensor, slice)):
            indices = torch.as_tensor(list(indices), dtype=torch.int64)
        return ShapesBatch(
            images=self.images[indices],
            labels=_index_labels(self.labels, indices),
            masks=None if self.masks is None else self.masks[indices],
        )


def _check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")
    return value


def generate_shapes(
    n: int,
    seed: int = 0,
    config: ShapesConfig | None = None,
    start: int = 0,
    return_masks: bool = False,
) -> ShapesBatch:
    """Render the images ``start .. start+n-1`` of ``seed`` under ``config`` (default: ``ShapesConfig()``).

    Image ``i`` depends only on ``(seed, i, config)``: generating ``[0, 100)`` equals generating
    ``[0, 50)`` then ``[50, 100)``. Every attribute is drawn independently and uniformly, so each
    value (and each shape x colour combination) is about equally frequent. Work is done in aligned
    blocks of 256 indices, so a call costs at least one block.

    Args:
        n: number of images (>= 0).
        seed: non-negative integer; different seeds give independent data sets.
        config: the difficulty knobs.
        start: index of the first image (>= 0); ``start + n`` must stay below 2**32.
        return_masks: also return the visible coverage of the main object, ``masks`` ``(n, H, W)``.
    """
    _check_int("n", n, 0)
    _check_int("seed", seed, 0)
    _check_int("start", start, 0)
    if start + n > 2**32:
        raise ValueError(f"start + n must be <= 2**32; got {start + n}")
    if config is None:
        config = ShapesConfig()
    if not isinstance(config, ShapesConfig):
        raise ValueError(f"config must be a ShapesConfig; got {type(config).__name__}")
    size = config.image_size
    log_data("shapes", size, n)  # the work log (KAE_WORK_LOG, kae_utils.core.scale): nothing otherwise
    images = torch.empty((n, 3, size, size), dtype=torch.float32)
    labels = {a: torch.empty(n, dtype=torch.int64) for a in ATTRIBUTES}
    masks = torch.empty((n, size, size), dtype=torch.float32) if return_masks else None
    stop = start + n
    for block in range(start // BLOCK, (stop + BLOCK - 1) // BLOCK):
        lo, hi = block * BLOCK, (block + 1) * BLOCK
        index = torch.arange(lo, hi, dtype=torch.int64)
        img, lab, mask = render_block(seed, index, config)
        if config.noise > 0:
            img.add_(block_noise(seed, block, size), alpha=config.noise).clamp_(0.0, 1.0)
        a, b = max(lo, start), min(hi, stop)  # the requested part of this block
        images[a - start : b - start] = img[a - lo : b - lo]
        for k in ATTRIBUTES:
            labels[k][a - start : b - start] = lab[k][a - lo : b - lo]
        if masks is not None:
            masks[a - start : b - start] = mask[a - lo : b - lo]
    return ShapesBatch(images=images, labels=labels, masks=masks)


# ------------------------------------------------------------------------------ composite labels


def _attribute_tuple(attributes: str | Sequence[str]) -> tuple[str, ...]:
    attrs = (attributes,) if isinstance(attributes, str) else tuple(attributes)
    if not attrs:
        raise ValueError("attributes must not be empty")
    unknown = [a for a in attrs if a not in ATTRIBUTE_VALUES]
    if unknown:
        allowed = ", ".join(repr(a) for a in ATTRIBUTES)
        raise ValueError(f"unknown attribute(s) {unknown}; allowed: {allowed}")
    if len(set(attrs)) != len(attrs):
        raise ValueError(f"attributes must be distinct; got {attrs}")
    return attrs


def composite_class_names(attributes: str | Sequence[str] = ("shape", "colour")) -> tuple[str, ...]:
    """Names of the composite classes of ``attributes``, e.g. ``"circle/red"`` (first attribute slowest)."""
    names: list[str] = [""]
    for i, a in enumerate(_attribute_tuple(attributes)):
        names = [f"{p}/{v}" if i else v for p in names for v in ATTRIBUTE_VALUES[a]]
    return tuple(names)


def composite_labels(
    labels: dict[str, torch.Tensor], attributes: str | Sequence[str] = ("shape", "colour")
) -> tuple[torch.Tensor, tuple[str, ...]]:
    """One label per combination of ``attributes`` (mixed radix, first attribute most significant).

    With 8 shapes and 6 colours, shape 2 and colour 5 give ``2 * 6 + 5 = 17``, named
    ``"triangle/cyan"``. A single attribute name gives that attribute's labels and value names.

    Returns:
        The composite labels (int64) and the name of every composite class.
    """
    attrs = _attribute_tuple(attributes)
    missing = [a for a in attrs if a not in labels]
    if missing:
        allowed = ", ".join(repr(a) for a in labels)
        raise ValueError(f"attribute(s) {missing} are not in these labels; allowed: {allowed}")
    out = torch.zeros_like(labels[attrs[0]], dtype=torch.int64)
    for a in attrs:
        out = out * len(ATTRIBUTE_VALUES[a]) + labels[a].long()
    return out, composite_class_names(attrs)


# ----------------------------------------------------------------------------------------- splits


@dataclass(frozen=True)
class ShapesClassView:
    """Train and test images of some classes of an attribute (or composite), relabelled ``0..k-1``.

    ``train.to_global`` / ``test.to_global`` map local labels back to the attribute's global ones.
    """

    train: ClassSubset
    test: ClassSubset
    attributes: tuple[str, ...]  #: the attribute(s) the classes are values (combinations) of
    class_names: tuple[str, ...]  #: name of every local class
    global_class_names: tuple[str, ...]  #: name of every class of the attribute (or composite)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclass(frozen=True)
class ShapesSplit:
    """Train and test sets of ``shapes``: images ``(N, 3, S, S)`` and a label dict per set.

    The test images are the indices right after the training ones, so the two never coincide.
    """

    x_train: torch.Tensor
    labels_train: dict[str, torch.Tensor]
    x_test: torch.Tensor
    labels_test: dict[str, torch.Tensor]
    config: ShapesConfig = ShapesConfig()
    seed: int = 0

    @property
    def attributes(self) -> tuple[str, ...]:
        """The attributes this split carries labels for."""
        return tuple(a for a in ATTRIBUTES if a in self.labels_train)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    def class_names(self, attributes: str | Sequence[str]) -> tuple[str, ...]:
        """Class names of an attribute or composite of attributes that this split carries."""
        return composite_labels(self.labels_train, attributes)[1]

    def num_classes(self, attributes: str | Sequence[str]) -> int:
        return len(self.class_names(attributes))

    def targets(self, attributes: str | Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Train and test labels of an attribute or composite (see :func:`composite_labels`)."""
        return (
            composite_labels(self.labels_train, attributes)[0],
            composite_labels(self.labels_test, attributes)[0],
        )

    def train_set(self, attributes: str | Sequence[str]) -> TensorDataset:
        return TensorDataset(self.x_train, self.targets(attributes)[0])

    def test_set(self, attributes: str | Sequence[str]) -> TensorDataset:
        return TensorDataset(self.x_test, self.targets(attributes)[1])

    def attribute_view(self, attributes: str | Sequence[str]) -> ShapesSplit:
        """The same images with the labels of ``attributes`` only (e.g. for a teacher of colour and size)."""
        attrs = _attribute_tuple(attributes)
        missing = [a for a in attrs if a not in self.labels_train]
        if missing:
            allowed = ", ".join(repr(a) for a in self.attributes)
            raise ValueError(f"attribute(s) {missing} are not in this split; allowed: {allowed}")
        return replace(
            self,
            labels_train={a: self.labels_train[a] for a in attrs},
            labels_test={a: self.labels_test[a] for a in attrs},
        )

    def class_view(self, attributes: str | Sequence[str], classes: Sequence[int | str]) -> ShapesClassView:
        """The images of some ``classes`` of an attribute or composite, relabelled in the order given.

        ``classes`` are global labels or class names, e.g. ``class_view("shape", range(4))`` for a
        teacher of the first four shapes, or ``class_view(("shape", "colour"), ["circle/red", ...])``.
        Built with :func:`kae_utils.data.subsets.class_subset` on the train and the test set.
        """
        y_train, names = composite_labels(self.labels_train, attributes)
        y_test, _ = composite_labels(self.labels_test, attributes)
        lookup = {name: i for i, name in enumerate(names)}
        ids: list[int] = []
        for c in classes:
            if isinstance(c, str):
                if c not in lookup:
                    raise ValueError(f"unknown class {c!r}; allowed: {', '.join(names)}")
                ids.append(lookup[c])
            else:
                c = int(c)
                if not 0 <= c < len(names):
                    raise ValueError(f"class {c} is outside [0, {len(names) - 1}]")
                ids.append(c)
        train = class_subset(self.x_train, y_train, ids)
        test = class_subset(self.x_test, y_test, ids)
        return ShapesClassView(
            train=train,
            test=test,
            attributes=_attribute_tuple(attributes),
            class_names=tuple(names[i] for i in train.classes),
            global_class_names=names,
        )


def make_shapes_split(
    n_train: int, n_test: int, seed: int = 0, config: ShapesConfig | None = None
) -> ShapesSplit:
    """Images ``0 .. n_train-1`` of ``seed`` for training and ``n_train .. n_train+n_test-1`` for testing."""
    _check_int("n_train", n_train, 1)
    _check_int("n_test", n_test, 1)
    config = ShapesConfig() if config is None else config
    train = generate_shapes(n_train, seed=seed, config=config, start=0)
    test = generate_shapes(n_test, seed=seed, config=config, start=n_train)
    return ShapesSplit(
        x_train=train.images,
        labels_train=train.labels,
        x_test=test.images,
        labels_test=test.labels,
        config=config,
        seed=seed,
    )
