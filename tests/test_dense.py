"""Golden-value and invariance tests of the dense losses in kae_utils.methods.dense."""

from __future__ import annotations

import math

import pytest
import torch

from kae_utils.methods.dense import angular_loss, pixel_kl_loss, pixel_nll_loss, scale_invariant_loss

E = math.e


# -------------------------------------------------------------------------------- scale-invariant


def test_scale_invariant_loss_golden():
    # one 2 x 2 image, target 1 everywhere: d = log y - log y* = (0, 1, 2, 0), n = 4
    # (1/n) sum d^2 = 5/4; (lambda/n^2)(sum d)^2 = 0.5 * 9 / 16 -> 1.25 - 0.28125 = 0.96875
    pred = torch.tensor([[[[1.0, E], [E**2, 1.0]]]])
    target = torch.ones_like(pred)
    assert scale_invariant_loss(pred, target, lam=0.5).item() == pytest.approx(0.96875, rel=1e-6)
    assert scale_invariant_loss(pred, target, lam=0.0).item() == pytest.approx(1.25, rel=1e-6)
    assert scale_invariant_loss(pred, target, lam=1.0).item() == pytest.approx(1.25 - 9 / 16, rel=1e-6)


def test_scale_invariant_loss_averages_images_and_respects_the_mask():
    one = torch.tensor([[[[1.0, E], [E**2, 1.0]]]])
    zero = torch.ones_like(one)
    both = scale_invariant_loss(torch.cat([one, zero]), torch.ones(2, 1, 2, 2))
    assert both.item() == pytest.approx(0.96875 / 2, rel=1e-6)
    # keep only the pixels with d = 1 and d = 2: n = 2, sum d^2 = 5, sum d = 3 -> 5/2 - 0.5 * 9 / 4 = 1.375
    mask = torch.tensor([[[False, True], [True, False]]])
    assert scale_invariant_loss(one, zero, mask=mask).item() == pytest.approx(1.375, rel=1e-6)


def test_scale_invariant_loss_is_scale_invariant_at_lambda_one():
    g = torch.Generator().manual_seed(0)
    pred = torch.rand(3, 1, 5, 5, generator=g) + 0.5
    target = torch.rand(3, 1, 5, 5, generator=g) + 0.5
    base = scale_invariant_loss(pred, target, lam=1.0)
    for c in (0.1, 3.0, 17.0):
        assert scale_invariant_loss(c * pred, target, lam=1.0).item() == pytest.approx(base.item(), abs=1e-5)
    # at lambda = 0.5 a global scale factor is penalised
    assert scale_invariant_loss(3.0 * pred, target, lam=0.5) > scale_invariant_loss(pred, target, lam=0.5)
    assert scale_invariant_loss(target, target).item() == pytest.approx(0.0, abs=1e-7)


def test_scale_invariant_loss_gradient_flows_to_the_prediction():
    pred = torch.full((1, 1, 2, 2), 2.0, requires_grad=True)
    scale_invariant_loss(pred, torch.ones(1, 1, 2, 2)).backward()
    assert pred.grad is not None and torch.all(pred.grad > 0)


@pytest.mark.parametrize(
    ("pred", "target", "message"),
    [
        (torch.ones(1, 1, 4), torch.ones(1, 1, 4), "must be maps"),
        (torch.ones(1, 1, 2, 2), torch.ones(1, 1, 2, 3), "differ in shape"),
        (torch.ones(1, 3, 2, 2), torch.ones(1, 3, 2, 2), "expected 1 channel"),
    ],
)
def test_scale_invariant_loss_shape_errors(pred, target, message):
    with pytest.raises(ValueError, match=message):
        scale_invariant_loss(pred, target)


