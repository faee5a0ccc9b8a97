"""Tests of kae_utils.methods.recombination: the combined network reproduces its teachers exactly (also at the start of
retraining, adaptors included, in training mode), refusals, and the BatchNorm-folded importance on a toy whose answer
is known, through Torch-Pruning."""

from __future__ import annotations

import copy

import pytest
import torch
import torch_pruning as tp
from torch import nn

from kae_utils.methods.recombination import (
    FoldedL1Importance,
    Recombined,
    channel_owners,
    combine_bn,
    combine_conv,
    folded_l1,
    selection_adaptor,
)
from kae_utils.models import build_encdec

WIDTHS = (4, 8, 16)


def _teachers(widths=WIDTHS):
    """Two trained-looking teachers: random weights and BatchNorm statistics far from their defaults."""
    teachers = {"segmentation": build_encdec("segmentation", 5, widths=widths, seed=1),
                "depth": build_encdec("depth", 1, widths=widths, seed=2)}
    gen = torch.Generator().manual_seed(0)
    for net in teachers.values():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                with torch.no_grad():
                    m.weight.copy_(torch.rand(m.num_features, generator=gen) * 2 + 0.1)
                    m.bias.copy_(torch.randn(m.num_features, generator=gen))
                    m.running_mean.copy_(torch.randn(m.num_features, generator=gen))
                    m.running_var.copy_(torch.rand(m.num_features, generator=gen) * 3 + 0.2)
    return teachers


def _max_relative(out: dict, ref: dict) -> float:
    return max(((out[t] - ref[t]).abs().max() / ref[t].abs().max()).item() for t in ref)


def test_recombined_reproduces_both_teachers_in_eval_mode():
    teachers = {k: v.eval() for k, v in _teachers().items()}
    model = Recombined(teachers).eval()
    x = torch.rand(6, 3, 16, 16)
    with torch.no_grad():
        assert _max_relative(model(x), {t: net(x) for t, net in teachers.items()}) <= 1e-5
        # in float64 the only differences are the order of sums with exact zeros: none
        model64, ref64 = copy.deepcopy(model).double(), {t: copy.deepcopy(n).double() for t, n in teachers.items()}
        out64 = model64(x.double())
        for t, net in ref64.items():
            torch.testing.assert_close(out64[t], net(x.double()), rtol=0, atol=1e-10)


def test_recombined_reproduces_both_teachers_at_the_start_of_retraining():
    """Training mode (BatchNorm on the batch's statistics), as retraining sees its first batch, adaptors included."""
    teachers = _teachers()
    model = Recombined(teachers).train()
    x = torch.rand(6, 3, 16, 16)
    with torch.no_grad():
        ref = {t: copy.deepcopy(net).train()(x) for t, net in teachers.items()}
        out = model(x)
    assert set(out) == {"segmentation", "depth"}
    assert _max_relative(out, ref) <= 1e-5
    # and the loss of a first step against the teachers' maps is zero
    assert all(torch.allclose(out[t], ref[t], rtol=1e-5, atol=1e-6) for t in ref)
    # float32 rounding aside (BatchNorm on a batch's statistics magnifies it in nearly constant channels), exact
    with torch.no_grad():
        out64 = copy.deepcopy(model).double().train()(x.double())
        for t, net in teachers.items():
            torch.testing.assert_close(out64[t], copy.deepcopy(net).double().train()(x.double()), rtol=0, atol=1e-10)


def test_the_combined_encoder_is_block_diagonal_and_owned_per_teacher():
    teachers = _teachers()
    model = Recombined(teachers)
    second = model.encoder[1][0].weight
    assert second.shape[:2] == (16, 8)
    assert second[:8, 4:].abs().sum() == 0 and second[8:, :4].abs().sum() == 0
    torch.testing.assert_close(second[:8, :4], teachers["segmentation"].encoder[1][0].weight)
    owners = channel_owners([t.encoder for t in teachers.values()])
    assert [o.tolist() for o in owners] == [[0] * 4 + [1] * 4, [0] * 8 + [1] * 8, [0] * 16 + [1] * 16]


def test_selection_adaptor_passes_its_block_of_non_negative_channels():
    adaptor = selection_adaptor(6, 2, 3)
    h = torch.rand(2, 6, 4, 4)
    torch.testing.assert_close(adaptor(h), h[:, 2:5])
    with pytest.raises(ValueError, match="not among"):
        selection_adaptor(4, 2, 3)


def test_refusals_name_the_layer():
    with pytest.raises(ValueError, match="groups = 1"):
        combine_conv([nn.Conv2d(8, 8, 3, groups=2), nn.Conv2d(8, 8, 3, groups=2)], first=False)
    with pytest.raises(ValueError, match="must agree"):
        combine_conv([nn.Conv2d(3, 4, 3), nn.Conv2d(3, 4, 5)], first=True)
    with pytest.raises(ValueError, match="eps"):
        combine_bn([nn.BatchNorm2d(4), nn.BatchNorm2d(4, eps=1e-3)])


def _toy() -> nn.Sequential:
    """conv (1 -> 4, 1x1, no bias) -> BN -> ReLU -> conv (4 -> 2): filter L1 norms 4, 3, 2, 1; BN gains
    |gamma| / sigma of 0.1, 1, 1, 8, so the folded norms are 0.4, 3, 2, 8."""
    conv = nn.Conv2d(1, 4, 1, bias=False)
    bn = nn.BatchNorm2d(4, eps=0.0)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([4.0, -3.0, 2.0, 1.0]).view(4, 1, 1, 1))
        bn.weight.copy_(torch.tensor([0.2, -1.0, 3.0, 8.0]))
        bn.running_var.copy_(torch.tensor([4.0, 1.0, 9.0, 1.0]))  # sigma 2, 1, 3, 1
    return nn.Sequential(conv, bn, nn.ReLU(), nn.Conv2d(4, 2, 1))


def test_folded_l1_by_hand():
    toy = _toy()
    torch.testing.assert_close(folded_l1(toy[0]), torch.tensor([4.0, 3.0, 2.0, 1.0]))
    torch.testing.assert_close(folded_l1(toy[0], toy[1]), torch.tensor([0.4, 3.0, 2.0, 8.0]))
    with pytest.raises(ValueError, match="cannot follow"):
        folded_l1(toy[0], nn.BatchNorm2d(3))


def _prune_half(importance) -> list[float]:
    """Prune half of the toy's hidden channels with ``importance``; the surviving filters' weights, in order."""
    toy = _toy()
    pruner = tp.pruner.BasePruner(toy, torch.rand(1, 1, 4, 4), importance=importance, pruning_ratio=0.5,
                                  ignored_layers=[toy[3]])
    pruner.step()
    return toy[0].weight.flatten().tolist()


def test_folded_importance_prunes_the_channels_batchnorm_shrinks():
    model = _toy()
    DG = tp.DependencyGraph().build_dependency(model, example_inputs=torch.rand(1, 1, 4, 4))
    group = DG.get_pruning_group(model[0], tp.prune_conv_out_channels, idxs=[0, 1, 2, 3])
    torch.testing.assert_close(FoldedL1Importance()(group), torch.tensor([0.4, 3.0, 2.0, 8.0]))
    # raw L1 keeps the two largest filters (4 and -3); the folded norm keeps -3 and 1, the channels whose outputs
    # BatchNorm does not shrink
    assert _prune_half(tp.importance.MagnitudeImportance(p=1, group_reduction="first", normalizer=None)) == [4.0, -3.0]
    assert _prune_half(FoldedL1Importance()) == [-3.0, 1.0]
