"""Tests of the executors (kae_tools.runner.executors): the local pool, Dask (a LocalCluster here) and SLURM.

The Dask tests start one LocalCluster with worker processes for the module (a few seconds) and tiny
notebooks (one kernel start each); they are marked ``slow``. ``distributed`` and ``dask-jobqueue`` are in
the ``dev`` extra, so they run wherever ``make test`` does.
"""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import Future
from pathlib import Path

import pytest

from kae_tools.runner import cli, execute, executors
from kae_tools.runner.execute import available_cpus, thread_env, threads_per_job
from kae_tools.runner.executors import DaskEngine, MissingDaskError, SlurmOptions, slurm_cluster_kwargs
from kae_tools.runner.schedule import run_notebooks, run_specs
from kae_tools.runner.spec import RunResult, RunSpec, read_metrics_file
from kae_tools.runner.sweep import parse_sweep, plan_runs, run_sweep
from kae_tools.runner.tables import read_table, results_table
from tests.tiny_notebooks import ENV_READER, FAILING, SLEEPER, SWEEPER, make_notebook, wait_dead


def quiet(line: str) -> None:
    pass



# ----------------------------------------------------------------------------------- no cluster


def test_thread_env_rules(monkeypatch):
    monkeypatch.setattr(execute, "_dask_worker_slots", lambda: None)
    assert thread_env({}, 3, 4) == {"OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "3"}  # asked for: always
    assert thread_env({"OMP_NUM_THREADS": "1"}, 3, None) == {"OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "3"}
    assert thread_env({}, None, 2) == {"OMP_NUM_THREADS": str(threads_per_job(2))}  # local pool: shared out
    assert thread_env({"OMP_NUM_THREADS": "5"}, None, 2) == {}  # a limit the user set is kept
    assert thread_env({}, None, 1) == {}  # one run alone: torch's default
    assert thread_env({}, None, None) == {}  # not on a Dask worker
    # on a Dask worker with 2 threads: its cores shared out, replacing the nanny's OMP_NUM_THREADS=1
    monkeypatch.setattr(execute, "_dask_worker_slots", lambda: 2)
    share = str(threads_per_job(2))
    assert thread_env({"OMP_NUM_THREADS": "1"}, None, None) == {"OMP_NUM_THREADS": share, "MKL_NUM_THREADS": share}
    with pytest.raises(ValueError, match="at least 1"):
        thread_env({}, 0, None)


def test_available_cpus_is_the_affinity_mask():
    assert 1 <= available_cpus() <= (__import__("os").cpu_count() or 1)
    assert threads_per_job(1) == available_cpus()


def test_dask_imports_stay_lazy():
    code = (
        "import sys, kae_tools.__main__, kae_tools.runner.cli\n"
        "bad = [m for m in ('distributed', 'dask', 'dask_jobqueue') if m in sys.modules]\n"
        "sys.exit(f'imported at start: {bad}' if bad else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_missing_dask_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    monkeypatch.setitem(sys.modules, "dask_jobqueue", None)
    with pytest.raises(MissingDaskError) as info:
        executors.connect_dask("tcp://127.0.0.1:1")
    assert "--dask needs the optional package 'distributed'" in str(info.value)
    assert 'pip install "kae_utils[cluster]"' in str(info.value)
    with pytest.raises(MissingDaskError, match="--slurm needs the optional package 'dask_jobqueue'"):
        executors.slurm_cluster(SlurmOptions())
    assert cli.main(["--dask", "tcp://127.0.0.1:1"]) == 2
    assert "kae_utils[cluster]" in capsys.readouterr().err
    assert cli.main(["--slurm-print"]) == 2
    assert "dask_jobqueue" in capsys.readouterr().err


def test_unreachable_scheduler_is_a_clear_error(monkeypatch, capsys):
    with pytest.raises(OSError) as info:  # port 9 (discard) has no scheduler
        executors.connect_dask("tcp://127.0.0.1:9", timeout="2s")
    assert "cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'" in str(info.value)
    assert "dask scheduler" in str(info.value)  # what to start

    def refuse(address, **kwargs):
        raise OSError(f"cannot reach the Dask scheduler at {address!r}")

    monkeypatch.setattr(executors, "connect_dask", refuse)
    assert cli.main(["--dask", "tcp://127.0.0.1:9", "01"]) == 2  # a usage error, before any run
    assert "error: cannot reach the Dask scheduler" in capsys.readouterr().err


def test_slurm_cluster_kwargs():
    kwargs = slurm_cluster_kwargs(SlurmOptions(jobs=3, runs_per_job=2, threads=4, gpus=1, partition="gpu"))
    assert kwargs["cores"] == 2 and kwargs["job_cpu"] == 8 and kwargs["processes"] == 1
    assert kwargs["queue"] == "gpu" and "account" not in kwargs
    assert kwargs["job_extra_directives"] == ["--gres=gpu:1"]
    assert "export OMP_NUM_THREADS=4" in kwargs["job_script_prologue"]
    assert slurm_cluster_kwargs(SlurmOptions())["job_extra_directives"] == []
    with pytest.raises(ValueError, match="runs_per_job must be at least 1"):
        SlurmOptions(runs_per_job=0)


def test_slurm_job_script_for_the_documented_options(capsys):
    code = cli.main([
        "--slurm-print", "--slurm-partition", "gpu", "--slurm-account", "lab", "--slurm-walltime", "02:30:00",
        "--slurm-memory", "32GB", "--slurm-gpus", "1", "--jobs", "2", "--threads", "3",
    ])
    assert code == 0
    script = capsys.readouterr().out
    lines = script.splitlines()
    for expected in ("#SBATCH -J kae-run", "#SBATCH -p gpu", "#SBATCH -A lab", "#SBATCH --cpus-per-task=6",
                     "#SBATCH -t 02:30:00", "#SBATCH --gres=gpu:1", "export OMP_NUM_THREADS=3",
                     "export MKL_NUM_THREADS=3"):
        assert expected in lines, (expected, script)
    assert any(line.startswith("#SBATCH --mem=") for line in lines)
    worker = next(line for line in lines if "distributed.cli.dask_worker" in line)
    assert "--nthreads 2" in worker and worker.startswith(sys.executable)
    # the defaults: one run at a time, 4 threads, no GPU
    assert cli.main(["--slurm-print"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "#SBATCH --cpus-per-task=4" in lines and "#SBATCH -t 01:00:00" in lines
    assert not any("--gres" in line for line in lines)


def test_a_lost_task_is_a_failed_record_not_a_lost_future(tmp_path):
    class Broken:
        name = "broken"

        def submit(self, spec):
            future: Future = Future()
            future.set_exception(OSError("connection to the worker closed"))
            return future

        def cancel(self):
            pass

        def close(self):
            pass

    spec = RunSpec(tmp_path / "01_x.ipynb", {"SEED": 1}, tmp_path, tmp_path / "01_x", run_id="SEED=1")
    (result,) = run_specs([spec], engine=Broken(), log=quiet)
    assert (result.notebook, result.status, result.run_id, result.parameters) == ("01_x", "failed", "SEED=1", {"SEED": 1})
    assert "the run's task was lost: OSError: connection to the worker closed" in result.error


# ------------------------------------------------------------------------------------ LocalCluster


@pytest.fixture(scope="module")
def dask_cluster():
    """One LocalCluster for the module: one worker process with two threads (two runs at a time)."""
    import distributed

    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=True, host="127.0.0.1", dashboard_address=None
    )
    yield cluster
    cluster.close()


@pytest.fixture
def dask_engine(dask_cluster):
    import distributed

    engine = DaskEngine(distributed.Client(dask_cluster), log=quiet)
    yield engine
    engine.close()


def _comparable(result: RunResult, out: Path) -> dict:
    data = result.to_dict()
    data.pop("wall_s")
    data.pop("host")
    data["output_path"] = str(Path(data["output_path"]).relative_to(out))
    return data


def _files(out: Path) -> set[str]:
    return {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_the_same_sweep_through_the_local_pool_and_dask_gives_the_same_records_and_files(tmp_path, dask_engine):
    nb = make_notebook(tmp_path / "nbs", "01_tiny", SWEEPER)
    s = parse_sweep({"grid": {"SEED": [0, 1], "LR": [0.1, 0.5]}, "plot": {"x": "LR", "y": "metrics.score"}}, "same")
    records = {}
    for name, engine in (("local", None), ("dask", dask_engine)):
        out = (tmp_path / name).resolve()
        records[name] = run_sweep(s, plan_runs(s, [nb], out, timeout=120), out, engine=engine, jobs=2, log=quiet)
    local, dask = records["local"], records["dask"]
    assert [r.status for r in dask] == ["ok"] * 4
    assert [_comparable(r, tmp_path / "local") for r in local] == [_comparable(r, tmp_path / "dask") for r in dask]
    assert dask[0].metrics["metrics"]["score"] == pytest.approx(1.1)  # the metrics came back in the record
    assert _files(tmp_path / "local") == _files(tmp_path / "dask")
    assert {"sweep.yaml", "results.tsv", "summary.tsv", "plot.png", "01_tiny/LR=0.5,SEED=1/record.json"} <= _files(
        tmp_path / "dask")
    columns = ["notebook", "run_id", "SEED", "LR", "status", "claims", "claim.1", "claim.2", "metrics.score"]
    assert read_table(tmp_path / "local" / "results.tsv")[columns].equals(
        read_table(tmp_path / "dask" / "results.tsv")[columns])
    # the table needs only the records, not the workers' files (no shared file system needed)
    for path in (tmp_path / "dask").rglob("metrics.json"):
        path.unlink()
    assert results_table(dask)[columns].astype(str).equals(
        read_table(tmp_path / "dask" / "results.tsv")[columns].astype(str))


def _kernels_of(run_dir: Path) -> list[int]:
    """Pids of live Jupyter kernels started for ``run_dir`` (found by their KAE_RUN_DIR, orphans included)."""
    psutil = pytest.importorskip("psutil")
    kernels = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if "ipykernel" in " ".join(proc.info["cmdline"] or []) and proc.status() != psutil.STATUS_ZOMBIE:
                if proc.environ().get("KAE_RUN_DIR") == str(run_dir):
                    kernels.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return kernels


@pytest.mark.slow
def test_a_timeout_kills_the_kernel_under_dask_too(tmp_path, dask_engine):
    path = make_notebook(tmp_path / "nbs", "03_sleep", SLEEPER)
    out = tmp_path / "runs"
    start = time.perf_counter()
    (result,) = run_notebooks([path], out=out, timeout=20, engine=dask_engine, log=quiet)
    assert time.perf_counter() - start < 60
    assert result.status == "timeout" and "timed out after 20 s" in result.error
    pid_file = out / "03_sleep" / "kernel.pid"
    assert pid_file.exists(), "the kernel never reached the sleeping cell in 20 s; raise the timeout"
    assert wait_dead(int(pid_file.read_text())), "a kernel outlived its timeout on the Dask worker"
    assert _kernels_of((out / "03_sleep").resolve()) == []  # no stray kernel anywhere


@pytest.mark.slow
def test_cancelling_a_dask_run_kills_its_kernel_on_the_worker(tmp_path, dask_engine):
    path = make_notebook(tmp_path / "nbs", "03_sleep", SLEEPER)
    out = (tmp_path / "runs").resolve()
    spec = RunSpec(path.resolve(), {"PROFILE": "quick"}, out, out / "03_sleep", timeout=300)
    future = dask_engine.submit(spec)
    pid_file = out / "03_sleep" / "kernel.pid"
    deadline = time.monotonic() + 60
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert pid_file.exists(), "the kernel never started"
    dask_engine.cancel()
    assert wait_dead(int(pid_file.read_text()), 15), "the kernel kept running after the sweep was cancelled"
    assert future.cancelled() or future.done()


@pytest.mark.slow
def test_a_failing_notebook_on_dask_is_a_failed_record_and_exit_1(tmp_path, dask_cluster, capsys):
    good = make_notebook(tmp_path / "nbs", "01_good", SWEEPER)
    bad = make_notebook(tmp_path / "nbs", "02_bad", FAILING)
    out = tmp_path / "runs"
    code = cli.main([str(good), str(bad), "--dask", dask_cluster.scheduler_address, "--out", str(out),
                     "--timeout", "120"])
    assert code == 1
    stdout = capsys.readouterr().out
    assert "[sent]    01_good" in stdout and "[failed ] 02_bad" in stdout and "[ok     ] 01_good" in stdout
    assert "02_bad (failed):" in stdout and "ValueError: boom 42" in stdout
    assert (out / "02_bad" / "02_bad.ipynb").exists() and (out / "01_good" / "metrics.json").exists()


@pytest.mark.slow
def test_thread_limits_per_dask_worker(tmp_path, dask_engine):
    path = make_notebook(tmp_path / "nbs", "04_env", ENV_READER)
    (auto,) = run_notebooks([path], out=tmp_path / "auto", engine=dask_engine, timeout=120, log=quiet)
    (asked,) = run_notebooks([path], out=tmp_path / "asked", engine=dask_engine, timeout=120, threads=3, log=quiet)
    share = str(threads_per_job(2))  # the worker's two threads share this machine's cores
    assert auto.ok and auto.metrics["metrics"]["OMP_NUM_THREADS"] == share
    assert auto.metrics["metrics"]["MKL_NUM_THREADS"] == share
    assert asked.metrics["metrics"]["OMP_NUM_THREADS"] == "3" and asked.metrics["metrics"]["MKL_NUM_THREADS"] == "3"
    assert auto.metrics["metrics"]["KAE_RUN_DIR"] == str((tmp_path / "auto" / "04_env").resolve())


@pytest.mark.slow
def test_dask_local_cluster_from_the_command_line(tmp_path, capsys):
    """``--dask local`` with one job: a worker of one thread, so the run gets every core (not Dask's 1)."""
    path = make_notebook(tmp_path / "nbs", "04_env", ENV_READER)
    out = tmp_path / "runs"
    assert cli.main([str(path), "--dask", "local", "--out", str(out), "--timeout", "120"]) == 0
    assert "[ok     ] 04_env" in capsys.readouterr().out
    seen = read_metrics_file(out / "04_env" / "metrics.json")["metrics"]
    assert seen["OMP_NUM_THREADS"] == str(available_cpus()) and seen["KAE_PROGRESS"] == "plain"


@pytest.mark.slow
def test_bench_runner_measures_an_engine(tmp_path):
    from data_scripts import bench_runner

    path = bench_runner.tiny_notebook(tmp_path)
    row = bench_runner.measure("local", path, tmp_path / "runs", runs=1, noops=3)
    assert row["engine"] == "local" and row["runs"] == 1
    assert 0 < row["notebook_s"] <= row["per_run_s"] and row["overhead_s"] == row["per_run_s"] - row["notebook_s"]
    assert row["noop_ms"] >= 0
    assert (tmp_path / "runs" / "local" / "00_bench" / "SEED=0" / "metrics.json").exists()
