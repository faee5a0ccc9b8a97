"""kae_utils.benchmarks.tasks: one interface per dense task (losses, metrics, colours) and batched prediction of maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kae_utils.benchmarks.tasks import (
    DENSE_TASKS,
    TRANSFER_TASKS,
    ceiling_within_tolerance,
    dense_task,
    task_channels,
    tolerance_effect,
    transfer_task,
    within_tolerance,
)
from kae_utils.models import build_encdec, build_multitask_encdec
from kae_utils.training.predict import predict_maps


def _maps(task: str, n: int = 2, size: int = 8, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    if task == "segmentation":
        return torch.randn(n, 7, size, size, generator=gen)
    if task == "depth":
        return torch.rand(n, 1, size, size, generator=gen) + 0.5
    return F.normalize(torch.randn(n, 3, size, size, generator=gen), dim=1)


def test_every_task_has_consistent_parts():
    for name, task in DENSE_TASKS.items():
        assert task.name == name and task_channels(name) == task.channels == _maps(name).shape[1]
        assert task.headline in task.metrics(_maps(name), _maps(name, seed=1) if name != "segmentation"
                                             else torch.randint(0, 7, (2, 8, 8)))
        assert task.loss_words and task.colorize(_maps(name)).shape == (2, 8, 8, 3)
    with pytest.raises(ValueError, match="dense task must be one of 'segmentation', 'depth', 'normals'"):
        dense_task("edges")


def test_losses_against_a_teacher_vanish_on_the_teacher_itself():
    for name, task in DENSE_TASKS.items():
        out = _maps(name)
        assert task.distill_loss(out, out).item() == pytest.approx(0.0, abs=2e-3)  # angle: arccos(1 - eps)
        assert task.distill_loss(out, _maps(name, seed=1)).item() > 0.01


def test_supervised_losses_are_the_documented_ones():
    logits, labels = _maps("segmentation"), torch.randint(0, 7, (2, 8, 8), generator=torch.Generator().manual_seed(2))
    assert DENSE_TASKS["segmentation"].supervised_loss(logits, labels).item() == pytest.approx(
        F.cross_entropy(logits, labels).item())
    pred, target = _maps("depth"), _maps("depth", seed=3)
    d = (pred.log() - target.log())[:, 0].flatten(1)  # scale-invariant, lambda 0.5, mean over images
    expected = (d.pow(2).mean(1) - 0.5 * d.mean(1).pow(2)).mean()
    assert DENSE_TASKS["depth"].supervised_loss(pred, target).item() == pytest.approx(expected.item(), rel=1e-5)
    assert DENSE_TASKS["depth"].better(0.5, 0.6) and DENSE_TASKS["segmentation"].better(0.6, 0.5)


def test_predict_maps_batches_single_multi_and_dicts_and_restores_modes():
    x = torch.rand(5, 3, 16, 16)
    seg = build_encdec("segmentation", 7, widths=(4, 8), seed=1)
    depth = build_encdec("depth", 1, widths=(4, 8), seed=2).eval()
    multi = build_multitask_encdec({"segmentation": 7, "depth": 1}, widths=(4, 8), seed=3)
    seg.train()
    maps = predict_maps({"segmentation": seg, "depth": depth}, x, batch_size=2)
    assert maps["segmentation"].shape == (5, 7, 16, 16) and maps["depth"].shape == (5, 1, 16, 16)
    assert seg.training and not depth.training, "each net is put back in its own mode"
    seg.eval()
    torch.testing.assert_close(maps["segmentation"], seg(x))
    assert set(predict_maps(multi, x)) == {"segmentation", "depth"}
    assert set(predict_maps(depth, x, name="depth")) == {"depth"}


def test_predict_maps_runs_a_function_of_a_batch_and_leaves_its_nets_modes_alone():
    x = torch.rand(5, 3, 16, 16)
    multi = build_multitask_encdec({"segmentation": 7, "depth": 1}, widths=(4, 8), seed=3).train()
    calls = []

    def depth_only(xb: torch.Tensor) -> torch.Tensor:
        calls.append(len(xb))
        return multi(xb)["depth"]

    maps = predict_maps(depth_only, x, batch_size=2, name="depth")
    assert calls == [2, 2, 1] and set(maps) == {"depth"} and maps["depth"].shape == (5, 1, 16, 16)
    assert multi.training, "a function's nets keep the mode the caller gave them"
    seg = build_encdec("segmentation", 7, widths=(4, 8), seed=1).train()
    maps = predict_maps({"depth": depth_only, "segmentation": seg}, x)  # a function beside a net
    assert set(maps) == {"depth", "segmentation"} and multi.training and seg.training
    seg.eval()
    torch.testing.assert_close(maps["segmentation"], seg(x))


def _transfer_pair(name: str, n: int = 3, size: int = 8):
    """A prediction and a target of transfer task ``name`` (random, seeded)."""
    task, gen = TRANSFER_TASKS[name], torch.Generator().manual_seed(7)
    if name in DENSE_TASKS:
        target = torch.randint(0, 7, (n, size, size), generator=gen) if name == "segmentation" else _maps(name, n, size, 1)
        return _maps(name, n, size), target
    if task.output in ("classes", "image-classes"):
        shape = (n, task.channels, size, size) if task.dense else (n, task.channels)
        labels = torch.randint(0, task.channels, shape[:1] + shape[2:], generator=gen)
        return torch.randn(shape, generator=gen), labels
    if task.output == "binary":
        return torch.randn(n, 1, size, size, generator=gen), (torch.rand(n, 1, size, size, generator=gen) > 0.8).float()
    if task.output == "depth":
        return torch.rand(n, 1, size, size, generator=gen) + 0.5, torch.rand(n, 1, size, size, generator=gen) + 0.5
    shape = (n, task.channels, size, size) if task.dense else (n, task.channels)
    return torch.rand(shape, generator=gen), torch.rand(shape, generator=gen)


def test_every_transfer_task_has_consistent_parts():
    assert set(DENSE_TASKS) < set(TRANSFER_TASKS)
    for name, task in TRANSFER_TASKS.items():
        pred, target = _transfer_pair(name)
        assert task.name == name and task.loss_words and task.output
        assert pred.shape[1] == task.channels
        scores = task.metrics(pred, target)
        assert task.headline in scores and all(np.isfinite(v) for v in scores.values()), name
        loss = task.supervised_loss(pred, target)
        assert loss.ndim == 0 and torch.isfinite(loss), name
        if task.dense:
            assert task.colorize(pred).shape == (3, 8, 8, 3), name
        if task.output in ("regression", "image-regression"):
            assert task.supervised_loss(target, target).item() == pytest.approx(0.0), name
        assert task.distill_loss(pred, pred).item() == pytest.approx(0.0, abs=2e-3), name
    with pytest.raises(ValueError, match="transfer task must be one of"):
        transfer_task("edges")


def test_transfer_task_metrics_on_known_values():
    edges = TRANSFER_TASKS["occlusion_edges"]
    target = torch.tensor([1.0, 1.0, 0.0, 0.0]).reshape(1, 1, 2, 2)
    logits = torch.tensor([3.0, -3.0, 3.0, -3.0]).reshape(1, 1, 2, 2)  # one hit, one miss, one false alarm
    assert edges.metrics(logits, target)["F1"] == pytest.approx(2 / (2 + 1 + 1))
    assert edges.metrics(-torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2))["F1"] == 1.0
    image = TRANSFER_TASKS["autoencoding"]
    clean = torch.full((1, 3, 2, 2), 0.5)
    assert image.metrics(clean + 0.1, clean)["L1"] == pytest.approx(0.1)
    assert image.metrics(clean + 0.1, clean)["PSNR"] == pytest.approx(20.0)
    largest = TRANSFER_TASKS["largest_class"]
    logits = torch.eye(7)[[2, 3, 4]] * 5
    assert largest.metrics(logits, torch.tensor([2, 3, -1]))["accuracy"] == 1.0, "label -1 is ignored"
    assert largest.supervised_loss(logits, torch.tensor([-1, -1, 4])).item() == pytest.approx(
        F.cross_entropy(logits[2:], torch.tensor([4])).item())
    count = TRANSFER_TASKS["object_count"]
    assert count.metrics(torch.tensor([[2.0], [4.0]]), torch.tensor([3, 3]))["MAE"] == pytest.approx(1.0)


TOLERANCES = {"segmentation": 0.02, "depth": 0.05, "normals": 1.0}  # those of notebooks 04 and 07


@pytest.mark.parametrize(("task", "value", "reference", "expected"), [
    ("segmentation", 0.70, 0.71, True),    # mIoU 0.01 below: within 0.02
    ("segmentation", 0.68, 0.71, False),   # 0.03 below
    ("segmentation", 0.90, 0.71, True),    # better
    ("depth", 0.52, 0.50, True),           # RMSE 4 % above: within 5 %
    ("depth", 0.53, 0.50, False),          # 6 % above
    ("depth", 0.30, 0.50, True),           # better
    ("normals", 20.9, 20.0, True),         # mean angle 0.9 degrees above: within 1
    ("normals", 21.2, 20.0, False),
    ("normals", 15.0, 20.0, True),
])
def test_within_tolerance_matches_or_beats_in_the_tasks_direction(task, value, reference, expected):
    assert within_tolerance(task, value, reference, TOLERANCES) is expected
    # the supervised ceiling is held to the same test (the relative margin rounds differently, not here)
    assert ceiling_within_tolerance(task, value, reference, TOLERANCES) is expected
    # the claim's effect, for the reproduction envelope, tells the same
    assert tolerance_effect(task, "student - teacher", value, reference, TOLERANCES).within_bound is expected


@pytest.mark.parametrize(("task", "value", "reference", "effect", "bound", "holds_if"), [
    ("segmentation", 0.70, 0.71, -0.01, -0.02, "at least"),
    ("depth", 0.52, 0.50, 0.04, 0.05, "at most"),    # relative: 0.52 / 0.50 - 1
    ("normals", 20.9, 20.0, 0.9, 1.0, "at most"),    # degrees
])
def test_tolerance_effect_golden_values(task, value, reference, effect, bound, holds_if):
    got = tolerance_effect(task, "student - teacher", value, reference, TOLERANCES)
    assert got.value == pytest.approx(effect) and got.bound == bound and got.holds_if == holds_if
    assert got.name.startswith(f"student - teacher, {task} ")


def test_within_tolerance_uses_the_tolerance_given_and_knows_only_dense_tasks():
    assert within_tolerance("segmentation", 0.68, 0.71, {"segmentation": 0.05}) is True
    assert within_tolerance("depth", 0.53, 0.50, {"depth": 0.0}) is False
    with pytest.raises(ValueError, match="dense task must be one of"):
        within_tolerance("edges2d", 1.0, 1.0, TOLERANCES)
    with pytest.raises(ValueError, match="dense task must be one of"):
        ceiling_within_tolerance("edges2d", 1.0, 1.0, TOLERANCES)
    with pytest.raises(KeyError):
        within_tolerance("normals", 1.0, 1.0, {"depth": 0.05})
