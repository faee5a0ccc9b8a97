"""Tests of parameter sweeps (kae_tools.runner.sweep and its tables, ``kae sweep`` and ``kae run --sweep``).

Most use a fake engine (no kernel): grid expansion, run ids, parameter checks, records, resume, tables
and summaries. The test marked ``slow`` runs a sweep of a tiny notebook end to end through the CLI.
"""

from __future__ import annotations

import json
import math
from concurrent.futures import Future
from pathlib import Path

import nbformat
import pytest
import yaml

from kae_tools.notebooks.catalog import code_sha, find_notebooks
from kae_tools.runner import cli, sweep, tables
from kae_tools.runner.spec import RunResult, RunSpec
from kae_tools.runner.sweep import (
    SweepError,
    check_parameters,
    expand_runs,
    load_sweep,
    parse_sweep,
    plan_runs,
    run_id,
    run_sweep,
)
from kae_tools.runner.tables import read_table, results_table, summarise
from tests.tiny_notebooks import FAILING, SWEEPER, make_notebook, write_sweep

GRID = "grid:\n  SEED: [0, 1]\n  LR: [0.1, 0.5]\n"


# -------------------------------------------------------------------------------- grid and run ids


def test_expand_runs_grid_product_then_explicit_runs():
    runs = expand_runs({"A": [1, 2], "B": ["x", "y"]}, [{"A": 9}])
    assert runs == [
        {"A": 1, "B": "x"}, {"A": 1, "B": "y"}, {"A": 2, "B": "x"}, {"A": 2, "B": "y"}, {"A": 9},
    ]
    assert expand_runs(None, []) == [{}]
    assert expand_runs({}, [{"A": 1}]) == [{"A": 1}]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"TEMPERATURE": 4.0, "SEED": 0}, "SEED=0,TEMPERATURE=4.0"),
        ({"SEED": 3}, "SEED=3"),
        ({"FLAG": True, "X": None}, "FLAG=True,X=None"),
        ({"NAME": "a/b c"}, "NAME=a%2Fb%20c"),
        ({"NAME": "x=1,y"}, "NAME=x%3D1%2Cy"),
        ({"LR": 1e-3}, "LR=0.001"),
        ({"WIDTHS": [16, 32]}, "WIDTHS=%5B16%3B32%5D"),
        ({}, "default"),
    ],
)
def test_run_id_golden(params, expected):
    assert run_id(params) == expected


# ------------------------------------------------------------------------------------- sweep files


def test_parse_sweep_reads_every_key(tmp_path):
    text = (
        "name: demo\nnotebooks: [01, 02_beta]\nprofile: full\nbase:\n  ALPHA: 0.5\n" + GRID
        + "runs:\n  - {SEED: 7, LR: 0.2}\nsummary:\n  over: SEED\n  metrics: [metrics.score]\n"
        + "plot:\n  x: LR\n  y: metrics.score\n  xscale: log\n"
    )
    s = load_sweep(write_sweep(tmp_path / "s.yaml", text))
    assert s.name == "demo" and s.profile == "full" and s.base == {"ALPHA": 0.5}
    assert s.notebooks == ("01", "02_beta")  # YAML's integer 1 gets its two digits back
    assert len(s.runs) == 5 and s.runs[-1] == {"SEED": 7, "LR": 0.2}
    assert s.varied == ["SEED", "LR"]
    assert (s.over, s.metrics) == ("SEED", ("metrics.score",))
    assert s.plot == {"x": "LR", "y": ["metrics.score"], "xscale": "log", "title": None}
    assert load_sweep(write_sweep(tmp_path / "plain.yaml", "grid:\n  SEED: [0]\n")).name == "plain"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"gird": {"SEED": [0]}}, "unknown key 'gird' in the sweep file; allowed keys: name, notebook"),
        ({"base": {"PROFILE": "full"}}, "PROFILE is set with the sweep's `profile:` key"),
        ({"grid": {"SEED": 0}}, "SEED needs a non-empty list of values"),
        ({"grid": {"SEED": []}}, "SEED needs a non-empty list of values"),
        ({"grid": {"bad-name": [1]}}, "parameter names must be Python identifiers"),
        ({"grid": {"SEED": [{"a": 1}]}}, "SEED must be a number, string, bool or null"),
        ({"base": {"SEED": 0}, "grid": {"SEED": [1]}}, "SEED is both fixed (base) and swept"),
        ({"grid": {"SEED": [0, 1]}, "runs": [{"SEED": 1}]}, "the run 'SEED=1' is listed twice"),
        ({"runs": {"SEED": 1}}, "runs must be a list of mappings"),
        ({"profile": "medium"}, "profile must be one of 'quick', 'full'; got 'medium'"),
        ({"name": "../up"}, "the sweep's name must match"),
        ({"notebook": "01", "notebooks": ["02"]}, "either `notebook:` or `notebooks:`"),
        ({"grid": {"SEED": [0]}, "plot": {"x": "LR", "y": "metrics.a"}}, "plot.x must be one of the swept parameters (SEED)"),
        ({"grid": {"SEED": [0]}, "plot": {"x": "SEED"}}, "plot.y must name one or more"),
        ({"grid": {"SEED": [0]}, "plot": {"x": "SEED", "y": "m", "xscale": "cubic"}}, "plot.xscale must be"),
        ({"summary": {"over": "SEED", "by": "LR"}}, "unknown key 'by' in summary; allowed keys: over, metrics"),
        ([1, 2], "a sweep file holds a mapping"),
    ],
)
def test_parse_sweep_errors_say_what_is_allowed(data, message):
    with pytest.raises(SweepError) as info:
        parse_sweep(data, "s")
    assert message in str(info.value)


