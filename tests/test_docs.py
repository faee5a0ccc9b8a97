"""The site's build pieces, without building it: staged sources, the Sphinx extension, the MathJax fetch.

The site itself is built by `make docs` (warnings fail it) and checked in a browser by tests/browser.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import sys
import tarfile

import pytest

from kae_tools import readme
from kae_tools.notebooks.catalog import NOTEBOOK_GLOB
from kae_utils.core.paths import repo_root

ROOT = repo_root()
sys.path[:0] = [str(ROOT / "docs"), str(ROOT / "docs" / "_ext")]

import build_site  # noqa: E402
import fetch_mathjax  # noqa: E402
import kae_site  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob(NOTEBOOK_GLOB))


def test_every_notebook_and_its_text_form_is_a_source():
    files = build_site.sources()
    assert files.pop(build_site.Path("index.md")) == ROOT / "docs" / "index.md"
    assert files.pop(build_site.Path("README.md")) == ROOT / "README.md"
    pages = {rel: path for rel, path in files.items() if rel.parts[0] == "docs"}
    assert pages == {build_site.Path("docs") / p.name: p for p in (ROOT / "docs").glob("*.md") if p.name != "index.md"}
    assert {build_site.Path("docs/decisions.md"), build_site.Path("docs/architecture.md")} <= pages.keys()
    figures = {rel: path for rel, path in files.items() if rel.parts[0] == "results"}
    assert figures == {p.relative_to(ROOT): p for p in (ROOT / "results").glob("**/*.png")}
    assert build_site.Path("results/sweeps/kd_temperature/plot.png") in figures  # docs/batch.md shows it
    files = {rel: path for rel, path in files.items() if rel not in pages and rel not in figures}
    expected = {f"notebooks/{p.name}" for nb in NOTEBOOKS for p in (nb, nb.with_suffix(".py"))}
    assert {str(rel) for rel in files} == expected


def _fake_repo(tmp_path):
    (tmp_path / "notebooks").mkdir(parents=True)
    (tmp_path / "README.md").write_text("readme\n")
    (tmp_path / "jupytext.toml").write_text((ROOT / "jupytext.toml").read_text())
    (tmp_path / "notebooks" / "07_thing.ipynb").write_text("{}")
    (tmp_path / "notebooks" / "notes.ipynb").write_text("{}")  # not a tutorial notebook
    return tmp_path


def test_stage_copies_new_and_changed_files_and_removes_stale_ones(tmp_path):
    root, src = _fake_repo(tmp_path / "repo"), tmp_path / "src"
    (src / "notebooks").mkdir(parents=True)
    (src / "notebooks" / "06_gone.ipynb").write_text("{}")
    staged = build_site.stage(src, root)
    assert sorted(str(p.relative_to(src)) for p in staged) == ["README.md", "index.md", "notebooks/07_thing.ipynb"]
    assert not (src / "notebooks" / "06_gone.ipynb").exists() and not (src / "notebooks" / "notes.ipynb").exists()
    notebook = root / "notebooks" / "07_thing.ipynb"
    notebook.write_text('{"changed": 1}')
    os.utime(notebook, (1e9, 1e9))
    build_site.stage(src, root)
    assert (src / "notebooks" / "07_thing.ipynb").read_text() == '{"changed": 1}'
    assert (src / "notebooks" / "07_thing.ipynb").stat().st_mtime == 1e9  # Sphinx sees the notebook's time


def test_landing_page_has_the_index_placeholder_and_globs_the_notebooks():
    text = (ROOT / "docs" / "index.md").read_text()
    assert kae_site.INDEX_PLACEHOLDER in text
    assert ":glob:" in text and "notebooks/*" in text


def test_add_index_puts_the_readme_table_in_place():
    source = [f"# Title\n\n{kae_site.INDEX_PLACEHOLDER}\n"]
    kae_site.add_index(source, "index")
    assert source[0] == f"# Title\n\n{readme.readme_index()}\n"
    assert all(f"[{nb.stem}](notebooks/{nb.name})" in source[0] for nb in NOTEBOOKS)
    with pytest.raises(ValueError, match="kae:notebook-index"):
        kae_site.add_index(["# no placeholder\n"], "index")


def test_every_reference_page_is_in_the_sites_navigation():
    """Each page of docs/ is in a toctree of the landing page (Sphinx would warn, and -W fail, otherwise)."""
    index = (ROOT / "docs" / "index.md").read_text()
    entries = set(re.findall(r"^docs/([\w-]+)$", index, re.M))
    assert entries == {p.stem for p in (ROOT / "docs").glob("*.md")} - {"index"}
    assert ":caption: Reference" in index


def test_a_missing_figure_of_results_becomes_a_note(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "here.png").write_bytes(b"\x89PNG")
    source = ["![a figure](../results/here.png)\n\n![the envelope](../results/envelope.png)\n![other](elsewhere.png)\n"]
    missing = []
    kae_site.note_missing_figures(source, tmp_path / "docs", missing.append)
    assert missing == [tmp_path / "docs" / "../results/envelope.png"]  # Sphinx reads the page again next time
    assert source[0] == ("![a figure](../results/here.png)\n\n*(Figure not made yet: `results/envelope.png`.)*\n"
                         "![other](elsewhere.png)\n")


def test_run_box_after_the_title_cell():
    notebook = NOTEBOOKS[0]
    source = [notebook.read_text()]
    kae_site.add_run_box(source, notebook)
    cells = json.loads(source[0])["cells"]
    stored = json.loads(notebook.read_text())["cells"]
    assert cells[0] == stored[0] and cells[2:] == stored[1:]
    box = "".join(cells[1]["source"])
    assert cells[1]["metadata"]["tags"] == [kae_site.BOX_TAG]
    assert f"make run NB={notebook.stem}" in box
    assert f"papermill -k python3 notebooks/{notebook.name}" in box
    assert f"{{download}}`notebooks/{notebook.name} <{notebook.name}>`" in box
    assert "| `PROFILE` | `\"quick\"` |" in box


def test_parameter_table_escapes_pipes_and_handles_none():
    table = kae_site.parameter_table({"A": {"default": "'x|y'", "help": "one | two"}})
    assert table.splitlines()[2] == "| `A` | `'x\\|y'` | one \\| two |"
    assert kae_site.parameter_table({}) == "This notebook has no parameters."


# ---- the MathJax fetch, from a small fake package (no npm, no network)


def _fake_tgz(path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for part in ("tex-mml-chtml.js", "output/chtml.js", "output/chtml/fonts/a.woff", "input/tex/extensions/x.js",
                     "ui/menu.js", "a11y/explorer.js", "sre/not-wanted.js"):
            data = f"// {part}\n".encode()
            info = tarfile.TarInfo(f"package/es5/{part}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    path.write_bytes(buffer.getvalue())
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def test_fetch_mathjax_unpacks_the_parts_the_site_serves(tmp_path, monkeypatch, capsys):
    tgz = tmp_path / "mathjax.tgz"
    monkeypatch.setattr(fetch_mathjax, "SHA256", _fake_tgz(tgz))
    monkeypatch.setenv("KAE_MATHJAX_TGZ", str(tgz))
    target = fetch_mathjax.fetch(tmp_path / "out")
    assert (target / "tex-mml-chtml.js").read_text() == "// tex-mml-chtml.js\n"
    assert (target / "output" / "chtml" / "fonts" / "a.woff").exists()
    assert not (target / "sre").exists()
    assert (target / "VERSION").read_text().strip() == fetch_mathjax.VERSION
    assert "unpacked" in capsys.readouterr().out
    tgz.unlink()
    assert fetch_mathjax.fetch(tmp_path / "out") == target  # already there: nothing fetched


def test_fetch_mathjax_refuses_a_tarball_with_another_hash(tmp_path, monkeypatch):
    tgz = tmp_path / "mathjax.tgz"
    _fake_tgz(tgz)
    monkeypatch.setenv("KAE_MATHJAX_TGZ", str(tgz))
    with pytest.raises(SystemExit, match="is not the pinned"):
        fetch_mathjax.fetch(tmp_path / "out")
    assert not (tmp_path / "out" / "mathjax3").exists()


# ---- links from the notebooks and the README to the pages of docs/: the page and its heading exist


def _slug(heading: str) -> str:
    """The anchor MyST (``myst_heading_anchors``) and GitHub give a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _broken_links(text: str, prefix: str) -> list[str]:
    """The links ``](<prefix>PAGE.md#ANCHOR)`` in ``text`` whose page in docs/ or whose heading does not exist."""
    broken = []
    for page, anchor in re.findall(rf"\]\({re.escape(prefix)}([\w-]+\.md)(?:#([\w-]+))?\)", text):
        path = ROOT / "docs" / page
        if not path.exists():
            broken.append(f"{prefix}{page}: no such page")
        elif anchor:
            headings = {_slug(line.lstrip("#")) for line in path.read_text().splitlines() if line.startswith("#")}
            if anchor not in headings:
                broken.append(f"{prefix}{page}#{anchor}: no such heading")
    return broken


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_links_to_docs_pages_resolve(notebook):
    nb = json.loads(notebook.read_text())
    text = "\n".join("".join(cell["source"]) for cell in nb["cells"] if cell["cell_type"] == "markdown")
    assert not _broken_links(text, "../docs/"), f"{notebook.name} links to {_broken_links(text, '../docs/')}"


def test_readme_links_to_docs_pages_resolve():
    """The README is not a page of the site, so Sphinx does not check its links into docs/: this test does."""
    text = (ROOT / "README.md").read_text()
    assert "](docs/batch.md#claims-across-seeds)" in text
    assert not _broken_links(text, "docs/"), f"README.md links to {_broken_links(text, 'docs/')}"
