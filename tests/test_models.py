"""Tests for kae_utils.models: backbones and their features, the seeded factory, counting, taps."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from kae_utils.models import (
    ARCHITECTURES,
    MLP,
    BasicBlock,
    ConvNet,
    FeatureTaps,
    ResNet,
    build_model,
    count_parameters,
)

N = 3
WIDTHS = (4, 8, 16)
# expected feature shapes on a (N, 1, 16, 16) input with widths (4, 8, 16)
EXPECTED_FEATURES = {
    # conv keeps the size; max-pool after every stage but the last: 16 -> 8 -> 4 -> 4
    "convnet": {"stage1": (N, 4, 8, 8), "stage2": (N, 8, 4, 4), "stage3": (N, 16, 4, 4), "pool": (N, 16)},
    # stem and stage 1 keep 16; stages 2 and 3 halve with stride 2: 16 -> 8 -> 4
    "resnet": {"stage1": (N, 4, 16, 16), "stage2": (N, 8, 8, 8), "stage3": (N, 16, 4, 4), "pool": (N, 16)},
    # flattened 256 values -> 4 -> 8 -> 16 units
    "mlp": {"hidden1": (N, 4), "hidden2": (N, 8), "hidden3": (N, 16), "pool": (N, 16)},
}


def make(arch: str, num_classes: int = 10, seed: int = 0, **kwargs) -> nn.Module:
    if arch == "mlp":
        kwargs.setdefault("image_size", 16)
    return build_model(arch, num_classes, widths=WIDTHS, seed=seed, **kwargs)


def states_equal(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ---------------------------------------------------------------------------------------- forward


def test_architectures_registry():
    assert ARCHITECTURES == {"convnet": ConvNet, "resnet": ResNet, "mlp": MLP}


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_logits_and_feature_shapes(arch):
    model = make(arch, num_classes=7).eval()
    x = torch.rand(N, 1, 16, 16)
    logits = model(x)
    assert logits.shape == (N, 7)
    logits2, feats = model(x, return_features=True)
    assert torch.equal(logits, logits2)
    expected = EXPECTED_FEATURES[arch]
    assert model.feature_names == tuple(expected)
    assert list(feats) == list(expected)  # in order
    assert {k: tuple(v.shape) for k, v in feats.items()} == expected
    assert model.feature_dim == 16
    # the classifier reads the "pool" feature
    torch.testing.assert_close(model.classifier(feats["pool"]), logits)


@pytest.mark.parametrize("arch", ["convnet", "resnet"])
def test_pool_is_global_average_of_last_stage(arch):
    model = make(arch).eval()
    _, feats = model(torch.rand(N, 1, 16, 16), return_features=True)
    torch.testing.assert_close(feats["pool"], feats["stage3"].mean(dim=(2, 3)))


def test_convnet_pool_every_stage():
    model = ConvNet(10, widths=WIDTHS, pool_every_stage=True).eval()
    _, feats = model(torch.rand(N, 1, 16, 16), return_features=True)
    assert feats["stage3"].shape == (N, 16, 2, 2)  # 16 -> 8 -> 4 -> 2


def test_in_channels_rgb():
    for arch in ("convnet", "resnet"):
        assert make(arch, in_channels=3).eval()(torch.rand(2, 3, 16, 16)).shape == (2, 10)
    mlp = make("mlp", in_channels=3, image_size=4)
    assert mlp.in_features == 48  # 3 * 4 * 4
    assert mlp(torch.rand(2, 3, 4, 4)).shape == (2, 10)


def test_resnet_blocks_per_stage():
    model = ResNet(10, widths=(4, 8), blocks=3)
    assert [len(stage) for stage in model.stages] == [3, 3]
    assert all(isinstance(b, BasicBlock) for stage in model.stages for b in stage)
    assert model.eval()(torch.rand(2, 1, 8, 8)).shape == (2, 10)
    with pytest.raises(ValueError, match="blocks"):
        ResNet(10, widths=(4,), blocks=0)


def test_basic_block_shortcut():
    same = BasicBlock(4, 4)
    assert isinstance(same.shortcut, nn.Identity)
    down = BasicBlock(4, 8, stride=2)
    assert isinstance(down.shortcut, nn.Sequential)
    assert down.eval()(torch.rand(2, 4, 8, 8)).shape == (2, 8, 4, 4)
    # identity shortcut and ReLU after the sum: with the residual branch zeroed, out = relu(x)
    with torch.no_grad():
        same.bn2.weight.zero_()
        same.bn2.bias.zero_()
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(same.eval()(x), torch.relu(x))


def test_mlp_wrong_input_size():
    model = MLP(10, widths=(5,), image_size=8)
    with pytest.raises(ValueError, match="64") as info:
        model(torch.rand(2, 1, 16, 16))
    assert "256" in str(info.value)


def test_mlp_dropout_checked():
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="dropout"):
            MLP(10, widths=(4,), dropout=bad)


@pytest.mark.parametrize("cls", [ConvNet, ResNet, MLP])
@pytest.mark.parametrize("widths", [(), (4, 0), (-1,)])
def test_bad_widths(cls, widths):
    with pytest.raises(ValueError, match="widths"):
        cls(10, widths=widths)


# ------------------------------------------------------------------------------------- build_model


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_build_model_same_seed_same_weights(arch):
    a = make(arch, seed=3)
    torch.rand(100)  # whatever ran before must not matter
    b = make(arch, seed=3)
    c = make(arch, seed=4)
    assert states_equal(a, b)
    assert not states_equal(a, c)


def test_build_model_leaves_global_rng_alone():
    torch.manual_seed(0)
    before = torch.get_rng_state()
    build_model("resnet", 10, widths=(4, 8), seed=11)
    assert torch.equal(torch.get_rng_state(), before)


def test_build_model_passes_extra_kwargs_and_types():
    model = build_model("resnet", 5, widths=(4, 8), blocks=2)
    assert isinstance(model, ResNet) and len(model.stages[0]) == 2
    mlp = build_model("mlp", 5, widths=(3,), image_size=4, dropout=0.5)
    assert isinstance(mlp, MLP) and mlp.in_features == 16 and mlp.hidden[0][2].p == 0.5
    assert build_model("convnet", 5, widths=(4,)).classifier.out_features == 5


def test_build_model_unknown_arch_names_choices():
    with pytest.raises(ValueError) as info:
        build_model("vgg", 10)
    message = str(info.value)
    assert "'vgg'" in message
    for name in ARCHITECTURES:
        assert repr(name) in message


# ------------------------------------------------------------------------------- count_parameters


def test_count_parameters_mlp_golden():
    model = build_model("mlp", 10, widths=(3,), image_size=8, in_channels=1)
    # Linear(64, 3): 64*3 + 3 = 195; Linear(3, 10): 3*10 + 10 = 40; total 235
    assert count_parameters(model) == 235
    for p in model.hidden.parameters():
        p.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == 40
    assert count_parameters(model) == 235


def test_count_parameters_convnet_golden():
    model = build_model("convnet", 10, widths=(2,))
    # conv 3x3, 1 -> 2, no bias: 1*2*9 = 18; BatchNorm weight+bias: 2+2 = 4 (running stats are
    # buffers, not parameters); Linear(2, 10): 2*10 + 10 = 30; total 52
    assert count_parameters(model) == 52
    model.classifier.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == 22


# ------------------------------------------------------------------------------------ FeatureTaps


def test_feature_taps_match_return_features():
    model = make("convnet").eval()
    x = torch.rand(N, 1, 16, 16)
    _, feats = model(x, return_features=True)
    with FeatureTaps(model, ["stages.0", "stages.2", "classifier"]) as taps:
        logits = model(x)
    assert list(taps.features) == ["stages.0", "stages.2", "classifier"]
    assert torch.equal(taps.features["stages.0"], feats["stage1"])
    assert torch.equal(taps.features["stages.2"], feats["stage3"])
    assert torch.equal(taps.features["classifier"], logits)
    assert taps.names == ("stages.0", "stages.2", "classifier")


def test_feature_taps_detach_flag():
    model = make("mlp")
    x = torch.rand(2, 1, 16, 16)
    with FeatureTaps(model, ["hidden.0"]) as taps:
        model(x)
    assert not taps.features["hidden.0"].requires_grad
    with FeatureTaps(model, ["hidden.0"], detach=False) as taps:
        model(x)
    assert taps.features["hidden.0"].requires_grad


def all_hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


def test_feature_taps_remove_hooks_on_exit_even_after_an_error():
    model = make("resnet").eval()
    with FeatureTaps(model, ["stem", "stages.1"]):
        assert all_hooks(model) == 2
    assert all_hooks(model) == 0
    with pytest.raises(RuntimeError, match="boom"), FeatureTaps(model, ["stem"]):
        raise RuntimeError("boom")
    assert all_hooks(model) == 0
    assert model._forward_hooks == {}


def test_feature_taps_fresh_features_each_entry():
    model = make("mlp").eval()
    taps = FeatureTaps(model, ["hidden.0", "hidden.1"])
    with taps:
        model(torch.rand(2, 1, 16, 16))
    with taps:
        assert taps.features == {}
        model(torch.rand(5, 1, 16, 16))
    assert taps.features["hidden.1"].shape == (5, 8)


def test_feature_taps_unknown_name_lists_valid_names():
    model = make("mlp")
    with pytest.raises(KeyError) as info:
        FeatureTaps(model, ["hidden.0", "hiden.1"])
    message = str(info.value)
    assert "hiden.1" in message
    for valid in ("hidden.0", "hidden.1", "classifier"):
        assert valid in message


def test_feature_taps_clone_protects_against_in_place_relu():
    # BatchNorm followed by ReLU(inplace=True): the BN output tensor is overwritten by the ReLU
    model = nn.Sequential(nn.BatchNorm1d(4), nn.ReLU(inplace=True)).eval()
    x = torch.tensor([[-1.0, 2.0, -3.0, 4.0]])
    with FeatureTaps(model, ["0"]) as shared, FeatureTaps(model, ["0"], clone=True) as copied:
        model(x)
    assert (copied.features["0"] < 0).any()  # the pre-activation values, negatives included
    assert (shared.features["0"] >= 0).all()  # without a copy the tap sees the ReLU's in-place result
    assert torch.equal(copied.features["0"].clamp(min=0), shared.features["0"])


def test_teacher_outputs_reuses_feature_taps_errors():
    from kae_utils.methods.amalgamation import teacher_outputs

    teacher = nn.Sequential(nn.Linear(3, 2))
    with pytest.raises(KeyError, match="valid names"):
        teacher_outputs([teacher], torch.zeros(4, 3), ["nope"])


def test_multihead_net_heads_features_and_seeding():
    from kae_utils.models import MultiHeadNet, build_multihead

    for backbone in ("convnet", "resnet"):
        net = build_multihead(backbone, {"shape": 8, "fill": 4}, in_channels=3, widths=(4, 8), seed=2).eval()
        out, feats = net(torch.rand(5, 3, 16, 16), return_features=True)
        assert net.tasks == ("shape", "fill") and out["shape"].shape == (5, 8) and out["fill"].shape == (5, 4)
        assert feats["pool"].shape == (5, 8) and net.feature_names[-1] == "pool"
        again = build_multihead(backbone, {"shape": 8, "fill": 4}, in_channels=3, widths=(4, 8), seed=2)
        assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), again.state_dict().values(), strict=True))
    with pytest.raises(ValueError, match="at least one head"):
        MultiHeadNet("convnet", {})
    with pytest.raises(ValueError, match="backbone must be one of"):
        MultiHeadNet("mlp", {"shape": 8})
