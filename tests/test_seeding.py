"""kae_utils.models.seeding.seeded: draws that depend on the seed only, the global generator untouched."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from kae_utils.models.seeding import seeded


def _weights(seed: int) -> torch.Tensor:
    with seeded(seed):
        return nn.Linear(4, 3).weight.detach().clone()


def test_the_same_seed_gives_the_same_weights_whatever_ran_before():
    torch.manual_seed(1)
    first = _weights(7)
    torch.rand(100)  # move the global generator
    assert torch.equal(_weights(7), first)
    assert not torch.equal(_weights(8), first)


def test_the_block_matches_fork_rng_and_manual_seed():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(123)
        expected = torch.rand(5)
    with seeded(123):
        assert torch.equal(torch.rand(5), expected)


def test_the_global_generator_continues_as_if_the_block_had_not_run():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    with seeded(99):
        torch.rand(10)
    assert torch.equal(torch.rand(3), expected)


def test_the_state_is_restored_when_the_block_raises():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    with pytest.raises(RuntimeError), seeded(5):
        torch.rand(10)
        raise RuntimeError("inside")
    assert torch.equal(torch.rand(3), expected)
