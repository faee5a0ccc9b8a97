"""Building blocks of adaptive knowledge amalgamation (notebook 05; Shen et al., ICCV 2019): the entropy of a
source's prediction, the per-image choice of the least ambiguous source, the pre-activation features of a
multi-head net, 1x1 "transfer bridges", the unit-norm regulariser on the bridges' rows, and the per-image logit
losses of stage 1 (the authors' MSE and the KL this repository uses instead).

The losses and the two training stages stay in the notebook, next to their explanation; these pieces are here
so that they are unit-tested (golden values in tests/test_adaptive.py). Everything about the losses follows the
authors' code (KAmalEngine ``customize_attribute.py``), as an assumption: the paper's text could not be read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from kae_utils.models.backbones import ConvNet, MultiHeadNet, ResNet
from kae_utils.training.numerics import float32_loss

__all__ = [
    "LOGIT_LOSSES",
    "bridge_row_norms",
    "feature_mse_per_image",
    "logit_loss_per_image",
    "min_entropy_choice",
    "prediction_entropy",
    "preactivation_features",
    "transfer_bridges",
    "unit_norm_penalty",
]


def prediction_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy ``H = -sum_c p_c log p_c`` (natural log) of ``softmax(logits)`` per row: ``(N, C) -> (N,)``.

    0 for a one-hot prediction, ``log C`` for a uniform one; computed from ``log_softmax``, so it is finite
    for any finite logits.
    """
    if logits.ndim != 2:
        raise ValueError(f"logits must be (N, C); got shape {tuple(logits.shape)}")
    log_p = F.log_softmax(logits.float(), dim=1)
    return -(log_p.exp() * log_p).sum(dim=1)


def min_entropy_choice(logits_per_source: Sequence[torch.Tensor]) -> torch.Tensor:
    """For every image, the index of the source whose prediction has the lowest entropy (ties: the first).

    ``logits_per_source[t]`` is source ``t``'s ``(N, C)`` logits of one task on the same ``N`` images (only
    that task's head: the entropy is of the task's own softmax). Returns ``(N,)`` int64 indices into the list.
    """
    if not logits_per_source:
        raise ValueError("need the logits of at least one source")
    shapes = {tuple(z.shape) for z in logits_per_source}
    if len(shapes) != 1:
        raise ValueError(f"every source's logits must have the same shape (N, C); got {sorted(shapes)}")
    entropies = torch.stack([prediction_entropy(z) for z in logits_per_source], dim=1)  # (N, T)
    return entropies.argmin(dim=1)  # torch.argmin returns the first of equal minima


