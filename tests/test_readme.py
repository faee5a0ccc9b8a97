"""The generated blocks of README.md and of the site's pages (docs/*.md) come from results/ and are up to date."""

from __future__ import annotations

import json

import nbformat
import pytest

from kae_tools import readme
from kae_tools.notebooks.catalog import NOTEBOOK_GLOB, code_sha
from kae_tools.runner.spec import RunResult
from kae_tools.runner.tables import read_table, results_table, summarise, write_table
from kae_utils.core.paths import repo_root


def test_generated_blocks_are_up_to_date():
    """README.md and every page of docs/ hold exactly what `make readme` writes."""
    stale = [str(p.relative_to(repo_root())) for p in readme.update_generated(check=True)]
    assert not stale, f"generated blocks out of date in {stale}: run `make readme`"


def test_readme_is_a_front_door_and_the_blocks_live_where_they_should():
    root = repo_root()
    text = (root / "README.md").read_text()
    assert len(text.encode()) <= 16 * 1024, "README.md is the front door: reference sections belong in docs/"
    for page in ("reproduction", "differences", "zoo", "profiles", "batch", "development"):
        assert f"](docs/{page}.md)" in text, f"README.md does not link docs/{page}.md"
    assert text.index(readme.END) < text.index("<!-- envelope:summary:start") < text.index("<!-- envelope:summary:end")
    holders = {path.name: path.read_text() for path in readme.generated_files(root)}
    assert "<!-- envelope:table:start" in holders["reproduction.md"]
    assert "<!-- zoo:start" in holders["zoo.md"] and "<!-- sweep:kd_temperature:start" in holders["batch.md"]
    assert "<!-- tsv:results/precision_quick.tsv:start" in holders["profiles.md"]


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
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert len(cells) == 6 + 1  # the quick cell holds an escaped pipe
    assert cells[-2:] == ["not run yet", "not run yet"]  # no full-profile result, no seeds sweep
    assert readme.update_readme(root) is True
    text = (root / "README.md").read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old" not in text
    assert readme.update_readme(root) is False


def test_readme_index_is_the_table_between_the_markers(tmp_path):
    root = _fake_repo(tmp_path)
    assert readme.readme_index(root) == "old"
    readme.update_readme(root)
    assert readme.readme_index(root) == readme.render_index(root)


def _page(root, name, text):
    (root / "docs").mkdir(exist_ok=True)
    (root / "docs" / name).write_text(text)
    return root / "docs" / name


def test_blocks_in_a_page_are_rewritten_and_checked(tmp_path, capsys, monkeypatch):
    """A stale block in docs/ is found by --check (exit 1, the page named, nothing written), then rewritten."""
    root = _fake_repo(tmp_path)
    readme.update_readme(root)
    (root / "results").mkdir()
    (root / "results" / "bench.tsv").write_text("engine\tper_run_s\nlocal\t3.191\n")
    block = "<!-- tsv:results/bench.tsv:start (generated) -->\n{}\n<!-- tsv:results/bench.tsv:end -->"
    page = _page(root, "page.md", "# Page\n\n" + block.format("| engine | per_run_s |\n|---|---|\n| local | 3.191 |") + "\n")
    assert readme.update_generated(root, check=True) == []
    page.write_text(page.read_text().replace("3.191", "9.999"))  # edited by hand, or results/ changed
    stale = page.read_text()
    assert readme.update_generated(root, check=True) == [page] and page.read_text() == stale
    monkeypatch.setenv("KAE_ROOT", str(root))
    assert readme.main(["--check"]) == 1
    assert "out of date in docs/page.md" in capsys.readouterr().out
    assert readme.main([]) == 0 and "| local | 3.191 |" in page.read_text()
    assert readme.main(["--check"]) == 0


def test_links_in_a_page_lead_up_to_the_root(tmp_path):
    """The same blocks in docs/ link ``../notebooks/...`` and ``../results/...``: they work on GitHub and the site."""
    root = _fake_repo(tmp_path)
    folder = root / "results" / "sweeps" / "demo"
    folder.mkdir(parents=True)
    (folder / "sweep.yaml").write_text("name: demo\nplot: {title: acc}\n")
    (folder / "plot.png").write_bytes(b"\x89PNG fake")
    write_table(summarise(results_table(_seed_results(seeds=(0, 1)))), folder / "summary.tsv")
    page = _page(root, "page.md", f"{readme.START}\n{readme.END}\n<!-- sweep:demo:start x -->\n<!-- sweep:demo:end -->\n")
    readme.update_generated(root)
    text = page.read_text()
    assert "[07_thing](../notebooks/07_thing.ipynb)" in text and "![acc](../results/sweeps/demo/plot.png)" in text
    assert "[07_thing](notebooks/07_thing.ipynb)" in (root / "README.md").read_text()


