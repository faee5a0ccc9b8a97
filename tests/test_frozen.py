"""kae_utils.models.frozen: frozen teacher copies inside a student, with or without the teacher's BatchNorm statistics."""

from __future__ import annotations

import torch
from torch import nn

from kae_utils.models.frozen import freeze, hold_statistics


class _Student(nn.Module):
    """A trunk and a copied block, frozen or not, keeping the copy's statistics or not."""

    def __init__(self, keep: bool) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2))
        self.copy = nn.Sequential(nn.Conv2d(2, 2, 1), nn.BatchNorm2d(2))
        self.keep, self.frozen = keep, False

    def set_frozen(self, frozen: bool) -> _Student:
        self.frozen = frozen
        freeze(self.copy, frozen)
        return self.train(self.training)

    def train(self, mode: bool = True) -> _Student:
        super().train(mode)
        hold_statistics(self.copy, self.frozen and self.keep)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.copy(self.trunk(x))


def _step(student: _Student) -> None:
    student.train()
    student(torch.randn(4, 1, 3, 3) * 3 + 1).sum().backward()


def test_frozen_copy_keeping_statistics_has_no_gradients_and_unchanged_running_statistics():
    torch.manual_seed(0)
    student = _Student(keep=True).set_frozen(True)
    before = student.copy[1].running_mean.clone()
    _step(student)
    assert all(p.grad is None for p in student.copy.parameters())
    assert all(p.grad is not None for p in student.trunk.parameters())
    assert torch.equal(student.copy[1].running_mean, before)
    assert student.training and not student.copy.training and student.trunk.training


def test_frozen_copy_with_batch_statistics_updates_them_as_the_authors_code_does():
    torch.manual_seed(0)
    student = _Student(keep=False).set_frozen(True)
    before = student.copy[1].running_mean.clone()
    _step(student)
    assert all(p.grad is None for p in student.copy.parameters())
    assert not torch.equal(student.copy[1].running_mean, before)
    assert student.copy.training


def test_unfreezing_restores_gradients_and_training_mode():
    student = _Student(keep=True).set_frozen(True).set_frozen(False)
    _step(student)
    assert all(p.grad is not None for p in student.copy.parameters())
    assert student.copy.training


def test_freeze_and_hold_take_one_module_or_several():
    a, b = nn.Linear(2, 2), nn.BatchNorm1d(2)
    freeze([a, b])
    assert not any(p.requires_grad for p in [*a.parameters(), *b.parameters()])
    freeze(a, frozen=False)
    assert all(p.requires_grad for p in a.parameters())
    hold_statistics([a, b])
    assert not a.training and not b.training
    b.train()
    hold_statistics(b, hold=False)
    assert b.training
