"""The pretrained backbones: stand-ins for ImageNet pretraining, one per architecture the notebooks start from.
"""

from __future__ import annotations

import math

from kae_utils.data.shapes_config import ATTRIBUTE_VALUES
from kae_utils.zoo.entries import Recipe, ZooEntry
from kae_utils.zoo.registry.common import (
    DIGITS_PRETRAIN_LABELS,
    SHAPES_PRETRAIN_LABELS,
    digits_split,
    pretrain_images,
    shapes_split,
)

__all__ = ["backbone_entries"]


def backbone_entries() -> list[ZooEntry]:
    """Stand-ins for ImageNet pretraining, one per architecture the notebooks start from."""
    families = (  # (prefix, profile, image view, channels, images, labels, probe split, recipe, architectures)
        ("digits", "quick", "silhouette", 1, 30000, DIGITS_PRETRAIN_LABELS, digits_split,
         Recipe(epochs=15, lr=3e-3, batch_size=256),
         [("convnet", (16, 32, 64)), ("resnet", (24, 48, 96)), ("convnet", (32, 64, 128)), ("resnet", (32, 64, 128))]),
        ("shapes", "full", "rgb", 3, 50000, SHAPES_PRETRAIN_LABELS, shapes_split,
         Recipe(epochs=10, lr=2e-3, batch_size=256),
         [("convnet", (32, 64, 128)), ("resnet", (48, 96, 192)), ("convnet", (64, 128, 256)), ("resnet", (64, 128, 256))]),
    )
    entries = []
    for prefix, profile, view, channels, n, labels, probe_split, recipe, archs in families:
        classes = math.prod(len(ATTRIBUTE_VALUES[a]) for a in labels)
        for arch, widths in archs:
            teachers_too = (arch, widths) == archs[0]  # the first is also the teachers' (02 and 03) backbone
            entries.append(ZooEntry(
                name=f"{prefix}-pre-{arch}{widths[0]}",
                task=f"pretraining (for {prefix}): {' x '.join(labels)} of {'8x8 shape silhouettes' if view == 'silhouette' else '32x32 shapes'}, {classes} classes",
                arch=arch, arch_args={"num_classes": classes, "in_channels": channels, "widths": list(widths)},
                data=pretrain_images(0, n, view, labels), held_out=pretrain_images(n, n // 10, view, labels),
                probe={"train": probe_split("train"), "test": probe_split("test")}, recipe=recipe, seed=0,
                used_by=("02", "03") if teachers_too else ("03",), profile=profile))
    return entries
