"""The README's notebook index is generated from results/ and is up to date."""

from __future__ import annotations

import json

import nbformat
import pytest

from kae_utils import readme
from kae_utils.env import repo_root
from kae_utils.run import NOTEBOOK_GLOB


def test_readme_index_is_up_to_date():
    assert not readme.update_readme(check=True), "README.md index is stale: run `make readme`"


def _fake_repo(tmp_path):
    (tmp_path / "notebooks").mkdir()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kae"] = {"title": "T", "paper": "Someone 2020", "url": "https://x.org", "claim": "it works"}
    nbformat.write(nb, tmp_path / "notebooks" / "07_thing.ipynb")
    (tmp_path / "README.md").write_text(f"intro\n{readme.START}\nold\n{readme.END}\noutro\n")
    return tmp_path


def _metrics(profile, headline="acc 90% | better", held=2, total=3):
    return {"notebook": "07_thing", "profile": profile, "metrics": {"headline": headline},
            "claims": {"held": held, "total": total, "items": []}}


def test_render_and_update(tmp_path):
    root = _fake_repo(tmp_path)
    (root / "results" / "quick").mkdir(parents=True)
    (root / "results" / "quick" / "07_thing.json").write_text(json.dumps(_metrics("quick")))
    table = readme.render_index(root)
    row = table.splitlines()[2]
    assert "[07_thing](notebooks/07_thing.ipynb)" in row and "[Someone 2020](https://x.org)" in row
    assert "acc 90% \\| better; claims 2/3" in row  # the pipe is escaped for markdown
    assert row.rstrip(" |").endswith("not run yet")  # no full-profile result
    assert readme.update_readme(root) is True
    text = (root / "README.md").read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old" not in text
    assert readme.update_readme(root) is False


def test_readme_index_is_the_table_between_the_markers(tmp_path):
    root = _fake_repo(tmp_path)
    assert readme.readme_index(root) == "old"
    readme.update_readme(root)
    assert readme.readme_index(root) == readme.render_index(root)


def test_update_needs_markers(tmp_path):
    root = _fake_repo(tmp_path)
    (root / "README.md").write_text("no markers\n")
    with pytest.raises(ValueError, match="markers"):
        readme.update_readme(root)


def test_collect_copies_only_the_profile(tmp_path):
    root = _fake_repo(tmp_path)
    for name, profile in (("07_thing", "quick"), ("08_other", "full")):
        (root / "runs" / name).mkdir(parents=True)
        (root / "runs" / name / "metrics.json").write_text(json.dumps(_metrics(profile)))
    copied = readme.collect("runs", "quick", root=root)
    assert [p.name for p in copied] == ["07_thing.json"]
    assert json.loads((root / "results" / "quick" / "07_thing.json").read_text())["profile"] == "quick"
    with pytest.raises(ValueError, match="profile must be one of"):
        readme.collect("runs", "medium", root=root)


def test_index_lists_every_notebook():
    table = readme.render_index(repo_root())
    for path in sorted((repo_root() / "notebooks").glob(NOTEBOOK_GLOB)):
        assert f"[{path.stem}]" in table
