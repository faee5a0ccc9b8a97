"""Repository paths: the root of the checkout, the cache and the runs folders. Torch-free.

Nothing here prints; every function returns what it did so a notebook can show it.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "repo_root", "runs_dir"]

_ROOT_MARKERS = ("pyproject.toml", "notebooks")


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
    here = Path(__file__).resolve().parents[2]
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