def test_scale_invariant_loss_bad_lambda_and_empty_mask():
    x = torch.ones(1, 1, 2, 2)
    with pytest.raises(ValueError, match="lam must be in"):
        scale_invariant_loss(x, x, lam=1.5)
    with pytest.raises(ValueError, match="selects no pixel"):
        scale_invariant_loss(x, x, mask=torch.zeros(1, 2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask must be"):
        scale_invariant_loss(x, x, mask=torch.ones(1, 3, 3, dtype=torch.bool))


# ---------------------------------------------------------------------------------------- normals


def _normals(*vectors: tuple[float, float, float]) -> torch.Tensor:
    """``(1, 3, 1, len(vectors))``: one pixel per vector."""
    return torch.tensor(vectors, dtype=torch.float32).T[None, :, None, :]


def test_angular_loss_golden():
    pred = _normals((1, 0, 0), (1, 0, 0))
    target = _normals((0, 1, 0), (1, 1, 0))  # 90 and 45 degrees; the target is not unit length
    assert angular_loss(pred, target).item() == pytest.approx((math.pi / 2 + math.pi / 4) / 2, rel=1e-5)
    assert angular_loss(pred, target, mode="cosine").item() == pytest.approx((1 + (1 - 1 / math.sqrt(2))) / 2,
                                                                             rel=1e-6)
    mask = torch.tensor([[[False, True]]])
    assert angular_loss(pred, target, mask=mask).item() == pytest.approx(math.pi / 4, rel=1e-5)


def test_angular_loss_zero_for_identical_directions():
    g = torch.Generator().manual_seed(1)
    normals = torch.randn(2, 3, 4, 4, generator=g)
    assert angular_loss(normals, 5.0 * normals, mode="cosine").item() == pytest.approx(0.0, abs=1e-6)
    assert angular_loss(normals, normals).item() == pytest.approx(0.0, abs=2e-3)  # arccos(1 - eps)
    assert angular_loss(normals, -normals).item() == pytest.approx(math.pi, abs=2e-3)


def test_angular_loss_gradient_is_finite_at_the_optimum():
    pred = torch.tensor([[[[1.0]], [[0.0]], [[0.0]]]], requires_grad=True)
    angular_loss(pred, pred.detach().clone()).backward()
    assert torch.isfinite(pred.grad).all()


def test_angular_loss_errors():
    with pytest.raises(ValueError, match="expected 3 channel"):
        angular_loss(torch.ones(1, 2, 2, 2), torch.ones(1, 2, 2, 2))
    with pytest.raises(ValueError, match="differ in shape"):
        angular_loss(torch.ones(1, 3, 2, 2), torch.ones(2, 3, 2, 2))
    with pytest.raises(ValueError, match="mode must be one of"):
        angular_loss(torch.ones(1, 3, 2, 2), torch.ones(1, 3, 2, 2), mode="degrees")


# ------------------------------------------------------------------------------- class maps, teacher


def test_pixel_kl_loss_golden():
    # one pixel, two classes: teacher softmax (0.75, 0.25), student uniform
    teacher = torch.tensor([math.log(3.0), 0.0]).reshape(1, 2, 1, 1)
    student = torch.zeros(1, 2, 1, 1)
    expected = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert pixel_kl_loss(student, teacher).item() == pytest.approx(expected, rel=1e-6)
    assert pixel_kl_loss(teacher, teacher).item() == pytest.approx(0.0, abs=1e-7)
    # temperature 2: teacher softmax of (log 3 / 2, 0) = (sqrt 3, 1) / (sqrt 3 + 1); times T^2 = 4
    p = math.sqrt(3) / (math.sqrt(3) + 1)
    expected_t2 = 4 * (p * math.log(p / 0.5) + (1 - p) * math.log((1 - p) / 0.5))
    assert pixel_kl_loss(student, teacher, temperature=2.0).item() == pytest.approx(expected_t2, rel=1e-6)


def test_pixel_kl_loss_has_no_gradient_into_the_teacher():
    teacher = torch.randn(1, 3, 2, 2, requires_grad=True)
    student = torch.randn(1, 3, 2, 2, requires_grad=True)
    pixel_kl_loss(student, teacher).backward()
    assert teacher.grad is None and student.grad is not None


def test_pixel_nll_loss_golden():
    # teacher argmax: class 0 at the first pixel, class 1 at the second; student uniform over 2 -> log 2
    teacher = torch.tensor([[[[2.0, 0.0]], [[0.0, 1.0]]]])
    student = torch.zeros_like(teacher)
    assert pixel_nll_loss(student, teacher).item() == pytest.approx(math.log(2), rel=1e-6)
    # the student puts logit 1 on class 0 at both pixels: -log s(1) at pixel 1 and -log s(-1) at pixel 2
    student = torch.tensor([[[[1.0, 1.0]], [[0.0, 0.0]]]])
    s = 1 / (1 + math.exp(-1))
    assert pixel_nll_loss(student, teacher).item() == pytest.approx((-math.log(s) - math.log(1 - s)) / 2, rel=1e-6)


def test_class_map_losses_shape_errors():
    with pytest.raises(ValueError, match="differ in shape"):
        pixel_kl_loss(torch.zeros(1, 3, 2, 2), torch.zeros(1, 4, 2, 2))
    with pytest.raises(ValueError, match="must be maps"):
        pixel_nll_loss(torch.zeros(3, 2), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="temperature must be positive"):
        pixel_kl_loss(torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2), temperature=0.0)
