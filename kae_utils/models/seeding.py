"""``seeded(seed)``: a block whose random draws depend on ``seed`` only, with the global generator left as it was.

Initial weights drawn inside ``with seeded(seed):`` are the same whatever ran before (a cached or a fresh run of a
notebook, another notebook's cells in the same kernel), and the code after the block sees the global generator as if
the block had not run::

    with seeded(2000 + seed):
        student = Student(widths)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["seeded"]


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block with torch's CPU generator seeded by ``seed``; restore the generator's state after it.

    The same as ``torch.random.fork_rng(devices=[])`` followed by ``torch.manual_seed(seed)``: CUDA generators are
    neither forked nor seeded (the models are built on the CPU and moved afterwards).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
