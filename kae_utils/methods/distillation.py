"""Losses shared by the notebooks: distillation (Hinton et al. 2015 and its multi-teacher form), the score term
of layer-wise amalgamation (Shen et al. 2019) and MMD.

Notation: z_s student logits, z_t teacher logits, T temperature,
q = softmax(z / T) the "soft targets".
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from kae_utils.training.numerics import float32_loss

__all__ = [
    "CFL_SIGMAS",
    "SCORE_LOSSES",
    "concat_teacher_logits",
    "kd_kl",
    "kd_loss",
    "mmd2",
    "multi_gaussian_kernel",
    "multi_teacher_kd_loss",
    "score_loss",
    "soft_targets",
]

#: Bandwidths of the multi-Gaussian kernel in the common-feature-learning code (Luo et al. 2019).
CFL_SIGMAS: tuple[float, ...] = (0.001, 0.01, 0.05, 0.1, 0.2, 1.0, 2.0)


def _check_temperature(temperature: float) -> None:
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0; got {temperature!r}")


def soft_targets(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """q_i = exp(z_i / T) / sum_j exp(z_j / T), over the last dimension."""
    _check_temperature(temperature)
    return F.softmax(logits / temperature, dim=-1)


@float32_loss
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


@float32_loss
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


#: The score terms :func:`score_loss` knows: ``"kl"`` (the authors' code) and ``"mse"`` (a regression of the logits).
SCORE_LOSSES: tuple[str, ...] = ("kl", "mse")


@float32_loss
def score_loss(student_logits: torch.Tensor, scores: torch.Tensor, kind: str = "kl") -> torch.Tensor:
    """The score term of layer-wise amalgamation: the student's logits against the amalgamated teacher scores.

    ``kind="kl"``: KL(softmax(scores) || softmax(z_s)) at temperature 1, averaged over the batch, as in the
    authors' group's code (KAmalEngine, ``layerwise_amalgamation.py``: ``kldiv(s_out, cat(t_out))``, with the
    MSE line commented out). ``kind="mse"``: 1/2 the mean squared error between the logits and the scores, a
    regression of the raw scores (averaged over elements). The scores are targets: no gradient reaches them.
    """
    if kind not in SCORE_LOSSES:
        raise ValueError(f"kind must be one of {SCORE_LOSSES}; got {kind!r}")
    if student_logits.shape != scores.shape or student_logits.dim() != 2:
        raise ValueError(
            f"student logits and scores must be (N, C) of the same shape; got {tuple(student_logits.shape)} and "
            f"{tuple(scores.shape)}"
        )
    scores = scores.detach()
    if kind == "mse":
        return 0.5 * F.mse_loss(student_logits, scores)
    return kd_kl(student_logits, scores, 1.0)


@float32_loss
def multi_gaussian_kernel(x: torch.Tensor, y: torch.Tensor, sigmas: Sequence[float] = CFL_SIGMAS) -> torch.Tensor:
    """k(x_i, y_j) = sum_s exp(-||x_i - y_j||^2 / (2 sigma_s^2)) for rows x_i of ``x`` (n, d) and y_j of ``y`` (m, d)."""
    if x.dim() != 2 or y.dim() != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must be (n, d) and (m, d) with the same d; got {tuple(x.shape)} and {tuple(y.shape)}")
    sigmas = tuple(float(s) for s in sigmas)
    if not sigmas or any(not s > 0 for s in sigmas):
        raise ValueError(f"sigmas must be a non-empty sequence of positive numbers; got {sigmas}")
    # the distances themselves, not ||x||^2 + ||y||^2 - 2 x.y: with sigma = 0.001 a self-kernel needs an exact 0
    # on the diagonal, which that expansion (two reductions, float32) does not give
    sq_dist = torch.cdist(x, y, compute_mode="donot_use_mm_for_euclid_dist").pow(2)
    return sum(torch.exp(-sq_dist / (2.0 * s * s)) for s in sigmas)


@float32_loss
def mmd2(
    x: torch.Tensor, y: torch.Tensor, sigmas: Sequence[float] = CFL_SIGMAS, normalize: bool = True
) -> torch.Tensor:
    """Squared maximum mean discrepancy between two batches of samples, with a multi-Gaussian kernel.

    MMD^2 = mean_ij k(x_i, x_j) + mean_ij k(y_i, y_j) - 2 mean_ij k(x_i, y_j)  (the biased estimate,
    clamped at 0 against rounding). Each sample is flattened (``x`` is (n, ...) and ``y`` is (m, ...)
    with the same number of values per sample) and, with ``normalize``, scaled to unit L2 norm, as in
    the common feature learning of Luo et al. (2019), whose bandwidths are the default ``sigmas``.
    """
    if x.dim() < 2 or y.dim() < 2 or len(x) == 0 or len(y) == 0:
        raise ValueError(f"x and y must be non-empty batches (n, ...); got {tuple(x.shape)} and {tuple(y.shape)}")
    x, y = x.flatten(1), y.flatten(1)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"samples of x and y differ in size: {x.shape[1]} vs {y.shape[1]} values")
    if normalize:
        x, y = F.normalize(x, dim=1), F.normalize(y, dim=1)
    k_xx = multi_gaussian_kernel(x, x, sigmas).mean()
    k_yy = multi_gaussian_kernel(y, y, sigmas).mean()
    k_xy = multi_gaussian_kernel(x, y, sigmas).mean()
    return (k_xx + k_yy - 2.0 * k_xy).clamp_min(0.0)