def test_load_sweep_names_the_file_and_refuses_bad_yaml(tmp_path):
    path = write_sweep(tmp_path / "broken.yaml", "grid: [unclosed\n")
    with pytest.raises(SweepError, match="broken.yaml is not valid YAML"):
        load_sweep(path)
    path = write_sweep(tmp_path / "typo.yaml", "grdi: {}\n")
    with pytest.raises(SweepError, match=r"typo\.yaml: unknown key 'grdi'"):
        load_sweep(path)


# ------------------------------------------------------------------------------- parameter checks


def test_check_parameters_names_the_allowed_ones_and_types_values(tmp_path):
    nb = make_notebook(tmp_path, "01_tiny", SWEEPER)
    assert check_parameters(nb, {"SEED": 2, "LR": 1}) == {"SEED": 2, "LR": 1.0}
    assert type(check_parameters(nb, {"LR": 1})["LR"]) is float  # an int for a float parameter
    with pytest.raises(SweepError) as info:
        check_parameters(nb, {"SEDE": 1})
    assert str(info.value) == "unknown parameter 'SEDE' for 01_tiny; its parameters are: PROFILE, SEED, LR, MARKER"
    with pytest.raises(SweepError, match="parameter SEED of 01_tiny is annotated int; got 'one'"):
        check_parameters(nb, {"SEED": "one"})
    with pytest.raises(SweepError, match="annotated int; got True"):
        check_parameters(nb, {"SEED": True})


