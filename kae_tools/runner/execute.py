"""One run: a notebook executed by papermill in a subprocess of its own, and the record it leaves.

:func:`execute_run` is the task every executor runs (here or on a Dask worker). It starts
``python -m kae_tools.runner.execute SPEC.json`` (the worker, :func:`_worker`) in a process group of its
own, in the notebook's folder, so that a per-run timeout, Ctrl-C or SIGTERM kills the worker together
with its kernel (:func:`kill_active_runs`); the executed notebook, ``run.log`` and the notebook's
``metrics.json`` go to the run's folder. With ``in_place`` (``make outputs``) the source notebook is
replaced by the executed, metadata-cleaned copy, only when execution succeeded.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kae_tools.notebooks.nbclean import clean_file
from kae_tools.runner.spec import (
    DEFAULT_TIMEOUT,
    KERNEL_NAME,
    RunResult,
    RunSpec,
    claims_of,
    first_lines,
    read_metrics_file,
)

__all__ = [
    "Terminated",
    "available_cpus",
    "execute_run",
    "kill_active_runs",
    "raise_terminated",
    "run_notebook",
    "thread_env",
    "threads_per_job",
]

#: The worker: ``python -m kae_tools.runner.execute SPEC.json`` runs one papermill execution.
WORKER_MODULE = "kae_tools.runner.execute"
_KILL_GRACE_S = 3.0

# --------------------------------------------------------------------------------------------------
# process handling

_active: set[subprocess.Popen] = set()
_active_lock = threading.Lock()


def _process_groups(proc: subprocess.Popen) -> set[int]:
    """Process groups of ``proc`` and all its descendants (jupyter_client starts kernels in a new session)."""
    groups = {proc.pid}
    try:
        import psutil  # a dependency of ipykernel

        for child in psutil.Process(proc.pid).children(recursive=True):
            try:
                groups.add(os.getpgid(child.pid))
            except ProcessLookupError:
                pass
    except Exception:  # psutil missing or the process already gone: the worker's group is still killed
        pass
    return groups


def _signal_groups(groups: Iterable[int], sig: int) -> None:
    for group in groups:
        try:
            os.killpg(group, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _kill_tree(proc: subprocess.Popen) -> None:
    """Terminate ``proc``'s process group and its descendants' groups (kernel included), then kill."""
    groups = _process_groups(proc)
    _signal_groups(groups, signal.SIGTERM)
    try:
        proc.wait(timeout=_KILL_GRACE_S)
    except subprocess.TimeoutExpired:
        pass
    _signal_groups(groups, signal.SIGKILL)
    proc.wait()


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a batch system's cancel or time limit) raised in the main thread, so that it
    stops the runs the way Ctrl-C does: running notebooks and their kernels killed, nothing half-written kept."""


