"""Paired text forms of the notebooks: ``kae pair [--check] [NOTEBOOK ...]``.

Every ``notebooks/NN_name.ipynb`` has a text form beside it, ``notebooks/NN_name.py`` in jupytext's
percent format (``# %%`` cells, markdown as comments, cell tags kept), so that diffs, review and ruff see
the notebooks' code. The format and filters come from ``jupytext.toml`` at the repository root, which
also makes JupyterLab (with jupytext) keep the pair in step when a notebook is saved there.

The ``.ipynb``, stored with its outputs, is the source of truth (nbval compares against it): this module
only ever writes the ``.py`` from it, never the other way round. Without ``--check`` it rewrites the text
forms that differ (``make pair``; ``make outputs`` runs it after the notebooks); with ``--check`` it writes
nothing and exits 1 when a text form is missing or out of sync, or when a ``.py`` has no notebook.
Notebook names are resolved like the batch runner's (:func:`kae_tools.notebooks.catalog.find_notebooks`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from kae_tools.notebooks.catalog import NOTEBOOK_GLOB, find_notebooks

__all__ = ["CONFIG_FILE", "orphans", "out_of_sync", "text_format", "text_form", "text_path", "main",
           "write_pairs"]

#: jupytext's configuration, at the repository root
CONFIG_FILE = "jupytext.toml"


def _root(root: Path | None) -> Path:
    if root is not None:
        return Path(root)
    from kae_utils.env import repo_root  # imports torch (seconds): only when no root is given

    return repo_root()


def _config(root: Path | None = None):
    from jupytext.config import load_jupytext_configuration_file

    path = _root(root) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: it sets the notebooks' paired text format")
    return load_jupytext_configuration_file(str(path))


def text_format(root: Path | None = None) -> dict[str, str]:
    """The paired text format of ``jupytext.toml`` (long form, e.g. ``{"extension": ".py", "format_name": "percent"}``)."""
    from jupytext.formats import long_form_multiple_formats

    formats = _config(root).formats  # jupytext keeps the string as a one-item list
    formats = ",".join(formats) if isinstance(formats, list) else formats
    formats = [f for f in long_form_multiple_formats(formats) if f["extension"] != ".ipynb"]
    if len(formats) != 1:
        raise ValueError(f"{CONFIG_FILE} must pair .ipynb with exactly one text format; got {formats}")
    return formats[0]


def text_path(notebook: Path, root: Path | None = None) -> Path:
    """Where the text form of ``notebook`` lives: beside it, with the format's extension."""
    return Path(notebook).with_suffix(text_format(root)["extension"])


def text_form(notebook: Path, root: Path | None = None) -> str:
    """The text form of ``notebook`` as jupytext writes it with the repository's configuration."""
    import jupytext

    config = _config(root)
    nb = jupytext.read(notebook, fmt="ipynb")
    return jupytext.writes(nb, fmt=text_format(root), config=config)


def _differs(notebook: Path, root: Path | None) -> bool:
    path = text_path(notebook, root)
    return not path.is_file() or path.read_text(encoding="utf-8") != text_form(notebook, root)


def out_of_sync(notebooks: Iterable[Path], root: Path | None = None) -> list[Path]:
    """The notebooks among ``notebooks`` whose text form is missing or differs from :func:`text_form`."""
    return [Path(nb) for nb in notebooks if _differs(Path(nb), root)]


def orphans(root: Path | None = None) -> list[Path]:
    """Text forms under ``notebooks/`` named like a notebook but without one (left after a rename)."""
    root = _root(root)
    suffix = text_format(root)["extension"]
    pattern = NOTEBOOK_GLOB.removesuffix(".ipynb") + suffix
    return [p for p in sorted((root / "notebooks").glob(pattern)) if not p.with_suffix(".ipynb").exists()]


def write_pairs(notebooks: Iterable[Path], root: Path | None = None) -> list[Path]:
    """Rewrite the text forms that differ; return the paths written."""
    written = []
    for notebook in out_of_sync(notebooks, root):
        path = text_path(notebook, root)
        tmp = path.with_name(f".{path.name}.pairing.tmp")
        tmp.write_text(text_form(notebook, root), encoding="utf-8")
        tmp.replace(path)
        written.append(path)
    return written


def _problem(notebook: Path, root: Path) -> str:
    path = text_path(notebook, root)
    state = "out of sync" if path.exists() else "missing"
    return f"{state}: {path.relative_to(root)} (the text form of {notebook.relative_to(root)})"


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit code (with ``--check``: 1 when something is out of sync)."""
    parser = argparse.ArgumentParser(prog="kae pair", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", metavar="NOTEBOOK", help="default: every notebook")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a pair is out of sync")
    args = parser.parse_args(argv)
    root = _root(None)
    notebooks = find_notebooks(args.notebooks, root=root)
    if not args.check:
        for path in write_pairs(notebooks, root):
            print(f"wrote {path.relative_to(root)}")
        return 0
    problems = [_problem(nb, root) for nb in out_of_sync(notebooks, root)]
    problems += [f"no notebook for {p.relative_to(root)} (delete it or restore its .ipynb)" for p in orphans(root)]
    for line in problems:
        print(line)
    if problems:
        print("fix with `make pair` (rewrites the .py text forms from the .ipynb notebooks)")
    return int(bool(problems))


if __name__ == "__main__":
    sys.exit(main())