def preactivation_features(model: MultiHeadNet, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
    """A ``MultiHeadNet``'s head logits and the **pre-activation** output of every backbone stage.

    Returns ``({task: logits}, [F_1, ..., F_K])`` with ``F_k`` the last activation's *input* in stage ``k``:
    for a ``ConvNet`` the BatchNorm output before the ReLU (and before the stage's max-pooling), for a
    ``ResNet`` the sum of the last block's residual branch and shortcut before its ReLU (the authors' taps
    sit there, on ``BasicBlock_last``). The logits equal ``model(x)``.
    """
    backbone = model.backbone
    feats: list[torch.Tensor] = []
    if isinstance(backbone, ConvNet):
        h = x
        for stage in backbone.stages:
            conv_bn_relu, *rest = stage
            conv, bn, _relu = conv_bn_relu
            pre = bn(conv(h))
            feats.append(pre)
            h = torch.relu(pre)
            for layer in rest:  # the max-pooling, if any
                h = layer(h)
    elif isinstance(backbone, ResNet):
        h = backbone.stem(x)
        for stage in backbone.stages:
            *blocks, last = stage
            for block in blocks:
                h = block(h)
            out = torch.relu(last.bn1(last.conv1(h)))
            pre = last.bn2(last.conv2(out)) + last.shortcut(h)
            feats.append(pre)
            h = torch.relu(pre)
    else:
        raise TypeError(f"pre-activation taps know ConvNet and ResNet backbones; got {type(backbone).__name__}")
    pooled = torch.flatten(F.adaptive_avg_pool2d(h, 1), 1)
    return {task: head(pooled) for task, head in model.heads.items()}, feats


def transfer_bridges(in_channels: Sequence[int], out_channels: Sequence[int]) -> nn.ModuleList:
    """One 1x1 convolution (no bias) per tap, ``in_channels[b] -> out_channels[b]``: the "transfer bridges"
    that bring two networks' features of different widths into a common space (the authors' ``EncoderModule``)."""
    if len(in_channels) != len(out_channels) or not in_channels:
        raise ValueError(f"one output width per tap: got {list(in_channels)} -> {list(out_channels)}")
    if any(int(c) < 1 for c in (*in_channels, *out_channels)):
        raise ValueError("bridge widths must be positive")
    return nn.ModuleList(nn.Conv2d(int(i), int(o), kernel_size=1, bias=False)
                         for i, o in zip(in_channels, out_channels, strict=True))


def bridge_row_norms(bridge: nn.Conv2d) -> torch.Tensor:
    """The squared L2 norm of every output row of a 1x1 bridge: ``sum_in w[o, in]^2``, shape ``(out,)``."""
    return bridge.weight.flatten(1).pow(2).sum(dim=1)


def unit_norm_penalty(bridges: Iterable[nn.Conv2d]) -> torch.Tensor:
    """``R = sum_W mean_o ((sum_in W[o, in]^2) - 1)^2`` over the given bridges (the authors' ``cal_wn_loss``).

    It keeps every output row of a bridge at unit squared norm, so the two sides cannot meet in the trivial
    solution of all-zero bridges. Applied once per source to its source-side bridges (not once per tap).
    """
    terms = [(bridge_row_norms(b) - 1).pow(2).mean() for b in bridges]
    if not terms:
        raise ValueError("unit_norm_penalty needs at least one bridge")
    return torch.stack(terms).sum()


#: The logit terms :func:`logit_loss_per_image` knows: ``"kl"`` (this repository) and ``"mse"`` (the authors' code).
LOGIT_LOSSES: tuple[str, ...] = ("kl", "mse")


@float32_loss
def logit_loss_per_image(student_logits: torch.Tensor, teacher_logits: torch.Tensor, kind: str = "kl") -> torch.Tensor:
    """The logit term of one image, for every image of a batch: ``(N, C), (N, C) -> (N,)``.

    * ``"mse"``: the authors' code (``customize_attribute.py``): the mean over the ``C`` classes of
      ``(z_s - z_t)^2``, so that the batch mean of these values is ``F.mse_loss(z_s, z_t)``;
    * ``"kl"``: ``KL(softmax(z_t) || softmax(z_s)) = sum_c p_t log(p_t / p_s)`` at temperature 1, as the
      authors' layer-wise amalgamation (notebook 02) matches scores. It depends only on the teacher's
      *distribution*, not on the size of its logits: a confident source's larger logits do not weigh more.

    Per image, so that the selection weights of adaptive amalgamation can weigh each image's term; computed in
    float32 under autocast.
    """
    if kind not in LOGIT_LOSSES:
        raise ValueError(f"kind must be one of {', '.join(repr(k) for k in LOGIT_LOSSES)}; got {kind!r}")
    if student_logits.ndim != 2 or student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student and teacher logits must both be (N, C); got {tuple(student_logits.shape)} "
                         f"and {tuple(teacher_logits.shape)}")
    if kind == "mse":
        return (student_logits - teacher_logits).pow(2).mean(dim=1)
    log_p_s = F.log_softmax(student_logits, dim=1)
    log_p_t = F.log_softmax(teacher_logits, dim=1)
    return (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=1)


@float32_loss
def feature_mse_per_image(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The mean squared difference of two feature maps, per image: ``(N, ...), (N, ...) -> (N,)``; its batch mean
    is ``F.mse_loss(a, b)``. Computed in float32 under autocast (the bridges' outputs may be bfloat16)."""
    if a.shape != b.shape or a.ndim < 2:
        raise ValueError(f"feature maps must have the same shape (N, ...); got {tuple(a.shape)} and {tuple(b.shape)}")
    return (a - b).pow(2).flatten(1).mean(dim=1)
