"""Frozen copies of a teacher's layers inside a student: no gradients, and optionally the teacher's BatchNorm statistics.

Notebooks 04 and 06 copy teacher layers into a student and freeze them for a phase of training. Freezing the
parameters (``requires_grad = False``) is not the whole story: in training mode a BatchNorm layer still normalises with
the batch's statistics and updates its running statistics. Whether the frozen copies *keep the teachers' statistics*
(eval mode, notebook 04's choice and 06's ablation) or keep normalising with the batch (the authors' code of 06, which
only sets ``requires_grad``) is a decision of the method, so it is an argument here::

    class Student(nn.Module):
        def train(self, mode=True):
            super().train(mode)
            hold_statistics(self.copied_parts(), self.frozen and self.keep_teacher_statistics)
            return self

``freeze`` stops or restarts the gradients; ``hold_statistics`` puts the given parts in eval mode after
``Module.train`` has set the mode of the whole student (call it from the student's own ``train``, so that
``student.train()`` cannot undo it).
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn

__all__ = ["freeze", "hold_statistics"]


def freeze(parts: nn.Module | Iterable[nn.Module], frozen: bool = True) -> None:
    """Stop (``frozen=True``) or restart the gradients of every parameter of ``parts``."""
    for part in [parts] if isinstance(parts, nn.Module) else parts:
        part.requires_grad_(not frozen)


def hold_statistics(parts: nn.Module | Iterable[nn.Module], hold: bool = True) -> None:
    """Put ``parts`` in eval mode when ``hold``: BatchNorm then uses and keeps its running (the teacher's) statistics.

    Call it after ``Module.train(mode)``, which sets every sub-module's mode; with ``hold=False`` it does nothing, so
    the parts keep the mode ``train`` gave them.
    """
    if not hold:
        return
    for part in [parts] if isinstance(parts, nn.Module) else parts:
        part.eval()