def raise_terminated(signum: int, frame: Any) -> None:
    """SIGTERM handler of the command line: raise :class:`Terminated` in the main thread."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM does not cut the clean-up short
    raise Terminated


def kill_active_runs() -> int:
    """Kill every notebook this process is running (kernels included); return how many.

    The local pool calls it on Ctrl-C; a Dask sweep calls it on every worker (``client.run``), since
    cancelling a running Dask task does not stop the subprocess it started.
    """
    with _active_lock:
        procs = list(_active)
    for proc in procs:
        _kill_tree(proc)
    return len(procs)


# --------------------------------------------------------------------------------------------------
# threads


def available_cpus() -> int:
    """CPU cores this process may use: its affinity mask (a SLURM allocation, a cpuset), else ``os.cpu_count()``."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def threads_per_job(jobs: int, cpus: int | None = None) -> int:
    """CPU threads each of ``jobs`` concurrent notebooks gets (``OMP_NUM_THREADS``): the cores shared out, at least 1."""
    cpus = cpus if cpus is not None else available_cpus()
    return max(1, cpus // max(1, jobs))


def _dask_worker_slots() -> int | None:
    """Thread count of the Dask worker running this task; ``None`` outside a Dask worker."""
    if "distributed" not in sys.modules:  # never import Dask for a local run
        return None
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return None
    state = getattr(worker, "state", worker)
    return int(getattr(state, "nthreads", 0) or 0) or None


def thread_env(env: Mapping[str, str], threads: int | None, slots: int | None) -> dict[str, str]:
    """Thread-limit variables to add to ``env`` for one run (torch's thread pools oversubscribed across
    kernels make small operations crawl).

    * ``threads`` given: ``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` set to it.
    * ``slots`` given (this machine's pool, ``slots`` runs at once): a limit already in ``env`` is kept;
      otherwise, with ``slots`` > 1, each run gets its share of :func:`available_cpus`.
    * ``slots`` is ``None`` on a Dask worker: each run gets the worker's cores shared among its threads.
      (Dask's nanny sets ``OMP_NUM_THREADS=1`` for every worker, which would leave each notebook one
      core, so that value is replaced; pass ``threads`` when several workers share a node.)
    """
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1; got {threads}")
        return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    if slots is None:
        worker_slots = _dask_worker_slots()
        if worker_slots is None:
            return {}
        share = str(threads_per_job(worker_slots))
        return {"OMP_NUM_THREADS": share, "MKL_NUM_THREADS": share}
    if "OMP_NUM_THREADS" in env or slots <= 1:
        return {}
    return {"OMP_NUM_THREADS": str(threads_per_job(slots))}


# --------------------------------------------------------------------------------------------------
# running


def run_notebook(
    path: Path,
    *,
    parameters: Mapping[str, object] | None,
    out: Path,
    timeout: float | None = DEFAULT_TIMEOUT,
    in_place: bool = False,
    env: Mapping[str, str] | None = None,
    kernel_name: str = KERNEL_NAME,
    run_dir: Path | None = None,
) -> RunResult:
    """Execute one notebook in a subprocess; a lower-level helper of :func:`execute_run`.

    ``parameters`` is passed to papermill as is (``None``: nothing injected); the executed notebook,
    ``run.log`` and the notebook's ``metrics.json`` go to ``run_dir`` (default ``<out>/<stem>``); ``env`` is
    the complete environment of the worker and its kernel (default: the current one with
    ``KAE_RUNS_DIR=out`` and ``KAE_RUN_DIR=run_dir``).
    """
    path = Path(path).resolve()
    stem = path.stem
    out = Path(out).resolve()
    run_dir = Path(run_dir).resolve() if run_dir is not None else out / stem
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.json").unlink(missing_ok=True)
    executed = run_dir / f"{stem}.ipynb"
    if executed.resolve() == path:
        raise ValueError(f"the output folder {out} would overwrite the source notebook {path}")
    if env is None:
        env = {**os.environ, "KAE_RUNS_DIR": str(out), "KAE_RUN_DIR": str(run_dir)}

    with tempfile.TemporaryDirectory(prefix="kae_run_") as tmp:
        spec_path = Path(tmp) / "spec.json"
        result_path = Path(tmp) / "result.json"
        spec = {
            "input": str(path),
            "output": str(executed),
            "parameters": dict(parameters) if parameters is not None else None,
            "cwd": str(path.parent),
            "kernel_name": kernel_name,
            "result": str(result_path),
        }
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        log_path = run_dir / "run.log"
        status, error = "failed", None
        start = time.perf_counter()
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(
                [sys.executable, "-m", WORKER_MODULE, str(spec_path)],
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            with _active_lock:
                _active.add(proc)
            try:
                proc.wait(timeout=timeout if timeout and timeout > 0 else None)
            except subprocess.TimeoutExpired:
                _kill_tree(proc)
                status, error = "timeout", f"timed out after {timeout:g} s (process group killed)"
            except BaseException:
                _kill_tree(proc)
                raise
            finally:
                with _active_lock:
                    _active.discard(proc)
        wall_s = time.perf_counter() - start

        if status != "timeout":
            try:
                outcome = json.loads(result_path.read_text(encoding="utf-8"))
                status, error = outcome["status"], outcome.get("error")
            except (OSError, ValueError, KeyError):
                tail = log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
                status = "failed"
                error = f"worker exited with code {proc.returncode} without a result\n{tail}"

    output_path: Path | None = executed if executed.exists() else None
    if status == "ok" and in_place:
        staged = path.with_name(f".{path.name}.run.tmp")
        shutil.copyfile(executed, staged)
        clean_file(staged)
        staged.replace(path)
        output_path = path
    metrics = read_metrics_file(run_dir / "metrics.json")
    held, total = claims_of(metrics)
    return RunResult(
        notebook=stem,
        status=status,
        wall_s=wall_s,
        claims_held=held,
        claims_total=total,
        error=first_lines(error) if error else None,
        output_path=output_path,
        metrics=metrics,
    )


def execute_run(spec: RunSpec) -> RunResult:
    """The task every executor runs, here or on a Dask worker: one papermill execution, one record.

    The environment is the executing machine's plus ``spec.env``, ``KAE_RUNS_DIR``, ``KAE_RUN_DIR`` and the
    thread limits of :func:`thread_env`; with ``fresh_cache`` the run gets an empty temporary
    ``KAE_CACHE_DIR``. Never raises for a failing notebook or a failing runner: that is a ``failed`` record.
    """
    stem = Path(spec.path).stem
    env = {**os.environ, **spec.env, "KAE_RUNS_DIR": str(spec.runs_root), "KAE_RUN_DIR": str(spec.run_dir)}
    cache_tmp = tempfile.mkdtemp(prefix="kae_cache_") if spec.fresh_cache else None
    try:
        env.update(thread_env(env, spec.threads, spec.slots))
        if cache_tmp is not None:
            env["KAE_CACHE_DIR"] = cache_tmp
        result = run_notebook(
            spec.path,
            parameters=spec.parameters,
            out=spec.runs_root,
            run_dir=spec.run_dir,
            timeout=spec.timeout,
            in_place=spec.in_place,
            env=env,
            kernel_name=spec.kernel_name,
        )
    except Exception as exc:  # the runner itself failed for this notebook; the others go on
        result = RunResult(stem, "failed", 0.0, error=f"{type(exc).__name__}: {exc}")
    finally:
        if cache_tmp is not None:
            shutil.rmtree(cache_tmp, ignore_errors=True)
    result.run_id = spec.run_id
    result.parameters = dict(spec.parameters) if spec.parameters is not None else None
    result.host = socket.gethostname()
    result.code_sha = spec.code_sha
    return result


# --------------------------------------------------------------------------------------------------
# worker (runs inside the subprocess)


def _worker(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    outcome: dict[str, object] = {"status": "ok", "error": None}
    try:
        import papermill
        from papermill.exceptions import PapermillExecutionError

        try:
            papermill.execute_notebook(
                spec["input"],
                spec["output"],
                parameters=spec["parameters"],
                kernel_name=spec["kernel_name"],
                cwd=spec["cwd"],
                progress_bar=False,
                log_output=False,
            )
        except PapermillExecutionError as exc:
            outcome = {
                "status": "failed",
                "error": f"{exc.ename}: {exc.evalue}\n(in cell In [{exc.exec_count}])",
            }
    except Exception as exc:
        outcome = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    Path(spec["result"]).write_text(json.dumps(outcome), encoding="utf-8")
    return 0 if outcome["status"] == "ok" else 1



if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1]))