def test_envelope_blocks_come_from_kae_tools_envelope(tmp_path, monkeypatch):
    from kae_tools import envelope

    root = _fake_repo(tmp_path)
    monkeypatch.setattr(envelope, "render_readme_block", lambda r: f"summary of {r.name}\n")
    monkeypatch.setattr(envelope, "render_page_block", lambda r: "| claim | effect |\n|---|---|\n| 1 | 0.5 |\n")
    (root / "README.md").write_text((root / "README.md").read_text()
                                    + "<!-- envelope:summary:start (generated) -->\nold\n<!-- envelope:summary:end -->\n")
    page = _page(root, "reproduction.md", "<!-- envelope:table:start (generated) -->\n<!-- envelope:table:end -->\n")
    assert readme.update_generated(root) == [root / "README.md", page]
    assert f"<!-- envelope:summary:start (generated) -->\nsummary of {root.name}\n<!-- envelope:summary:end -->" in (
        root / "README.md").read_text()
    assert page.read_text() == ("<!-- envelope:table:start (generated) -->\n| claim | effect |\n|---|---|\n| 1 | 0.5 |\n"
                                "<!-- envelope:table:end -->\n")


def test_a_block_without_its_end_marker_is_an_error(tmp_path):
    root = _fake_repo(tmp_path)
    _page(root, "page.md", "<!-- tsv:results/bench.tsv:start (generated) -->\nold\n<!-- tsv:results/bench.tvs:end -->\n")
    with pytest.raises(ValueError, match=r"docs/page.md: 1 of the start markers"):
        readme.update_generated(root, check=True)


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


# ------------------------------------------------------------------------------ claims over seeds


def _seed_results(stem="07_thing", seeds=(0, 1, 2, 3, 4), failed=(), flip=(2, 4), sha=None):
    """Records like those of `make seeds`: claim 1 always holds, claim 2 fails at the seeds in ``flip``."""

    records = []
    for seed in seeds:
        params = {"PROFILE": "quick", "SEED": seed}
        if seed in failed:
            records.append(RunResult(stem, "failed", 3.0, error="boom", run_id=f"SEED={seed}", parameters=params,
                                     code_sha=sha))
            continue
        items = [{"claim": "always", "holds": True}, {"claim": "flips", "holds": seed not in flip}]
        metrics = {"metrics": {"acc": 0.9 + seed / 100}, "claims": {"held": 1 + (seed not in flip), "total": 2,
                                                                    "items": items}}
        records.append(RunResult(stem, "ok", 10.0, 1 + (seed not in flip), 2, run_id=f"SEED={seed}",
                                 parameters=params, metrics=metrics, code_sha=sha))
    return records


def _write_seeds(root, records):

    return write_table(results_table(records), root / "results" / "seeds" / f"{records[0].notebook}.tsv")


@pytest.mark.parametrize(
    ("seeds", "text"), [([0, 1, 2, 3, 4], "0–4"), ([4, 0, 2, 3], "0, 2–4"), ([7], "7"), ([1, 1, 2], "1–2")]
)
def test_format_seeds(seeds, text):
    assert readme.format_seeds(seeds) == text


def test_seeds_column_counts_each_claim_over_the_seeds(tmp_path):
    root = _fake_repo(tmp_path)
    assert readme.seeds_cell(root / "results" / "seeds" / "07_thing.tsv") == "not run yet"
    sha = code_sha(root / "notebooks" / "07_thing.ipynb")
    _write_seeds(root, _seed_results(sha=sha))
    row = readme.render_index(root).splitlines()[2]
    assert row.endswith("| 5/5 · 3/5 (seeds 0–4) |")
    assert readme.update_readme(root) is True and "5/5 · 3/5 (seeds 0–4)" in (root / "README.md").read_text()

    _write_seeds(root, _seed_results(failed=(3,)))  # a failed run is said, and not counted
    assert readme.seeds_cell(root / "results" / "seeds" / "07_thing.tsv") == "4/4 · 2/4 (seeds 0–4); 1 of 5 runs failed"
    _write_seeds(root, _seed_results(seeds=(0, 1), failed=(0, 1)))
    assert readme.seeds_cell(root / "results" / "seeds" / "07_thing.tsv") == (
        "no claims recorded (seeds 0–1); 2 of 2 runs failed")
    # the notebook was edited after its seeds sweep: said, not hidden
    _write_seeds(root, _seed_results(sha="0" * 16))
    assert readme.render_index(root).splitlines()[2].endswith(
        "| 5/5 · 3/5 (seeds 0–4); from an earlier version of the notebook: rerun `make seeds` |")


