"""Recombination (notebook 07): teachers of one encoder-decoder architecture combined into one network that computes
exactly what they compute, and a BatchNorm-aware ranking of its encoder channels for pruning.

* :func:`combine_conv`, :func:`combine_bn`, :func:`combine_encoders`: the teachers' encoders side by side. The first
  convolution stacks the teachers' filters (every teacher reads the same image), every later one is block-diagonal,
  stored as an ordinary dense convolution whose off-diagonal blocks are zero; BatchNorm is per channel, so its
  parameters and running statistics are concatenated. Output block ``i`` of the combined encoder is teacher ``i``'s
  encoder output, in training mode as in eval mode.
* :func:`selection_adaptor`: a 1x1 convolution (and ReLU) that starts as the selection of one teacher's block of the
  combined encoder's output: the adaptor in front of that teacher's copied decoder computes, at initialisation,
  exactly what the decoder read in the teacher. Trained, it may read every teacher's channels.
* :class:`Recombined`: combined encoder, one selection adaptor per task, and the teachers' copied decoders and heads;
  at construction every task's output equals its teacher's (``tests/test_recombination.py`` checks it in both
  modes).
* :class:`FoldedL1Importance`: a Torch-Pruning importance, the L1 norm of each filter *after folding its BatchNorm*,
  ``||W_c||_1 * |gamma_c| / sqrt(var_c + eps)``. A raw filter norm says little about a channel that BatchNorm
  rescales, and nothing across networks whose BatchNorms rescale differently; the folded norm is the norm of the
  filter that the channel effectively applies in eval mode.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch_pruning as tp
from torch import nn

__all__ = [
    "FoldedL1Importance",
    "Recombined",
    "channel_owners",
    "combine_bn",
    "combine_conv",
    "combine_encoders",
    "folded_l1",
    "selection_adaptor",
]


def combine_conv(convs: Sequence[nn.Conv2d], first: bool) -> nn.Conv2d:
    """One convolution from the teachers' ``convs``: ``[W_1; ...; W_N]`` when ``first`` (all read the same input),
    ``blockdiag(W_1, ..., W_N)`` (dense, ``groups = 1``, zeros off the diagonal) otherwise; biases concatenated.

    Only ordinary convolutions with the same kernel, stride, padding and dilation are accepted; anything else raises
    ``ValueError`` naming the layer.
    """
    if not convs:
        raise ValueError("need at least one convolution to combine")
    ref = convs[0]
    for c in convs:
        if not isinstance(c, nn.Conv2d) or c.groups != 1:
            raise ValueError(f"cannot combine {c}: only ordinary convolutions (groups = 1) are supported")
        if (c.kernel_size, c.stride, c.padding, c.dilation) != (ref.kernel_size, ref.stride, ref.padding, ref.dilation):
            raise ValueError(f"cannot combine {c} with {ref}: kernel, stride, padding and dilation must agree")
        if (c.bias is None) != (ref.bias is None):
            raise ValueError("cannot combine convolutions with and without bias")
        if first and c.in_channels != ref.in_channels:
            raise ValueError(f"first convolutions must read the same input; got {c.in_channels} and {ref.in_channels} channels")
    c_in = ref.in_channels if first else sum(c.in_channels for c in convs)
    out = nn.Conv2d(c_in, sum(c.out_channels for c in convs), ref.kernel_size, stride=ref.stride,
                    padding=ref.padding, dilation=ref.dilation, bias=ref.bias is not None)
    with torch.no_grad():
        out.weight.zero_()
        row = col = 0
        for c in convs:
            cols = slice(None) if first else slice(col, col + c.in_channels)
            out.weight[row:row + c.out_channels, cols] = c.weight
            if c.bias is not None:
                out.bias[row:row + c.out_channels] = c.bias
            row, col = row + c.out_channels, col + c.in_channels
    return out


def combine_bn(bns: Sequence[nn.BatchNorm2d]) -> nn.BatchNorm2d:
    """One BatchNorm from the teachers' ``bns``: scale, shift and running statistics concatenated (they must share
    ``eps`` and ``momentum``)."""
    if not bns:
        raise ValueError("need at least one BatchNorm to combine")
    if len({(b.eps, b.momentum, b.affine) for b in bns}) != 1:
        raise ValueError("cannot combine BatchNorm layers with different eps, momentum or affine")
    out = nn.BatchNorm2d(sum(b.num_features for b in bns), eps=bns[0].eps, momentum=bns[0].momentum,
                         affine=bns[0].affine)
    with torch.no_grad():
        names = ("weight", "bias", "running_mean", "running_var") if bns[0].affine else ("running_mean", "running_var")
        for name in names:
            getattr(out, name).copy_(torch.cat([getattr(b, name) for b in bns]))
        out.num_batches_tracked.copy_(bns[0].num_batches_tracked)
    return out


def combine_encoders(encoders: Sequence[nn.Sequential]) -> nn.Sequential:
    """The teachers' encoders, stage by stage, as one: each stage a conv-BatchNorm-ReLU (the only stage this rule
    covers; anything else raises ``ValueError`` naming the stage)."""
    stages = []
    for index, parts in enumerate(zip(*encoders, strict=True)):
        kinds = [[type(m) for m in part] for part in parts]
        if any(k != [nn.Conv2d, nn.BatchNorm2d, nn.ReLU] for k in kinds):
            raise ValueError(f"stage {index}: only conv-BatchNorm-ReLU stages can be combined; got {kinds[0]}")
        conv = combine_conv([part[0] for part in parts], first=index == 0)
        stages.append(nn.Sequential(conv, combine_bn([part[1] for part in parts]), nn.ReLU()))
    return nn.Sequential(*stages)


def selection_adaptor(in_channels: int, start: int, width: int) -> nn.Sequential:
    """A 1x1 convolution with bias, then ReLU, that starts as the selection of input channels ``start .. start +
    width - 1``: on non-negative inputs (a ReLU's output) it returns exactly those channels."""
    if start < 0 or width < 1 or start + width > in_channels:
        raise ValueError(f"channels {start}..{start + width - 1} are not among the {in_channels} input channels")
    conv = nn.Conv2d(in_channels, width, 1)
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        conv.weight[:, start:start + width, 0, 0] = torch.eye(width)
    return nn.Sequential(conv, nn.ReLU())


class Recombined(nn.Module):
    """Combined encoder -> per-task :func:`selection_adaptor` -> that teacher's copied decoder and head.

    ``teachers`` is ``{task: EncoderDecoder}`` (one encoder-decoder architecture: conv-BN-ReLU encoder stages, an
    ``encoder``, ``decoder`` and ``head``); ``forward(x)`` returns ``{task: map}``. At construction every task's output
    equals its teacher's, in eval mode and in training mode.
    """

    def __init__(self, teachers: Mapping[str, nn.Module]) -> None:
        super().__init__()
        if not teachers:
            raise ValueError("need at least one teacher")
        self.tasks = list(teachers)
        self.encoder = combine_encoders([t.encoder for t in teachers.values()])
        widths = [t.encoder[-1][0].out_channels for t in teachers.values()]
        total, starts = sum(widths), np.cumsum([0, *widths[:-1]]).tolist()
        self.adaptors = nn.ModuleDict({task: selection_adaptor(total, start, width)
                                       for task, start, width in zip(self.tasks, starts, widths, strict=True)})
        self.decoders = nn.ModuleDict({k: copy.deepcopy(t.decoder) for k, t in teachers.items()})
        self.heads = nn.ModuleDict({k: copy.deepcopy(t.head) for k, t in teachers.items()})

    def copied(self) -> list[nn.Module]:
        """The parts copied from the teachers: the combined encoder, the decoders and the heads."""
        return [self.encoder, self.decoders, self.heads]

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.encoder(x)
        out = {}
        for task in self.tasks:
            z = self.adaptors[task](h)
            for block in self.decoders[task]:
                z = block(z)
            out[task] = self.heads[task](z)
        return out


def channel_owners(teacher_encoders: Sequence[nn.Sequential]) -> list[np.ndarray]:
    """Per stage of the combined encoder, the teacher (its index) each output channel comes from."""
    return [np.concatenate([np.full(part[0].out_channels, i) for i, part in enumerate(parts)])
            for parts in zip(*teacher_encoders, strict=True)]


@torch.no_grad()
def folded_l1(conv: nn.Conv2d, bn: nn.BatchNorm2d | None = None) -> torch.Tensor:
    """Per output channel of ``conv``, the L1 norm of its filter, times ``|gamma| / sqrt(running_var + eps)`` of the
    BatchNorm that follows it (the filter's norm after folding the BatchNorm into it); the raw L1 norm without ``bn``."""
    norms = conv.weight.detach().abs().flatten(1).sum(1)
    if bn is None:
        return norms
    if bn.num_features != conv.out_channels:
        raise ValueError(f"a BatchNorm of {bn.num_features} channels cannot follow a conv of {conv.out_channels}")
    gamma = bn.weight.detach().abs() if bn.affine else torch.ones_like(norms)
    return norms * gamma / torch.sqrt(bn.running_var + bn.eps)


class FoldedL1Importance(tp.importance.Importance):
    """Torch-Pruning importance: :func:`folded_l1` of the group's root convolution and the BatchNorm in its group.

    For a group rooted at a convolution's output channels (``tp.prune_conv_out_channels``), the score of each channel
    is the L1 norm of its filter times ``|gamma| / sqrt(running_var + eps)`` of the BatchNorm pruned with it; a group
    without a BatchNorm gets the raw L1 norm (``MagnitudeImportance(p=1, group_reduction="first", normalizer=None)``),
    a group without a convolution's output channels ``None`` (not pruned).
    """

    @torch.no_grad()
    def __call__(self, group: tp.Group) -> torch.Tensor | None:
        norms = scale = None
        for i, (dep, idxs) in enumerate(group):
            layer, fn, root_idxs = dep.layer, dep.pruning_fn, group[i].root_idxs
            if fn == tp.prune_conv_out_channels and norms is None:
                values = layer.weight.detach().abs()[idxs].flatten(1).sum(1)
                where = torch.as_tensor(root_idxs, device=values.device)
                norms = torch.zeros_like(values).scatter_(0, where, values)
            elif fn == tp.prune_batchnorm_out_channels and scale is None and isinstance(layer, nn.BatchNorm2d):
                std = torch.sqrt(layer.running_var[idxs] + layer.eps)
                gamma = layer.weight.detach().abs()[idxs] if layer.affine else torch.ones_like(std)
                where = torch.as_tensor(root_idxs, device=std.device)
                scale = torch.zeros_like(std).scatter_(0, where, gamma / std)
        if norms is None:
            return None
        return norms * scale if scale is not None else norms
