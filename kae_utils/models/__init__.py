"""Backbones with named feature taps, an encoder-decoder for dense tasks, the mini-Taskonomy's TaskNet, a seeded
model factory, parameter counting."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from kae_utils.core.params import check_choice
from kae_utils.models.backbones import MLP, BasicBlock, ConvNet, MultiHeadNet, ResNet
from kae_utils.models.encdec import (
    DENSE_TASK_KINDS,
    DenseHead,
    EncoderDecoder,
    MultiTaskEncoderDecoder,
    build_encdec,
    build_multitask_encdec,
)
from kae_utils.models.taps import FeatureTaps
from kae_utils.models.tasknet import (
    HEAD_OUTPUTS,
    Add,
    ResidualBlock,
    TaskEncoder,
    TaskNet,
    build_task_encoder,
    build_tasknet,
)

#: Architectures ``build_model`` knows.
ARCHITECTURES: dict[str, type[nn.Module]] = {"convnet": ConvNet, "resnet": ResNet, "mlp": MLP}


def build_model(
    arch: str,
    num_classes: int,
    *,
    in_channels: int = 1,
    widths: Sequence[int] = (16, 32, 64),
    seed: int = 0,
    **kwargs: object,
) -> nn.Module:
    """Build ``arch`` with weights initialised from ``seed``, without touching the global RNG.

    The same (arch, sizes, seed) always gives the same initial weights, whatever ran before, so
    cached and freshly trained runs of a notebook stay identical. Extra keyword arguments go to the
    class (``blocks`` for ``resnet``, ``image_size`` and ``dropout`` for ``mlp``, ...).
    """
    check_choice("arch", arch, ARCHITECTURES)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ARCHITECTURES[arch](num_classes, in_channels=in_channels, widths=widths, **kwargs)


def build_multihead(backbone: str, heads: dict[str, int], *, in_channels: int = 3,
                    widths: Sequence[int] = (16, 32, 64), seed: int = 0, **kwargs: object) -> MultiHeadNet:
    """A ``MultiHeadNet`` with weights initialised from ``seed``, without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MultiHeadNet(backbone, dict(heads), in_channels=in_channels, widths=widths, **kwargs)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``model`` (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


__all__ = [
    "ARCHITECTURES",
    "Add",
    "HEAD_OUTPUTS",
    "ResidualBlock",
    "TaskEncoder",
    "TaskNet",
    "build_task_encoder",
    "build_tasknet",
    "BasicBlock",
    "ConvNet",
    "DENSE_TASK_KINDS",
    "DenseHead",
    "EncoderDecoder",
    "FeatureTaps",
    "MLP",
    "MultiHeadNet",
    "MultiTaskEncoderDecoder",
    "ResNet",
    "build_encdec",
    "build_multitask_encdec",
    "build_model",
    "build_multihead",
    "count_parameters",
]
