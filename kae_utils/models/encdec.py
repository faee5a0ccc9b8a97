"""A small encoder-decoder for dense (per-pixel) tasks, with named blocks that can be split.

``EncoderDecoder`` is an image-to-map network in three named parts:

* ``encoder``: ``len(widths)`` conv3x3-BN-ReLU stages; every stage after the first halves the
  resolution (stride 2), so the encoder output has ``widths[-1]`` channels at ``1 / 2**(len - 1)`` size;
* ``decoder``: ``len(widths) - 1`` blocks, each an ``x2`` nearest-neighbour upsampling followed by a
  conv3x3-BN-ReLU stage, going back through the widths in reverse to the input resolution;
* ``head``: a 1x1 convolution to the task's channels, then the task's output map (see ``DENSE_TASK_KINDS``).

There are no skip connections, so the network can be cut after any block: ``features(x, upto=b)``
returns the activation after the encoder (``b = 0``) or after decoder block ``b``, and
``forward_from(h, b)`` runs the remaining decoder blocks and the head on it. A network that shares the
first part of one model and continues through the rest of another (notebook 04's TargetNet) is built
from these two calls. ``branch_channels(b)`` gives the width of the activation at each cut.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from kae_utils.core.params import check_choice
from kae_utils.models.backbones import conv_bn_relu

__all__ = [
    "DENSE_TASK_KINDS",
    "DenseHead",
    "EncoderDecoder",
    "MultiTaskEncoderDecoder",
    "build_encdec",
    "build_multitask_encdec",
    "dense_output",
]

#: Output kinds of ``DenseHead``: ``segmentation`` (raw class logits), ``depth`` (positive: the exponential
#: of a predicted log-depth) and ``normals`` (3 channels, L2-normalised per pixel).
DENSE_TASK_KINDS: tuple[str, ...] = ("segmentation", "depth", "normals")

_LOG_DEPTH_CLAMP = 12.0  # exp(+-12) keeps a depth in float32 range early in training


def dense_output(z: torch.Tensor, kind: str) -> torch.Tensor:
    """The output map of a dense head's raw output ``z``: ``depth``, ``exp`` of the log-depth clamped to +-12;
    ``normals``, unit vectors over the channels; any other kind, ``z`` itself."""
    if kind == "depth":
        return torch.exp(z.clamp(-_LOG_DEPTH_CLAMP, _LOG_DEPTH_CLAMP))
    if kind == "normals":
        return F.normalize(z, dim=1, eps=1e-6)
    return z


def _encoder(in_channels: int, widths: Sequence[int]) -> nn.Sequential:
    """conv3x3-BN-ReLU stages of ``widths``; every stage after the first halves the resolution."""
    return nn.Sequential(
        conv_bn_relu(in_channels, widths[0]),
        *(conv_bn_relu(a, b, stride=2) for a, b in zip(widths[:-1], widths[1:], strict=True)),
    )


class _UpBlock(nn.Module):
    """x2 nearest-neighbour upsampling, then conv3x3-BN-ReLU."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = conv_bn_relu(c_in, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class DenseHead(nn.Module):
    """1x1 convolution to ``out_channels``, then the output map of ``kind``.

    ``segmentation``: logits ``(N, C, H, W)``; ``depth``: ``exp(z)`` with ``z`` the predicted log-depth
    (clamped to +-12), ``(N, 1, H, W)``, always > 0; ``normals``: unit vectors ``(N, 3, H, W)``.

    ``bias`` (optional) sets the initial bias of every output channel: for ``depth`` the log of a typical
    depth, so that training does not spend its first hundreds of steps moving the output to the right scale.
    """

    def __init__(self, c_in: int, kind: str, out_channels: int, bias: float | None = None) -> None:
        super().__init__()
        self.kind = str(check_choice("kind", kind, DENSE_TASK_KINDS))
        if self.kind == "depth" and out_channels != 1:
            raise ValueError(f"a depth head has 1 output channel; got out_channels={out_channels}")
        if self.kind == "normals" and out_channels != 3:
            raise ValueError(f"a normals head has 3 output channels; got out_channels={out_channels}")
        self.proj = nn.Conv2d(c_in, out_channels, 1)
        if bias is not None:
            nn.init.constant_(self.proj.bias, float(bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dense_output(self.proj(x), self.kind)


class EncoderDecoder(nn.Module):
    """Encoder (``widths``, downsampling), decoder (upsampling back), task head; see the module docstring.

    Args:
        kind: one of ``DENSE_TASK_KINDS``.
        out_channels: classes for ``segmentation``, 1 for ``depth``, 3 for ``normals``.
        in_channels: image channels.
        widths: channels of the encoder stages, e.g. ``(16, 32, 64)``; at least two. The input's
            height and width must be divisible by ``2 ** (len(widths) - 1)``.
        head_bias: initial bias of the head's outputs (``DenseHead``), e.g. the mean log-depth of the
            training targets for ``depth``; ``None`` keeps PyTorch's default initialisation.
    """

    def __init__(self, kind: str, out_channels: int, in_channels: int = 3,
                 widths: Sequence[int] = (16, 32, 64), head_bias: float | None = None) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if len(widths) < 2 or any(w < 1 for w in widths):
            raise ValueError(f"widths must hold at least two positive integers; got {widths}")
        self.widths, self.kind = widths, str(check_choice("kind", kind, DENSE_TASK_KINDS))
        self.encoder = _encoder(in_channels, widths)
        back = widths[::-1]
        self.decoder = nn.ModuleList(_UpBlock(a, b) for a, b in zip(back[:-1], back[1:], strict=True))
        self.head = DenseHead(widths[0], kind, out_channels, bias=head_bias)

    @property
    def num_branch_points(self) -> int:
        """Number of places the network can be cut: after the encoder and after each decoder block."""
        return len(self.decoder) + 1

    @property
    def factor(self) -> int:
        """The input's height and width must be multiples of this."""
        return 2 ** (len(self.widths) - 1)

    def _check_point(self, point: int) -> int:
        if not isinstance(point, int) or isinstance(point, bool) or not 0 <= point < self.num_branch_points:
            raise ValueError(
                f"branch point must be an integer in [0, {self.num_branch_points - 1}] "
                f"(0 = after the encoder, b = after decoder block b); got {point!r}"
            )
        return point

    def branch_channels(self, point: int) -> int:
        """Channels of the activation at branch point ``point``."""
        return self.widths[::-1][self._check_point(point)]

    def features(self, x: torch.Tensor, upto: int) -> torch.Tensor:
        """The activation after the encoder (``upto = 0``) or after decoder block ``upto`` (1-based)."""
        self._check_point(upto)
        if x.ndim != 4 or x.shape[-1] % self.factor or x.shape[-2] % self.factor:
            raise ValueError(
                f"expected images (N, C, H, W) with H and W divisible by {self.factor}; got {tuple(x.shape)}"
            )
        h = self.encoder(x)
        for block in self.decoder[:upto]:
            h = block(h)
        return h

    def forward_from(self, h: torch.Tensor, point: int) -> torch.Tensor:
        """Run decoder blocks ``point + 1 ..`` and the head on the activation ``h`` at branch point ``point``."""
        self._check_point(point)
        expected = self.branch_channels(point)
        if h.ndim != 4 or h.shape[1] != expected:
            raise ValueError(f"branch point {point} carries {expected} channels; got a tensor {tuple(h.shape)}")
        for block in self.decoder[point:]:
            h = block(h)
        return self.head(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_from(self.features(x, upto=0), 0)


def build_encdec(kind: str, out_channels: int, *, in_channels: int = 3, widths: Sequence[int] = (16, 32, 64),
                 head_bias: float | None = None, seed: int = 0) -> EncoderDecoder:
    """An ``EncoderDecoder`` with weights initialised from ``seed``, without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return EncoderDecoder(kind, out_channels, in_channels=in_channels, widths=widths, head_bias=head_bias)


class MultiTaskEncoderDecoder(nn.Module):
    """A supervised multi-task baseline: one shared encoder, then one decoder and head per task.

    Every task's part has the layout of :class:`EncoderDecoder` (the same widths), so the network has the
    parameters of one encoder plus one decoder and head per task ("hard parameter sharing").
    ``forward(x)`` returns ``{task: map}``.

    Args:
        tasks: ``{task kind: output channels}``, e.g. ``{"segmentation": 7, "depth": 1}``.
        in_channels, widths: as for :class:`EncoderDecoder`.
        encoder_widths: the shared encoder's stage widths, when they differ from ``widths`` (same number of
            stages): e.g. ``(16, 32, 80)`` with ``widths=(16, 32, 64)`` is a trunk wider than one single-task
            encoder whose decoders keep the single-task widths (their first block reads the wider output).
    """

    def __init__(self, tasks: dict[str, int], in_channels: int = 3, widths: Sequence[int] = (16, 32, 64),
                 encoder_widths: Sequence[int] | None = None) -> None:
        super().__init__()
        if not tasks:
            raise ValueError("a multi-task network needs at least one task")
        nets = {task: EncoderDecoder(task, channels, in_channels=in_channels, widths=widths)
                for task, channels in tasks.items()}
        first = next(iter(nets.values()))
        self.widths, self.encoder = first.widths, first.encoder
        self.encoder_widths = self.widths
        if encoder_widths is not None and tuple(int(w) for w in encoder_widths) != self.widths:
            self.encoder_widths = tuple(int(w) for w in encoder_widths)
            if len(self.encoder_widths) != len(self.widths) or min(self.encoder_widths) < 1:
                raise ValueError(f"encoder_widths must be {len(self.widths)} positive integers; got {encoder_widths}")
            self.encoder = _encoder(in_channels, self.encoder_widths)
            for net in nets.values():  # the first decoder block reads the wider encoder output
                net.decoder[0] = _UpBlock(self.encoder_widths[-1], self.widths[-2])
        self.decoders = nn.ModuleDict({task: net.decoder for task, net in nets.items()})
        self.heads = nn.ModuleDict({task: net.head for task, net in nets.items()})

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(self.heads)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        shared = self.encoder(x)
        out = {}
        for task, decoder in self.decoders.items():
            h = shared
            for block in decoder:
                h = block(h)
            out[task] = self.heads[task](h)
        return out


def build_multitask_encdec(tasks: dict[str, int], *, in_channels: int = 3, widths: Sequence[int] = (16, 32, 64),
                           encoder_widths: Sequence[int] | None = None, seed: int = 0) -> MultiTaskEncoderDecoder:
    """A ``MultiTaskEncoderDecoder`` with weights initialised from ``seed``, without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MultiTaskEncoderDecoder(dict(tasks), in_channels=in_channels, widths=widths,
                                       encoder_widths=encoder_widths)
