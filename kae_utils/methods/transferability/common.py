"""What the estimators share: their variants' names, the checks and conversions of their inputs (float64),
and the upper triangle of a similarity matrix.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["LOGME_VARIANTS", "TRANSRATE_VARIANTS", "as_class_indices", "as_float64", "as_labels",
           "as_samples", "upper_triangle"]

#: LogME's forms: the ICML 2021 algorithm of thuml/LogME (default), its later fixed point, and the ICML updates
#: run until they converge.
LOGME_VARIANTS: tuple[str, ...] = ("icml", "fixed-point", "converged")
#: TransRate's two forms: the authors' code (default) and TLlib's.
TRANSRATE_VARIANTS: tuple[str, ...] = ("authors", "tllib")


def as_float64(x, name: str, ndim: int | None = None) -> np.ndarray:
    """``x`` (array or tensor) as a float64 array, of ``ndim`` dimensions when given; finite, or a
    ``ValueError``."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=np.float64)
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions; got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def as_labels(y, n: int) -> np.ndarray:
    """``y`` as a vector of ``n`` non-negative integer class indices (int64), or a ``ValueError``."""
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"labels must be a vector of {n} class indices; got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise ValueError("labels must be non-negative integers")
    return y.astype(np.int64)


def as_class_indices(y, n: int, minimum: int = 1) -> np.ndarray:
    """The labels as indices ``0 .. C - 1`` of the classes present (``np.unique`` with ``return_inverse``)."""
    present, index = np.unique(as_labels(y, n), return_inverse=True)
    if len(present) < minimum:
        raise ValueError(f"this estimator needs at least {minimum} classes present; got {len(present)}")
    return index.reshape(-1)


def as_samples(x, name: str) -> np.ndarray:
    """``x`` as float64 samples ``(N, D)``: every dimension after the first flattened."""
    a = as_float64(x, name)
    if a.ndim < 2:
        raise ValueError(f"{name} must be (samples, ...); got shape {a.shape}")
    return a.reshape(len(a), -1)


def upper_triangle(matrix: np.ndarray) -> np.ndarray:
    """The entries above the diagonal of the last two axes of ``matrix`` (row by row)."""
    rows, cols = np.triu_indices(matrix.shape[-1], k=1)
    return matrix[..., rows, cols]
