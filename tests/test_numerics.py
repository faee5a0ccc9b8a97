"""The numerics setting: how ``auto`` resolves, the environment's override, float32 losses under autocast, and
the trainer, the prediction helpers and the zoo running with it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kae_utils.methods.distillation import kd_kl, mmd2
from kae_utils.models import build_model
from kae_utils.training.numerics import (
    Numerics,
    cpu_has_native_bf16,
    current,
    float32_loss,
    for_call,
    notebook_numerics,
    resolve_numerics,
    set_numerics,
    using,
)
from kae_utils.training.predict import predict_logits, predict_maps
from kae_utils.training.trainer import Trainer
from kae_utils.zoo.entries import Recipe, ZooEntry, make_registry
from kae_utils.zoo.registry.common import digits_split
from kae_utils.zoo.store import Zoo


@pytest.fixture()
def no_env(monkeypatch):
    monkeypatch.delenv("KAE_PRECISION", raising=False)
    monkeypatch.delenv("KAE_CHANNELS_LAST", raising=False)


def _cpuinfo(tmp_path: Path, flags: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu sse2 {flags}\n\nprocessor\t: 1\n")
    return path


def test_cpu_flags_are_read_from_cpuinfo(tmp_path: Path) -> None:
    assert cpu_has_native_bf16(_cpuinfo(tmp_path, "avx2 avx512f avx512_bf16")) == "avx512_bf16"
    assert cpu_has_native_bf16(_cpuinfo(tmp_path, "avx2 amx_tile amx_bf16")) == "amx_bf16"
    assert cpu_has_native_bf16(_cpuinfo(tmp_path, "avx2 avx512f")) is None
    assert cpu_has_native_bf16(tmp_path / "no such file") is None


def test_auto_follows_the_cpu(no_env, monkeypatch) -> None:
    monkeypatch.setattr("kae_utils.training.numerics.cpu_has_native_bf16", lambda: "avx512_bf16")
    chosen = resolve_numerics("auto", "cpu")
    assert (chosen.precision, chosen.channels_last) == ("bf16", True)
    assert chosen.describe() == "numerics: bfloat16 autocast, channels-last (auto: the CPU reports avx512_bf16)"
    monkeypatch.setattr("kae_utils.training.numerics.cpu_has_native_bf16", lambda: None)
    assert resolve_numerics("auto", "cpu").precision == "fp32"
    assert resolve_numerics("auto", "cpu").reason == "auto: no native bf16 on this device"


def test_the_environment_forces_auto_but_not_an_explicit_choice(no_env, monkeypatch) -> None:
    monkeypatch.setattr("kae_utils.training.numerics.cpu_has_native_bf16", lambda: "avx512_bf16")
    monkeypatch.setenv("KAE_PRECISION", "fp32")
    assert resolve_numerics("auto").precision == "fp32"
    assert resolve_numerics("auto").reason == "forced by KAE_PRECISION=fp32"
    assert resolve_numerics("bf16").precision == "bf16"
    monkeypatch.setenv("KAE_CHANNELS_LAST", "0")
    assert not resolve_numerics("auto").channels_last
    assert "contiguous (NCHW)" in resolve_numerics("auto").describe()


def test_a_notebook_keeps_its_own_precision_unless_the_environment_forces_one(no_env, monkeypatch) -> None:
    monkeypatch.setattr("kae_utils.training.numerics.cpu_has_native_bf16", lambda: "avx512_bf16")
    assert notebook_numerics("fp32").precision == "fp32"
    assert notebook_numerics("auto").precision == "bf16"
    monkeypatch.setenv("KAE_PRECISION", "bf16")
    forced = notebook_numerics("fp32")
    assert (forced.precision, forced.reason) == ("bf16", "forced by KAE_PRECISION=bf16")
    monkeypatch.setenv("KAE_PRECISION", "fp32")
    assert notebook_numerics("bf16").precision == "fp32"
    with using("bf16") as inside:  # a block that names its precision is not overridden
        assert inside.precision == "bf16"
    monkeypatch.setenv("KAE_PRECISION", "auto")
    assert notebook_numerics("fp32").precision == "fp32"
    with pytest.raises(ValueError, match="precision must be one of"):
        notebook_numerics("fp16")


def test_setup_notebook_applies_the_notebook_numerics(no_env, monkeypatch) -> None:
    from kae_utils.notebook import setup_notebook

    monkeypatch.setattr("kae_utils.training.numerics.cpu_has_native_bf16", lambda: "avx512_bf16")
    try:
        setup_notebook(0, "cpu", precision="fp32")
        assert current().precision == "fp32"
        monkeypatch.setenv("KAE_PRECISION", "bf16")
        setup_notebook(0, "cpu", precision="fp32")
        assert current().precision == "bf16"
    finally:
        set_numerics("auto")


def test_bad_values_name_the_allowed_ones(no_env, monkeypatch) -> None:
    with pytest.raises(ValueError, match=r"precision must be one of 'auto', 'fp32', 'bf16'; got 'fp16'"):
        resolve_numerics("fp16")
    monkeypatch.setenv("KAE_PRECISION", "half")
    with pytest.raises(ValueError, match=r"KAE_PRECISION must be one of 'auto', 'fp32', 'bf16'; got 'half'"):
        resolve_numerics("auto")
    monkeypatch.setenv("KAE_PRECISION", "fp32")
    monkeypatch.setenv("KAE_CHANNELS_LAST", "maybe")
    with pytest.raises(ValueError, match="KAE_CHANNELS_LAST must be one of"):
        resolve_numerics("auto")


def test_bf16_asked_for_without_native_support_says_it_is_emulated(no_env, monkeypatch) -> None:
    monkeypatch.setattr("kae_utils.training.numerics.cpu_has_native_bf16", lambda: None)
    assert resolve_numerics("bf16", "cpu").reason == "asked for; emulated here, slow"


def test_using_restores_the_previous_setting() -> None:
    before = current()
    with using("bf16", "cpu", channels_last=True) as inside:
        assert current() is inside and inside.precision == "bf16"
    assert current() == before
    set_numerics(before)
    assert current() is before


def test_float32_loss_upcasts_half_inputs_only_and_keeps_the_gradient() -> None:
    seen = []

    @float32_loss
    def loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        seen.append((a.dtype, b.dtype, torch.is_autocast_enabled("cpu")))
        return F.log_softmax(a, dim=1).mul(b).sum()

    x = torch.randn(4, 3, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = F.linear(x, torch.eye(3))
        assert logits.dtype == torch.bfloat16
        out = loss(logits, torch.ones(4, 3, dtype=torch.float64))
    assert seen[-1] == (torch.float32, torch.float64, False)
    assert out.dtype == torch.float64
    out.backward()
    assert x.grad is not None and x.grad.dtype == torch.float32
    double = torch.randn(2, 3, dtype=torch.float64)
    assert loss(double, double).dtype == torch.float64


def test_library_losses_are_float32_under_autocast() -> None:
    z = torch.randn(8, 5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z_half = F.linear(z, torch.eye(5))
        assert kd_kl(z_half, z_half.flip(0), 4.0).dtype == torch.float32
        assert mmd2(z_half, z_half.flip(0)).dtype == torch.float32
    # inside the loss the values are the bf16 ones, computed in float32
    assert torch.allclose(kd_kl(z_half.float(), z_half.flip(0).float(), 4.0),
                          kd_kl(z_half, z_half.flip(0), 4.0))


def _conv_net() -> nn.Module:
    return build_model("convnet", 3, in_channels=1, widths=(8, 16), seed=0)


def test_trainer_runs_the_step_under_autocast_in_channels_last() -> None:
    seen = []

    def step(model, batch):
        x, y = batch
        seen.append((x.is_contiguous(memory_format=torch.channels_last), torch.is_autocast_enabled("cpu")))
        out = model(x)
        seen.append(out.dtype)
        return F.cross_entropy(out, y)

    x, y = torch.randn(32, 1, 8, 8), torch.randint(0, 3, (32,))
    trainer = Trainer(_conv_net(), epochs=1, batch_size=16, step_fn=step, progress=False,
                      precision=Numerics("bf16", True, "cpu", "test"))
    history = trainer.fit((x, y))
    assert seen[0] == (True, True) and seen[1] == torch.bfloat16
    conv = trainer.model.stages[0][0][0]
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert conv.weight.dtype == torch.float32, "autocast keeps the parameters in float32"
    assert isinstance(history.last("train_loss"), float)


def test_trainer_takes_the_process_setting_by_default() -> None:
    with using("bf16", "cpu", channels_last=False):
        trainer = Trainer(_conv_net(), epochs=1, progress=False)
    assert trainer.numerics.precision == "bf16" and not trainer.numerics.channels_last


def test_prediction_helpers_return_float32_contiguous_and_follow_the_setting() -> None:
    net = _conv_net().eval()
    x = torch.randn(10, 1, 8, 8)
    reference = net(x).detach()
    with using("bf16", "cpu", channels_last=True) as numerics:
        numerics.prepare_model(net)
        logits = predict_logits(net, x, batch_size=4)
        maps = predict_maps(nn.Sequential(nn.Conv2d(1, 2, 3, padding=1)), x)["output"]
    assert logits.dtype == torch.float32 and maps.dtype == torch.float32 and maps.is_contiguous()
    # bf16 has 8 bits of mantissa: close to the float32 logits, not equal
    assert not torch.equal(logits, reference)
    torch.testing.assert_close(logits, reference, atol=0.1, rtol=0.05)
    with using("fp32", "cpu", channels_last=True):
        torch.testing.assert_close(predict_logits(net, x), reference, atol=1e-5, rtol=1e-4)


def test_for_call_takes_the_setting_a_resolved_numerics_or_a_name() -> None:
    resolved = resolve_numerics("fp32", "cpu", channels_last=False)
    with using("bf16", "cpu", channels_last=True) as setting:
        assert for_call(None, "cpu") is setting
        assert for_call(resolved, "cpu") is resolved
        assert for_call("fp32", "cpu").precision == "fp32" and for_call("fp32", "cpu").reason == "asked for"


def test_prediction_helpers_take_a_precision_that_overrides_the_setting() -> None:
    """precision= gives exactly what a plain float32 NCHW forward pass gives, under a bf16 process setting."""
    net, conv = _conv_net().eval(), nn.Sequential(nn.Conv2d(1, 2, 3, padding=1)).eval()
    x = torch.randn(10, 1, 8, 8)
    with torch.no_grad():
        reference_logits, reference_maps = net(x), conv(x)
    float32 = resolve_numerics("fp32", "cpu", channels_last=False)
    with using("bf16", "cpu", channels_last=True):
        assert torch.equal(predict_logits(net, x, batch_size=4, precision=float32), reference_logits)
        assert torch.equal(predict_maps(conv, x, batch_size=4, precision=float32)["output"], reference_maps)
        assert not torch.equal(predict_maps(conv, x, batch_size=4)["output"], reference_maps)  # the bf16 setting
        assert not torch.equal(predict_logits(net, x, precision="bf16"), reference_logits)  # a name is resolved


def _tiny_conv_registry() -> dict[str, ZooEntry]:
    teacher = ZooEntry(
        name="tiny-conv", task="digits 0..2", arch="convnet",
        arch_args={"num_classes": 3, "in_channels": 1, "widths": [8, 16]},
        data=digits_split("train", (0, 1, 2)), held_out=digits_split("test", (0, 1, 2)),
        recipe=Recipe(epochs=2, lr=3e-3, batch_size=64), seed=0, used_by=("tests",))
    return make_registry([teacher])


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_zoo_build_records_its_numerics_and_reproduces_its_bytes(tmp_path: Path, precision: str) -> None:
    hashes = []
    for copy in ("a", "b"):
        z = Zoo(tmp_path / copy, _tiny_conv_registry())
        z.build(device="cpu", precision=precision, log=lambda _: None)
        record = z.manifest()["entries"]["tiny-conv"]
        assert record["precision"] == precision and record["memory_format"] in ("channels_last", "contiguous")
        assert hashlib.sha256(z.weights_path("tiny-conv").read_bytes()).hexdigest() == record["sha256"]
        hashes.append(record["sha256"])
    assert hashes[0] == hashes[1], "the same device, threads and precision give the same bytes"
    loaded = z.load("tiny-conv")
    assert loaded.stages[0][0][0].weight.dtype == torch.float32


def test_the_precision_changes_the_weights(tmp_path: Path) -> None:
    built = {}
    for precision in ("fp32", "bf16"):
        z = Zoo(tmp_path / precision, _tiny_conv_registry())
        z.build(device="cpu", precision=precision, log=lambda _: None)
        built[precision] = z.manifest()["entries"]["tiny-conv"]["sha256"]
    assert built["fp32"] != built["bf16"], "bf16 training is not float32 training: the manifest must say which"
