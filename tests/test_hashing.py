"""The generators' integer hash equals a plain-Python reference of lowbias32 on every input tried."""

from __future__ import annotations

import random

import torch

from kae_utils.data.hashing import MASK32, hash32, mul32


def lowbias32_reference(x: int) -> int:
    x ^= x >> 16
    x = (x * 0x7FEB352D) & MASK32
    x ^= x >> 15
    x = (x * 0x846CA68B) & MASK32
    return x ^ (x >> 16)


def test_mul32_matches_big_integer_arithmetic():
    rng = random.Random(0)
    xs = [0, 1, MASK32, 0x80000000] + [rng.getrandbits(32) for _ in range(500)]
    for c in (0x7FEB352D, 0x846CA68B, 1, MASK32):
        got = mul32(torch.tensor(xs, dtype=torch.int64), c).tolist()
        assert got == [(x * c) & MASK32 for x in xs]


def test_hash32_matches_the_reference_and_stays_32_bit():
    rng = random.Random(1)
    xs = [0, 1, 2, MASK32] + [rng.getrandbits(32) for _ in range(1000)]
    got = hash32(torch.tensor(xs, dtype=torch.int64)).tolist()
    assert got == [lowbias32_reference(x) for x in xs]
    assert all(0 <= h <= MASK32 for h in got)
    assert len(set(got)) == len(set(xs))  # a bijection on 32-bit values: no collisions
