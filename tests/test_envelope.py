"""Tests for kae_tools.envelope: the reproduction envelope from results/ (stored run, seeds, published effects)."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_notebook

from kae_tools import envelope
from kae_tools.notebooks.catalog import code_sha

CLAIMS = [
    {"claim": "the student matches the teacher", "holds": True, "details": "", "untestable": "",
     "effect": {"name": "student - teacher", "value": -0.01, "bound": -0.02, "holds_if": "at least"}},
    {"claim": "the generators are deterministic", "holds": True, "details": "", "untestable": "", "effect": None},
    {"claim": "the component matches the best source", "holds": False, "details": "",
     "untestable": "the supervised ceiling is below the best source",
     "effect": {"name": "component - best source", "value": -0.04, "bound": -0.02, "holds_if": "at least"}},
]


def _root(tmp_path: Path, *, seeds_of_this_version: bool = True, published: list | None = None) -> Path:
    (tmp_path / "notebooks").mkdir()
    notebook = tmp_path / "notebooks" / "01_tiny.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("x = 1")]), notebook)
    (tmp_path / "results" / "quick").mkdir(parents=True)
    (tmp_path / "results" / "quick" / "01_tiny.json").write_text(
        json.dumps({"notebook": "01_tiny", "metrics": {}, "claims": {"held": 2, "total": 3, "items": CLAIMS}}))
    sha = code_sha(notebook) if seeds_of_this_version else "0123456789abcdef"
    seeds = pd.DataFrame({
        "notebook": "01_tiny", "run_id": [f"SEED={s}" for s in range(3)], "PROFILE": "quick", "SEED": [0, 1, 2],
        "status": ["ok", "ok", "ok"], "wall_s": 1.0, "claims": ["2/3", "1/3", "2/3"],
        "claim.1": ["PASS", "FAIL", "PASS"], "claim.2": ["PASS", "PASS", "PASS"], "claim.3": ["FAIL", "FAIL", "PASS"],
        "untestable.1": False, "untestable.2": False, "untestable.3": [True, True, False],
        "effect.1": [-0.01, -0.03, 0.02], "effect.3": [-0.04, -0.05, 0.0], "code_sha": sha,
    })
    (tmp_path / "results" / "seeds").mkdir()
    seeds.to_csv(tmp_path / "results" / "seeds" / "01_tiny.tsv", sep="\t", index=False)
    if published is not None:
        (tmp_path / envelope.PUBLISHED).write_text(yaml.safe_dump(published))
    return tmp_path


PUBLISHED = [{"notebook": "01_tiny", "claim": 1, "claim_text": CLAIMS[0]["claim"], "effect": "student - teacher",
              "paper": {"value": 0.03, "computed": "0.78 - 0.75 (two data sets)", "source": "Table 2"},
              "upstream": {"value": -0.05, "computed": "0.70 - 0.75", "source": "KAE README"}}]


def test_rows_join_the_stored_run_the_seeds_and_the_published_effects(tmp_path):
    rows = envelope.load_rows(_root(tmp_path, published=PUBLISHED))
    assert [(r.notebook, r.number) for r in rows] == [("01_tiny", 1), ("01_tiny", 2), ("01_tiny", 3)]
    first, second, third = rows
    assert first.seed_values == [-0.01, -0.03, 0.02] and first.held_over_seeds == "2/3" and first.seeds_current
    assert first.paper["value"] == 0.03 and first.upstream["value"] == -0.05 and second.paper is None
    assert second.effect is None and second.seed_values == [] and second.held_over_seeds == "3/3"
    assert [s["untestable"] for s in third.seeds] == [True, True, False] and third.untestable


def test_table_golden_values(tmp_path):
    table = envelope.rows_table(envelope.load_rows(_root(tmp_path, published=PUBLISHED)))
    first = table.iloc[0]
    assert first["seeds_mean"] == pytest.approx(-0.02 / 3)
    assert first["seeds_std"] == pytest.approx(pd.Series([-0.01, -0.03, 0.02]).std())  # sample std, ddof=1
    assert (first["seeds_min"], first["seeds_max"], first["seeds_held"]) == (-0.03, 0.02, "2/3")
    assert (first["paper"], first["upstream"], first["paper_source"]) == (0.03, -0.05, "Table 2")
    assert table.iloc[2]["seeds_untestable"] == 2 and table.iloc[2]["stored_untestable"]
    assert pd.isna(table.iloc[1]["seeds_mean"])


def test_page_block_rows_and_sources(tmp_path):
    text = envelope.render_page_block(_root(tmp_path, published=PUBLISHED))
    assert "| 1 | the student matches the teacher | student - teacher | ≥ -0.020 | -0.010 PASS | " \
           "-0.007 ± 0.025 [-0.030, +0.020] | 2/3 | +0.030 | -0.050 |" in text
    assert "| 2 | the generators are deterministic | none: a yes/no check | – | PASS | – | 3/3 | – | – |" in text
    assert "-0.040 FAIL (untestable here)" in text
    assert "- claim 1, paper: 0.78 - 0.75 (two data sets); Table 2" in text
    assert "from an earlier version" not in text


def test_summary_counts_claims_and_agreement_with_published_effects(tmp_path):
    text = envelope.render_readme_block(_root(tmp_path, published=PUBLISHED))
    # stored 2/3; at every seed only claim 2; ours (-0.01, within the bound) agrees with the paper (0.03) and
    # not with the upstream (-0.05, outside it)
    assert "| 01_tiny | 2/3 | 1/3 | 1 of 2 |" in text
    assert "![The reproduction envelope: one row per claim](results/envelope.png)" in text


def test_seeds_of_another_version_are_flagged(tmp_path):
    root = _root(tmp_path, seeds_of_this_version=False)
    assert "1/3 (earlier version)" in envelope.render_readme_block(root)
    assert "from an earlier version of the notebook" in envelope.render_page_block(root)


def test_without_seeds_or_runs(tmp_path):
    root = _root(tmp_path)
    (root / "results" / "seeds" / "01_tiny.tsv").unlink()
    assert "| 01_tiny | 2/3 | – | – |" in envelope.render_readme_block(root)
    assert "no seeds yet (`make seeds`)" in envelope.render_page_block(root)
    (root / "results" / "quick" / "01_tiny.json").unlink()
    assert "No stored runs" in envelope.render_readme_block(root)


def test_write_envelope_writes_the_table_and_the_figure(tmp_path):
    root = _root(tmp_path, published=PUBLISHED)
    written = envelope.write_envelope(root)
    assert written == [root / envelope.ENVELOPE_TSV, root / envelope.ENVELOPE_FIGURE]
    assert len(pd.read_csv(written[0], sep="\t")) == 3
    assert written[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("value", "bound", "text"), [
    (-0.0123, -0.02, "-0.012"), (0.5, 0.25, "+0.500"), (282.4, 100.0, "282"), (7.3e-07, 1e-4, "7.3e-07"),
    (None, 0.0, "–"),
])
def test_format_effect(value, bound, text):
    assert envelope.format_effect(value, bound) == text
