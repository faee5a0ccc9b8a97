"""Tests for kae_utils.methods.distillation: soft targets, the KD term and loss, multi-teacher KD."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from kae_utils.methods.distillation import (
    concat_teacher_logits,
    kd_kl,
    kd_loss,
    multi_teacher_kd_loss,
    soft_targets,
)

LN3 = math.log(3.0)


def rand_logits(*shape: int, seed: int = 0, scale: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64) * scale


def plain_kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """sum_i q_i (log q_i - log p_i) averaged over rows, with q, p softened by T (no T^2)."""
    q = torch.softmax(teacher / temperature, dim=-1)
    p = torch.softmax(student / temperature, dim=-1)
    return (q * (q.log() - p.log())).sum(-1).mean()


# ----------------------------------------------------------------------------------- soft_targets


def test_soft_targets_golden():
    z = torch.tensor([0.0, LN3], dtype=torch.float64)
    # T=1: exp(0), exp(ln 3) = 1, 3 -> [1/4, 3/4]
    torch.testing.assert_close(soft_targets(z), torch.tensor([0.25, 0.75], dtype=torch.float64))
    # T=2: exp(0), exp(ln(3)/2) = 1, sqrt(3) -> [1, sqrt 3] / (1 + sqrt 3)
    s3 = math.sqrt(3)
    torch.testing.assert_close(soft_targets(z, 2.0), torch.tensor([1 / (1 + s3), s3 / (1 + s3)], dtype=torch.float64))


def test_soft_targets_last_dim_and_limits():
    z = rand_logits(4, 5, scale=3)
    q = soft_targets(z, 3.0)
    torch.testing.assert_close(q.sum(-1), torch.ones(4, dtype=torch.float64))
    # a huge temperature flattens towards uniform; a tiny one approaches one-hot argmax
    torch.testing.assert_close(soft_targets(z, 1e6), torch.full((4, 5), 0.2, dtype=torch.float64), atol=1e-5, rtol=0)
    torch.testing.assert_close(soft_targets(z, 1e-3), F.one_hot(z.argmax(-1), 5).double())


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_bad_temperature(bad):
    z = torch.zeros(1, 2)
    with pytest.raises(ValueError, match="temperature"):
        soft_targets(z, bad)
    with pytest.raises(ValueError, match="temperature"):
        kd_kl(z, z, bad)


# ------------------------------------------------------------------------------------------ kd_kl


def test_kd_kl_zero_for_identical_logits():
    z = rand_logits(3, 6)
    for t in (1.0, 4.0):
        assert kd_kl(z, z.clone(), t).item() == pytest.approx(0.0, abs=1e-12)
    # invariant to adding a constant to a row (softmax is)
    assert kd_kl(z + 5.0, z, 2.0).item() == pytest.approx(0.0, abs=1e-12)


def test_kd_kl_two_class_golden():
    student = torch.zeros(2, 2, dtype=torch.float64)  # p = [1/2, 1/2]
    teacher = torch.tensor([[0.0, LN3]] * 2, dtype=torch.float64)  # q = [1/4, 3/4] at T=1
    # KL(q || p) = 1/4 ln((1/4)/(1/2)) + 3/4 ln((3/4)/(1/2)) = 1/4 ln(1/2) + 3/4 ln(3/2)
    #            = -0.1732868 + 0.3040988 = 0.1308120; the same for both rows, batchmean keeps it
    expected = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    assert expected == pytest.approx(0.130812, abs=1e-6)
    assert kd_kl(student, teacher, 1.0).item() == pytest.approx(expected, rel=1e-12)
    # at T=2 a teacher with doubled logits gives the same soft targets: the value is T^2 = 4 times
    assert kd_kl(student, 2 * teacher, 2.0).item() == pytest.approx(4 * expected, rel=1e-12)


def test_kd_kl_batchmean_not_elementwise_mean():
    # one row with KL 0.130812, one with 0: batchmean = 0.065406 (an element mean would halve it again)
    student = torch.zeros(2, 2, dtype=torch.float64)
    teacher = torch.tensor([[0.0, LN3], [0.0, 0.0]], dtype=torch.float64)
    expected = (0.25 * math.log(0.5) + 0.75 * math.log(1.5)) / 2
    assert kd_kl(student, teacher, 1.0).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 3.0, 20.0])
def test_kd_kl_is_t_squared_times_plain_kl(temperature):
    zs, zt = rand_logits(5, 7, seed=1, scale=2), rand_logits(5, 7, seed=2, scale=2)
    expected = temperature**2 * plain_kl(zs, zt, temperature)
    torch.testing.assert_close(kd_kl(zs, zt, temperature), expected)


def test_kd_kl_direction_is_teacher_to_student():
    # KL is asymmetric: KL(q_t || p_s) != KL(p_s || q_t); swapping arguments must change the value
    zs = torch.tensor([[0.0, 0.0, 0.0]], dtype=torch.float64)
    zt = torch.tensor([[3.0, 0.0, 0.0]], dtype=torch.float64)
    assert kd_kl(zs, zt, 1.0).item() == pytest.approx(plain_kl(zs, zt, 1.0).item())
    assert kd_kl(zs, zt, 1.0).item() != pytest.approx(kd_kl(zt, zs, 1.0).item(), rel=1e-3)


def test_kd_kl_gradient_exact_form():
    # d/dz_s of T^2 KL(q_t || p_s) with batchmean over B rows = T (p_s - q_t) / B
    zs, zt = rand_logits(4, 6, seed=3, scale=2), rand_logits(4, 6, seed=4, scale=2)
    t = 2.5
    z = zs.clone().requires_grad_()
    kd_kl(z, zt, t).backward()
    expected = t * (torch.softmax(zs / t, -1) - torch.softmax(zt / t, -1)) / 4
    torch.testing.assert_close(z.grad, expected)


def test_kd_kl_high_temperature_gradient_matches_logit_matching():
    # Hinton et al. sec. 2.1: for large T and zero-mean logits, p_s - q_t ~ (z_s - z_t) / (C T), so
    # the gradient T (p_s - q_t) / B ~ (z_s - z_t) / (C B); the error is O(|z| / T)
    b, c = 4, 10
    zs, zt = rand_logits(b, c, seed=5), rand_logits(b, c, seed=6)
    zs, zt = zs - zs.mean(-1, keepdim=True), zt - zt.mean(-1, keepdim=True)
    approx = (zs - zt) / (c * b)

    def rel_error(t: float) -> float:
        z = zs.clone().requires_grad_()
        kd_kl(z, zt, t).backward()
        return ((z.grad - approx).norm() / approx.norm()).item()

    assert rel_error(100.0) < 0.01
    assert rel_error(1.0) > 0.1  # the approximation is not trivially true at low temperature
    assert rel_error(10.0) > 5 * rel_error(100.0)  # and improves as 1/T


def test_kd_kl_shape_mismatch():
    with pytest.raises(ValueError, match=r"\(2, 3\) vs \(2, 4\)"):
        kd_kl(torch.zeros(2, 3), torch.zeros(2, 4), 1.0)


# ---------------------------------------------------------------------------------------- kd_loss


def test_kd_loss_alpha_extremes_and_mix():
    zs, zt = rand_logits(6, 4, seed=7), rand_logits(6, 4, seed=8)
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    soft = kd_kl(zs, zt, 3.0)
    hard = F.cross_entropy(zs, y)
    torch.testing.assert_close(kd_loss(zs, zt, y, temperature=3.0, alpha=1.0), soft)
    torch.testing.assert_close(kd_loss(zs, zt, y, temperature=3.0, alpha=0.0), hard)
    torch.testing.assert_close(kd_loss(zs, zt, y, temperature=3.0, alpha=0.25), 0.25 * soft + 0.75 * hard)
    torch.testing.assert_close(kd_loss(zs, zt, None, temperature=3.0, alpha=1.0), soft)


def test_kd_loss_defaults_are_t4_alpha09():
    zs, zt = rand_logits(3, 5, seed=9), rand_logits(3, 5, seed=10)
    y = torch.tensor([4, 0, 2])
    expected = 0.9 * kd_kl(zs, zt, 4.0) + 0.1 * F.cross_entropy(zs, y)
    torch.testing.assert_close(kd_loss(zs, zt, y), expected)


def test_kd_loss_does_not_backpropagate_into_the_teacher():
    zs = rand_logits(3, 4, seed=11).requires_grad_()
    zt = rand_logits(3, 4, seed=12).requires_grad_()
    kd_loss(zs, zt, torch.tensor([0, 1, 2])).backward()
    assert zs.grad is not None and zs.grad.abs().sum() > 0
    assert zt.grad is None


def test_kd_loss_errors():
    z = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="targets"):
        kd_loss(z, z, None, alpha=0.5)
    for bad in (-0.1, 1.1):
        with pytest.raises(ValueError, match="alpha"):
            kd_loss(z, z, torch.tensor([0, 1]), alpha=bad)


# -------------------------------------------------------------------------------------- multi-teacher


def test_concat_teacher_logits():
    a, b = torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 4.0, 5.0]])
    assert torch.equal(concat_teacher_logits([a, b]), torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0]]))
    assert torch.equal(concat_teacher_logits((b, a)), torch.tensor([[3.0, 4.0, 5.0, 1.0, 2.0]]))  # order kept
    with pytest.raises(ValueError, match="at least one"):
        concat_teacher_logits([])


def test_multi_teacher_kd_loss_equals_kd_kl_against_concatenation():
    zs = rand_logits(4, 5, seed=13).requires_grad_()
    t1, t2 = rand_logits(4, 2, seed=14).requires_grad_(), rand_logits(4, 3, seed=15)
    loss = multi_teacher_kd_loss(zs, [t1, t2], temperature=2.0)
    torch.testing.assert_close(loss, kd_kl(zs, torch.cat([t1, t2], dim=1), 2.0))
    # the order of the teachers matters: the student's classes follow teacher 1 then teacher 2
    assert not torch.allclose(loss, multi_teacher_kd_loss(zs, [t2, t1], temperature=2.0))
    loss.backward()
    assert t1.grad is None  # teachers are targets, not trained


def test_multi_teacher_kd_loss_default_temperature_and_shape_mismatch():
    zs, t1, t2 = rand_logits(2, 4, seed=16), rand_logits(2, 2, seed=17), rand_logits(2, 2, seed=18)
    torch.testing.assert_close(multi_teacher_kd_loss(zs, [t1, t2]), kd_kl(zs, torch.cat([t1, t2], 1), 4.0))
    with pytest.raises(ValueError, match="differ in shape"):
        multi_teacher_kd_loss(rand_logits(2, 5), [t1, t2])


# ------------------------------------------------------------------------- score term (notebook 02)


def test_score_loss_kl_golden_by_hand():
    """KL(softmax(scores) || softmax(z_s)) at T = 1, batch mean, against values worked out by hand."""
    from kae_utils.methods.distillation import score_loss

    student = torch.tensor([[0.0, 0.0], [LN3, 0.0]], dtype=torch.float64)
    scores = torch.tensor([[0.0, LN3], [0.0, 0.0]], dtype=torch.float64)
    # row 1: q = (1/4, 3/4), p = (1/2, 1/2): 1/4 ln(1/2) + 3/4 ln(3/2)
    # row 2: q = (1/2, 1/2), p = (3/4, 1/4): 1/2 ln(2/3) + 1/2 ln(2)
    row1 = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    row2 = 0.5 * math.log(2 / 3) + 0.5 * math.log(2.0)
    expected = (row1 + row2) / 2
    assert score_loss(student, scores).item() == pytest.approx(expected, abs=1e-12)
    assert score_loss(student, scores, "kl").item() == pytest.approx(expected, abs=1e-12)
    # the authors' direction: the teachers' distribution is the target; the reverse KL of row 1,
    # KL(p || q) = 1/2 ln 2 + 1/2 ln(2/3), is another number
    assert score_loss(student[:1], scores[:1]).item() == pytest.approx(row1, abs=1e-12)
    reverse = 0.5 * math.log(2.0) + 0.5 * math.log(2 / 3)
    assert score_loss(scores[:1], student[:1]).item() == pytest.approx(reverse, abs=1e-12)
    assert abs(row1 - reverse) > 1e-3


def test_score_loss_mse_golden_by_hand():
    """The ablation: 1/2 mean over elements of (z_s - scores)^2."""
    from kae_utils.methods.distillation import score_loss

    student = torch.tensor([[0.0, 0.0], [LN3, 0.0]], dtype=torch.float64)
    scores = torch.tensor([[0.0, LN3], [0.0, 0.0]], dtype=torch.float64)
    # squared differences: 0, ln3^2, ln3^2, 0 -> mean ln3^2 / 2 -> times 1/2
    assert score_loss(student, scores, "mse").item() == pytest.approx(LN3**2 / 4, abs=1e-12)


def test_score_loss_kl_ignores_a_shift_of_the_scores_mse_does_not():
    from kae_utils.methods.distillation import score_loss

    student, scores = rand_logits(4, 5, seed=1), rand_logits(4, 5, seed=2, scale=3)
    shifted = scores + torch.arange(4, dtype=torch.float64)[:, None] * 7.0
    torch.testing.assert_close(score_loss(student, shifted), score_loss(student, scores))
    assert score_loss(student, shifted, "mse") > score_loss(student, scores, "mse") + 1.0
    assert score_loss(scores, scores).item() == pytest.approx(0.0, abs=1e-12)


def test_score_loss_gradient_reaches_the_student_only():
    from kae_utils.methods.distillation import score_loss

    student = rand_logits(3, 4, seed=5).requires_grad_(True)
    scores = rand_logits(3, 4, seed=6).requires_grad_(True)
    score_loss(student, scores).backward()
    # d KL / d z_s = (softmax(z_s) - softmax(scores)) / N
    expected = (torch.softmax(student.detach(), -1) - torch.softmax(scores.detach(), -1)) / 3
    torch.testing.assert_close(student.grad, expected)
    assert scores.grad is None


def test_score_loss_float32_under_bf16_autocast():
    from kae_utils.methods.distillation import score_loss

    student, scores = rand_logits(6, 5, seed=7).float(), rand_logits(6, 5, seed=8, scale=4).float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = score_loss(student.bfloat16(), scores)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, score_loss(student.bfloat16().float(), scores))


@pytest.mark.parametrize(("student", "scores", "kind", "match"), [
    (torch.zeros(2, 3), torch.zeros(2, 3), "ce", "kind"),
    (torch.zeros(2, 3), torch.zeros(2, 4), "kl", "same shape"),
    (torch.zeros(3), torch.zeros(3), "kl", "same shape"),
])
def test_score_loss_bad_input(student, scores, kind, match):
    from kae_utils.methods.distillation import score_loss

    with pytest.raises(ValueError, match=match):
        score_loss(student, scores, kind)


# --------------------------------------------------------------------------------------- MMD


def test_multi_gaussian_kernel_golden():
    from kae_utils.methods.distillation import multi_gaussian_kernel

    x = torch.tensor([[0.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    # ||x - y_2||^2 = 2: exp(-2 / 2) + exp(-2 / 8) for sigmas 1 and 2
    expected = torch.tensor([[2.0, math.exp(-1.0) + math.exp(-0.25)]], dtype=torch.float64)
    torch.testing.assert_close(multi_gaussian_kernel(x, y, (1.0, 2.0)), expected)


def test_mmd2_golden_values():
    from kae_utils.methods.distillation import mmd2

    e = math.exp(-1.0)
    one = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    other = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    # one sample each, ||x - y||^2 = 2, sigma 1: 1 + 1 - 2 e^-1
    torch.testing.assert_close(mmd2(one, other, (1.0,)), torch.tensor(2 - 2 * e, dtype=torch.float64))
    # x = {e1, e2}, y = {e1, e1}: Kxx mean (1 + e^-1)/2, Kyy mean 1, Kxy mean (1 + e^-1)/2
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    y = torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(mmd2(x, y, (1.0,)), torch.tensor((1 - e) / 2, dtype=torch.float64))
    # the sum over bandwidths adds the per-bandwidth MMDs: sigma 2 gives 2 - 2 exp(-1/4)
    torch.testing.assert_close(mmd2(one, other, (1.0, 2.0)),
                               torch.tensor(2 - 2 * e + 2 - 2 * math.exp(-0.25), dtype=torch.float64))


def test_mmd2_normalises_flattens_and_is_zero_for_equal_sets():
    from kae_utils.methods.distillation import CFL_SIGMAS, mmd2

    x = rand_logits(6, 3, 2, 2, seed=1)
    y = rand_logits(5, 3, 2, 2, seed=2)
    assert mmd2(x, x).item() == 0.0
    order = torch.randperm(6, generator=torch.Generator().manual_seed(0))
    assert mmd2(x, x[order]).item() == pytest.approx(0.0, abs=1e-12)  # order does not matter
    torch.testing.assert_close(mmd2(3.0 * x, y), mmd2(x, y))  # unit-norm samples: scale-free
    assert not torch.allclose(mmd2(3.0 * x, y, normalize=False), mmd2(x, y, normalize=False))
    torch.testing.assert_close(mmd2(x, y), mmd2(x.flatten(1), y.flatten(1)))
    assert mmd2(x, y).item() > 0.0 and CFL_SIGMAS[0] == 0.001 and len(CFL_SIGMAS) == 7


def test_mmd2_float32_matches_float64():
    """With sigma = 0.001 the self-kernel terms need exact zeros on the diagonal: float32 must agree with float64
    (the ||x||^2 + ||y||^2 - 2 x.y expansion gave 0.7345 against 0.7385 on these batches)."""
    from kae_utils.methods.distillation import mmd2

    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 8, 4, 4, generator=gen), torch.randn(16, 8, 4, 4, generator=gen)
    value32, value64 = mmd2(x, y), mmd2(x.double(), y.double())
    assert value32.dtype == torch.float32
    assert value32.item() == pytest.approx(value64.item(), rel=1e-6)
    assert value64.item() == pytest.approx(0.7384956, abs=1e-6)  # golden value (float64)
    x32, x64 = x.clone().requires_grad_(), x.double().clone().requires_grad_()
    mmd2(x32, y).backward()
    mmd2(x64, y.double()).backward()
    assert torch.isfinite(x32.grad).all()
    torch.testing.assert_close(x32.grad.double(), x64.grad, rtol=1e-4, atol=1e-8)


def test_mmd2_gradient_pulls_the_sets_together():
    from kae_utils.methods.distillation import mmd2

    x = rand_logits(8, 4, seed=3).requires_grad_(True)
    y = rand_logits(8, 4, seed=4) + 2.0
    before = mmd2(x, y, (1.0, 2.0)).item()
    optimizer = torch.optim.SGD([x], lr=0.5)
    for _ in range(50):
        optimizer.zero_grad()
        mmd2(x, y, (1.0, 2.0)).backward()
        optimizer.step()
    assert mmd2(x, y, (1.0, 2.0)).item() < 0.5 * before


@pytest.mark.parametrize(
    ("x", "y", "kwargs", "match"),
    [
        (torch.zeros(3, 4), torch.zeros(3, 5), {}, "differ in size"),
        (torch.zeros(0, 4), torch.zeros(3, 4), {}, "non-empty"),
        (torch.zeros(4), torch.zeros(4), {}, "non-empty batches"),
        (torch.ones(2, 4), torch.ones(2, 4), {"sigmas": ()}, "sigmas"),
        (torch.ones(2, 4), torch.ones(2, 4), {"sigmas": (1.0, 0.0)}, "sigmas"),
    ],
)
def test_mmd2_bad_input(x, y, kwargs, match):
    from kae_utils.methods.distillation import mmd2

    with pytest.raises(ValueError, match=match):
        mmd2(x, y, **kwargs)
