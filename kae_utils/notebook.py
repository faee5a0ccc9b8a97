"""Set-up shared by every notebook: seeding, device choice and numerics (one call, :func:`setup_notebook`).

Nothing here prints; every function returns what it did so a notebook can show it.
"""

from __future__ import annotations

import random

import numpy as np
import torch

from kae_utils.core.params import DEVICES, check_choice
from kae_utils.training.numerics import notebook_numerics, set_numerics

__all__ = ["resolve_device", "seed_everything", "setup_notebook"]


def seed_everything(seed: int) -> int:
    """Seed Python's ``random``, NumPy and torch (CPU and CUDA) with ``seed`` and return it."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    return seed


def resolve_device(device: str = "auto") -> torch.device:
    """Turn the ``DEVICE`` parameter into a ``torch.device``.

    ``"auto"`` picks CUDA when it is available and the CPU otherwise; ``"cuda"`` raises a
    ``RuntimeError`` when no GPU is visible, rather than silently falling back.
    """
    check_choice("DEVICE", device, DEVICES)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            "DEVICE='cuda' was asked for but torch sees no CUDA device; use DEVICE='auto' or 'cpu'"
        )
    return torch.device(device)


def setup_notebook(seed: int, device: str = "auto", threads: int | None = None,
                   precision: str = "auto") -> torch.device:
    """One call at the top of every notebook: seed everything, pick the device and the numerics, PNG figures.

    Returns the resolved ``torch.device``. ``threads`` caps torch's CPU threads (default: leave as is).
    ``precision`` (``"auto"``, ``"fp32"``, ``"bf16"``) becomes the process's numerics
    (:func:`kae_utils.training.numerics.notebook_numerics`: ``KAE_PRECISION``, when set, overrides it); a notebook prints
    :func:`kae_utils.training.numerics.describe`.
    """
    seed_everything(seed)
    dev = resolve_device(device)
    set_numerics(notebook_numerics(precision, dev))
    if threads is not None:
        torch.set_num_threads(threads)
    try:  # only inside IPython: store figures as PNG (nbval does not compare PNG bytes)
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            from matplotlib_inline.backend_inline import set_matplotlib_formats

            set_matplotlib_formats("png")
    except ImportError:  # pragma: no cover - IPython is a dependency of the notebook extra only
        pass
    return dev
