"""Attribution maps of an encoder (notebooks 08 and 09): saliency, gradient x input and epsilon-LRP of the sum of
the encoder's output, averaged over the colour channels (Song et al. 2019). The label-free estimators of
:mod:`.label_free` compare them (attribution affinity, DEPARA's nodes).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from kae_utils.core.params import check_choice

__all__ = ["ATTRIBUTION_METHODS", "attribution_maps", "epsilon_lrp_relus"]

#: What is attributed: saliency |dS/dx|, gradient x input, and epsilon-LRP (DeepExplain's: gradient x input
#: with every ReLU's derivative replaced by relu(z) / (z + eps sign z)).
ATTRIBUTION_METHODS: tuple[str, ...] = ("saliency", "gradient*input", "epsilon-lrp")


class _EpsilonReLU(torch.autograd.Function):
    """ReLU forward; backward ``grad * relu(z) / (z + eps sign z)`` (DeepExplain's epsilon-LRP rule)."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, eps: float) -> torch.Tensor:
        out = z.clamp_min(0)
        ctx.save_for_backward(z, out)
        ctx.eps = eps
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        z, out = ctx.saved_tensors
        sign = torch.where(z >= 0, 1.0, -1.0).to(z.dtype)
        return grad * out / (z + ctx.eps * sign), None


@contextmanager
def epsilon_lrp_relus(model: nn.Module, eps: float = 1e-4):
    """Inside the block, every ``nn.ReLU`` of ``model`` back-propagates ``relu(z) / (z + eps sign z)`` instead of its
    derivative, so gradient x input becomes epsilon-LRP (Ancona et al. 2018). Restored on exit."""
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    for m in relus:
        m.forward = lambda z, _eps=eps: _EpsilonReLU.apply(z, _eps)  # instance attribute shadows the method
    try:
        yield model
    finally:
        for m in relus:
            del m.forward


def attribution_maps(encoder: nn.Module, x: torch.Tensor, method: str = "gradient*input", eps: float = 1e-4,
                     batch_size: int = 128, absolute: bool = False) -> torch.Tensor:
    """Attribution maps ``(N, H, W)`` of ``S(x) = sum(encoder(x))`` with respect to the input, averaged over the
    colour channels (Song et al. 2019): ``saliency`` |dS/dx|, ``gradient*input`` x dS/dx, ``epsilon-lrp``
    (gradient x input with the epsilon rule at every ReLU). ``absolute``: average the magnitudes over the channels
    instead, ``mean_c |A_c|``, as DEPARA's layer selection does (zju-vipa/DEPARA ``tools/layer_select.py`` at
    commit 6cf9f6e: ``np.abs(a).mean(axis=1)``); the model selection of both papers averages the signed maps.
    The encoder runs in eval mode (BatchNorm with its running statistics, so the images do not interact) and its
    mode is restored."""
    check_choice("attribution method", method, ATTRIBUTION_METHODS)
    device = next(encoder.parameters()).device
    was_training = encoder.training
    encoder.eval()
    maps = []
    try:
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size].to(device).clone().requires_grad_(True)
            if method == "epsilon-lrp":
                with epsilon_lrp_relus(encoder, eps):
                    (grad,) = torch.autograd.grad(encoder(xb).sum(), xb)
            else:
                (grad,) = torch.autograd.grad(encoder(xb).sum(), xb)
            value = grad.abs() if method == "saliency" else grad * xb.detach()
            maps.append((value.abs() if absolute else value).mean(dim=1).cpu())
    finally:
        encoder.train(was_training)
    return torch.cat(maps)
