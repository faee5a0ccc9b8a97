"""Tests of the papermill batch runner (kae_tools.runner, ``kae run``) on tiny notebooks built here.

The tests marked ``slow`` start Jupyter kernels (a few seconds each); they run by default.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from kae_tools.notebooks.catalog import UnknownNotebookError, find_notebooks
from kae_tools.runner import cli
from kae_tools.runner.console import format_summary, write_timings
from kae_tools.runner.execute import threads_per_job
from kae_tools.runner.schedule import run_notebooks
from kae_tools.runner.spec import InPlaceParametersError, RunResult, parse_parameter
from tests.tiny_notebooks import alive, wait_dead

PARAMETERS = 'PROFILE = "quick"\nSEED = 0\nLR = 0.1\nNAME = "default"\n'

GOOD = """\
import json, os
from pathlib import Path
run_dir = Path(os.environ["KAE_RUNS_DIR"]) / "{stem}"
run_dir.mkdir(parents=True, exist_ok=True)
seen = {{
    "PROFILE": PROFILE, "SEED": SEED, "LR": LR, "NAME": NAME,
    "types": [type(v).__name__ for v in (SEED, LR, NAME)],
    "cwd": os.getcwd(),
    "env": {{k: os.environ.get(k) for k in ("KAE_PROGRESS", "PYTHONUNBUFFERED", "CUDA_VISIBLE_DEVICES", "KAE_CACHE_DIR", "OMP_NUM_THREADS")}},
}}
items = [
    {{"claim": "a", "holds": True, "details": ""}},
    {{"claim": "b", "holds": True, "details": ""}},
    {{"claim": "c", "holds": False, "details": "honest FAIL"}},
]
metrics = {{"notebook": "{stem}", "profile": PROFILE, "metrics": seen,
           "claims": {{"held": 2, "total": 3, "items": items}}}}
