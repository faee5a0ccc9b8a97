"""Metadata cleaning for the stored notebooks: ``kae clean NOTEBOOK...``.

The notebooks in ``notebooks/`` are stored *with* their outputs (nbval compares them), so this is not
an output stripper. It removes only what changes from run to run or from machine to machine and keeps
everything nbval and papermill need:

kept
    every output, every execution count (nbval fails on a cell with outputs but no count), cell ids,
    cell tags (``parameters``, ``nbval-ignore-output``, ...) and every other cell metadata key.
removed
    cell metadata ``papermill`` and ``execution`` (timestamps) and an *empty* ``tags`` list (papermill
    adds one to every cell), notebook metadata ``papermill`` and ``widgets`` (stored widget state), the
    ``application/vnd.jupyter.widget-view+json`` entry of rich outputs (an output left with no data is
    dropped), and any cell tagged ``injected-parameters``.
normalised
    the kernelspec is set to ``python3``; execution counts are renumbered 1..n over the executed code
    cells in order (``execute_result`` outputs follow their cell), so stored counts do not depend on how
    often a cell was re-run.
"""

from __future__ import annotations

import argparse
import copy
import io
import sys
from collections.abc import Sequence
from pathlib import Path

import nbformat

__all__ = ["KERNELSPEC", "WIDGET_MIME", "clean_file", "clean_notebook", "main", "notebook_text"]

#: The kernelspec every stored notebook carries (papermill and nbval are run with ``python3``).
KERNELSPEC: dict[str, str] = {"display_name": "Python 3", "language": "python", "name": "python3"}
#: MIME type of a widget view; meaningless without the (removed) widget state.
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

_CELL_METADATA_DROPPED = ("papermill", "execution")
_NOTEBOOK_METADATA_DROPPED = ("papermill", "widgets")
_INJECTED_TAG = "injected-parameters"


def _clean_outputs(outputs: list) -> list:
    kept = []
    for output in outputs:
        if output.get("output_type") in ("display_data", "execute_result") and "data" in output:
            data = output["data"]
            if WIDGET_MIME in data:
                del data[WIDGET_MIME]
                if not data:
                    continue
        kept.append(output)
    return kept


def clean_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Return a cleaned copy of ``nb`` (the argument is not modified); see the module docstring for the rules."""
    nb = copy.deepcopy(nb)
    for key in _NOTEBOOK_METADATA_DROPPED:
        nb.metadata.pop(key, None)
    nb.metadata["kernelspec"] = nbformat.from_dict(dict(KERNELSPEC))

    cells = []
    for cell in nb.cells:
        if _INJECTED_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        for key in _CELL_METADATA_DROPPED:
            cell.metadata.pop(key, None)
        if "tags" in cell.metadata and not cell.metadata["tags"]:
            del cell.metadata["tags"]  # papermill adds an empty list to every cell
        if cell.cell_type == "code":
            cell.outputs = _clean_outputs(cell.get("outputs", []))
        cells.append(cell)
    nb.cells = cells

    count = 0
    for cell in nb.cells:
        if cell.cell_type != "code" or cell.get("execution_count") is None:
            continue
        count += 1
        cell.execution_count = count
        for output in cell.outputs:
            if output.get("output_type") == "execute_result":
                output["execution_count"] = count
    return nb


def notebook_text(nb: nbformat.NotebookNode) -> str:
    """The exact text :func:`nbformat.write` produces for ``nb`` (version 4, ending in a newline)."""
    buffer = io.StringIO()
    nbformat.write(nb, buffer, version=4)
    text = buffer.getvalue()
    return text if text.endswith("\n") else text + "\n"


def clean_file(path: str | Path, *, check: bool = False) -> bool:
    """Clean the notebook at ``path`` in place; return whether its text changed.

    With ``check=True`` nothing is written; the return value says whether cleaning *would* change it.
    """
    path = Path(path)
    original = path.read_text(encoding="utf-8")
    nb = nbformat.reads(original, as_version=4)
    text = notebook_text(clean_notebook(nb))
    if text == original:
        return False
    if not check:
        tmp = path.with_name(f".{path.name}.nbclean.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit code (with ``--check``: 1 when some notebook is not clean)."""
    parser = argparse.ArgumentParser(
        prog="kae clean",
        description="Clean run-dependent metadata from stored notebooks, keeping outputs, counts and tags.",
    )
    parser.add_argument("notebooks", nargs="+", type=Path, metavar="NOTEBOOK")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if any notebook would change"
    )
    args = parser.parse_args(argv)
    changed = []
    for path in args.notebooks:
        if clean_file(path, check=args.check):
            changed.append(path)
            print(f"{'would clean' if args.check else 'cleaned'}: {path}", flush=True)
    if args.check and changed:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
