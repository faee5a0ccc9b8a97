"""Two small CNN families of different structure (and an MLP), width and depth adjustable, with feature taps.

* ``ConvNet``: a plain stack of conv-BN-ReLU-maxpool stages (a VGG in miniature).
* ``ResNet``: a stem then stages of residual basic blocks, downsampling by stride (a ResNet in miniature).
* ``MLP``: fully connected layers on the flattened image (Hinton et al.'s student).

Both end in global average pooling and a linear classifier, and both return a dict of named
intermediate features on request: ``model(x, return_features=True) -> (logits, {name: tensor})``.
``model.feature_names`` lists the names in order (``stage1`` .. ``stageK``, ``pool``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["BasicBlock", "ConvNet", "MLP", "MultiHeadNet", "ResNet", "conv_bn_relu"]


def conv_bn_relu(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    """3x3 convolution (no bias, ``stride``), BatchNorm, in-place ReLU."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def _check_widths(widths: Sequence[int]) -> tuple[int, ...]:
    widths = tuple(int(w) for w in widths)
    if not widths or any(w < 1 for w in widths):
        raise ValueError(f"widths must be a non-empty sequence of positive integers; got {widths}")
    return widths


class _TappedBackbone(nn.Module):
    """Shared forward: stages in order, then global pooling and the classifier."""

    stages: nn.ModuleList
    classifier: nn.Linear

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f"stage{i + 1}" for i in range(len(self.stages))) + ("pool",)

    @property
    def feature_dim(self) -> int:
        return self.classifier.in_features

    def stem_forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def forward(self, x: torch.Tensor, return_features: bool = False):
        feats: dict[str, torch.Tensor] = {}
        h = self.stem_forward(x)
        for i, stage in enumerate(self.stages):
            h = stage(h)
            feats[f"stage{i + 1}"] = h
        pooled = torch.flatten(nn.functional.adaptive_avg_pool2d(h, 1), 1)
        feats["pool"] = pooled
        logits = self.classifier(pooled)
        return (logits, feats) if return_features else logits


class ConvNet(_TappedBackbone):
    """Plain CNN: ``len(widths)`` stages of conv3x3-BN-ReLU (+ 2x2 max-pool), GAP, linear.

    Args:
        num_classes: outputs of the classifier.
        in_channels: image channels.
        widths: channels of each stage, e.g. ``(16, 32, 64)``.
        pool_every_stage: max-pool after every stage (otherwise only after the first ``len-1``).
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 1,
        widths: Sequence[int] = (16, 32, 64),
        pool_every_stage: bool = False,
    ) -> None:
        super().__init__()
        widths = _check_widths(widths)
        stages = []
        c_in = in_channels
        for i, w in enumerate(widths):
            layers: list[nn.Module] = [conv_bn_relu(c_in, w)]
            if pool_every_stage or i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            stages.append(nn.Sequential(*layers))
            c_in = w
        self.stages = nn.ModuleList(stages)
        self.classifier = nn.Linear(c_in, num_classes)
        self.widths = widths


class BasicBlock(nn.Module):
    """Residual block: two conv3x3-BN, identity or 1x1 projection shortcut, ReLU after the sum."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet(_TappedBackbone):
    """Small residual net: conv3x3 stem, then one stage per width of ``blocks`` basic blocks.

    The first stage keeps the resolution; each later stage halves it with a stride-2 first block.
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 1,
        widths: Sequence[int] = (16, 32, 64),
        blocks: int = 1,
    ) -> None:
        super().__init__()
        widths = _check_widths(widths)
        if blocks < 1:
            raise ValueError(f"blocks must be >= 1; got {blocks}")
        self.stem = conv_bn_relu(in_channels, widths[0])
        stages = []
        c_in = widths[0]
        for i, w in enumerate(widths):
            layers = [BasicBlock(c_in, w, stride=1 if i == 0 else 2)]
            layers += [BasicBlock(w, w) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*layers))
            c_in = w
        self.stages = nn.ModuleList(stages)
        self.classifier = nn.Linear(c_in, num_classes)
        self.widths = widths

    def stem_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stem(x)


class MLP(nn.Module):
    """Fully connected net on flattened images: hidden ReLU layers of ``widths`` units, then a classifier.

    The student of Hinton et al. (2015) was an MLP like this one. Taps: ``hidden1`` .. ``hiddenK``;
    ``pool`` is the last hidden layer (the input of the classifier), as for the CNN families.
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 1,
        widths: Sequence[int] = (128, 128),
        image_size: int = 8,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        widths = _check_widths(widths)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {dropout}")
        c_in = in_channels * image_size * image_size
        self.in_features = c_in
        layers = []
        for w in widths:
            layers.append(nn.Sequential(nn.Linear(c_in, w), nn.ReLU(inplace=True), nn.Dropout(dropout)))
            c_in = w
        self.hidden = nn.ModuleList(layers)
        self.classifier = nn.Linear(c_in, num_classes)
        self.widths = widths

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f"hidden{i + 1}" for i in range(len(self.hidden))) + ("pool",)

    @property
    def feature_dim(self) -> int:
        return self.classifier.in_features

    def forward(self, x: torch.Tensor, return_features: bool = False):
        h = torch.flatten(x, 1)
        if h.shape[1] != self.in_features:
            raise ValueError(f"MLP expects {self.in_features} input values per image; got {h.shape[1]}")
        feats: dict[str, torch.Tensor] = {}
        for i, layer in enumerate(self.hidden):
            h = layer(h)
            feats[f"hidden{i + 1}"] = h
        feats["pool"] = h
        logits = self.classifier(h)
        return (logits, feats) if return_features else logits


class MultiHeadNet(nn.Module):
    """One backbone (``ConvNet`` or ``ResNet``) with one linear head per task on its pooled features.

    ``forward(x)`` returns ``{task: logits}``; ``forward(x, return_features=True)`` also the backbone's
    named features (``stage1`` .. ``pool``). A multi-task teacher or student of attribute tasks
    (notebooks 05 and 06): e.g. ``MultiHeadNet("convnet", {"shape": 8, "colour": 6}, in_channels=3)``.
    """

    def __init__(self, backbone: str, heads: dict[str, int], in_channels: int = 3,
                 widths: Sequence[int] = (16, 32, 64), **kwargs: object) -> None:
        super().__init__()
        if not heads:
            raise ValueError("a multi-head net needs at least one head")
        families = {"convnet": ConvNet, "resnet": ResNet}
        if backbone not in families:
            raise ValueError(f"backbone must be one of 'convnet', 'resnet'; got {backbone!r}")
        self.backbone = families[backbone](1, in_channels=in_channels, widths=widths, **kwargs)
        dim = self.backbone.feature_dim
        self.backbone.classifier = nn.Identity()  # replaced by the heads
        self.heads = nn.ModuleDict({task: nn.Linear(dim, int(n)) for task, n in heads.items()})
        self.feature_dim = dim

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(self.heads)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.backbone.feature_names

    def forward(self, x: torch.Tensor, return_features: bool = False):
        _, feats = self.backbone(x, return_features=True)
        logits = {task: head(feats["pool"]) for task, head in self.heads.items()}
        return (logits, feats) if return_features else logits