def test_collect_seeds_writes_one_file_per_notebook(tmp_path):

    root = _fake_repo(tmp_path)
    other = root / "results" / "seeds" / "05_other.tsv"
    other.parent.mkdir(parents=True)
    other.write_text("kept\n")
    records = _seed_results() + _seed_results(stem="08_more", seeds=(0, 1))
    for r in records[5:]:
        r.metrics["metrics"] = {"loss": 1.0}
    write_table(results_table(records), root / "runs" / "seeds" / "results.tsv")
    written = readme.collect_seeds("runs/seeds", root=root)
    assert [p.name for p in written] == ["07_thing.tsv", "08_more.tsv"]
    thing = read_table(root / "results" / "seeds" / "07_thing.tsv")
    assert len(thing) == 5 and "metrics.acc" in thing and "metrics.loss" not in thing  # no other notebook's columns
    assert list(thing.columns[:4]) == ["notebook", "run_id", "PROFILE", "SEED"]
    assert other.read_text() == "kept\n"  # notebooks outside this sweep keep their results


    lr_only = [RunResult("07_thing", "ok", 1.0, run_id="LR=1", parameters={"LR": 1})]
    write_table(results_table(lr_only), root / "runs" / "lr" / "results.tsv")
    with pytest.raises(ValueError, match="not a sweep over SEED"):
        readme.collect_seeds(root / "runs" / "lr", root=root)


# ---------------------------------------------------------------------------------- sweep blocks


def test_sweep_block_from_results_and_collect_sweep(tmp_path):
    import yaml


    root = _fake_repo(tmp_path)
    readme_text = (root / "README.md").read_text()
    block = "<!-- sweep:demo:start (generated; do not edit) -->\nstale\n<!-- sweep:demo:end -->"
    (root / "README.md").write_text(readme_text + "\n" + block + "\nafter\n")
    readme.update_readme(root)
    assert "(not run yet: see the make targets for `demo`)" in (root / "README.md").read_text()

    out = root / "runs" / "sweeps" / "demo"
    records = _seed_results(seeds=(0, 1))
    for r, t in zip(records, (1.0, 1.0), strict=True):
        r.parameters["T"] = t
    table = results_table(records)
    write_table(table, out / "results.tsv")
    write_table(summarise(table), out / "summary.tsv")
    (out / "sweep.yaml").write_text(yaml.safe_dump({"name": "demo", "summary": {"over": "SEED", "metrics": ["metrics.acc"]},
                                                    "plot": {"x": "T", "title": "acc vs T"}}))
    (out / "plot.png").write_bytes(b"\x89PNG fake")
    copied = readme.collect_sweep("runs/sweeps/demo", root=root)
    assert sorted(p.name for p in copied) == ["plot.png", "results.tsv", "summary.tsv", "sweep.yaml"]
    assert (root / "results" / "sweeps" / "demo" / "plot.png").read_bytes() == b"\x89PNG fake"

    assert readme.update_readme(root) is True
    text = (root / "README.md").read_text()
    start = text.index("<!-- sweep:demo:start")
    generated = text[start:text.index("<!-- sweep:demo:end -->")].splitlines()
    assert generated[1] == "![acc vs T](results/sweeps/demo/plot.png)"
    assert generated[3] == "| notebook | T | runs (SEED) | claims held (per claim) | acc (mean ± std) |"
    assert generated[5] == "| 07_thing | 1.0 | 2/2 ok (0,1) | 2/2 · 2/2 | 0.905 ± 0.007 |"
    assert "stale" not in text and text.endswith("after\n")
    assert readme.update_readme(root) is False


def test_collecting_from_a_folder_without_a_sweep_is_an_error(tmp_path, capsys, monkeypatch):
    root = _fake_repo(tmp_path)
    monkeypatch.setenv("KAE_ROOT", str(root))
    assert readme.main(["--collect-seeds", str(root / "runs" / "nothing")]) == 2
    assert "error: nothing collected" in capsys.readouterr().err
    assert not (root / "results" / "seeds").exists()


def test_tsv_block_is_rendered_from_its_file(tmp_path):
    root = _fake_repo(tmp_path)
    block = "<!-- tsv:results/bench.tsv:start (generated) -->\nold\n<!-- tsv:results/bench.tsv:end -->\n"
    (root / "README.md").write_text((root / "README.md").read_text() + block)
    readme.update_readme(root)
    assert "(not measured yet)" in (root / "README.md").read_text()
    (root / "results").mkdir(exist_ok=True)
    (root / "results" / "bench.tsv").write_text("engine\tper_run_s\nlocal\t3.191\na|b\t1\n")
    assert readme.update_readme(root) is True
    text = (root / "README.md").read_text()
    assert "| engine | per_run_s |\n|---|---|\n| local | 3.191 |\n| a\\|b | 1 |\n<!-- tsv:results/bench.tsv:end -->" in text
    assert "old" not in text


def test_zoo_block_is_generated_from_the_registry_and_manifest(tmp_path):
    root = _fake_repo(tmp_path)
    (root / "README.md").write_text(f"{readme.START}\n{readme.END}\n<!-- zoo:start x -->\nold\n<!-- zoo:end -->\n")
    readme.update_readme(root)
    text = (root / "README.md").read_text()
    assert "old" not in text and "| name | profile | task |" in text
    assert "| scenes64-segmentation | quick |" in text and "not built" in text  # no manifest in the fake repo
