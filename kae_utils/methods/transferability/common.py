"""What the estimators share: their variants' names and the checks and conversions of their inputs (float64).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

#: LogME's forms: the ICML 2021 algorithm of thuml/LogME (default), its later fixed point, and the ICML updates
#: run until they converge.
LOGME_VARIANTS: tuple[str, ...] = ("icml", "fixed-point", "converged")
#: TransRate's two forms: the authors' code (default) and TLlib's.
TRANSRATE_VARIANTS: tuple[str, ...] = ("authors", "tllib")


def _array(x, name: str, ndim: int | None = None) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=np.float64)
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions; got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def _labels(y, n: int) -> np.ndarray:
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"labels must be a vector of {n} class indices; got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise ValueError("labels must be non-negative integers")
    return y.astype(np.int64)


def _classes(y, n: int, minimum: int = 1) -> np.ndarray:
    """The labels as indices ``0 .. C - 1`` of the classes present (``np.unique`` with ``return_inverse``)."""
    present, index = np.unique(_labels(y, n), return_inverse=True)
    if len(present) < minimum:
        raise ValueError(f"this estimator needs at least {minimum} classes present; got {len(present)}")
    return index.reshape(-1)


def _flat(x, name: str) -> np.ndarray:
    a = _array(x, name)
    if a.ndim < 2:
        raise ValueError(f"{name} must be (samples, ...); got shape {a.shape}")
    return a.reshape(len(a), -1)


def _check_choice(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
