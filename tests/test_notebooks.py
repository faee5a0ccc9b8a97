"""Structure of every stored notebook, and the parameter validation each one performs."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

from kae_tools.notebooks.catalog import NOTEBOOK_GLOB
from kae_utils.core.paths import repo_root

ROOT = repo_root()
NOTEBOOKS = sorted((ROOT / "notebooks").glob(NOTEBOOK_GLOB))
CLAIM_LINE = re.compile(r"^(PASS|FAIL) \S.*$")
SUMMARY_LINE = re.compile(r"^claims: (\d+)/(\d+) hold( \((\d+) untestable here\))?$")


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def _stdout(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("name") == "stdout")


def _claims_cell(nb):
    cells = [c for c in _code_cells(nb) if "check_claims(" in c.source]
    assert len(cells) == 1, "exactly one code cell must call check_claims"
    return cells[0]


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks/NN_*.ipynb found"


MAX_DEFINITIONS_PER_CELL = 3  # one idea per cell: a few closely related definitions, prose between the ideas


def _definitions(cell) -> list:
    """The top-level functions and classes a code cell defines (magics and shell lines are not Python)."""
    source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
    return [node for node in ast.parse(source).body if isinstance(node, (ast.FunctionDef, ast.ClassDef))]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_definition_has_a_docstring_and_cells_stay_small(path):
    cells = [_definitions(cell) for cell in _code_cells(_read(path))]
    missing = [node.name for defs in cells for node in defs if not ast.get_docstring(node)]
    assert missing == [], f"top-level definitions without a docstring: {missing}"
    crowded = [[node.name for node in defs] for defs in cells if len(defs) > MAX_DEFINITIONS_PER_CELL]
    assert crowded == [], f"cells with more than {MAX_DEFINITIONS_PER_CELL} definitions: {crowded}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
class TestStructure:
    def test_valid_nbformat(self, path):
        nbformat.validate(_read(path))

    def test_kernelspec_python3(self, path):
        assert _read(path).metadata["kernelspec"]["name"] == "python3"

    def test_title_cell(self, path):
        first = _read(path).cells[0]
        assert first.cell_type == "markdown" and first.source.lstrip().startswith("# ")
        assert path.stem[:2] in first.source.splitlines()[0], "the title names the notebook number"

    def test_index_metadata(self, path):
        meta = _read(path).metadata.get("kae", {})
        for key in ("title", "paper", "claim"):
            assert meta.get(key), f"notebook metadata kae.{key} is needed for the README index"

    def test_exactly_one_parameters_cell_with_the_common_parameters(self, path):
        nb = _read(path)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1
        source = tagged[0].source
        for name in ("PROFILE", "SEED", "DEVICE"):
            assert re.search(rf"^{name}\b.*=", source, re.M), f"{name} missing from the parameters cell"
        assert re.search(r'^PROFILE\b.*=\s*"quick"', source, re.M), "the stored default profile is quick"
        # the next code cell validates the parameters
        index = nb.cells.index(tagged[0])
        following = next(c for c in nb.cells[index + 1:] if c.cell_type == "code")
        call = re.search(r"^check_common_parameters\((.*?)\)$", following.source, re.M | re.S)
        assert call and call[1].startswith("PROFILE, DEVICE, SEED"), "the shared checks: check_common_parameters"
        # every shared parameter the notebook has is checked by that call (kae_utils.core.params)
        for name, keyword in (("PRECISION", "precision=PRECISION"), ("DATASET", "dataset=DATASET"),
                              ("TEACHERS", "teachers=TEACHERS")):
            if re.search(rf"^{name}\b.*=", source, re.M):
                assert keyword in call[1], f"{name} is a parameter but check_common_parameters does not check it"

    def test_papermill_reads_every_parameter(self, path):
        """papermill skips a line with two '=' (e.g. in its comment): `-p NAME` would then warn 'unknown parameter'."""
        import papermill

        nb = _read(path)
        source = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", [])).source
        assigned = re.findall(r"^(\w+)\s*(?::[^=]*)?=", source, re.M)
        assert list(papermill.inspect_notebook(str(path))) == assigned

    def test_no_injected_parameters_or_execution_metadata(self, path):
        nb = _read(path)
        assert "papermill" not in nb.metadata and "widgets" not in nb.metadata
        for cell in nb.cells:
            assert "injected-parameters" not in cell.metadata.get("tags", [])
            assert "papermill" not in cell.metadata and "execution" not in cell.metadata

    def test_stored_outputs_present_without_errors_or_widgets(self, path):
        cells = _code_cells(_read(path))
        assert any(c.outputs for c in cells), "stored outputs missing: run `make outputs`"
        for cell in cells:
            if cell.outputs:
                assert cell.execution_count is not None, "outputs without execution_count break nbval"
            for out in cell.outputs:
                assert out.output_type != "error", "a stored output is an error"
                assert "application/vnd.jupyter.widget-view+json" not in out.get("data", {})

    def test_figures_are_png(self, path):
        for cell in _code_cells(_read(path)):
            for out in cell.outputs:
                data = out.get("data", {})
                assert "image/svg+xml" not in data and "application/pdf" not in data

    def test_claims_cell_format(self, path):
        cell = _claims_cell(_read(path))
        assert "nbval-ignore-output" not in cell.metadata.get("tags", []), "the claims block must be compared"
        lines = _stdout(cell).strip().splitlines()
        assert len(lines) >= 2
        *claims, summary = lines
        assert all(CLAIM_LINE.match(line) for line in claims), claims
        match = SUMMARY_LINE.match(summary)
        assert match, summary
        held, total = int(match[1]), int(match[2])
        assert total == len(claims) and held == sum(line.startswith("PASS") for line in claims)
        assert int(match[4] or 0) == sum("(untestable here: " in line for line in claims)

    def test_teachers_come_from_the_zoo_by_default(self, path):
        """A notebook that uses zoo models has TEACHERS = "zoo" (the shipped weights) as its stored default."""
        nb = _read(path)
        if not any("zoo.obtain(" in c.source for c in _code_cells(nb)):
            pytest.skip(f"{path.stem} uses no zoo models")
        source = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", [])).source
        assert re.search(r'^TEACHERS\b.*=\s*"zoo"', source, re.M), "TEACHERS = \"zoo\" missing from the parameters"
        assert not any("load_or_train(" in c.source and "teacher" in c.source for c in _code_cells(nb)), \
            "teachers are zoo entries, not trained through the cache in the notebook"

    def test_ends_with_fidelity_notes_and_references(self, path):
        markdown = "\n".join(c.source for c in _read(path).cells if c.cell_type == "markdown")
        assert "Notes on fidelity" in markdown and "References" in markdown


BAD_PARAMETERS = [
    ("PROFILE", "fast", "PROFILE must be one of 'quick', 'full'"),
    ("DEVICE", "gpu", "DEVICE must be one of 'auto', 'cpu', 'cuda'"),
    ("DATASET", "imagenet", "DATASET must be one of"),
    ("TEACHERS", "download", "TEACHERS must be one of 'zoo', 'train'"),
    ("SEED", -1, "SEED must be an integer >= 0"),  # kae_utils.core.params.check_number, the numeric counterpart
]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
@pytest.mark.parametrize(("name", "value", "message"), BAD_PARAMETERS, ids=[b[0] for b in BAD_PARAMETERS])
def test_bad_parameter_fails_fast_with_allowed_values(path, name, value, message, tmp_path, monkeypatch):
    import papermill
    from papermill.exceptions import PapermillExecutionError

    source = _read(path).cells
    if not any(re.search(rf"^{name}\b", c.source, re.M) for c in source if "parameters" in c.metadata.get("tags", [])):
        pytest.skip(f"{path.stem} has no {name} parameter")
    monkeypatch.setenv("KAE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("KAE_PROGRESS", "off")
    with pytest.raises(PapermillExecutionError) as excinfo:
        papermill.execute_notebook(
            str(path), str(tmp_path / "out.ipynb"), parameters={name: value}, kernel_name="python3",
            progress_bar=False, cwd=str(path.parent),
        )
    assert excinfo.value.ename == "ValueError"
    assert message in excinfo.value.evalue
    assert repr(value) in excinfo.value.evalue
