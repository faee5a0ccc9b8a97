"""Tests for kae_utils.methods.adaptive: entropy, min-entropy selection, pre-activation taps, bridges, the regulariser."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from kae_utils.methods.adaptive import (
    bridge_row_norms,
    feature_mse_per_image,
    logit_loss_per_image,
    min_entropy_choice,
    preactivation_features,
    prediction_entropy,
    transfer_bridges,
    unit_norm_penalty,
)
from kae_utils.models import build_multihead


# ------------------------------------------------------------------------------------- entropy
def test_entropy_golden_values():
    z = torch.tensor([[0.0, 0.0, 0.0, 0.0], [100.0, 0.0, 0.0, 0.0], [math.log(3.0), 0.0, -1e9, -1e9]])
    h = prediction_entropy(z)
    # uniform over 4: log 4; one-hot: 0; p = (3/4, 1/4): -(3/4 log 3/4 + 1/4 log 1/4)
    expected = [math.log(4.0), 0.0, -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))]
    assert h.tolist() == pytest.approx(expected, abs=1e-6)


def test_entropy_is_shift_invariant_and_finite():
    z = torch.randn(6, 5, generator=torch.Generator().manual_seed(0)) * 50
    assert torch.allclose(prediction_entropy(z), prediction_entropy(z + 7.0), atol=1e-5)
    assert torch.isfinite(prediction_entropy(z)).all()


def test_entropy_needs_a_matrix():
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        prediction_entropy(torch.zeros(3))


# ----------------------------------------------------------------------------------- selection
def test_min_entropy_choice_golden():
    confident, unsure = [5.0, 0.0, 0.0], [0.1, 0.0, 0.0]
    s0 = torch.tensor([confident, unsure, unsure, confident])
    s1 = torch.tensor([unsure, confident, unsure, confident])
    s2 = torch.tensor([unsure, unsure, [9.0, 0.0, 0.0], confident])
    assert min_entropy_choice([s0, s1, s2]).tolist() == [0, 1, 2, 0]  # the last row: a tie, the first wins


def test_min_entropy_choice_checks_shapes():
    with pytest.raises(ValueError, match="same shape"):
        min_entropy_choice([torch.zeros(4, 3), torch.zeros(4, 2)])
    with pytest.raises(ValueError, match="at least one"):
        min_entropy_choice([])


# ---------------------------------------------------------------------------- pre-activations
@pytest.mark.parametrize(("backbone", "widths"), [("convnet", (4, 6, 8)), ("resnet", (4, 6, 8))])
def test_preactivation_features_shapes_and_logits(backbone, widths):
    net = build_multihead(backbone, {"colour": 6, "size": 3}, widths=widths, seed=0).eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    logits, feats = preactivation_features(net, x)
    reference = net(x)
    for task in ("colour", "size"):
        assert torch.allclose(logits[task], reference[task], atol=1e-5)
    assert [tuple(f.shape) for f in feats] == [(2, 4, 32, 32), (2, 6, 16, 16), (2, 8, 8, 8)]
    assert any((f < 0).any() for f in feats), "pre-activation features keep their negative values"


def test_preactivation_features_refuse_other_backbones():
    net = build_multihead("convnet", {"a": 2}, widths=(4,), seed=0)
    net.backbone = nn.Identity()
    with pytest.raises(TypeError, match="ConvNet and ResNet"):
        preactivation_features(net, torch.zeros(1, 3, 8, 8))


# ----------------------------------------------------------------------- bridges and penalty
def test_transfer_bridges_shapes():
    bridges = transfer_bridges([8, 16, 32], [4, 8, 16])
    assert [tuple(b.weight.shape) for b in bridges] == [(4, 8, 1, 1), (8, 16, 1, 1), (16, 32, 1, 1)]
    assert all(b.bias is None for b in bridges)
    out = bridges[1](torch.zeros(2, 16, 5, 5))
    assert tuple(out.shape) == (2, 8, 5, 5)
    with pytest.raises(ValueError, match="one output width per tap"):
        transfer_bridges([8, 16], [4])


def test_unit_norm_penalty_golden():
    a = nn.Conv2d(2, 2, 1, bias=False)
    b = nn.Conv2d(3, 1, 1, bias=False)
    with torch.no_grad():
        a.weight.copy_(torch.tensor([[1.0, 0.0], [1.0, 1.0]]).view(2, 2, 1, 1))  # row norms^2: 1, 2
        b.weight.copy_(torch.tensor([[0.0, 0.0, 0.0]]).view(1, 3, 1, 1))  # row norm^2: 0
    assert bridge_row_norms(a).tolist() == [1.0, 2.0]
    # a: mean((1-1)^2, (2-1)^2) = 0.5; b: (0-1)^2 = 1 -> 1.5
    assert unit_norm_penalty([a, b]).item() == pytest.approx(1.5)
    assert unit_norm_penalty([a]).item() == pytest.approx(0.5)


def test_unit_norm_penalty_is_zero_on_unit_rows_and_has_gradients():
    bridge = nn.Conv2d(4, 3, 1, bias=False)
    with torch.no_grad():
        bridge.weight.copy_(torch.eye(3, 4).view(3, 4, 1, 1))
    assert unit_norm_penalty([bridge]).item() == 0.0
    with torch.no_grad():
        bridge.weight.mul_(0.5)
    unit_norm_penalty([bridge]).backward()
    assert bridge.weight.grad is not None and bridge.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="at least one bridge"):
        unit_norm_penalty([])


# ------------------------------------------------------------------------------------- logit losses
def test_logit_losses_golden_values():
    zs = torch.tensor([[0.0, 0.0], [1.0, 2.0]], dtype=torch.float64)
    zt = torch.tensor([[math.log(3.0), 0.0], [1.0, 2.0]], dtype=torch.float64)
    # image 1: teacher p = (3/4, 1/4), student q = (1/2, 1/2): KL = 3/4 log(3/2) + 1/4 log(1/2); image 2: equal
    kl = logit_loss_per_image(zs, zt, "kl")
    assert kl.tolist() == pytest.approx([0.75 * math.log(1.5) + 0.25 * math.log(0.5), 0.0], abs=1e-12)
    # MSE: mean over the classes of the squared differences: (log 3)^2 / 2 and 0
    mse = logit_loss_per_image(zs, zt, "mse")
    assert mse.tolist() == pytest.approx([math.log(3.0) ** 2 / 2, 0.0], abs=1e-12)


def test_logit_losses_batch_mean_equals_the_library_losses():
    g = torch.Generator().manual_seed(0)
    zs, zt = torch.randn(7, 5, generator=g), torch.randn(7, 5, generator=g) * 3
    assert logit_loss_per_image(zs, zt, "mse").mean().item() == pytest.approx(nn.functional.mse_loss(zs, zt).item())
    kl = nn.functional.kl_div(zs.log_softmax(1), zt.log_softmax(1), log_target=True, reduction="batchmean")
    assert logit_loss_per_image(zs, zt, "kl").mean().item() == pytest.approx(kl.item(), rel=1e-5)


def test_the_kl_term_ignores_the_size_of_a_teachers_logits_where_mse_does_not():
    # a confident teacher: logits (4, 0) and the same distribution's logits shifted by 10: KL equal, MSE not
    zs = torch.zeros(1, 2)
    a, b = torch.tensor([[4.0, 0.0]]), torch.tensor([[14.0, 10.0]])
    assert logit_loss_per_image(zs, a, "kl").item() == pytest.approx(logit_loss_per_image(zs, b, "kl").item())
    assert logit_loss_per_image(zs, b, "mse").item() > logit_loss_per_image(zs, a, "mse").item()


def test_logit_losses_are_float32_under_autocast_and_check_their_arguments():
    zs, zt = torch.randn(3, 4).bfloat16(), torch.randn(3, 4).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert logit_loss_per_image(zs, zt).dtype == torch.float32
    with pytest.raises(ValueError, match="kind must be one of 'kl', 'mse'"):
        logit_loss_per_image(zs, zt, "l1")
    with pytest.raises(ValueError, match=r"both be \(N, C\)"):
        logit_loss_per_image(zs, zt[:2])


def test_feature_mse_per_image_golden_and_float32():
    a = torch.zeros(2, 1, 2, 2)
    b = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 2.0]]).view(2, 1, 2, 2)
    assert feature_mse_per_image(a, b).tolist() == pytest.approx([1.0, 1.0])  # 4 * 1 / 4 and 4 / 4
    assert feature_mse_per_image(a, b).mean().item() == pytest.approx(nn.functional.mse_loss(a, b).item())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert feature_mse_per_image(a.bfloat16(), b.bfloat16()).dtype == torch.float32
    with pytest.raises(ValueError, match="same shape"):
        feature_mse_per_image(a, b[:1])
