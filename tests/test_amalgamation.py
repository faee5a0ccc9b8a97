"""Tests for kae_utils.methods.amalgamation: score amalgamation, ensemble, restricted accuracy, teacher taps, guard."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from kae_utils.methods.amalgamation import (
    amalgamate_scores,
    ceiling_reaches,
    check_images_only,
    ensemble_predict,
    restricted_accuracy,
    teacher_accuracy,
    teacher_outputs,
    train_ceiling,
)
from kae_utils.methods.distillation import concat_teacher_logits
from kae_utils.models import build_model


def logits(n: int, c: int, seed: int) -> torch.Tensor:
    return torch.randn(n, c, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------ amalgamate_scores
def test_disjoint_contiguous_sets_give_the_concatenation():
    z1, z2 = logits(5, 3, 0), logits(5, 2, 1)
    out = amalgamate_scores([z1, z2], [(0, 1, 2), (3, 4)], 5)
    assert torch.equal(out, concat_teacher_logits([z1, z2]))


def test_disjoint_sets_are_placed_at_their_global_indices():
    z1 = torch.tensor([[1.0, 2.0]])
    z2 = torch.tensor([[3.0]])
    out = amalgamate_scores([z1, z2], [(2, 0), (1,)], 3)
    assert out.tolist() == [[2.0, 3.0, 1.0]]


def test_shared_classes_are_averaged_golden():
    z1 = torch.tensor([[1.0, 2.0, 3.0]])  # classes 0, 1, 2
    z2 = torch.tensor([[5.0, 7.0]])  # classes 2, 3
    out = amalgamate_scores([z1, z2], [(0, 1, 2), (2, 3)], 4)
    assert out.tolist() == [[1.0, 2.0, 4.0, 7.0]]


def test_amalgamate_scores_rejects_bad_input():
    z = logits(4, 2, 0)
    with pytest.raises(ValueError, match="known by no teacher"):
        amalgamate_scores([z], [(0, 1)], 3)
    with pytest.raises(ValueError, match="do not fit"):
        amalgamate_scores([z], [(0, 1, 2)], 3)
    with pytest.raises(ValueError, match="outside"):
        amalgamate_scores([z], [(0, 5)], 3)
    with pytest.raises(ValueError, match="logit tensors"):
        amalgamate_scores([z, z], [(0, 1)], 2)
    with pytest.raises(ValueError, match="repeats"):
        amalgamate_scores([z], [(1, 1)], 2)


def test_ensemble_predict_is_argmax_of_concatenated_logits():
    z1, z2 = logits(50, 4, 2), logits(50, 6, 3)
    pred = ensemble_predict([z1, z2], [range(4), range(4, 10)], 10)
    assert torch.equal(pred, torch.cat([z1, z2], 1).argmax(1))
    assert pred.dtype == torch.int64


# ---------------------------------------------------------------------------- restricted_accuracy
def test_restricted_accuracy_ignores_other_columns_golden():
    # classes (3, 1): the huge logit of class 0 must not matter
    z = torch.tensor([[9.0, 1.0, 0.0, 2.0], [9.0, 3.0, 0.0, 2.0], [9.0, 0.0, 0.0, 1.0]])
    y = torch.tensor([3, 3, 3])
    assert restricted_accuracy(z, y, (3, 1)) == pytest.approx(2 / 3)
    assert restricted_accuracy(z, torch.tensor([1, 1, 1]), (1, 3)) == pytest.approx(1 / 3)


def test_restricted_accuracy_rejects_labels_outside_the_classes():
    with pytest.raises(ValueError, match="outside"):
        restricted_accuracy(torch.zeros(2, 4), torch.tensor([0, 2]), (0, 1))


# -------------------------------------------------------------------------------- teacher_outputs
def test_teacher_outputs_copies_taps_before_inplace_relu():
    teacher = build_model("convnet", 3, widths=(4, 8), seed=0).eval()
    x = torch.rand(10, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    feats, outs = teacher_outputs([teacher, teacher], x, ["stages.0.0.1", "stages.1.0.1"], batch_size=4)
    assert len(feats) == 2 and len(outs) == 2
    bn = feats[0]["stages.0.0.1"]
    assert bn.shape == (10, 4, 8, 8)
    assert (bn < 0).any(), "a BatchNorm tap is pre-activation: it must keep negative values"
    with torch.no_grad():
        assert torch.allclose(outs[0], teacher(x), atol=1e-6)
        expected = teacher.stages[0][0][1](teacher.stages[0][0][0](x))
    assert torch.allclose(bn, expected, atol=1e-6)
    assert not teacher.training


def test_teacher_outputs_unknown_layer():
    teacher = build_model("convnet", 3, widths=(4,), seed=0)
    with pytest.raises(KeyError, match="unknown"):
        teacher_outputs([teacher], torch.zeros(1, 1, 8, 8), ["nope"])


# ------------------------------------------------------------------------------- check_images_only
def test_check_images_only_accepts_images():
    x = torch.zeros(3, 1, 8, 8)
    assert check_images_only(x) is x
    assert check_images_only((x,), image_shape=(1, 8, 8)) is x


@pytest.mark.parametrize("bad", [
    (torch.zeros(3, 1, 8, 8), torch.zeros(3, dtype=torch.int64)),
    torch.zeros(3, dtype=torch.int64),
    torch.zeros(3, 10),
    [nn.Linear(1, 1)],
])
def test_check_images_only_rejects_labels_and_other_data(bad):
    with pytest.raises(ValueError, match="label-free"):
        check_images_only(bad)


def test_check_images_only_checks_shape():
    with pytest.raises(ValueError, match="expected"):
        check_images_only(torch.zeros(2, 3, 8, 8), image_shape=(1, 8, 8))


# ------------------------------------------------------------------------------- supervised ceiling


def _separable(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose class (0-2) is which third of the image is bright: easy to learn from labels."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    x = 0.1 * torch.randn(n, 1, 6, 6, generator=g)
    for c in range(3):
        x[y == c, :, 2 * c:2 * c + 2, :] += 1.0
    return x, y


def _fit_ceiling(labels: torch.Tensor, x: torch.Tensor) -> nn.Module:
    student = build_model("convnet", 3, in_channels=1, widths=(8, 16), seed=0)
    model, history = train_ceiling(student, x, labels, nn.functional.cross_entropy, epochs=15, lr=1e-2,
                                   batch_size=32, progress=False, seed=0)
    assert model is student and len(history["train_loss"]) == 15
    return model


def test_the_ceiling_learns_from_the_true_labels():
    x, y = _separable(192, seed=0)
    x_test, y_test = _separable(96, seed=1)
    shuffled_labels = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(0))]
    true = restricted_accuracy(_fit_ceiling(y, x)(x_test).detach(), y_test, (0, 1, 2))
    shuffled = restricted_accuracy(_fit_ceiling(shuffled_labels, x)(x_test).detach(), y_test, (0, 1, 2))
    assert true > 0.95, "trained with the true labels, the ceiling learns the task"
    assert shuffled < 0.6, "with the labels shuffled it cannot: the ceiling's signal is the labels"


def test_the_ceiling_takes_a_label_dict_for_a_multi_task_student():
    x, y = _separable(64, seed=0)
    seen = []

    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(36, 8))
            self.a, self.b = nn.Linear(8, 3), nn.Linear(8, 2)

        def forward(self, x):
            h = self.body(x)
            return {"a": self.a(h), "b": self.b(h)}

    def loss(out, labels):
        seen.append(sorted(labels))
        return sum(nn.functional.cross_entropy(out[k], labels[k]) for k in labels)

    train_ceiling(TwoHeads(), x, {"a": y, "b": y % 2}, loss, epochs=1, batch_size=32, progress=False)
    assert seen == [["a", "b"], ["a", "b"]]


def test_the_ceiling_refuses_mismatched_labels_and_the_student_path_refuses_labels():
    x, y = _separable(16, seed=0)
    with pytest.raises(ValueError, match="16 images but labels of lengths \\[15\\]"):
        train_ceiling(nn.Linear(1, 1), x, y[:15], nn.functional.cross_entropy, epochs=1)
    with pytest.raises(ValueError, match="were labels passed"):
        check_images_only((x, y))


@pytest.mark.parametrize(("ceiling", "teacher", "kwargs", "expected"), [
    (0.90, 0.91, {"tolerance": 0.01}, True),
    (0.899, 0.91, {"tolerance": 0.01}, False),
    (0.95, 0.91, {"tolerance": 0.0}, True),
    (0.67, 0.64, {"tolerance": 0.05, "higher_is_better": False, "relative": True}, True),   # 0.64 * 1.05 = 0.672
    (0.68, 0.64, {"tolerance": 0.05, "higher_is_better": False, "relative": True}, False),
    (0.60, 0.64, {"tolerance": 0.0, "higher_is_better": False}, True),
])
def test_ceiling_reaches_applies_the_claims_tolerance(ceiling, teacher, kwargs, expected):
    assert ceiling_reaches(ceiling, teacher, **kwargs) is expected


def test_ceiling_reaches_refuses_a_negative_tolerance():
    with pytest.raises(ValueError, match="tolerance must be >= 0"):
        ceiling_reaches(0.9, 0.9, tolerance=-0.1)


def test_teacher_accuracy_scores_its_own_classes_only_golden():
    """Global classes (7, 3, 5) are the teacher's logits 0, 1, 2; an image of class 9 is not its question."""
    teacher = nn.Linear(3, 3, bias=False)
    with torch.no_grad():
        teacher.weight.copy_(torch.eye(3))  # logits = the image itself
    e = torch.eye(3)
    images = torch.stack([e[0], e[1], e[0], e[0], e[2], e[1]])
    labels = torch.tensor([7, 3, 5, 7, 3, 9])
    # kept: 7 -> e0 right, 3 -> e1 right, 5 -> e0 wrong, 7 -> e0 right, 3 -> e2 wrong: 3 of 5
    assert teacher_accuracy(teacher, images, labels, (7, 3, 5)) == pytest.approx(0.6)
    # the order of `classes` is the order of the logits: (3, 7, 5) reads e0 as class 3
    assert teacher_accuracy(teacher, images, labels, (3, 7, 5)) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="do not occur"):
        teacher_accuracy(teacher, images, labels, (7, 4))