(run_dir / "metrics.json").write_text(json.dumps(metrics))
print("claims 2/3")
"""

BAD = 'raise ValueError("boom 42")\n'

SLEEPER = """\
import os, time
from pathlib import Path
run_dir = Path(os.environ["KAE_RUNS_DIR"]) / "{stem}"
run_dir.mkdir(parents=True, exist_ok=True)
(run_dir / "kernel.pid").write_text(str(os.getpid()))
time.sleep(120)
"""


def make_notebook(folder: Path, stem: str, body: str) -> Path:
    """A notebook like the tutorial ones: title, ``parameters``-tagged cell, then ``body``."""
    nb = new_notebook()
    nb.metadata.kernelspec = {"display_name": "Python 3", "language": "python", "name": "python3"}
    params = new_code_cell(PARAMETERS)
    params.metadata.tags = ["parameters"]
    work = new_code_cell(body.format(stem=stem))
    work.metadata.tags = ["nbval-ignore-output"]
    nb.cells = [new_markdown_cell(f"# {stem}"), params, work]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.ipynb"
    nbformat.write(nb, path)
    return path


def read_metrics(out: Path, stem: str) -> dict:
    return json.loads((out / stem / "metrics.json").read_text())


# --------------------------------------------------------------------------------------------------
# no kernel


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", 1),
        ("-3", -3),
        ("1_000", 1000),
        ("1.5", 1.5),
        ("1e-3", 0.001),
        ("True", True),
        ("False", False),
        ("None", None),
        ("true", "true"),
        ("none", "none"),
        ("quick", "quick"),
        ("", ""),
        ("1.2.3", "1.2.3"),
    ],
)
def test_parse_parameter_golden(text: str, expected: object) -> None:
    value = parse_parameter(text)
    assert value == expected
    assert type(value) is type(expected)


def test_parse_parameter_special_floats() -> None:
    assert math.isinf(parse_parameter("inf"))
    assert math.isnan(parse_parameter("nan"))


@pytest.fixture
def fake_repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "notebooks").mkdir(parents=True)
    (root / "pyproject.toml").write_text("")
    for stem in ("02_beta", "01_alpha"):
        make_notebook(root / "notebooks", stem, "pass")
    make_notebook(root / "notebooks", "scratch", "pass")  # not NN_*: never picked up by default
    return root


def test_find_notebooks(fake_repo: Path, monkeypatch) -> None:
    nbs = fake_repo / "notebooks"
    alpha, beta = (nbs / "01_alpha.ipynb").resolve(), (nbs / "02_beta.ipynb").resolve()
    assert find_notebooks([], root=fake_repo) == [alpha, beta]
    assert find_notebooks(None, root=fake_repo) == [alpha, beta]
    assert find_notebooks(["02_beta", "01_alpha.ipynb"], root=fake_repo) == [beta, alpha]
    assert find_notebooks(["01"], root=fake_repo) == [alpha]
    assert find_notebooks(["notebooks/02_beta.ipynb"], root=fake_repo) == [beta]
    assert find_notebooks([str(alpha), "01_alpha"], root=fake_repo) == [alpha]  # duplicates removed
    monkeypatch.chdir(nbs)
    assert find_notebooks(["scratch.ipynb"], root=fake_repo) == [(nbs / "scratch.ipynb").resolve()]


def test_find_notebooks_unknown_lists_available(fake_repo: Path) -> None:
    with pytest.raises(UnknownNotebookError) as info:
        find_notebooks(["03_gamma"], root=fake_repo)
    message = str(info.value)
    assert "03_gamma" in message
    assert "01_alpha" in message and "02_beta" in message
    assert "scratch" not in message


def test_main_unknown_notebook_exit_2(fake_repo: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("KAE_ROOT", str(fake_repo))
    assert cli.main(["nope"]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "01_alpha" in err and "02_beta" in err


def test_main_invalid_profile(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["--profile", "medium"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "quick" in err and "full" in err


def test_in_place_with_parameters_refused(tmp_path: Path, capsys) -> None:
    path = make_notebook(tmp_path / "nbs", "01_good", GOOD)
    before = path.read_bytes()
    assert cli.main([str(path), "--in-place", "-p", "SEED", "1", "--out", str(tmp_path / "o")]) == 2
    assert "quick profile only" in capsys.readouterr().err
    assert cli.main([str(path), "--in-place", "--profile", "full", "--out", str(tmp_path / "o")]) == 2
    with pytest.raises(InPlaceParametersError):
        run_notebooks([path], parameters={"SEED": 1}, in_place=True, out=tmp_path / "o")
    with pytest.raises(InPlaceParametersError):
        run_notebooks([path], profile="full", in_place=True, out=tmp_path / "o")
    assert path.read_bytes() == before
    assert not (tmp_path / "o").exists()


def test_format_summary_and_timings(tmp_path: Path) -> None:
    results = [
        RunResult("01_good", "ok", 12.345, 5, 5, None, tmp_path / "a.ipynb"),
        RunResult("02_bad", "failed", 3.0, None, None, "ValueError: boom\n(in cell In [3])"),
        RunResult("03_slow_notebook", "timeout", 900.04),
    ]
    text = format_summary(results)
    lines = text.splitlines()
    assert lines[0].split() == ["notebook", "status", "wall_s", "claims"]
    assert lines[2].split() == ["01_good", "ok", "12.3", "5/5"]
    assert lines[3].split() == ["02_bad", "failed", "3.0", "-"]
    assert lines[4].split() == ["03_slow_notebook", "timeout", "900.0", "-"]
    assert "02_bad (failed):" in text and "ValueError: boom" in text
    assert "03_slow_notebook (timeout):" in text
    assert "01_good (" not in text

    tsv = write_timings(results, tmp_path / "deep" / "timings.tsv", "quick")
    rows = [line.split("\t") for line in tsv.read_text().splitlines()]
    assert rows[0] == ["notebook", "profile", "status", "wall_s", "claims"]
    assert rows[1] == ["01_good", "quick", "ok", "12.3", "5/5"]
    assert rows[3] == ["03_slow_notebook", "quick", "timeout", "900.0", "-"]

    # a later run of some notebooks replaces their rows and keeps the others
    write_timings([RunResult("00_first", "ok", 1.0, 1, 1), RunResult("02_bad", "ok", 4.0, 2, 3)], tsv, "quick")
    rows = [line.split("\t") for line in tsv.read_text().splitlines()]
    assert [r[0] for r in rows[1:]] == ["00_first", "01_good", "02_bad", "03_slow_notebook"]
    assert rows[3] == ["02_bad", "quick", "ok", "4.0", "2/3"]
    assert rows[2] == ["01_good", "quick", "ok", "12.3", "5/5"]


# --------------------------------------------------------------------------------------------------
# kernels


@pytest.mark.slow
def test_main_runs_reads_claims_passes_parameters_and_survives_failure(tmp_path: Path, capsys) -> None:
    src = tmp_path / "nbs"
    good = make_notebook(src, "01_good", GOOD)
    bad = make_notebook(src, "02_bad", BAD)
    sources = {p: p.read_bytes() for p in (good, bad)}
    out = tmp_path / "runs"
    (out / "02_bad").mkdir(parents=True)
    stale = {
        "notebook": "02_bad",
        "profile": "quick",
        "metrics": {},
        "claims": {"held": 9, "total": 9, "items": []},
    }
    (out / "02_bad" / "metrics.json").write_text(json.dumps(stale))
    tsv = tmp_path / "t" / "timings.tsv"

    code = cli.main(
        [
            str(good),
            str(bad),
            "--out",
            str(out),
            "--jobs",
            "2",
            "--timeout",
            "120",
            "--timings",
            str(tsv),
            "--fresh-cache",
        ]
        + ["-p", "SEED", "7", "-p", "LR", "0.5", "-p", "NAME", "abc"]
    )
    assert code == 1
    stdout = capsys.readouterr().out

    # executed copies in out/<stem>/, sources untouched
    executed = out / "01_good" / "01_good.ipynb"
    assert executed.exists() and (out / "02_bad" / "02_bad.ipynb").exists()
    assert {p: p.read_bytes() for p in (good, bad)} == sources
    nb = nbformat.read(executed, as_version=4)
    assert "injected-parameters" in nb.cells[2].metadata.tags

    # parameters and environment reached the kernel
    seen = read_metrics(out, "01_good")["metrics"]
    assert (seen["PROFILE"], seen["SEED"], seen["LR"], seen["NAME"]) == ("quick", 7, 0.5, "abc")
    assert seen["types"] == ["int", "float", "str"]
    assert Path(seen["cwd"]).resolve() == src.resolve()
    assert seen["env"]["KAE_PROGRESS"] == "plain" and seen["env"]["PYTHONUNBUFFERED"] == "1"
    if "OMP_NUM_THREADS" not in os.environ:  # two jobs share the cores
        assert seen["env"]["OMP_NUM_THREADS"] == str(threads_per_job(2))
    cache = seen["env"]["KAE_CACHE_DIR"]  # --fresh-cache: a new temporary folder, removed afterwards
    assert cache and "kae_cache_" in cache and not Path(cache).exists()

    # stale metrics of the failing notebook were deleted before it ran
    assert not (out / "02_bad" / "metrics.json").exists()

    # start/end lines, summary table, error under the table
    assert "[start]   01_good" in stdout and "[start]   02_bad" in stdout
    table = {
        fields[0]: fields
        for fields in map(str.split, stdout.splitlines())
        if len(fields) == 4 and fields[1] in ("ok", "failed", "timeout")
    }
    assert table["01_good"][1] == "ok" and table["01_good"][3] == "2/3"
    assert table["02_bad"][1] == "failed" and table["02_bad"][3] == "-"
    assert "ValueError: boom 42" in stdout

    rows = [line.split("\t") for line in tsv.read_text().splitlines()]
    assert rows[0] == ["notebook", "profile", "status", "wall_s", "claims"]
    assert [r[0] for r in rows[1:]] == ["01_good", "02_bad"]
    assert rows[1][1:3] == ["quick", "ok"] and rows[1][4] == "2/3"
    assert rows[2][2] == "failed"
    assert float(rows[1][3]) > 0


@pytest.mark.slow
def test_in_place_replaces_only_on_success(tmp_path: Path) -> None:
    src = tmp_path / "nbs"
    good = make_notebook(src, "01_good", GOOD)
    bad = make_notebook(src, "02_bad", BAD)
    bad_before = bad.read_bytes()
    out = tmp_path / "runs"

    results = run_notebooks([good, bad], in_place=True, out=out, jobs=2, timeout=120, log=lambda line: None)
    by_name = {r.notebook: r for r in results}
    assert [r.notebook for r in results] == ["01_good", "02_bad"]
    assert by_name["01_good"].status == "ok"
    assert (by_name["01_good"].claims_held, by_name["01_good"].claims_total) == (2, 3)
    assert by_name["01_good"].output_path == good.resolve()
    assert by_name["02_bad"].status == "failed"
    assert "ValueError: boom 42" in by_name["02_bad"].error

    # the failing source is untouched; its failed copy is kept in the run folder
    assert bad.read_bytes() == bad_before
    assert (out / "02_bad" / "02_bad.ipynb").exists()

    # the good source now holds cleaned outputs
    nb = nbformat.read(good, as_version=4)
    assert "papermill" not in nb.metadata
    assert nb.metadata.kernelspec["name"] == "python3"
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    assert all("papermill" not in c.metadata and "execution" not in c.metadata for c in nb.cells)
    assert [c.metadata.get("tags") for c in nb.cells] == [None, ["parameters"], ["nbval-ignore-output"]]
    assert [c.execution_count for c in nb.cells if c.cell_type == "code"] == [1, 2]
    assert nb.cells[2].outputs[0].text == "claims 2/3\n"
    assert good.read_text().endswith("\n")

    # no parameters injected; CPU only
    seen = read_metrics(out, "01_good")["metrics"]
    assert (seen["PROFILE"], seen["SEED"]) == ("quick", 0)
    assert seen["env"]["CUDA_VISIBLE_DEVICES"] == ""


@pytest.mark.slow
def test_timeout_kills_kernel(tmp_path: Path) -> None:
    path = make_notebook(tmp_path / "nbs", "03_sleep", SLEEPER)
    out = tmp_path / "runs"

    start = time.perf_counter()
    # 20 s: on a loaded 2-core machine a kernel once took more than 12 s to reach the sleeping cell
    (result,) = run_notebooks([path], out=out, timeout=20, log=lambda line: None)
    assert time.perf_counter() - start < 60
    assert result.status == "timeout"
    assert "timed out" in result.error
    assert result.claims == "-"

    pid_file = out / "03_sleep" / "kernel.pid"
    assert pid_file.exists(), "the kernel never reached the sleeping cell; raise the timeout"
    assert wait_dead(int(pid_file.read_text()))


@pytest.mark.parametrize(("jobs", "cpus", "threads"), [(1, 2, 2), (2, 2, 1), (3, 2, 1), (2, 16, 8), (4, 6, 1)])
def test_threads_per_job(jobs, cpus, threads):
    assert threads_per_job(jobs, cpus) == threads


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code", "word"), [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")])
def test_a_signal_to_the_runner_kills_the_running_notebook_and_its_kernel(tmp_path: Path, sig, code, word) -> None:
    """SIGTERM (a batch system's cancel, ``kill``) stops the runner like Ctrl-C: no kernel is left behind."""
    path = make_notebook(tmp_path / "nbs", "03_sleep", SLEEPER)
    out = tmp_path / "runs"
    runner = subprocess.Popen(
        [sys.executable, "-m", "kae_tools", "run", str(path), "--out", str(out), "--timeout", "300"],
        cwd=Path(cli.__file__).resolve().parents[2], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        # SIGINT as a terminal sends it; a background job of a shell without job control inherits it ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    pid_file = out / "03_sleep" / "kernel.pid"
    deadline = time.monotonic() + 60
    while not pid_file.exists() and time.monotonic() < deadline and runner.poll() is None:
        time.sleep(0.2)
    assert pid_file.exists(), "the kernel never reached the sleeping cell"
    kernel = int(pid_file.read_text())
    assert alive(kernel)
    runner.send_signal(sig)
    output, _ = runner.communicate(timeout=60)
    assert runner.returncode == code, output
    assert word in output
    assert wait_dead(kernel), "the kernel outlived the runner"
