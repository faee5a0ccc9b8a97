"""Tests for kae_utils.evaluation.metrics: accuracy, confusion matrix, per-class accuracy."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from kae_utils.evaluation.metrics import accuracy, as_predictions, confusion_matrix, per_class_accuracy

# 3-class example: rows are true classes
TARGETS = torch.tensor([0, 0, 1, 2, 2, 2])
PREDS = torch.tensor([0, 1, 1, 2, 0, 2])
# true 0: predicted 0 once, 1 once        -> [1, 1, 0]
# true 1: predicted 1 once                -> [0, 1, 0]
# true 2: predicted 2 twice, 0 once       -> [1, 0, 2]
CONFUSION = torch.tensor([[1, 1, 0], [0, 1, 0], [1, 0, 2]])


def logits_for(preds: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Logits whose argmax is ``preds`` (with noise that does not change it)."""
    g = torch.Generator().manual_seed(0)
    return F.one_hot(preds, num_classes).float() * 5 + torch.rand(len(preds), num_classes, generator=g)


def test_as_predictions():
    assert torch.equal(as_predictions(torch.tensor([[0.1, 0.9], [2.0, -1.0]])), torch.tensor([1, 0]))
    labels = as_predictions(torch.tensor([1, 0, 2], dtype=torch.int32))
    assert torch.equal(labels, torch.tensor([1, 0, 2])) and labels.dtype == torch.int64
    with pytest.raises(ValueError, match=r"\(2, 2, 2\)"):
        as_predictions(torch.zeros(2, 2, 2))


def test_accuracy_golden():
    # 4 of 6 right (indices 0, 2, 3, 5)
    assert accuracy(PREDS, TARGETS) == pytest.approx(4 / 6)
    assert accuracy(torch.tensor([0, 1, 2, 1]), torch.tensor([0, 1, 1, 1])) == 0.75
    assert accuracy(TARGETS, TARGETS) == 1.0
    assert accuracy((TARGETS + 1) % 3, TARGETS) == 0.0
    assert isinstance(accuracy(PREDS, TARGETS), float)


def test_logits_and_labels_give_the_same_result():
    logits = logits_for(PREDS, 3)
    assert accuracy(logits, TARGETS) == accuracy(PREDS, TARGETS)
    assert torch.equal(confusion_matrix(logits, TARGETS, 3), confusion_matrix(PREDS, TARGETS, 3))
    torch.testing.assert_close(per_class_accuracy(logits, TARGETS, 3), per_class_accuracy(PREDS, TARGETS, 3))


def test_confusion_matrix_golden_rows_are_true_class():
    cm = confusion_matrix(PREDS, TARGETS, 3)
    assert torch.equal(cm, CONFUSION)
    assert cm.shape == (3, 3)
    assert cm.sum() == 6
    # transposing predictions and targets transposes the matrix
    assert torch.equal(confusion_matrix(TARGETS, PREDS, 3), CONFUSION.T)


def test_confusion_matrix_pads_to_num_classes():
    cm = confusion_matrix(PREDS, TARGETS, 5)
    assert cm.shape == (5, 5)
    assert torch.equal(cm[:3, :3], CONFUSION) and cm[3:].sum() == 0 and cm[:, 3:].sum() == 0


def test_per_class_accuracy_golden_with_absent_class():
    # recall: class 0 1/2, class 1 1/1, class 2 2/3; class 3 never occurs among the targets -> nan
    acc = per_class_accuracy(PREDS, TARGETS, 4)
    assert acc.shape == (4,) and acc.dtype == torch.float64
    assert acc[:3].tolist() == pytest.approx([0.5, 1.0, 2 / 3])
    assert math.isnan(acc[3].item())


def test_per_class_accuracy_predicted_but_absent_class_is_nan_not_zero():
    # class 2 is predicted once but never a target: its recall is undefined
    acc = per_class_accuracy(torch.tensor([0, 2]), torch.tensor([0, 1]), 3)
    assert acc[0].item() == 1.0 and acc[1].item() == 0.0 and math.isnan(acc[2].item())


def test_shape_mismatch_and_empty_input():
    for fn in (accuracy, lambda p, t: confusion_matrix(p, t, 3), lambda p, t: per_class_accuracy(p, t, 3)):
        with pytest.raises(ValueError, match="differ in shape"):
            fn(torch.tensor([0, 1]), torch.tensor([0, 1, 2]))
        with pytest.raises(ValueError, match="empty"):
            fn(torch.tensor([], dtype=torch.long), torch.tensor([], dtype=torch.long))


def test_logits_batch_must_match_targets():
    with pytest.raises(ValueError, match="differ in shape"):
        accuracy(torch.zeros(4, 3), torch.zeros(5, dtype=torch.long))


@pytest.mark.parametrize(
    ("preds", "targets"),
    [([0, 3], [0, 1]), ([0, 1], [0, 3]), ([0, -1], [0, 1]), ([0, 1], [-1, 1])],
)
def test_labels_out_of_range(preds, targets):
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        confusion_matrix(torch.tensor(preds), torch.tensor(targets), 3)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        per_class_accuracy(torch.tensor(preds), torch.tensor(targets), 3)
