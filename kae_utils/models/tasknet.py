"""The mini-Taskonomy's network: one encoder architecture for every task, and a small decoder per task.

Notebooks 08 and 09 compare models that share **one encoder architecture** and differ only in the task they
were trained on (Song et al. 2019 use the 20 Taskonomy task-bank models). ``TaskNet`` is that model:

* ``encoder`` (:class:`TaskEncoder`): a stride-2 conv3x3-BN-ReLU stem, then one stride-2 stage per further
  width (conv3x3-BN-ReLU and ``blocks`` residual blocks), then a 1x1 convolution, BatchNorm and (``code_relu``)
  a ReLU down to ``code_channels``: the *representation* that is transferred and attributed (quick: 8 x 8 x 8
  for 32 x 32 images). Taskonomy's encoders end the same way (a convolution to 8 channels, BatchNorm, ReLU),
  so the representation is non-negative; without the ReLU each channel's sign is arbitrary (a decoder undoes
  any sign), and so is the sum that the attribution maps explain. Every layer is a module used once, ReLUs are not in-place and the residual sums are ``Add``
  modules, so the layer-wise relevance propagation of Captum (which hooks every leaf module and refuses a
  module used twice) runs on it.
* ``decoder``: for a dense task, conv3x3-BN-ReLU and, per halving of the encoder, an x2 upsampling and a
  conv3x3-BN-ReLU back to the input resolution, then a 1x1 convolution; for an image-level task, a
  conv3x3-BN-ReLU, global average pooling and a linear layer.
* the output kind (``kae_utils.benchmarks.tasks.OUTPUT_KINDS``): logits, a free map, a positive depth (``exp``), unit
  normals, or one vector per image.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from kae_utils.models.encdec import dense_output

__all__ = ["HEAD_OUTPUTS", "Add", "ResidualBlock", "TaskEncoder", "TaskNet", "build_task_encoder", "build_tasknet"]

#: Output kinds a ``TaskNet`` head knows (the same names as ``kae_utils.benchmarks.tasks.OUTPUT_KINDS``).
HEAD_OUTPUTS: tuple[str, ...] = ("classes", "binary", "regression", "depth", "normals", "image-classes",
                                 "image-regression")


class Add(nn.Module):
    """``a + b`` as a module (a residual sum that attribution methods can hook, like Captum's ``Addition_Module``)."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


def _conv_bn_relu(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    """3x3 convolution, BatchNorm, ReLU, the ReLU *not* in place (unlike ``backbones.conv_bn_relu``): see the
    module docstring."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=False))


class ResidualBlock(nn.Module):
    """``relu(x + bn(conv(relu(bn(conv(x))))))`` with two separate ReLU modules and an ``Add`` module."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu1 = nn.ReLU(inplace=False)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.add = Add()
        self.relu2 = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(self.add(x, h))


class TaskEncoder(nn.Module):
    """Images ``(N, in_channels, H, W)`` to the representation ``(N, code_channels, H / 2**k, W / 2**k)``,
    ``k = len(widths)`` (see the module docstring)."""

    def __init__(self, widths: Sequence[int] = (16, 32), code_channels: int = 8, blocks: int = 1,
                 in_channels: int = 3, code_relu: bool = True) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if not widths or any(w < 1 for w in widths) or code_channels < 1 or blocks < 0:
            raise ValueError(f"widths must be positive integers (at least one), code_channels >= 1 and blocks >= 0; "
                             f"got widths={widths}, code_channels={code_channels}, blocks={blocks}")
        self.widths, self.code_channels, self.blocks, self.code_relu = widths, int(code_channels), int(blocks), bool(code_relu)
        layers: list[nn.Module] = [_conv_bn_relu(in_channels, widths[0], stride=2)]
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            layers.append(_conv_bn_relu(c_in, c_out, stride=2))
            layers.extend(ResidualBlock(c_out) for _ in range(blocks))
        if len(widths) == 1:
            layers.extend(ResidualBlock(widths[0]) for _ in range(blocks))
        self.stages = nn.Sequential(*layers)
        code: list[nn.Module] = [nn.Conv2d(widths[-1], code_channels, 1, bias=False), nn.BatchNorm2d(code_channels)]
        if code_relu:
            code.append(nn.ReLU(inplace=False))
        self.code = nn.Sequential(*code)

    @property
    def factor(self) -> int:
        """How much smaller the representation is than the image, per side."""
        return 2 ** len(self.widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[-1] % self.factor or x.shape[-2] % self.factor:
            raise ValueError(f"expected images (N, C, H, W) with H and W divisible by {self.factor}; "
                             f"got {tuple(x.shape)}")
        return self.code(self.stages(x))


class _DenseDecoder(nn.Module):
    def __init__(self, code_channels: int, widths: Sequence[int], out_channels: int) -> None:
        super().__init__()
        back = tuple(widths)[::-1]
        self.inp = _conv_bn_relu(code_channels, back[0])
        ups = []
        for c_in, c_out in zip(back, (*back[1:], back[-1]), strict=True):
            ups.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), _conv_bn_relu(c_in, c_out)))
        self.ups = nn.Sequential(*ups)
        self.proj = nn.Conv2d(back[-1], out_channels, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.proj(self.ups(self.inp(z)))


class _ImageDecoder(nn.Module):
    def __init__(self, code_channels: int, widths: Sequence[int], out_channels: int) -> None:
        super().__init__()
        self.inp = _conv_bn_relu(code_channels, widths[-1])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.proj = nn.Linear(widths[-1], out_channels)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.proj(self.pool(self.inp(z)).flatten(1))


class TaskNet(nn.Module):
    """``TaskEncoder`` + a task decoder + the output kind; ``forward(x)`` is the task's prediction,
    ``features(x)`` the encoder's representation.

    Args:
        output: one of ``HEAD_OUTPUTS``.
        out_channels: classes, or channels of the map / numbers per image.
        widths, code_channels, blocks, in_channels, code_relu: of the encoder (the decoder mirrors ``widths``).
        head_bias: initial bias of the last layer (e.g. the mean log-depth of the training labels).
    """

    def __init__(self, output: str, out_channels: int, widths: Sequence[int] = (16, 32), code_channels: int = 8,
                 blocks: int = 1, in_channels: int = 3, head_bias: float | None = None, code_relu: bool = True) -> None:
        super().__init__()
        if output not in HEAD_OUTPUTS:
            raise ValueError(f"output must be one of {', '.join(map(repr, HEAD_OUTPUTS))}; got {output!r}")
        if output == "depth" and out_channels != 1 or output == "normals" and out_channels != 3:
            raise ValueError(f"a {output} head has {1 if output == 'depth' else 3} output channel(s); "
                             f"got out_channels={out_channels}")
        self.output = output
        self.encoder = TaskEncoder(widths, code_channels, blocks, in_channels, code_relu)
        decoder = _ImageDecoder if output.startswith("image-") else _DenseDecoder
        self.decoder = decoder(code_channels, widths, out_channels)
        if head_bias is not None:
            nn.init.constant_(self.decoder.proj.bias, float(head_bias))

    @property
    def dense(self) -> bool:
        return not self.output.startswith("image-")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dense_output(self.decoder(self.encoder(x)), self.output)


def build_task_encoder(widths: Sequence[int] = (16, 32), code_channels: int = 8, blocks: int = 1,
                       in_channels: int = 3, seed: int = 0, code_relu: bool = True) -> TaskEncoder:
    """A ``TaskEncoder`` initialised from ``seed`` without touching the global RNG (e.g. a random-weights reference)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return TaskEncoder(widths, code_channels, blocks, in_channels, code_relu)


def build_tasknet(output: str, out_channels: int, *, widths: Sequence[int] = (16, 32), code_channels: int = 8,
                  blocks: int = 1, in_channels: int = 3, head_bias: float | None = None, code_relu: bool = True,
                  seed: int = 0) -> TaskNet:
    """A ``TaskNet`` initialised from ``seed`` without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return TaskNet(output, out_channels, widths, code_channels, blocks, in_channels, head_bias, code_relu)
