"""Every notebook's paired text form (notebooks/NN_name.py, jupytext percent format) is in sync with it."""

from __future__ import annotations

import shutil

import nbformat
import pytest

from kae_tools.notebooks import pairing
from kae_tools.notebooks.catalog import NOTEBOOK_GLOB
from kae_utils.env import repo_root

ROOT = repo_root()
NOTEBOOKS = sorted((ROOT / "notebooks").glob(NOTEBOOK_GLOB))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_text_form_is_in_sync(notebook):
    path = pairing.text_path(notebook)
    fix = f"run `make pair NB={notebook.stem}` (writes it from {notebook.name})"
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing: {fix}"
    assert path.read_text(encoding="utf-8") == pairing.text_form(notebook), (
        f"{path.relative_to(ROOT)} is out of sync with {notebook.name}: {fix}")


def test_no_text_form_without_its_notebook():
    assert not pairing.orphans(), "text forms without a notebook: delete them or restore the .ipynb"


def test_the_pairing_is_ipynb_with_percent_py():
    assert pairing.text_format() == {"extension": ".py", "format_name": "percent"}
    assert pairing.text_path(ROOT / "notebooks" / "07_x.ipynb") == ROOT / "notebooks" / "07_x.py"


# ---- on a fake repository


def _fake_repo(tmp_path):
    shutil.copyfile(ROOT / pairing.CONFIG_FILE, tmp_path / pairing.CONFIG_FILE)
    (tmp_path / "notebooks").mkdir()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["kae"] = {"title": "T"}
    params = nbformat.v4.new_code_cell('PROFILE = "quick"  # the profile')
    params.metadata["tags"] = ["parameters"]
    shown = nbformat.v4.new_code_cell("print(1 + 1)", execution_count=1,
                                      outputs=[nbformat.v4.new_output("stream", name="stdout", text="2\n")])
    nb.cells = [nbformat.v4.new_markdown_cell("# 07 · Thing\n\nWith $x^2$."), params, shown]
    path = tmp_path / "notebooks" / "07_thing.ipynb"
    nbformat.write(nb, path)
    return path


def test_text_form_has_cells_and_tags_but_no_outputs_or_metadata(tmp_path):
    text = pairing.text_form(_fake_repo(tmp_path), tmp_path)
    assert text.startswith("# %% [markdown]\n# # 07 · Thing\n")
    assert '# %% tags=["parameters"]\nPROFILE = "quick"  # the profile\n' in text
    assert "print(1 + 1)" in text
    assert "kernelspec" not in text and "kae" not in text and "\n2\n" not in text


def test_write_then_check_then_edit(tmp_path):
    notebook = _fake_repo(tmp_path)
    stored = notebook.read_bytes()
    assert pairing.out_of_sync([notebook], tmp_path) == [notebook]  # missing
    assert pairing.write_pairs([notebook], tmp_path) == [notebook.with_suffix(".py")]
    assert notebook.read_bytes() == stored, "writing the text form must never change the notebook"
    assert pairing.out_of_sync([notebook], tmp_path) == []
    assert pairing.write_pairs([notebook], tmp_path) == []  # nothing to do
    nb = nbformat.read(notebook, as_version=4)
    nb.cells[2].source = "print(2 + 2)"
    nbformat.write(nb, notebook)
    assert pairing.out_of_sync([notebook], tmp_path) == [notebook]


def test_orphan_text_forms(tmp_path):
    notebook = _fake_repo(tmp_path)
    pairing.write_pairs([notebook], tmp_path)
    assert pairing.orphans(tmp_path) == []
    (tmp_path / "notebooks" / "08_gone.py").write_text("# %%\n")
    (tmp_path / "notebooks" / "helper.py").write_text("")  # not named like a notebook: not a text form
    assert pairing.orphans(tmp_path) == [tmp_path / "notebooks" / "08_gone.py"]


def test_cli_check_names_the_problem_and_the_fix(tmp_path, monkeypatch, capsys):
    notebook = _fake_repo(tmp_path)
    monkeypatch.setenv("KAE_ROOT", str(tmp_path))
    assert pairing.main(["--check"]) == 1
    out = capsys.readouterr().out
    assert "missing: notebooks/07_thing.py (the text form of notebooks/07_thing.ipynb)" in out
    assert "make pair" in out
    assert pairing.main(["07"]) == 0
    assert "wrote notebooks/07_thing.py" in capsys.readouterr().out
    assert pairing.main(["--check"]) == 0
    notebook.with_suffix(".py").write_text("# %%\nstale\n")
    assert pairing.main(["--check", "07_thing"]) == 1
    assert "out of sync: notebooks/07_thing.py" in capsys.readouterr().out


def test_missing_config_is_named(tmp_path):
    notebook = _fake_repo(tmp_path)
    (tmp_path / pairing.CONFIG_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="jupytext.toml is missing"):
        pairing.text_form(notebook, tmp_path)
