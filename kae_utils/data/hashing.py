"""Counter-based randomness for the generators: integer hashes on int64 tensors.

An image's random parameters are derived from a hash of (seed, image index), not drawn from one
sequential generator, so image i is the same however the data set is chunked or offset.
"""

from __future__ import annotations

import torch

__all__ = ["MASK32", "hash32", "mul32"]

MASK32 = 0xFFFFFFFF


def mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """``x * c mod 2**32`` for int64 ``x`` in [0, 2**32), without int64 overflow (``c`` taken in 16-bit halves)."""
    lo, hi = c & 0xFFFF, c >> 16
    return (x * lo + (((x * hi) & 0xFFFF) << 16)) & MASK32


def hash32(x: torch.Tensor) -> torch.Tensor:
    """Chris Wellons' ``lowbias32`` integer hash, elementwise on int64 tensors holding 32-bit values."""
    x = x ^ (x >> 16)
    x = mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = mul32(x, 0x846CA68B)
    return x ^ (x >> 16)
