"""Tests of kae_utils.models.encdec: shapes, heads, splitting at branch points, golden parameter counts."""

from __future__ import annotations

import pytest
import torch

from kae_utils.models import DENSE_TASK_KINDS, DenseHead, EncoderDecoder, build_encdec, count_parameters

WIDTHS = (4, 8, 16)


@pytest.mark.parametrize(("kind", "channels"), [("segmentation", 7), ("depth", 1), ("normals", 3)])
def test_output_shapes_and_branch_channels(kind, channels):
    model = build_encdec(kind, channels, widths=WIDTHS).eval()
    x = torch.rand(2, 3, 16, 16)
    assert model(x).shape == (2, channels, 16, 16)
    assert model.num_branch_points == 3 and model.factor == 4
    # after the encoder: 16 channels at 4 x 4; after decoder block 1: 8 at 8 x 8; after block 2: 4 at 16 x 16
    for point, shape in enumerate([(2, 16, 4, 4), (2, 8, 8, 8), (2, 4, 16, 16)]):
        assert model.features(x, upto=point).shape == shape
        assert model.branch_channels(point) == shape[1]


def test_forward_equals_features_then_forward_from_at_every_point():
    model = build_encdec("segmentation", 5, widths=WIDTHS, seed=3).eval()
    x = torch.rand(2, 3, 8, 8)
    full = model(x)
    for point in range(model.num_branch_points):
        torch.testing.assert_close(model.forward_from(model.features(x, point), point), full)


def test_heads_give_positive_depth_and_unit_normals():
    x = torch.randn(2, 3, 8, 8)
    depth = build_encdec("depth", 1, widths=WIDTHS).eval()(x)
    normals = build_encdec("normals", 3, widths=WIDTHS).eval()(x)
    assert (depth > 0).all()
    torch.testing.assert_close(normals.norm(dim=1), torch.ones(2, 8, 8))
    head = DenseHead(4, "depth", 1)
    with torch.no_grad():
        head.proj.weight.zero_()
        head.proj.bias.fill_(1000.0)  # the log-depth is clamped: no overflow to inf
    assert torch.isfinite(head(torch.ones(1, 4, 2, 2))).all()


def test_head_bias_sets_the_initial_output():
    head = DenseHead(4, "depth", 1, bias=2.0)
    with torch.no_grad():
        head.proj.weight.zero_()
    torch.testing.assert_close(head(torch.rand(1, 4, 2, 2)), torch.full((1, 1, 2, 2), float(torch.e**2)))
    model = build_encdec("depth", 1, widths=WIDTHS, head_bias=1.5)
    torch.testing.assert_close(model.head.proj.bias, torch.tensor([1.5]))
    default = build_encdec("depth", 1, widths=WIDTHS)  # PyTorch's default: uniform in +-1/sqrt(fan_in)
    assert default.head.proj.bias.abs().max() <= 0.5


def test_parameter_count_golden():
    # widths (4, 8), 7 classes: encoder conv 3->4 (3*3*3*4 = 108, no bias) + BN 8, conv 4->8 (288) + BN 16;
    # decoder block 8->4 (288) + BN 8; head 1x1 conv 4->7 (28 + 7 bias) -> 751
    model = EncoderDecoder("segmentation", 7, widths=(4, 8))
    assert count_parameters(model) == 751
    assert count_parameters(model.encoder) == 108 + 8 + 288 + 16


def test_seeded_builds_are_identical_and_leave_the_global_rng_alone():
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    a = build_encdec("depth", 1, widths=WIDTHS, seed=5)
    after = torch.rand(1)
    b = build_encdec("depth", 1, widths=WIDTHS, seed=5)
    assert torch.equal(before, after)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_named_blocks_for_splitting():
    model = EncoderDecoder("segmentation", 3, widths=WIDTHS)
    names = {name for name, _ in model.named_children()}
    assert names == {"encoder", "decoder", "head"}
    assert len(model.encoder) == 3 and len(model.decoder) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "edges", "out_channels": 1}, "kind must be one of"),
        ({"kind": "depth", "out_channels": 2}, "depth head has 1 output channel"),
        ({"kind": "normals", "out_channels": 1}, "normals head has 3 output channels"),
        ({"kind": "depth", "out_channels": 1, "widths": (8,)}, "at least two positive integers"),
    ],
)
def test_construction_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EncoderDecoder(**kwargs)


def test_usage_errors_name_what_was_wrong():
    model = build_encdec("segmentation", 3, widths=WIDTHS)
    with pytest.raises(ValueError, match=r"branch point must be an integer in \[0, 2\]"):
        model.features(torch.rand(1, 3, 8, 8), upto=3)
    with pytest.raises(ValueError, match="divisible by 4"):
        model.features(torch.rand(1, 3, 10, 10), upto=0)
    with pytest.raises(ValueError, match="branch point 1 carries 8 channels"):
        model.forward_from(torch.rand(1, 16, 4, 4), 1)
    assert DENSE_TASK_KINDS == ("segmentation", "depth", "normals")


def test_multitask_network_shares_its_encoder_and_counts_one_decoder_per_task():
    from kae_utils.models import build_multitask_encdec

    net = build_multitask_encdec({"segmentation": 7, "depth": 1}, widths=WIDTHS, seed=1).eval()
    out = net(torch.rand(2, 3, 16, 16))
    assert set(out) == {"segmentation", "depth"} and net.tasks == ("segmentation", "depth")
    assert out["segmentation"].shape == (2, 7, 16, 16) and (out["depth"] > 0).all()
    single = {t: build_encdec(t, c, widths=WIDTHS) for t, c in (("segmentation", 7), ("depth", 1))}
    encoder = count_parameters(single["depth"].encoder)
    assert count_parameters(net) == sum(count_parameters(m) for m in single.values()) - encoder
    again = build_multitask_encdec({"segmentation": 7, "depth": 1}, widths=WIDTHS, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), again.state_dict().values(), strict=True))
    with pytest.raises(ValueError, match="at least one task"):
        build_multitask_encdec({})


def test_multitask_network_with_a_wider_encoder():
    from kae_utils.models import build_multitask_encdec

    tasks = {"segmentation": 7, "depth": 1}
    net = build_multitask_encdec(tasks, widths=WIDTHS, encoder_widths=(4, 8, 20), seed=1).eval()
    out = net(torch.rand(2, 3, 16, 16))
    assert out["segmentation"].shape == (2, 7, 16, 16) and out["depth"].shape == (2, 1, 16, 16)
    assert net.encoder_widths == (4, 8, 20) and net.widths == WIDTHS
    assert net.encoder[-1][0].out_channels == 20
    assert all(d[0].conv[0].in_channels == 20 and d[1].conv[0].in_channels == 8 for d in net.decoders.values())
    # golden count: the (4, 8, 16) network plus 4 more encoder channels (3x3 conv from 8: 288 + BN 8) and 4 more
    # input channels of each first decoder block (3x3 to 8: 288)
    narrow = build_multitask_encdec(tasks, widths=WIDTHS, seed=1)
    assert count_parameters(net) == count_parameters(narrow) + 288 + 8 + 2 * 288
    # the same widths as `widths` is the plain network, weights included
    same = build_multitask_encdec(tasks, widths=WIDTHS, encoder_widths=WIDTHS, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(same.state_dict().values(), narrow.state_dict().values(), strict=True))
    with pytest.raises(ValueError, match="encoder_widths must be 3"):
        build_multitask_encdec(tasks, widths=WIDTHS, encoder_widths=(4, 8))
