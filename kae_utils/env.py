"""Set-up shared by every notebook: seeding, device choice, numerics, repository paths, parameter checks
(:mod:`kae_utils.checks`, re-exported here).

Nothing here prints; every function returns what it did so a notebook can show it.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from kae_utils.checks import check_choice, check_number
from kae_utils.numerics import notebook_numerics, set_numerics

__all__ = [
    "DEVICES",
    "PROFILES",
    "cache_dir",
    "check_choice",
    "check_number",
    "repo_root",
    "resolve_device",
    "runs_dir",
    "seed_everything",
    "setup_notebook",
]

#: Allowed values of the ``DEVICE`` notebook parameter.
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
#: Allowed values of the ``PROFILE`` notebook parameter.
PROFILES: tuple[str, ...] = ("quick", "full")

_ROOT_MARKERS = ("pyproject.toml", "notebooks")


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


def _looks_like_root(path: Path) -> bool:
    return all((path / marker).exists() for marker in _ROOT_MARKERS)


def repo_root() -> Path:
    """The repository's root folder, independent of the current working directory.

    Order: the ``KAE_ROOT`` environment variable; the folder above this package when it is a
    checkout (editable install); the first parent of the working directory that looks like one.
    """
    env = os.environ.get("KAE_ROOT")
    if env:
        return Path(env).expanduser().resolve()
    here = Path(__file__).resolve().parent.parent
    if _looks_like_root(here):
        return here
    cwd = Path.cwd().resolve()
    for candidate in (cwd, *cwd.parents):
        if _looks_like_root(candidate):
            return candidate
    raise RuntimeError(
        "cannot find the repository root (a folder holding pyproject.toml and notebooks/); "
        "set KAE_ROOT to it"
    )


def cache_dir() -> Path:
    """Where trained teachers and other expensive artefacts are cached (``KAE_CACHE_DIR`` or ``<root>/.cache/kae``)."""
    env = os.environ.get("KAE_CACHE_DIR")
    path = Path(env).expanduser() if env else repo_root() / ".cache" / "kae"
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir(notebook: str | None = None) -> Path:
    """Folder for run outputs (``KAE_RUNS_DIR`` or ``<root>/runs``), or its ``notebook`` sub-folder, created.

    The batch runner also sets ``KAE_RUN_DIR``, the exact folder of the one run it started (a sweep puts
    each run in ``<sweep>/<notebook>/<run id>/``); when it is set, ``runs_dir(notebook)`` is that folder.
    """
    run_env = os.environ.get("KAE_RUN_DIR")
    if notebook is not None and run_env:
        path = Path(run_env).expanduser()
        path.mkdir(parents=True, exist_ok=True)
        return path
    env = os.environ.get("KAE_RUNS_DIR")
    path = Path(env).expanduser() if env else repo_root() / "runs"
    if notebook is not None:
        path = path / notebook
    path.mkdir(parents=True, exist_ok=True)
    return path


def setup_notebook(seed: int, device: str = "auto", threads: int | None = None,
                   precision: str = "auto") -> torch.device:
    """One call at the top of every notebook: seed everything, pick the device and the numerics, PNG figures.

    Returns the resolved ``torch.device``. ``threads`` caps torch's CPU threads (default: leave as is).
    ``precision`` (``"auto"``, ``"fp32"``, ``"bf16"``) becomes the process's numerics
    (:func:`kae_utils.numerics.notebook_numerics`: ``KAE_PRECISION``, when set, overrides it); a notebook
    prints :func:`kae_utils.numerics.describe`.
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
