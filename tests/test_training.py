"""Tests for kae_utils.training: batches, the trainer, callbacks, checkpoint/resume, prediction."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from kae_utils.models import build_model
from kae_utils.training.predict import Batches, predict_logits
from kae_utils.training.trainer import (
    Callback,
    Checkpoint,
    History,
    LRSchedule,
    ProgressBar,
    Trainer,
    evaluate_accuracy,
)

# ------------------------------------------------------------------------------------------ helpers


def blobs(n: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two Gaussian blobs in 2-D, centred at (-1.5, -1.5) and (1.5, 1.5), std 0.5: separable."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, 2, generator=g) * 0.5 + (y[:, None] * 2 - 1) * 1.5
    return x, y


def tiny_mlp(seed: int = 0, dropout: float = 0.0) -> nn.Module:
    # 2 input values (in_channels=2, image_size=1) -> 8 hidden -> 2 classes
    return build_model("mlp", 2, in_channels=2, image_size=1, widths=(8,), seed=seed, dropout=dropout)


def trainer(model: nn.Module, **kwargs) -> Trainer:
    kwargs.setdefault("epochs", 2)
    kwargs.setdefault("batch_size", 16)
    kwargs.setdefault("progress", False)
    return Trainer(model, **kwargs)


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ------------------------------------------------------------------------------------------ Batches


def test_batches_cover_every_index_once_per_epoch():
    idx = torch.arange(10)
    batches = Batches([idx, idx * 10], batch_size=3, shuffle=True, seed=0)
    for _ in range(3):  # several epochs
        seen = []
        for a, b in batches:
            assert torch.equal(b, a * 10)  # tensors stay aligned
            seen += a.tolist()
        assert sorted(seen) == list(range(10))


def test_batches_unshuffled_order_and_sizes():
    batches = Batches([torch.arange(10)], batch_size=4)
    assert [b.tolist() for (b,) in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_batches_len_and_drop_last():
    t = torch.arange(10)
    assert len(Batches([t], batch_size=3)) == 4  # ceil(10 / 3)
    assert len(Batches([t], batch_size=3, drop_last=True)) == 3  # 10 // 3
    assert len(Batches([t], batch_size=5, drop_last=True)) == 2
    dropped = Batches([t], batch_size=3, shuffle=True, drop_last=True)
    sizes = [len(b) for (b,) in dropped]
    assert sizes == [3, 3, 3]


def test_batches_shuffle_deterministic_per_seed():
    t = torch.arange(50)

    def two_epochs(seed):
        batches = Batches([t], batch_size=50, shuffle=True, seed=seed)
        return [b.tolist() for _ in range(2) for (b,) in batches]

    first = two_epochs(0)
    assert first == two_epochs(0)
    assert first != two_epochs(1)
    assert first[0] != first[1]  # a new order each epoch
    assert first[0] != list(range(50))


def test_batches_errors():
    with pytest.raises(ValueError, match="differ in length"):
        Batches([torch.zeros(5), torch.zeros(6)])
    with pytest.raises(ValueError, match="at least one"):
        Batches([])
    with pytest.raises(ValueError, match="batch_size"):
        Batches([torch.zeros(5)], batch_size=0)


# ------------------------------------------------------------------------------------------ History


def test_history_pads_missing_metrics_with_nan():
    h = History()
    assert len(h) == 0
    h.log({"loss": 1.0})
    h.log({"loss": 0.5, "val_acc": 0.9})  # new metric: earlier epoch padded
    h.log({"val_acc": 0.95})  # missing metric: this epoch padded
    assert len(h) == 3
    assert h["loss"][:2] == [1.0, 0.5] and math.isnan(h["loss"][2])
    assert math.isnan(h["val_acc"][0]) and h["val_acc"][1:] == [0.9, 0.95]
    assert h.last("val_acc") == 0.95
    assert "loss" in h and "acc" not in h


def test_history_dict_round_trip_is_a_copy():
    h = History()
    h.log({"a": 1, "b": torch.tensor(2.0)})
    d = h.to_dict()
    assert d == {"a": [1.0], "b": [2.0]}
    d["a"].append(5.0)
    assert h["a"] == [1.0]
    assert History.from_dict(d).metrics == {"a": [1.0, 5.0], "b": [2.0]}


# ------------------------------------------------------------------------------------------ Trainer


def test_trainer_fits_separable_blobs():
    model = tiny_mlp()
    history = trainer(model, epochs=10, lr=0.05).fit(blobs(seed=0), val_data=blobs(seed=1))
    assert len(history) == 10
    assert history["epoch"] == [float(e) for e in range(10)]
    assert history.last("val_acc") >= 0.95
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0]
    assert not model.training  # fit leaves the model in eval mode
    assert evaluate_accuracy(model, blobs(seed=2)) == {"acc": pytest.approx(history.last("val_acc"), abs=0.1)}


def test_fit_is_deterministic_for_a_seed_and_changes_with_it():
    data = blobs()
    runs = []
    for seed in (0, 0, 1):
        model = tiny_mlp(dropout=0.3)  # dropout draws from the global RNG, seeded by fit
        torch.rand(7)  # whatever ran before must not matter
        trainer(model, epochs=3, seed=seed).fit(data)
        runs.append(model)
    assert same_weights(runs[0], runs[1])
    assert not same_weights(runs[0], runs[2])


def test_tensor_dataset_and_tuple_train_alike():
    data = blobs()
    a, b = tiny_mlp(), tiny_mlp()
    trainer(a).fit(data)
    trainer(b).fit(TensorDataset(*data))
    assert same_weights(a, b)


def test_fit_accepts_an_iterable_of_batches():
    x, y = blobs()
    batches = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]
    history = trainer(tiny_mlp()).fit(batches)
    assert len(history) == 2 and "train_loss" in history


def test_fit_rejects_other_data():
    with pytest.raises(TypeError, match="tuple of tensors"):
        trainer(tiny_mlp()).fit(5)


def test_custom_step_fn_is_called_and_its_logs_are_averaged():
    calls = []

    def step(model, batch):
        x, y = batch
        calls.append(len(x))
        loss = F.cross_entropy(model(x), y)
        return loss, {"n": float(len(calls)), "half": loss.detach() / 2}

    history = trainer(tiny_mlp(), epochs=2, step_fn=step).fit(blobs())
    assert calls == [16] * 8  # 64 samples / 16 per batch = 4 batches, 2 epochs
    # per-epoch mean of the logged values: epoch 0 -> mean(1, 2, 3, 4) = 2.5, epoch 1 -> mean(5..8) = 6.5
    assert history["train_n"] == [2.5, 6.5]
    assert history["train_half"] == pytest.approx([v / 2 for v in history["train_loss"]])


def test_custom_eval_fn_is_prefixed_with_val():
    seen = []

    def eval_fn(model, data):
        seen.append(data)
        return {"score": 0.25, "other": 1.0}

    val = blobs(seed=1)
    history = trainer(tiny_mlp(), eval_fn=eval_fn).fit(blobs(), val_data=val)
    assert history["val_score"] == [0.25, 0.25] and history["val_other"] == [1.0, 1.0]
    assert len(seen) == 2 and seen[0] is val
    assert "val_acc" not in history


def test_non_finite_loss_raises():
    def step(model, batch):
        return model(batch[0]).sum() * float("nan")

    with pytest.raises(FloatingPointError, match="epoch 0"):
        trainer(tiny_mlp(), step_fn=step).fit(blobs())


def test_trainer_argument_errors():
    with pytest.raises(ValueError, match="epochs"):
        Trainer(tiny_mlp(), epochs=0)
    with pytest.raises(ValueError) as info:
        Trainer(tiny_mlp(), epochs=1, optimizer="rmsprop")
    for name in ("'adam'", "'adamw'", "'sgd'", "'rmsprop'"):
        assert name in str(info.value)
    with pytest.raises(ValueError, match="'cosine', 'step', 'none'"):
        Trainer(tiny_mlp(), epochs=1, schedule="linear")


def test_optimizer_choices():
    sgd = trainer(tiny_mlp(), optimizer="sgd", lr=0.1, weight_decay=0.01).optimizer
    assert isinstance(sgd, torch.optim.SGD)
    assert sgd.param_groups[0]["momentum"] == 0.9 and sgd.param_groups[0]["weight_decay"] == 0.01
    assert type(trainer(tiny_mlp(), optimizer="adamw").optimizer) is torch.optim.AdamW
    assert type(trainer(tiny_mlp()).optimizer) is torch.optim.Adam
    model = tiny_mlp()
    ready = torch.optim.SGD(model.parameters(), lr=0.2)
    t = trainer(model, optimizer=ready)
    assert t.optimizer is ready and t.base_lrs == [0.2]


def test_frozen_parameters_are_not_trained():
    model = tiny_mlp()
    model.hidden.requires_grad_(False)
    frozen = {k: v.clone() for k, v in model.hidden.state_dict().items()}
    classifier_before = model.classifier.weight.detach().clone()
    trainer(model, weight_decay=0.1).fit(blobs())
    assert all(torch.equal(frozen[k], v) for k, v in model.hidden.state_dict().items())
    assert not torch.equal(model.classifier.weight, classifier_before)


# -------------------------------------------------------------------------------------- callbacks


class Recorder(Callback):
    def __init__(self, stop_after: int | None = None) -> None:
        self.events: list[tuple] = []
        self.stop_after = stop_after

    def on_fit_start(self, trainer):
        self.events.append(("fit_start",))

    def on_epoch_start(self, trainer, epoch):
        self.events.append(("epoch_start", epoch))

    def on_batch_end(self, trainer, step, logs):
        self.events.append(("batch", step, sorted(logs)))

    def on_epoch_end(self, trainer, epoch, logs):
        self.events.append(("epoch_end", epoch, sorted(logs)))
        if self.stop_after is not None and epoch + 1 >= self.stop_after:
            trainer.stop_training = True

    def on_fit_end(self, trainer):
        self.events.append(("fit_end",))


def test_callback_hooks_in_order():
    rec = Recorder()
    x, y = blobs(n=32)
    trainer(tiny_mlp(), epochs=2, callbacks=[rec]).fit((x, y), val_data=(x, y))
    epoch_keys = ["epoch", "lr", "train_loss", "val_acc"]
    assert rec.events == [
        ("fit_start",),
        ("epoch_start", 0), ("batch", 1, ["loss"]), ("batch", 2, ["loss"]), ("epoch_end", 0, epoch_keys),
        ("epoch_start", 1), ("batch", 3, ["loss"]), ("batch", 4, ["loss"]), ("epoch_end", 1, epoch_keys),
        ("fit_end",),
    ]


def test_callback_can_stop_training():
    rec = Recorder(stop_after=2)
    t = trainer(tiny_mlp(), epochs=5, callbacks=[rec])
    history = t.fit(blobs())
    assert len(history) == 2
    assert rec.events[-1] == ("fit_end",)


def test_progress_bar_plain_writes_desc_and_count_to_stderr(monkeypatch, capsys):
    monkeypatch.setenv("KAE_PROGRESS", "plain")
    t = Trainer(tiny_mlp(), epochs=2, batch_size=32, desc="blobs-run")
    assert isinstance(t.callbacks[-1], ProgressBar)  # the bar comes last
    t.fit(blobs())
    out, err = capsys.readouterr()
    assert out == ""
    assert "blobs-run" in err and "2/2" in err and "train_loss" in err


def test_no_progress_bar_when_disabled():
    assert not any(isinstance(cb, ProgressBar) for cb in trainer(tiny_mlp()).callbacks)


# ------------------------------------------------------------------------------------- LRSchedule


def test_cosine_factor_golden():
    s = LRSchedule("cosine")
    # 0.5 * (1 + cos(pi * e / E)): e=0 -> 1; e=E/2 -> 0.5; e=E/4 -> (1 + sqrt(2)/2) / 2; e=E -> 0
    assert s.factor(0, 10) == 1.0
    assert s.factor(5, 10) == pytest.approx(0.5)
    assert s.factor(1, 4) == pytest.approx((1 + math.sqrt(2) / 2) / 2)
    assert s.factor(10, 10) == pytest.approx(0.0, abs=1e-12)


def test_step_and_none_factor_golden():
    s = LRSchedule("step", step_size=2, gamma=0.1)
    # gamma ** (epoch // 2): 1, 1, 0.1, 0.1, 0.01
    assert [s.factor(e, 100) for e in range(5)] == pytest.approx([1, 1, 0.1, 0.1, 0.01])
    assert LRSchedule("none").factor(7, 10) == 1.0
    with pytest.raises(ValueError, match="schedule"):
        LRSchedule("exp")


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        # 0.1 * 0.5 * (1 + cos(pi * e / 4)) for e = 0..3
        ("cosine", [0.1, 0.1 * (1 + math.sqrt(2) / 2) / 2, 0.05, 0.1 * (1 - math.sqrt(2) / 2) / 2]),
        ("none", [0.1] * 4),
    ],
)
def test_lr_in_history_follows_schedule(schedule, expected):
    t = trainer(tiny_mlp(), epochs=4, lr=0.1, schedule=schedule)
    history = t.fit(blobs(n=16))
    assert history["lr"] == pytest.approx(expected)
    assert t.optimizer.param_groups[0]["lr"] == pytest.approx(expected[-1])


# ------------------------------------------------------------------------------------- Checkpoint


def test_checkpoint_file_loads_with_weights_only(tmp_path):
    path = tmp_path / "ck.pt"
    model = tiny_mlp()
    trainer(model, epochs=2, callbacks=[Checkpoint(path)]).fit(blobs())
    state = torch.load(path, weights_only=True)
    assert state["epoch"] == 1
    assert state["history"]["epoch"] == [0.0, 1.0]
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state["model"].items())
    assert "state" in state["optimizer"] and isinstance(state["generator"], torch.Tensor)


def test_checkpoint_every_and_last_epoch(tmp_path):
    saved = []

    class Watch(Callback):  # runs after the checkpoint: records the epoch now in the file
        def on_epoch_end(self, trainer, epoch, logs):
            saved.append(torch.load(path, weights_only=True)["epoch"] if path.exists() else None)

    path = tmp_path / "ck.pt"
    trainer(tiny_mlp(), epochs=5, callbacks=[Checkpoint(path, every=2), Watch()]).fit(blobs(n=16))
    # saved after epochs 1 and 3 (every 2) and after the last one, 4
    assert saved == [None, 1, 1, 3, 4]
    with pytest.raises(ValueError, match="every"):
        Checkpoint(path, every=0)


def test_checkpoint_resume_false_starts_over(tmp_path):
    path = tmp_path / "ck.pt"
    trainer(tiny_mlp(), epochs=2, callbacks=[Checkpoint(path)]).fit(blobs())
    history = trainer(tiny_mlp(), epochs=3, callbacks=[Checkpoint(path, resume=False)]).fit(blobs())
    assert history["epoch"] == [0.0, 1.0, 2.0]


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_resume_after_two_epochs_equals_uninterrupted_run(tmp_path, dropout):
    # a constant learning rate, so a 2-epoch run is the first half of a 4-epoch run
    data = blobs()
    path = tmp_path / "ck.pt"
    trainer(tiny_mlp(dropout=dropout), epochs=2, schedule="none", seed=5, callbacks=[Checkpoint(path)]).fit(data)

    resumed_model = tiny_mlp(dropout=dropout)
    history = trainer(resumed_model, epochs=4, schedule="none", seed=5, callbacks=[Checkpoint(path)]).fit(data)
    assert len(history) == 4
    assert history["epoch"] == [0.0, 1.0, 2.0, 3.0]

    straight = tiny_mlp(dropout=dropout)
    reference = trainer(straight, epochs=4, schedule="none", seed=5).fit(data)
    assert same_weights(resumed_model, straight)
    assert history["train_loss"] == reference["train_loss"]


def test_resume_continues_global_step(tmp_path):
    path = tmp_path / "ck.pt"
    steps = []

    class Steps(Callback):
        def on_batch_end(self, trainer, step, logs):
            steps.append(step)

    trainer(tiny_mlp(), epochs=2, schedule="none", callbacks=[Checkpoint(path)]).fit(blobs())
    t = trainer(tiny_mlp(), epochs=4, schedule="none", callbacks=[Checkpoint(path), Steps()])
    t.fit(blobs())
    assert steps == list(range(9, 17))  # 4 batches per epoch; epochs 2 and 3 are steps 9..16
    assert t.global_step == 16


class Interrupted(Exception):
    pass


class InterruptAfter(Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, trainer, epoch, logs):
        if epoch == self.epoch:
            raise Interrupted


def test_interrupted_cosine_run_resumes_exactly(tmp_path):
    # a 4-epoch fit killed after epoch 1 (the checkpoint callback runs first, so epoch 1 is saved)
    data, val = blobs(), blobs(seed=1)
    path = tmp_path / "ck.pt"
    with pytest.raises(Interrupted):
        trainer(tiny_mlp(dropout=0.3), epochs=4, callbacks=[Checkpoint(path), InterruptAfter(1)]).fit(data, val)
    resumed = tiny_mlp(dropout=0.3)
    history = trainer(resumed, epochs=4, callbacks=[Checkpoint(path)]).fit(data, val)
    straight = tiny_mlp(dropout=0.3)
    reference = trainer(straight, epochs=4).fit(data, val)
    assert same_weights(resumed, straight)
    assert history.to_dict() == reference.to_dict()


# ---------------------------------------------------------------------------------------- predict


def test_predict_logits_batched_eval_mode_and_restores_mode():
    model = build_model("convnet", 3, widths=(4, 8), seed=0)  # BatchNorm: train and eval differ
    x = torch.rand(10, 1, 8, 8)
    model.train()
    running_mean = model.stages[0][0][1].running_mean.clone()
    logits = predict_logits(model, x, batch_size=3)  # 4 batches: 3, 3, 3, 1
    assert model.training
    assert torch.equal(model.stages[0][0][1].running_mean, running_mean)  # no statistics updated
    assert logits.shape == (10, 3) and logits.device.type == "cpu" and not logits.requires_grad
    model.eval()
    torch.testing.assert_close(logits, model(x).detach())
    predict_logits(model, x)
    assert not model.training


def test_evaluate_accuracy_golden():
    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))  # logits = x, prediction = argmax of x
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [0.0, 3.0]])
    y = torch.tensor([0, 1, 1, 1])  # predictions 0, 1, 0, 1: 3 of 4 right
    assert evaluate_accuracy(model, (x, y), batch_size=3) == {"acc": 0.75}
