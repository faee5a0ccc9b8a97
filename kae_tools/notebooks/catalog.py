"""Which notebooks there are, how a name on the command line resolves to one, and a notebook's code identity.

The lowest layer of :mod:`kae_tools`: the runner, the pairing, the README generator and the site all
resolve notebook names here (:func:`find_notebooks`) and hash a notebook's cells here (:func:`code_sha`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

import nbformat

__all__ = ["NOTEBOOK_GLOB", "UnknownNotebookError", "code_sha", "find_notebooks"]

#: Glob of the tutorial notebooks under ``<repo>/notebooks``.
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"


class UnknownNotebookError(ValueError):
    """A notebook name or path given to the runner matches no notebook; the message lists those available."""


def _repo_root() -> Path:
    # kae_utils.env imports torch (seconds); only a call without ``root`` needs it, never the worker subprocess
    from kae_utils.env import repo_root

    return repo_root()


def _available(root: Path) -> list[Path]:
    return sorted((root / "notebooks").glob(NOTEBOOK_GLOB))


def find_notebooks(
    names: Iterable[str | os.PathLike] | None = None, *, root: Path | None = None
) -> list[Path]:
    """Resolve notebook names to absolute paths, in the order given (duplicates removed).

    A name is an existing ``.ipynb`` path (absolute, relative to the working directory or to the
    repository root), a notebook file name or stem under ``<root>/notebooks`` (``01_knowledge_distillation``
    or ``01_knowledge_distillation.ipynb``), or its two-digit number (``01``). No names: every
    ``notebooks/[0-9][0-9]_*.ipynb``, sorted. ``root`` defaults to :func:`kae_utils.env.repo_root`.

    Raises :class:`UnknownNotebookError` (listing the available notebooks) for a name that matches
    nothing, and also when two different notebooks share a stem (their run folders would collide).
    """
    root = Path(root) if root is not None else _repo_root()
    available = _available(root)
    names = list(names or [])
    if not names:
        return [p.resolve() for p in available]

    found: list[Path] = []
    for name in names:
        text = os.fspath(name)
        candidate = Path(text).expanduser()
        path: Path | None = None
        for option in (candidate, root / candidate):
            if option.suffix == ".ipynb" and option.is_file():
                path = option
                break
        if path is None:
            stem = candidate.name[: -len(".ipynb")] if candidate.name.endswith(".ipynb") else candidate.name
            matches = [p for p in available if p.stem == stem]
            if not matches and stem.isdigit():
                matches = [p for p in available if p.stem.split("_", 1)[0] == stem]
            if len(matches) == 1:
                path = matches[0]
        if path is None:
            listing = "\n".join(f"  {p.stem}" for p in available) or "  (none)"
            raise UnknownNotebookError(
                f"unknown notebook {text!r}; available notebooks in {root / 'notebooks'}:\n{listing}"
            )
        path = path.resolve()
        if path in found:
            continue
        clash = [p for p in found if p.stem == path.stem]
        if clash:
            raise UnknownNotebookError(
                f"two notebooks share the stem {path.stem!r} ({clash[0]} and {path}); "
                "their run folders would collide"
            )
        found.append(path)
    return found


def code_sha(path: str | os.PathLike) -> str:
    """16 hex digits of the sha256 of a notebook's cell sources (code and markdown, outputs left out).

    Storing fresh outputs (``make outputs``) does not change it; editing a cell does.
    """
    nb = nbformat.read(os.fspath(path), as_version=4)
    text = "\n\x00".join(f"{cell.cell_type}\x00{cell.source}" for cell in nb.cells)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