def test_a_typo_fails_before_anything_starts(tmp_path, capsys):
    nb = make_notebook(tmp_path / "nbs", "01_tiny", SWEEPER)
    spec = write_sweep(tmp_path / "s.yaml", "grid:\n  SEED: [0, 1]\n  LRR: [0.1]\n")
    out = tmp_path / "out"
    assert cli.main([str(nb), "--sweep", str(spec), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "unknown parameter 'LRR' for 01_tiny" in err and "PROFILE, SEED, LR, MARKER" in err
    assert not out.exists()
    # -p values are checked like the sweep's own
    spec = write_sweep(tmp_path / "ok.yaml", GRID)
    assert cli.main([str(nb), "--sweep", str(spec), "--out", str(out), "-p", "MARKR", "x"]) == 2
    assert "unknown parameter 'MARKR'" in capsys.readouterr().err
    assert not out.exists()
    # `kae sweep SWEEP [NOTEBOOK ...]` is `kae run --sweep SWEEP`: the same check, the same exit code
    spec = write_sweep(tmp_path / "typo.yaml", "grid:\n  SEED: [0, 1]\n  LRR: [0.1]\n")
    assert cli.sweep_main([str(spec), str(nb), "--out", str(out)]) == 2
    assert "unknown parameter 'LRR' for 01_tiny" in capsys.readouterr().err
    assert not out.exists()
    # notebooks named after the options (what `kae seeds 04 09` passes on): parsed, then the same check
    assert cli.sweep_main([str(spec), "--out", str(out), "--resume", str(nb)]) == 2
    assert "unknown parameter 'LRR' for 01_tiny" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--resume"], "--resume needs --sweep"),
        (["--in-place", "--sweep", "s.yaml"], "--in-place and --sweep exclude each other"),
        (["--dask", "local", "--slurm"], "either --dask or --slurm"),
        (["--in-place", "--dask", "local"], "--in-place runs on this machine only"),
        (["--threads", "0"], "--threads must be at least 1"),
    ],
)
def test_contradicting_options_are_usage_errors(extra, message, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(extra)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_plan_runs_folders_and_parameters(tmp_path):
    nb = make_notebook(tmp_path / "nbs", "01_tiny", SWEEPER)
    s = parse_sweep({"base": {"MARKER": "m"}, "grid": {"SEED": [0, 1], "LR": [1]}}, "s")
    specs = plan_runs(s, [nb], tmp_path / "out", profile="full", extra={"LR": 0.5}, threads=2)
    assert [sp.run_id for sp in specs] == ["LR=1,SEED=0", "LR=1,SEED=1"]
    assert specs[0].run_dir == (tmp_path / "out" / "01_tiny" / "LR=1,SEED=0").resolve()
    # PROFILE, then base, then -p, then the run's own (typed: LR is annotated float)
    assert specs[1].parameters == {"PROFILE": "full", "MARKER": "m", "LR": 1.0, "SEED": 1}
    assert specs[0].threads == 2 and specs[0].runs_root == (tmp_path / "out").resolve()


# --------------------------------------------------------------------------- records and resume


def fake_metrics(seed: int, lr: float) -> dict:
    items = [{"claim": "small rate", "holds": lr < 0.3}, {"claim": "even seed", "holds": seed % 2 == 0}]
    return {
        "notebook": "01_tiny",
        "metrics": {"score": 1.0 / (1 + seed) + lr, "nested": {"ten_lr": 10 * lr}, "curve": [seed, lr],
                    "headline": f"lr {lr}", "flag": True},
        "claims": {"held": sum(i["holds"] for i in items), "total": 2, "items": items},
    }


class FakeEngine:
    """Returns made-up records at once; ``fail``: run ids that fail; ``lose``: whose task raises."""

    name = "fake"

    def __init__(self, fail=(), lose=()):
        self.fail, self.lose, self.submitted = set(fail), set(lose), []

    def submit(self, spec: RunSpec) -> Future:
        self.submitted.append(spec.run_id)
        future: Future = Future()
        if spec.run_id in self.lose:
            future.set_exception(RuntimeError("the worker died"))
            return future
        seed, lr = spec.parameters["SEED"], spec.parameters["LR"]
        Path(spec.run_dir).mkdir(parents=True, exist_ok=True)
        ok = spec.run_id not in self.fail
        metrics = fake_metrics(seed, lr) if ok else None
        claims = (metrics["claims"]["held"], 2) if ok else (None, None)
        future.set_result(RunResult(
            Path(spec.path).stem, "ok" if ok else "failed", 1.0 + seed, *claims,
            error=None if ok else "ValueError: boom\n(in cell In [3])", run_id=spec.run_id,
            parameters=dict(spec.parameters), metrics=metrics, host="fake-host", code_sha=spec.code_sha,
        ))
        return future

    def cancel(self):
        pass

    def close(self):
        pass


@pytest.fixture
def planned(tmp_path):
    nb = make_notebook(tmp_path / "nbs", "01_tiny", SWEEPER)
    s = parse_sweep(yaml.safe_load(GRID + "summary:\n  metrics: [metrics.score]\nplot:\n  x: LR\n  y: metrics.score\n"),
                    "demo")
    out = (tmp_path / "out").resolve()
    return s, plan_runs(s, [nb], out), out


def quiet(line: str) -> None:
    pass


def test_sweep_writes_records_table_summary_plot_and_resolved_grid(planned):
    s, specs, out = planned
    engine = FakeEngine()
    results = run_sweep(s, specs, out, engine=engine, log=quiet)
    assert [r.run_id for r in results] == ["LR=0.1,SEED=0", "LR=0.5,SEED=0", "LR=0.1,SEED=1", "LR=0.5,SEED=1"]
    assert all(r.ok for r in results)
    for spec in specs:
        assert RunResult.from_dict(json.loads((spec.run_dir / "record.json").read_text())) == \
            next(r for r in results if r.run_id == spec.run_id)
    resolved = yaml.safe_load((out / "sweep.yaml").read_text())
    assert resolved["name"] == "demo" and len(resolved["runs"]) == 4
    assert resolved["runs"][0] == {"notebook": "01_tiny", "run_id": "LR=0.1,SEED=0", "folder": "01_tiny/LR=0.1,SEED=0",
                                   "parameters": {"PROFILE": "quick", "SEED": 0, "LR": 0.1}}
    assert (out / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.rglob("*.tmp"))

    table = read_table(out / "results.tsv")
    assert list(table.columns[:9]) == ["notebook", "run_id", "PROFILE", "SEED", "LR", "status", "wall_s", "claims",
                                       "claim.1"]
    assert list(table.columns[9:17]) == ["claim.2", "untestable.1", "untestable.2", "effect.1", "effect.2", "host",
                                         "code_sha", "error"]
    assert set(table["code_sha"]) == {code_sha(specs[0].path)}
    assert {"metrics.score", "metrics.nested.ten_lr", "metrics.curve", "metrics.headline"} <= set(table.columns)
    row = table.iloc[3]
    assert (row["run_id"], row["SEED"], row["LR"], row["claims"]) == ("LR=0.5,SEED=1", 1, 0.5, "0/2")
    assert (row["claim.1"], row["claim.2"], row["metrics.curve"]) == ("FAIL", "FAIL", "[1,0.5]")

    summary = read_table(out / "summary.tsv")
    assert list(summary["LR"]) == [0.1, 0.5] and list(summary["SEED"]) == ["0,1", "0,1"]
    first = summary.iloc[0]
    assert (first["runs"], first["ok"], first["claim.1"], first["claim.2"]) == (2, 2, "2/2", "1/2")
    scores = [1.0 + 0.1, 0.5 + 0.1]
    assert first["metrics.score:mean"] == pytest.approx(sum(scores) / 2)
    assert first["metrics.score:std"] == pytest.approx(math.dist(scores, [sum(scores) / 2] * 2))  # ddof=1 of two
    assert "metrics.flag:mean" not in summary.columns  # booleans are not averaged


def test_resume_skips_ok_runs_and_reruns_failed_killed_and_changed_ones(planned):
    s, specs, out = planned
    first = FakeEngine(fail={"LR=0.5,SEED=1"}, lose={"LR=0.1,SEED=1"})
    results = run_sweep(s, specs, out, engine=first, log=quiet)
    assert [r.status for r in results] == ["ok", "ok", "failed", "failed"]
    assert "the run's task was lost: RuntimeError: the worker died" in results[2].error
    assert results[2].run_id == "LR=0.1,SEED=1" and results[2].parameters == specs[2].parameters

    # a run killed half-way: its folder has files but no record
    (specs[1].run_dir / "record.json").unlink()
    (specs[1].run_dir / "metrics.json").write_text('{"half": ')
    lines = []
    second = FakeEngine()
    results = run_sweep(s, specs, out, engine=second, resume=True, log=lines.append)
    assert second.submitted == ["LR=0.5,SEED=0", "LR=0.1,SEED=1", "LR=0.5,SEED=1"]
    assert "[skip]    01_tiny LR=0.1,SEED=0 (ok in an earlier run)" in lines
    assert all(r.ok for r in results)

    third = FakeEngine()
    run_sweep(s, specs, out, engine=third, resume=True, log=quiet)
    assert third.submitted == []
    assert len(read_table(out / "results.tsv")) == 4  # skipped runs are in the table, from their records

    # other parameters for the same folder: run again
    changed = plan_runs(s, [specs[0].path], out, extra={"MARKER": "x"})
    fourth = FakeEngine()
    run_sweep(s, changed, out, engine=fourth, resume=True, log=quiet)
    assert len(fourth.submitted) == 4

    # without --resume everything runs
    fifth = FakeEngine()
    run_sweep(s, specs, out, engine=fifth, log=quiet)
    assert len(fifth.submitted) == 4

    # an edited notebook is a different run; fresh outputs alone are not an edit
    nb = nbformat.read(specs[0].path, as_version=4)
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", text="fresh output\n")]
    nbformat.write(nb, specs[0].path)
    sixth = FakeEngine()
    run_sweep(s, plan_runs(s, [specs[0].path], out), out, engine=sixth, resume=True, log=quiet)
    assert sixth.submitted == []
    nb.cells[2].source += "\nprint('edited')\n"
    nbformat.write(nb, specs[0].path)
    seventh = FakeEngine()
    run_sweep(s, plan_runs(s, [specs[0].path], out), out, engine=seventh, resume=True, log=quiet)
    assert len(seventh.submitted) == 4


def test_results_table_keeps_failed_runs_and_summary_counts_only_ok(tmp_path):
    ok = RunResult("nb", "ok", 2.0, 2, 2, run_id="SEED=0", parameters={"PROFILE": "quick", "SEED": 0},
                   metrics=fake_metrics(0, 0.1), host="h")
    bad = RunResult("nb", "timeout", 9.0, error="timed out after 9 s\nmore", run_id="SEED=1",
                    parameters={"PROFILE": "quick", "SEED": 1}, host="h")
    table = results_table([ok, bad])
    assert list(table["status"]) == ["ok", "timeout"] and table["error"].iloc[1] == "timed out after 9 s"
    summary = summarise(table)
    row = summary.iloc[0]
    assert (row["runs"], row["ok"], row["SEED"], row["claim.1"]) == (2, 1, "0,1", "1/1")
    assert row["wall_s:mean"] == pytest.approx(5.5)
    assert row["metrics.score:mean"] == pytest.approx(1.1) and row["metrics.score:std"] == 0.0
    lines = tables.summary_lines(summary, "SEED", ["metrics.score"])
    assert lines == ["nb default: 1/2 ok (SEED 0,1); claims held per claim 1/1 · 1/1; score 1.100 ± 0.000"]
    md = tables.summary_markdown(summary, "SEED", ["metrics.score"])
    assert md.splitlines()[0] == "| notebook | runs (SEED) | claims held (per claim) | score (mean ± std) |"
    assert md.splitlines()[2] == "| nb | 1/2 ok (0,1) | 1/1 · 1/1 | 1.100 ± 0.000 |"


def test_format_mean_std():
    assert tables.format_mean_std(0.98123, 0.0041) == "0.981 ± 0.004"
    assert tables.format_mean_std(float("nan"), 0.0) == "-"
    assert tables.format_mean_std(12.5, 1.25, digits=1) == "12.5 ± 1.2"


def test_flatten():
    flat = tables.flatten({"a": {"b": 1, "c": [1, 2]}, "d": None, "e": "x"}, "metrics")
    assert flat == {"metrics.a.b": 1, "metrics.a.c": "[1,2]", "metrics.d": None, "metrics.e": "x"}


def test_record_roundtrip_and_unreadable_record(tmp_path):
    result = RunResult("nb", "ok", 1.5, 1, 2, None, tmp_path / "nb.ipynb", "SEED=0", {"SEED": 0},
                       {"metrics": {"a": 1}}, "host", "0123abcd0123abcd")
    sweep.save_record(result, tmp_path)
    assert sweep.load_record(tmp_path) == result
    (tmp_path / "record.json").write_text("{not json")
    assert sweep.load_record(tmp_path) is None
    (tmp_path / "record.json").write_text('{"status": "ok"}')
    assert sweep.load_record(tmp_path) is None
    assert sweep.load_record(tmp_path / "missing") is None


# --------------------------------------------------------------------------------------- kernels


@pytest.mark.slow
def test_sweep_cli_end_to_end_with_a_failure_then_resume(tmp_path, capsys):
    nbs = tmp_path / "nbs"
    tiny = make_notebook(nbs, "01_tiny", SWEEPER)
    bad = make_notebook(nbs, "02_bad", FAILING, parameters='PROFILE: str = "quick"  # p\nSEED: int = 0  # s\n')
    marker = tmp_path / "marker"
    marker.write_text("")
    spec = write_sweep(tmp_path / "demo.yaml", f"notebooks: [{tiny}]\nbase:\n  MARKER: {marker}\ngrid:\n  SEED: [0, 1]\n")
    out = tmp_path / "out"

    assert cli.main(["--sweep", str(spec), "--out", str(out), "--jobs", "2", "--timeout", "120"]) == 1
    stdout = capsys.readouterr().out
    assert "[start]   01_tiny SEED=0" in stdout and "[failed ] 01_tiny SEED=1" in stdout
    assert "01_tiny SEED=1 (failed):" in stdout and "the marker file exists at seed 1" in stdout
    run_dir = out / "01_tiny" / "SEED=0"
    assert {p.name for p in run_dir.iterdir()} == {"01_tiny.ipynb", "metrics.json", "run.log", "record.json"}
    table = read_table(out / "results.tsv")
    assert list(table["status"]) == ["ok", "failed"] and list(table["claims"]) == ["2/2", "-"]
    assert table["metrics.score"].iloc[0] == pytest.approx(1.1)
    first_record = (run_dir / "record.json").read_text()

    marker.unlink()
    assert cli.main(["--sweep", str(spec), "--out", str(out), "--resume", "--timeout", "120"]) == 0
    stdout = capsys.readouterr().out
    assert "[skip]    01_tiny SEED=0 (ok in an earlier run)" in stdout and "[ok     ] 01_tiny SEED=1" in stdout
    assert (run_dir / "record.json").read_text() == first_record  # not run again
    table = read_table(out / "results.tsv")
    assert list(table["status"]) == ["ok", "ok"] and list(table["claims"]) == ["2/2", "1/2"]
    summary = read_table(out / "summary.tsv")
    assert (summary["claim.1"].iloc[0], summary["claim.2"].iloc[0]) == ("2/2", "1/2")

    # a notebook on the command line replaces the file's, and is checked against the file's parameters
    assert cli.main([str(bad), "--sweep", str(spec), "--out", str(out), "--timeout", "120"]) == 2  # MARKER unknown
    assert "unknown parameter 'MARKER' for 02_bad" in capsys.readouterr().err


def test_a_typo_in_summary_or_plot_metrics_is_reported():
    s = parse_sweep({"grid": {"SEED": [0]}, "summary": {"metrics": ["metrics.scor"]},
                     "plot": {"x": "SEED", "y": ["metrics.score", "metrics.headline"]}}, "s")
    result = RunResult("nb", "ok", 1.0, 2, 2, run_id="SEED=0", parameters={"SEED": 0}, metrics=fake_metrics(0, 0.1))
    assert sweep.missing_metrics(s, results_table([result])) == [
        "note: metrics.scor is not a numeric column of results.tsv; did you mean metrics.score?",
        "note: metrics.headline is not a numeric column of results.tsv",
    ]


SHIPPED = sorted((Path(__file__).resolve().parent.parent / "sweeps").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_sweeps_fit_the_notebooks(path, tmp_path):
    """Every shipped sweep names real parameters, and the metrics it summarises are in its notebooks'
    stored quick-profile results (results/quick/<notebook>.json), so its table and plot are not empty."""
    from kae_utils.core.paths import repo_root

    s = load_sweep(path)
    notebooks = find_notebooks(s.notebooks)
    specs = plan_runs(s, notebooks, tmp_path)  # raises SweepError for an unknown parameter
    assert len(specs) == len(notebooks) * len(s.runs)
    wanted = [*s.metrics, *((s.plot or {}).get("y") or [])]
    for nb in notebooks:
        stored = repo_root() / "results" / "quick" / f"{nb.stem}.json"
        if not stored.exists():
            continue
        flat = tables.flatten(json.loads(stored.read_text())["metrics"], "metrics")
        numeric = {k for k, v in flat.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        assert not [m for m in wanted if m not in numeric], f"{path.name}: not metrics of {nb.stem}"


def test_the_seeds_sweep_covers_every_notebook_at_five_seeds():
    s = load_sweep(Path(__file__).resolve().parent.parent / "sweeps" / "seeds.yaml")
    assert s.notebooks == () and s.profile == "quick"  # no notebooks named: all of them
    assert [r["SEED"] for r in s.runs] == [0, 1, 2, 3, 4] and s.base == {}
