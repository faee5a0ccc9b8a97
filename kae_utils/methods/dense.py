"""Losses for dense (per-pixel) predictions, against ground truth or against a teacher's output.

* ``scale_invariant_loss``: Eigen et al.'s loss on log-depths, ``(1/n) sum d^2 - (lambda/n^2) (sum d)^2``
  with ``d = log y - log y*`` per image; ``lambda = 1`` makes it blind to a global scale of the depth,
  ``lambda = 0`` is the mean squared log error.
* ``angular_loss``: the angle (or ``1 - cos``) between predicted and target normals, both L2-normalised.
* ``pixel_kl_loss`` and ``pixel_nll_loss``: a student's class map against a teacher's, per pixel: the KL
  divergence to the teacher's softmax, or the negative log-likelihood of the teacher's argmax.

All take maps ``(N, C, H, W)``, average over the valid pixels (an optional boolean ``mask`` ``(N, H, W)`` or
``(N, 1, H, W)``) and raise ``ValueError`` naming the shapes when they do not fit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kae_utils.core.params import check_choice
from kae_utils.training.numerics import float32_loss

__all__ = ["ANGULAR_MODES", "angular_loss", "pixel_kl_loss", "pixel_nll_loss", "scale_invariant_loss"]

#: ``angular_loss`` modes: the angle itself (radians) or ``1 - cos`` (smooth everywhere).
ANGULAR_MODES: tuple[str, ...] = ("angle", "cosine")


def _check_maps(name: str, pred: torch.Tensor, target: torch.Tensor, channels: int | None = None) -> None:
    if pred.ndim != 4:
        raise ValueError(f"{name}: predictions must be maps (N, C, H, W); got {tuple(pred.shape)}")
    if pred.shape != target.shape:
        raise ValueError(f"{name}: predictions {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    if channels is not None and pred.shape[1] != channels:
        raise ValueError(f"{name}: expected {channels} channel(s); got {tuple(pred.shape)}")


def _pixel_mask(name: str, mask: torch.Tensor | None, pred: torch.Tensor) -> torch.Tensor | None:
    """The mask as ``(N, H, W)`` bool, or None."""
    if mask is None:
        return None
    if mask.dtype != torch.bool:
        raise ValueError(f"{name}: mask must be a bool tensor; got {mask.dtype}")
    if mask.ndim == 4 and mask.shape[1] == 1:
        mask = mask[:, 0]
    expected = (pred.shape[0], *pred.shape[2:])
    if tuple(mask.shape) != expected:
        raise ValueError(f"{name}: mask must be {expected} (or with a channel of 1); got {tuple(mask.shape)}")
    return mask


def _mean_over(values: torch.Tensor, mask: torch.Tensor | None, name: str) -> torch.Tensor:
    """Mean of per-pixel ``values`` ``(N, H, W)`` over the mask (all pixels when None)."""
    if mask is None:
        return values.mean()
    if not mask.any():
        raise ValueError(f"{name}: the mask selects no pixel")
    return values[mask].mean()


@float32_loss
def scale_invariant_loss(pred: torch.Tensor, target: torch.Tensor, lam: float = 0.5,
                         mask: torch.Tensor | None = None, eps: float = 1e-6) -> torch.Tensor:
    """Scale-invariant log-depth loss of Eigen et al. (2014), averaged over the images.

    For each image, with ``d_i = log y_i - log y*_i`` over its ``n`` valid pixels,
    ``L = (1/n) sum_i d_i^2 - (lam / n^2) (sum_i d_i)^2``; the loss is the mean of ``L`` over the images
    that have valid pixels. ``pred`` and ``target`` are positive depths ``(N, 1, H, W)`` (values below
    ``eps`` are clamped to it). ``lam`` in [0, 1]: 0 is the mean squared log error, 1 ignores a global
    scale factor (the loss of ``c * y`` equals that of ``y``).
    """
    _check_maps("scale_invariant_loss", pred, target, channels=1)
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"scale_invariant_loss: lam must be in [0, 1]; got {lam}")
    mask = _pixel_mask("scale_invariant_loss", mask, pred)
    d = (torch.log(pred.clamp_min(eps)) - torch.log(target.clamp_min(eps)))[:, 0]
    if mask is None:
        mask = torch.ones_like(d, dtype=torch.bool)
    weight = mask.to(d.dtype)
    n = weight.sum(dim=(1, 2))
    has_pixels = n > 0
    if not has_pixels.any():
        raise ValueError("scale_invariant_loss: the mask selects no pixel")
    n = n.clamp_min(1.0)
    dw = d * weight
    per_image = dw.pow(2).sum(dim=(1, 2)) / n - lam * dw.sum(dim=(1, 2)).pow(2) / n.pow(2)
    return per_image[has_pixels].mean()


@float32_loss
def angular_loss(pred: torch.Tensor, target: torch.Tensor, mode: str = "angle",
                 mask: torch.Tensor | None = None, eps: float = 1e-6) -> torch.Tensor:
    """Mean angular error between normals ``(N, 3, H, W)``, after L2-normalising both per pixel.

    ``mode="angle"``: the angle ``arccos(cos)`` in radians (the cosine is clamped to ``[-1 + eps, 1 - eps]``
    so the gradient stays finite); ``mode="cosine"``: ``1 - cos``, which has the same minimum and is smooth.
    Identical directions give 0 in both modes (up to the clamp: ``arccos(1 - eps)`` for ``angle``).
    """
    _check_maps("angular_loss", pred, target, channels=3)
    check_choice("mode", mode, ANGULAR_MODES)
    mask = _pixel_mask("angular_loss", mask, pred)
    cos = (F.normalize(pred, dim=1, eps=1e-12) * F.normalize(target, dim=1, eps=1e-12)).sum(dim=1)
    if mode == "cosine":
        return _mean_over(1.0 - cos, mask, "angular_loss")
    return _mean_over(torch.arccos(cos.clamp(-1.0 + eps, 1.0 - eps)), mask, "angular_loss")


@float32_loss
def pixel_kl_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0,
                  mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-pixel ``KL(softmax(z_t / T) || softmax(z_s / T))`` over the classes, averaged over pixels, times ``T^2``.

    Both are logits ``(N, C, H, W)``; the teacher's side carries no gradient.
    """
    _check_maps("pixel_kl_loss", student_logits, teacher_logits)
    if temperature <= 0:
        raise ValueError(f"pixel_kl_loss: temperature must be positive; got {temperature}")
    mask = _pixel_mask("pixel_kl_loss", mask, student_logits)
    log_p_s = F.log_softmax(student_logits / temperature, dim=1)
    log_p_t = F.log_softmax(teacher_logits.detach() / temperature, dim=1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=1)
    return _mean_over(kl, mask, "pixel_kl_loss") * temperature**2


@float32_loss
def pixel_nll_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                   mask: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of the student's logits ``(N, C, H, W)`` with the teacher's argmax as the label, per pixel."""
    _check_maps("pixel_nll_loss", student_logits, teacher_logits)
    mask = _pixel_mask("pixel_nll_loss", mask, student_logits)
    labels = teacher_logits.detach().argmax(dim=1)
    nll = F.cross_entropy(student_logits, labels, reduction="none")
    return _mean_over(nll, mask, "pixel_nll_loss")
