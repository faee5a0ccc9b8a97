"""Tests of kae_tools.notebooks.nbclean on hand-built notebooks: what is removed, what is kept, renumbering."""

from __future__ import annotations

import json

import nbformat
from nbformat.v4 import (
    new_code_cell,
    new_markdown_cell,
    new_notebook,
    new_output,
)

from kae_tools.notebooks import nbclean
from kae_tools.notebooks.nbclean import KERNELSPEC, WIDGET_MIME, clean_file, clean_notebook

PAPERMILL_CELL = {"duration": 0.1, "exception": False, "status": "completed", "start_time": "t0"}
EXECUTION_CELL = {
    "iopub.execute_input": "2024-01-01T00:00:00Z",
    "shell.execute_reply": "2024-01-01T00:00:01Z",
}


def executed_notebook() -> nbformat.NotebookNode:
    """A notebook as papermill leaves it: timing metadata, widget state, injected parameters, counts 3, 5, ..."""
    nb = new_notebook()
    nb.metadata.kernelspec = {"display_name": "my-conda-env", "language": "python", "name": "conda-env-x"}
    nb.metadata.language_info = {"name": "python"}
    nb.metadata.papermill = {"parameters": {"PROFILE": "quick"}, "version": "2.7.0"}
    nb.metadata.widgets = {"application/vnd.jupyter.widget-state+json": {"state": {}}}

    title = new_markdown_cell("# Title")
    title.metadata.papermill = dict(PAPERMILL_CELL)
    title.metadata.tags = []

    params = new_code_cell('PROFILE = "quick"', execution_count=3)
    params.metadata.tags = ["parameters"]
    params.metadata.papermill = dict(PAPERMILL_CELL)
    params.metadata.execution = dict(EXECUTION_CELL)

    injected = new_code_cell('# Parameters\nPROFILE = "full"\n', execution_count=4)
    injected.metadata.tags = ["injected-parameters"]
    injected.metadata.papermill = dict(PAPERMILL_CELL)

    compute = new_code_cell("print('hi')\n1 + 1", execution_count=5)
    compute.metadata.tags = ["nbval-ignore-output"]
    compute.metadata.papermill = dict(PAPERMILL_CELL)
    compute.metadata.execution = dict(EXECUTION_CELL)
    compute.metadata.scrolled = True
    compute.metadata.jupyter = {"source_hidden": False}
    compute.outputs = [
        new_output("stream", name="stdout", text="hi\n"),
        new_output("execute_result", data={"text/plain": "2"}, execution_count=5),
    ]

    widgets = new_code_cell("show_progress()", execution_count=9)
    widgets.outputs = [
        new_output("display_data", data={WIDGET_MIME: {"model_id": "abc", "version_major": 2}}),
        new_output(
            "display_data",
            data={WIDGET_MIME: {"model_id": "def", "version_major": 2}, "text/plain": "  0%|  | 0/10"},
        ),
        new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}),
    ]

    unrun = new_code_cell("x = 1")  # never executed: count stays None

    claims = new_code_cell("show_claims()", execution_count=12)
    claims.outputs = [new_output("execute_result", data={"text/plain": "5/5"}, execution_count=12)]

    nb.cells = [title, params, injected, compute, widgets, unrun, claims]
    return nb


def test_removes_papermill_and_execution_cell_metadata() -> None:
    cleaned = clean_notebook(executed_notebook())
    for cell in cleaned.cells:
        assert "papermill" not in cell.metadata
        assert "execution" not in cell.metadata


def test_removes_notebook_level_papermill_and_widget_state() -> None:
    cleaned = clean_notebook(executed_notebook())
    assert "papermill" not in cleaned.metadata
    assert "widgets" not in cleaned.metadata
    assert cleaned.metadata.language_info == {"name": "python"}  # other metadata kept


def test_sets_python3_kernelspec() -> None:
    assert clean_notebook(executed_notebook()).metadata.kernelspec == KERNELSPEC


def test_removes_injected_parameters_cell_only() -> None:
    cleaned = clean_notebook(executed_notebook())
    sources = [cell.source for cell in cleaned.cells]
    assert not any("injected-parameters" in cell.metadata.get("tags", []) for cell in cleaned.cells)
    assert '# Parameters\nPROFILE = "full"\n' not in sources
    assert len(cleaned.cells) == 6
    assert cleaned.cells[1].source == 'PROFILE = "quick"'


def test_keeps_tags_and_other_cell_metadata() -> None:
    cleaned = clean_notebook(executed_notebook())
    assert cleaned.cells[1].metadata.tags == ["parameters"]
    compute = cleaned.cells[2]
    assert compute.metadata.tags == ["nbval-ignore-output"]
    assert compute.metadata.scrolled is True
    assert compute.metadata.jupyter == {"source_hidden": False}
    assert "tags" not in cleaned.cells[0].metadata  # the empty list papermill adds is dropped


def test_keeps_outputs_and_cell_ids() -> None:
    original = executed_notebook()
    cleaned = clean_notebook(original)
    compute = cleaned.cells[2]
    assert [o.output_type for o in compute.outputs] == ["stream", "execute_result"]
    assert compute.outputs[0].text == "hi\n"
    assert compute.outputs[1].data == {"text/plain": "2"}
    kept_ids = [c.id for c in original.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    assert [c.id for c in cleaned.cells] == kept_ids


def test_widget_view_outputs_removed_other_data_kept() -> None:
    widgets = clean_notebook(executed_notebook()).cells[3]
    assert len(widgets.outputs) == 2  # the widget-only output is gone
    assert widgets.outputs[0].data == {"text/plain": "  0%|  | 0/10"}
    assert widgets.outputs[1].data == {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}
    assert all(WIDGET_MIME not in o.data for o in widgets.outputs)


def test_execution_counts_kept_and_renumbered() -> None:
    cleaned = clean_notebook(executed_notebook())
    counts = [c.execution_count for c in cleaned.cells if c.cell_type == "code"]
    assert counts == [1, 2, 3, None, 4]
    # every code cell with outputs keeps a count (nbval: "Unrun reference cell has outputs" otherwise)
    assert all(c.execution_count is not None for c in cleaned.cells if c.get("outputs"))
    assert cleaned.cells[2].outputs[1].execution_count == 2
    assert cleaned.cells[-1].outputs[0].execution_count == 4


def test_input_notebook_not_modified() -> None:
    original = executed_notebook()
    before = json.dumps(original, sort_keys=True)
    clean_notebook(original)
    assert json.dumps(original, sort_keys=True) == before


def test_clean_file_changes_then_idempotent(tmp_path) -> None:
    path = tmp_path / "nb.ipynb"
    nbformat.write(executed_notebook(), path)
    assert clean_file(path) is True
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    assert "papermill" not in nb.metadata
    assert clean_file(path) is False
    assert path.read_text(encoding="utf-8") == text


def test_cli_check_and_clean(tmp_path, capsys) -> None:
    path = tmp_path / "nb.ipynb"
    nbformat.write(executed_notebook(), path)
    before = path.read_text(encoding="utf-8")
    assert nbclean.main(["--check", str(path)]) == 1
    assert path.read_text(encoding="utf-8") == before
    assert nbclean.main([str(path)]) == 0
    assert "cleaned" in capsys.readouterr().out
    assert nbclean.main(["--check", str(path)]) == 0
