"""Feature taps on any ``nn.Module`` by forward hooks, for models without a ``return_features`` switch."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["FeatureTaps"]


class FeatureTaps:
    """Record the outputs of named sub-modules during a forward pass.

    Use as a context manager so the hooks are always removed::

        with FeatureTaps(model, ["stages.0", "stages.2"]) as taps:
            logits = model(x)
        taps.features["stages.2"]  # the tensor that sub-module returned

    Names are those of ``model.named_modules()``; an unknown name raises ``KeyError`` listing the valid ones.
    With ``detach=True`` (default) the stored tensors are detached from the graph. With ``clone=True``
    they are copied when recorded, so a later in-place operation (``ReLU(inplace=True)`` after a
    BatchNorm) cannot change them.
    """

    def __init__(self, model: nn.Module, names: Sequence[str], detach: bool = True, clone: bool = False) -> None:
        modules = dict(model.named_modules())
        unknown = [n for n in names if n not in modules]
        if unknown:
            valid = ", ".join(n for n in modules if n)
            raise KeyError(f"unknown module names {unknown}; valid names: {valid}")
        self.names = tuple(names)
        self.detach = detach
        self.clone = clone
        self.features: dict[str, torch.Tensor] = {}
        self._modules = [modules[n] for n in self.names]
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def _hook(self, name: str):
        def record(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            recorded = output.detach() if self.detach else output
            self.features[name] = recorded.clone() if self.clone else recorded

        return record

    def __enter__(self) -> FeatureTaps:
        self.features = {}
        self._handles = [m.register_forward_hook(self._hook(n)) for n, m in zip(self.names, self._modules, strict=True)]
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
