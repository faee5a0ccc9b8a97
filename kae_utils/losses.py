"""Distillation losses shared by the notebooks (Hinton et al. 2015 and its multi-teacher form).

Notation: z_s student logits, z_t teacher logits, T temperature,
q = softmax(z / T) the "soft targets".
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["soft_targets", "kd_kl", "kd_loss", "multi_teacher_kd_loss", "concat_teacher_logits"]


def _check_temperature(temperature: float) -> None:
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0; got {temperature!r}")


def soft_targets(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """q_i = exp(z_i / T) / sum_j exp(z_j / T), over the last dimension."""
    _check_temperature(temperature)
    return F.softmax(logits / temperature, dim=-1)


def kd_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * KL(softmax(z_t / T) || softmax(z_s / T)), averaged over the batch.

    The T^2 factor keeps the gradient's size comparable across temperatures (Hinton et al. 2015, sec. 2).
    """
    _check_temperature(temperature)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student and teacher logits differ in shape: {tuple(student_logits.shape)} vs {tuple(teacher_logits.shape)}"
        )
    log_p_s = F.log_softmax(student_logits / temperature, dim=-1)
    log_q_t = F.log_softmax(teacher_logits / temperature, dim=-1)
    return F.kl_div(log_p_s, log_q_t, log_target=True, reduction="batchmean") * temperature**2


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    targets: torch.Tensor | None,
    temperature: float = 4.0,
    alpha: float = 0.9,
) -> torch.Tensor:
    """L = alpha * T^2 * KL(q_t || q_s) + (1 - alpha) * CE(y, softmax(z_s)).

    ``alpha = 1`` (or ``targets=None``) is pure distillation without labels.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1]; got {alpha!r}")
    soft = kd_kl(student_logits, teacher_logits.detach(), temperature)
    if targets is None or alpha == 1.0:
        if targets is None and alpha != 1.0:
            raise ValueError("targets are needed when alpha < 1 (the hard-label term)")
        return soft
    return alpha * soft + (1.0 - alpha) * F.cross_entropy(student_logits, targets)


def concat_teacher_logits(teacher_logits: Sequence[torch.Tensor]) -> torch.Tensor:
    """Concatenate the logits of teachers with disjoint class sets into one score vector (dim 1)."""
    if not teacher_logits:
        raise ValueError("need at least one teacher's logits")
    return torch.cat(list(teacher_logits), dim=1)


def multi_teacher_kd_loss(
    student_logits: torch.Tensor, teacher_logits: Sequence[torch.Tensor], temperature: float = 4.0
) -> torch.Tensor:
    """Multi-teacher KD: T^2 KL(softmax([z_t1, ..., z_tN] / T) || softmax(z_s / T)).

    The teachers' class sets are disjoint and the student's classes are ordered as their
    concatenation (teacher 1's classes first). This is the baseline the amalgamation notebooks use.
    """
    target = concat_teacher_logits(teacher_logits).detach()
    return kd_kl(student_logits, target, temperature)
