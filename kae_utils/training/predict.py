"""Batched eval-mode inference: mini-batches over in-memory tensors, a classifier's logits
(:func:`predict_logits`) and every task's maps or heads (:func:`predict_maps`), with the process's numerics."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence

import torch
from torch import nn

from kae_utils.training.numerics import Numerics, for_call

__all__ = ["Batches", "predict_logits", "predict_maps", "to_device"]

Batch = Callable[[torch.Tensor], "torch.Tensor | dict[str, torch.Tensor]"]
Nets = nn.Module | Batch | Mapping[str, nn.Module | Batch]


# --------------------------------------------------------------------------------------------- data
class Batches:
    """Mini-batches over tensors that share their first dimension (fast for in-memory data sets).

    Shuffles with its own seeded generator, so the order depends only on ``seed`` and the epoch.
    """

    def __init__(self, tensors: Sequence[torch.Tensor], batch_size: int = 64, shuffle: bool = False,
                 seed: int = 0, drop_last: bool = False) -> None:
        tensors = tuple(tensors)
        if not tensors:
            raise ValueError("Batches needs at least one tensor")
        n = len(tensors[0])
        if any(len(t) != n for t in tensors):
            raise ValueError(f"tensors differ in length: {[len(t) for t in tensors]}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size}")
        self.tensors, self.batch_size, self.shuffle, self.drop_last = tensors, batch_size, shuffle, drop_last
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        n = len(self.tensors[0])
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        n = len(self.tensors[0])
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            yield tuple(t[idx] for t in self.tensors)


def to_device(batch: Sequence[torch.Tensor], device: torch.device) -> tuple[torch.Tensor, ...]:
    """The tensors of ``batch`` on ``device`` (other items as they are), as a tuple."""
    # asynchronous only for a host-to-GPU copy (a no-op elsewhere, and never asked of a device-to-host copy)
    asynchronous = device.type == "cuda"
    return tuple(t.to(device, non_blocking=asynchronous) if isinstance(t, torch.Tensor) else t for t in batch)


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 512,
                   device: torch.device | str | None = None, *,
                   precision: str | Numerics | None = None) -> torch.Tensor:
    """Logits of ``model`` on ``x`` in eval mode, batched, returned on the CPU in float32.

    Runs with the process's numerics (:mod:`kae_utils.training.numerics`: bf16 autocast where it is set,
    channels-last), or with ``precision`` where it is given (as the trainer's argument of that name).
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    numerics = for_call(precision, device)
    was_training = model.training
    model.eval()
    with numerics.autocast():
        outs = [model(numerics.prepare_input(xb.to(device))).float().cpu() for (xb,) in Batches([x], batch_size=batch_size)]
    model.train(was_training)
    return torch.cat(outs)


@torch.no_grad()
def predict_maps(model: Nets, x: torch.Tensor, batch_size: int = 64, name: str = "output", *,
                 precision: str | Numerics | None = None,
                 device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Every task's output on ``x``, in eval mode, batched, on the CPU: ``{task: (N, C, H, W)}``.

    ``model`` is a net that returns one map (filed under ``name``) or ``{task: map}``, or a dict
    ``{task: net}`` of single-task nets (the teachers). Each net runs on the device of its parameters, in eval
    mode, and is put back in the training mode it had. A plain function of a batch (say, a net called with
    extra arguments) takes the place of a net too: it runs on ``device``, and the modes of the nets it calls
    are the caller's to set. The numerics are the process's (:mod:`kae_utils.training.numerics`), or
    ``precision`` where it is given (as the trainer's argument of that name); the maps come back in float32.
    """
    nets = dict(model) if isinstance(model, Mapping) else {name: model}
    modules = {key: net for key, net in nets.items() if isinstance(net, nn.Module)}
    modes = {key: net.training for key, net in modules.items()}
    devices = {key: next(modules[key].parameters()).device if key in modules else torch.device(device) for key in nets}
    numerics = {key: for_call(precision, dev) for key, dev in devices.items()}
    outputs: dict[str, list[torch.Tensor]] = {}
    try:
        for net in modules.values():
            net.eval()
        for start in range(0, len(x), batch_size):
            xb = x[start:start + batch_size]
            for key, net in nets.items():
                with numerics[key].autocast():
                    out = net(numerics[key].prepare_input(xb.to(devices[key])))
                for task, value in (out.items() if isinstance(out, dict) else [(key, out)]):
                    outputs.setdefault(task, []).append(value.float().cpu().contiguous())
    finally:
        for key, net in modules.items():
            net.train(modes[key])
    return {task: torch.cat(values) for task, values in outputs.items()}
