"""Batch runner for the notebooks: ``python -m kae_utils.run [NOTEBOOK ...] [options]``.

Every notebook is executed with papermill in a subprocess of its own (its own process group, so that a
per-notebook timeout kills it together with its kernel), in the notebook's folder, into
``<out>/<stem>/<stem>.ipynb``; the source notebook is never overwritten except with ``--in-place``
(``make outputs``), which replaces it by the executed, metadata-cleaned copy only when execution
succeeded. At the end a summary table (notebook, status, wall time, claims held) is printed; the claims
are read from the ``<out>/<stem>/metrics.json`` each notebook writes through :mod:`kae_utils`.

Examples::

    python -m kae_utils.run                                # every notebook, quick profile
    python -m kae_utils.run 01_knowledge_distillation --profile full --out runs_full
    python -m kae_utils.run 01 02 --jobs 2 -p SEED 1 --timings results/timings.tsv
    python -m kae_utils.run --in-place                     # make outputs: stored outputs, CPU, quick

Parameter sweeps (``--sweep sweep.yaml``, see :mod:`kae_utils.sweep`) run each grid point into
``<out>/<stem>/<run id>/`` and collect one ``results.tsv``. Every run is one task, :func:`execute_run` of a
picklable :class:`RunSpec`, scheduled on an executor (:mod:`kae_utils.executors`): this machine's thread pool
by default, an existing Dask cluster with ``--dask ADDRESS``, or SLURM jobs with ``--slurm``::

    python -m kae_utils.run 01 --sweep sweeps/kd_temperature.yaml --jobs 2 --resume
    python -m kae_utils.run --sweep sweeps/seeds.yaml --dask tcp://scheduler:8786

Exit code: 0 when every notebook ran (a claim that does not hold is a result, not a failure), 1 when
some notebook failed or timed out, 2 for a usage error (unknown notebook or parameter, refused options).
"""

from __future__ import annotations

import argparse
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, as_completed
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "DEFAULT_TIMEOUT",
    "KERNEL_NAME",
    "Engine",
    "InPlaceParametersError",
    "RunResult",
    "RunSpec",
    "Terminated",
    "UnknownNotebookError",
    "available_cpus",
    "code_sha",
    "execute_run",
    "find_notebooks",
    "format_summary",
    "kill_active_runs",
    "main",
    "parse_parameter",
    "read_claims",
    "read_metrics_file",
    "run_notebook",
    "run_notebooks",
    "run_specs",
    "thread_env",
    "threads_per_job",
    "write_timings",
]

#: Per-notebook timeout in seconds when none is given.
DEFAULT_TIMEOUT: float = 900.0
#: Kernel every notebook is executed with.
KERNEL_NAME = "python3"
#: Glob of the tutorial notebooks under ``<repo>/notebooks``.
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"

_WORKER_FLAG = "--_worker"
# kae_utils.core.paths (and with it torch) is imported lazily: the worker subprocess that runs papermill
# for each notebook never needs it, and importing torch costs seconds.
_ERROR_LINES = 6
_KILL_GRACE_S = 3.0


class UnknownNotebookError(ValueError):
    """A notebook name or path given to the runner matches no notebook; the message lists those available."""


class InPlaceParametersError(ValueError):
    """``--in-place`` was combined with parameters: stored outputs are made from the quick profile only."""


@dataclass
class RunResult:
    """Outcome of one notebook run (the record a run task returns, picklable).

    ``status`` is ``"ok"``, ``"failed"`` or ``"timeout"``; ``claims_held``/``claims_total`` come from the
    notebook's ``metrics.json`` (``None`` when it wrote none); ``error`` holds the first lines of the error
    (``ename: evalue`` for an exception in a cell); ``output_path`` is the executed notebook (the source
    notebook itself after a successful ``--in-place`` run). ``run_id`` names a sweep's run (``None`` for a
    plain run), ``parameters`` are those injected, ``metrics`` is the parsed ``metrics.json`` (so results
    come back from a cluster without a shared file system), ``host`` is where the run executed and
    ``code_sha`` the :func:`code_sha` of the notebook that ran (``--resume`` re-runs a changed notebook).
    """

    notebook: str
    status: str
    wall_s: float
    claims_held: int | None = None
    claims_total: int | None = None
    error: str | None = None
    output_path: Path | None = None
    run_id: str | None = None
    parameters: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = field(default=None, repr=False)
    host: str | None = None
    code_sha: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the notebook ran to the end."""
        return self.status == "ok"

    @property
    def claims(self) -> str:
        """``"held/total"``, or ``"-"`` when the notebook wrote no claims."""
        if self.claims_held is None or self.claims_total is None:
            return "-"
        return f"{self.claims_held}/{self.claims_total}"

    @property
    def label(self) -> str:
        """``"<notebook>"``, or ``"<notebook> <run id>"`` for a sweep's run."""
        return f"{self.notebook} {self.run_id}" if self.run_id else self.notebook

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (``output_path`` as a string)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["output_path"] = os.fspath(self.output_path) if self.output_path is not None else None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunResult:
        """Inverse of :meth:`to_dict`; ``ValueError`` when ``data`` is not such a record."""
        names = {f.name for f in fields(cls)}
        if not isinstance(data, Mapping) or not {"notebook", "status", "wall_s"} <= set(data):
            raise ValueError("not a run record: it needs notebook, status and wall_s")
        values = {k: v for k, v in data.items() if k in names}
        if values.get("output_path") is not None:
            values["output_path"] = Path(values["output_path"])
        return cls(**values)


@dataclass(frozen=True)
class RunSpec:
    """Everything one run needs, picklable so that it can travel to a Dask worker.

    ``parameters``: injected into the notebook as is (``None``: nothing, for ``--in-place``);
    ``runs_root``: ``KAE_RUNS_DIR`` of the run; ``run_dir``: its own folder (executed notebook,
    ``metrics.json``, ``run.log``), ``<runs_root>/<stem>`` for a plain run; ``env``: variables set on top of
    the executing machine's environment; ``threads``: CPU threads of the run (``OMP_NUM_THREADS``;
    ``None``: the executor's cores shared out, see :func:`thread_env`); ``slots``: runs executing at once
    beside it (``None``: the Dask worker's thread count, asked on the worker); ``code_sha``: the
    notebook's :func:`code_sha`, copied into the record.
    """

    path: Path
    parameters: dict[str, Any] | None
    runs_root: Path
    run_dir: Path
    run_id: str | None = None
    timeout: float | None = DEFAULT_TIMEOUT
    in_place: bool = False
    fresh_cache: bool = False
    threads: int | None = None
    slots: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    kernel_name: str = KERNEL_NAME
    code_sha: str | None = None

    @property
    def label(self) -> str:
        """``"<stem>"`` or ``"<stem> <run id>"``, as in the log lines."""
        stem = Path(self.path).stem
        return f"{stem} {self.run_id}" if self.run_id else stem


# --------------------------------------------------------------------------------------------------
# notebooks and parameters


def _available(root: Path) -> list[Path]:
    return sorted((root / "notebooks").glob(NOTEBOOK_GLOB))


def find_notebooks(
    names: Iterable[str | os.PathLike] | None = None, *, root: Path | None = None
) -> list[Path]:
    """Resolve notebook names to absolute paths, in the order given (duplicates removed).

    A name is an existing ``.ipynb`` path (absolute, relative to the working directory or to the
    repository root), a notebook file name or stem under ``<root>/notebooks`` (``01_knowledge_distillation``
    or ``01_knowledge_distillation.ipynb``), or its two-digit number (``01``). No names: every
    ``notebooks/[0-9][0-9]_*.ipynb``, sorted. ``root`` defaults to :func:`kae_utils.core.paths.repo_root`.

    Raises :class:`UnknownNotebookError` (listing the available notebooks) for a name that matches
    nothing, and also when two different notebooks share a stem (their run folders would collide).
    """
    if root is None:
        from kae_utils.core.paths import repo_root

        root = repo_root()
    root = Path(root)
    available = _available(root)
    names = list(names or [])
    if not names:
        return [p.resolve() for p in available]

    found: list[Path] = []
    for name in names:
        text = os.fspath(name)
        candidate = Path(text).expanduser()
        path: Path | None = None
        for option in (candidate, root / candidate):
            if option.suffix == ".ipynb" and option.is_file():
                path = option
                break
        if path is None:
            stem = candidate.name[: -len(".ipynb")] if candidate.name.endswith(".ipynb") else candidate.name
            matches = [p for p in available if p.stem == stem]
            if not matches and stem.isdigit():
                matches = [p for p in available if p.stem.split("_", 1)[0] == stem]
            if len(matches) == 1:
                path = matches[0]
        if path is None:
            listing = "\n".join(f"  {p.stem}" for p in available) or "  (none)"
            raise UnknownNotebookError(
                f"unknown notebook {text!r}; available notebooks in {root / 'notebooks'}:\n{listing}"
            )
        path = path.resolve()
        if path in found:
            continue
        clash = [p for p in found if p.stem == path.stem]
        if clash:
            raise UnknownNotebookError(
                f"two notebooks share the stem {path.stem!r} ({clash[0]} and {path}); "
                "their run folders would collide"
            )
        found.append(path)
    return found


def code_sha(path: str | os.PathLike) -> str:
    """16 hex digits of the sha256 of a notebook's cell sources (code and markdown, outputs left out).

    Storing fresh outputs (``make outputs``) does not change it; editing a cell does.
    """
    import hashlib

    import nbformat

    nb = nbformat.read(os.fspath(path), as_version=4)
    text = "\n\x00".join(f"{cell.cell_type}\x00{cell.source}" for cell in nb.cells)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def parse_parameter(value: str) -> object:
    """Convert a ``-p NAME VALUE`` value the way papermill's CLI does.

    ``"True"``/``"False"`` → bool, ``"None"`` → ``None``, then ``int``, then ``float``, else the string.
    """
    if value == "True":
        return True
    if value == "False":
        return False
    if value == "None":
        return None
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return float(value)
    except ValueError:
        return value


def read_metrics_file(metrics_path: Path) -> dict[str, Any] | None:
    """The parsed ``metrics.json`` a notebook wrote; ``None`` when it is absent or not a JSON object."""
    try:
        data = json.loads(Path(metrics_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _claims_of(record: Mapping[str, Any] | None) -> tuple[int | None, int | None]:
    try:
        claims = record["claims"]  # type: ignore[index]
        held, total = claims["held"], claims["total"]
    except (KeyError, TypeError):
        return None, None
    if not isinstance(held, int) or not isinstance(total, int):
        return None, None
    return held, total


def read_claims(metrics_path: Path) -> tuple[int | None, int | None]:
    """``(held, total)`` from a notebook's ``metrics.json``; ``(None, None)`` when absent or malformed."""
    return _claims_of(read_metrics_file(metrics_path))


def _injected_parameters(
    profile: str, parameters: Mapping[str, object] | None, in_place: bool
) -> dict[str, object] | None:
    from kae_utils.core.params import PROFILES

    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}; got {profile!r}")
    if in_place:
        if profile != "quick" or parameters:
            raise InPlaceParametersError(
                "--in-place refuses parameters: stored outputs are made from the quick profile only "
                "(the stored notebooks must not contain an injected-parameters cell)"
            )
        return None  # papermill injects nothing: the notebook's own defaults are the quick profile
    return {"PROFILE": profile, **dict(parameters or {})}


# --------------------------------------------------------------------------------------------------
# process handling

_active: set[subprocess.Popen] = set()
_active_lock = threading.Lock()
_print_lock = threading.Lock()


def _print(line: str) -> None:
    print(line, flush=True)


def _say(log: Callable[[str], None], line: str) -> None:
    with _print_lock:
        log(line)


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


def _raise_terminated(signum: int, frame: Any) -> None:
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



def _first_lines(text: str, n: int = _ERROR_LINES) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines()]
    if len(lines) > n:
        lines = [*lines[:n], "..."]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# running


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
                [sys.executable, "-m", "kae_utils.run", _WORKER_FLAG, str(spec_path)],
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
        from kae_utils.nbclean import clean_file

        staged = path.with_name(f".{path.name}.run.tmp")
        shutil.copyfile(executed, staged)
        clean_file(staged)
        staged.replace(path)
        output_path = path
    metrics = read_metrics_file(run_dir / "metrics.json")
    held, total = _claims_of(metrics)
    return RunResult(
        notebook=stem,
        status=status,
        wall_s=wall_s,
        claims_held=held,
        claims_total=total,
        error=_first_lines(error) if error else None,
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


class Engine(Protocol):
    """Where runs execute (see :mod:`kae_utils.executors`): submit specs, cancel everything, close."""

    name: str

    def submit(self, spec: RunSpec) -> Future:
        """Schedule ``execute_run(spec)``; the future's result is its :class:`RunResult`."""

    def cancel(self) -> None:
        """Cancel pending runs and kill the running ones (their kernels included)."""

    def close(self) -> None:
        """Release the engine's resources (threads, the Dask client and any cluster it started)."""


def _lost(spec: RunSpec, exc: BaseException) -> RunResult:
    """The record of a run whose task itself was lost (a dead Dask worker, a refused submission)."""
    return RunResult(
        Path(spec.path).stem,
        "failed",
        0.0,
        error=_first_lines(f"the run's task was lost: {type(exc).__name__}: {exc}"),
        run_id=spec.run_id,
        parameters=dict(spec.parameters) if spec.parameters is not None else None,
    )


def _end_line(result: RunResult) -> str:
    return f"[{result.status:<7}] {result.label}  {result.wall_s:.1f} s  claims {result.claims}"


def run_specs(
    specs: Sequence[RunSpec],
    *,
    engine: Engine | None = None,
    jobs: int = 1,
    log: Callable[[str], None] | None = None,
    on_result: Callable[[RunSpec, RunResult], None] | None = None,
) -> list[RunResult]:
    """Execute ``specs`` on ``engine`` (default: a local pool of ``jobs`` threads); results in input order.

    ``on_result(spec, result)`` is called in this thread as each run ends (a sweep writes its record
    there). A task that raises instead of returning (a lost worker) becomes a ``failed`` record. On an
    exception or Ctrl-C everything still running is cancelled and killed, then the exception propagates.
    """
    log = log if log is not None else _print
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1; got {jobs}")
    if not specs:
        return []
    own = engine is None
    if engine is None:
        from kae_utils.executors import LocalEngine

        engine = LocalEngine(min(jobs, len(specs)), log=log)
    results: list[RunResult | None] = [None] * len(specs)

    def outcome(future: Future, spec: RunSpec) -> RunResult:
        try:
            return future.result()
        except Exception as exc:
            return _lost(spec, exc)

    def log_end(future: Future, spec: RunSpec) -> None:
        # runs in the thread that finished the run, before it starts the next: lines stay in order
        if not future.cancelled():
            _say(log, _end_line(outcome(future, spec)))

    try:
        futures = {}
        for i, spec in enumerate(specs):
            future = engine.submit(spec)
            future.add_done_callback(lambda f, spec=spec: log_end(f, spec))
            futures[future] = i
        for future in as_completed(futures):
            i = futures[future]
            results[i] = outcome(future, specs[i])
            if on_result is not None:
                on_result(specs[i], results[i])
    except BaseException:
        engine.cancel()
        raise
    finally:
        if own:
            engine.close()
    return [r for r in results if r is not None]


def run_notebooks(
    paths: Sequence[str | os.PathLike],
    *,
    profile: str = "quick",
    parameters: Mapping[str, object] | None = None,
    out: str | os.PathLike | None = None,
    jobs: int = 1,
    timeout: float | None = DEFAULT_TIMEOUT,
    in_place: bool = False,
    fresh_cache: bool = False,
    kernel_name: str = KERNEL_NAME,
    log: Callable[[str], None] | None = None,
    engine: Engine | None = None,
    threads: int | None = None,
) -> list[RunResult]:
    """Run ``paths`` (notebook files) with papermill, up to ``jobs`` at a time; results in input order.

    ``profile`` is injected as the parameter ``PROFILE`` together with ``parameters``. With
    ``in_place=True`` nothing is injected (the profile must be ``"quick"`` and ``parameters`` empty,
    otherwise :class:`InPlaceParametersError`), the kernel sees no GPU, and each notebook that ran
    successfully is replaced by its executed copy cleaned with :mod:`kae_utils.nbclean`.
    ``out`` defaults to ``<repo>/runs``; ``timeout`` (seconds, ``None`` or 0 for none) applies per
    notebook; ``fresh_cache`` gives each notebook an empty temporary ``KAE_CACHE_DIR``. With several jobs,
    each kernel gets ``OMP_NUM_THREADS`` = its share of the cores unless that is already set (or
    ``threads`` says how many). ``log`` receives one line when each notebook starts and ends (default:
    printed and flushed; pass ``log=lambda line: None`` for silence). ``engine``: where to execute
    (default: this machine, see :mod:`kae_utils.executors`). One failure never stops the others.
    """
    injected = _injected_parameters(profile, parameters, in_place)
    if out is None:
        from kae_utils.core.paths import repo_root

        out = repo_root() / "runs"
    out_dir = Path(out).expanduser().resolve()
    paths = [Path(p).resolve() for p in paths]
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1; got {jobs}")
    env = {"KAE_PROGRESS": "plain", "PYTHONUNBUFFERED": "1"}
    if in_place:
        env["CUDA_VISIBLE_DEVICES"] = ""
    specs = [
        RunSpec(
            path=path,
            parameters=dict(injected) if injected is not None else None,
            runs_root=out_dir,
            run_dir=out_dir / path.stem,
            timeout=timeout,
            in_place=in_place,
            fresh_cache=fresh_cache,
            threads=threads,
            env=env,
            kernel_name=kernel_name,
        )
        for path in paths
    ]
    return run_specs(specs, engine=engine, jobs=jobs, log=log)


# --------------------------------------------------------------------------------------------------
# reporting


def format_summary(results: Sequence[RunResult]) -> str:
    """A plain-text table (notebook, [run,] status, wall_s, claims), then the errors of failed runs.

    The ``run`` column (a sweep's run ids) appears only when some result has a run id.
    """
    with_runs = any(r.run_id for r in results)
    header = ("notebook", "run", "status", "wall_s", "claims") if with_runs else ("notebook", "status", "wall_s", "claims")
    rows = [
        (r.notebook, *([r.run_id or "-"] if with_runs else []), r.status, f"{r.wall_s:.1f}", r.claims)
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    right = header.index("wall_s")

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(w) if i == right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    out = [line(header), "  ".join("-" * w for w in widths)]
    out.extend(line(row) for row in rows)
    failures = [r for r in results if not r.ok]
    if failures:
        out.append("")
        for r in failures:
            out.append(f"{r.label} ({r.status}):")
            out.extend(f"    {text}" for text in (r.error or "(no error message)").splitlines())
    return "\n".join(out)


def write_timings(results: Sequence[RunResult], path: str | os.PathLike, profile: str) -> Path:
    """Write a TSV ``notebook, profile, status, wall_s, claims`` (parent folders created); return its path.

    A sweep's run is named ``<notebook> <run id>`` there. Rows of an existing file for other runs are kept
    (so ``make bench NB=05`` updates 05's row only); the rows are sorted by run name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "notebook\tprofile\tstatus\twall_s\tclaims"
    rows = {r.label: f"{r.label}\t{profile}\t{r.status}\t{r.wall_s:.1f}\t{r.claims}" for r in results}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines()[1:]:
            label = line.split("\t", 1)[0]
            if line.strip() and label not in rows:
                rows[label] = line
    path.write_text("\n".join([header] + [rows[k] for k in sorted(rows)]) + "\n", encoding="utf-8")
    return path


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


# --------------------------------------------------------------------------------------------------
# CLI


def _parser() -> argparse.ArgumentParser:
    from kae_utils.core.params import PROFILES

    parser = argparse.ArgumentParser(
        prog="python -m kae_utils.run",
        description="Run the tutorial notebooks with papermill and summarise status, time and claims.",
    )
    parser.add_argument(
        "notebooks",
        nargs="*",
        metavar="NOTEBOOK",
        help="path, file name, stem or number of a notebook (default: every notebooks/NN_*.ipynb, "
        "or the sweep file's notebooks)",
    )
    parser.add_argument(
        "--profile", choices=PROFILES, default=None,
        help="PROFILE parameter (default: the sweep file's profile, else quick)",
    )
    parser.add_argument("--jobs", type=int, default=1, help="notebooks run concurrently (default: 1)")
    parser.add_argument(
        "--out", type=Path, default=None, help="run folder (default: <repo>/runs, a sweep: <repo>/runs/sweeps/<name>)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds per notebook before it and its kernel are killed; 0 for none (default: {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="extra papermill parameter (repeatable); VALUE converted like papermill's CLI",
    )
    parser.add_argument(
        "--in-place",
        action="store_true",
        help="replace each successfully run notebook by its cleaned executed copy (quick profile, CPU only)",
    )
    parser.add_argument("--timings", type=Path, default=None, metavar="TSV", help="also write timings to TSV")
    parser.add_argument(
        "--fresh-cache", action="store_true", help="give each notebook an empty temporary KAE_CACHE_DIR"
    )
    parser.add_argument(
        "--threads", type=int, default=None, metavar="N",
        help="CPU threads per run (OMP_NUM_THREADS); default: the cores shared out among concurrent runs",
    )
    sweeps = parser.add_argument_group("sweeps (see kae_utils.sweep)")
    sweeps.add_argument("--sweep", type=Path, default=None, metavar="YAML", help="run the grid of a sweep file")
    sweeps.add_argument(
        "--resume", action="store_true", help="with --sweep: skip runs already ok; re-run failed or killed ones"
    )
    cluster = parser.add_argument_group("cluster (optional: pip install 'kae_utils[cluster]')")
    cluster.add_argument(
        "--dask", metavar="ADDRESS", default=None,
        help="submit every run to the Dask scheduler at ADDRESS (tcp://host:8786); 'local' starts a "
        "LocalCluster here with --jobs threads",
    )
    cluster.add_argument("--slurm", action="store_true", help="start Dask workers as SLURM jobs (dask-jobqueue)")
    cluster.add_argument("--slurm-jobs", type=int, default=1, metavar="N", help="SLURM jobs to start (default: 1)")
    cluster.add_argument("--slurm-partition", default=None, metavar="NAME", help="SLURM partition (-p)")
    cluster.add_argument("--slurm-account", default=None, metavar="NAME", help="SLURM account (-A)")
    cluster.add_argument("--slurm-walltime", default="01:00:00", metavar="HH:MM:SS", help="per job (default: 01:00:00)")
    cluster.add_argument("--slurm-memory", default="16GB", metavar="SIZE", help="per job (default: 16GB)")
    cluster.add_argument("--slurm-gpus", type=int, default=0, metavar="N", help="GPUs per job (--gres=gpu:N)")
    cluster.add_argument(
        "--slurm-print", action="store_true", help="print the SLURM job script these options give, then exit"
    )
    return parser


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr, flush=True)
    return 2


def _check_options(args: argparse.Namespace) -> str | None:
    """The first contradiction among the options, or ``None``."""
    if args.jobs < 1:
        return "--jobs must be at least 1"
    if args.threads is not None and args.threads < 1:
        return "--threads must be at least 1"
    if args.dask and args.slurm:
        return "give either --dask or --slurm, not both"
    if args.in_place and (args.dask or args.slurm):
        return "--in-place runs on this machine only (stored outputs are made on its CPU)"
    if args.in_place and args.sweep:
        return "--in-place and --sweep exclude each other (stored outputs are made from the defaults)"
    if args.resume and not args.sweep:
        return "--resume needs --sweep (it skips a sweep's runs that are already ok)"
    return None


def _slurm_options(args: argparse.Namespace):
    from kae_utils.executors import SlurmOptions

    return SlurmOptions(
        jobs=args.slurm_jobs,
        runs_per_job=args.jobs,
        threads=args.threads or SlurmOptions.threads,
        partition=args.slurm_partition,
        account=args.slurm_account,
        walltime=args.slurm_walltime,
        memory=args.slurm_memory,
        gpus=args.slurm_gpus,
    )


def _engine(args: argparse.Namespace) -> Engine | None:
    """The engine the options ask for; ``None`` for the default local pool."""
    from kae_utils import executors

    if args.dask == "local":
        return executors.local_cluster_engine(n_workers=1, threads_per_worker=args.jobs)
    if args.dask:
        return executors.connect_dask(args.dask)
    if args.slurm:
        return executors.slurm_engine(_slurm_options(args))
    return None


def _plan_plain(args: argparse.Namespace, parameters: dict) -> list[Path]:
    """The notebooks of a plain run, the options checked; raises the usage errors."""
    paths = find_notebooks(args.notebooks)
    _injected_parameters(args.profile or "quick", parameters, args.in_place)
    if not paths:
        raise UnknownNotebookError("no notebooks to run")
    return paths


def _plan_sweep(args: argparse.Namespace, parameters: dict):
    """(sweep, specs, out) for ``--sweep``, every parameter checked; raises the usage errors."""
    from kae_utils.core.paths import repo_root
    from kae_utils.sweep import load_sweep, plan_runs

    sweep = load_sweep(args.sweep)
    paths = find_notebooks(args.notebooks or sweep.notebooks)
    if not paths:
        raise UnknownNotebookError("no notebooks to run")
    out = (args.out or repo_root() / "runs" / "sweeps" / sweep.name).expanduser().resolve()
    specs = plan_runs(
        sweep, paths, out, profile=args.profile or sweep.profile or "quick", extra=parameters,
        timeout=args.timeout, fresh_cache=args.fresh_cache, threads=args.threads,
    )
    return sweep, specs, out


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (0 all ok, 1 some failed, 2 usage error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == [_WORKER_FLAG]:
        return _worker(argv[1])
    parser = _parser()
    args = parser.parse_args(argv)
    problem = _check_options(args)
    if problem:
        parser.error(problem)
    parameters = {name: parse_parameter(value) for name, value in args.parameter}
    if args.slurm_print:
        from kae_utils.executors import MissingDaskError, slurm_job_script

        try:
            print(slurm_job_script(_slurm_options(args)), flush=True)
        except MissingDaskError as exc:
            return _error(str(exc))
        return 0

    from kae_utils.sweep import SweepError

    try:
        plan = _plan_sweep(args, parameters) if args.sweep is not None else None
        paths = _plan_plain(args, parameters) if args.sweep is None else []
    except (UnknownNotebookError, SweepError, OSError) as exc:
        return _error(str(exc))
    except InPlaceParametersError:
        return _error(
            "--in-place takes no --profile other than quick and no -p parameters: "
            "stored outputs are made from the quick profile only"
        )
    try:
        engine = _engine(args)
    except Exception as exc:  # the optional packages missing, a scheduler not reachable
        return _error(str(exc))

    previous_sigterm = None
    if threading.current_thread() is threading.main_thread():
        previous_sigterm = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        if plan is not None:
            from kae_utils.sweep import run_sweep

            sweep, specs, out = plan
            results = run_sweep(sweep, specs, out, engine=engine, jobs=args.jobs, resume=args.resume)
        else:
            results = run_notebooks(
                paths, profile=args.profile or "quick", parameters=parameters, out=args.out, jobs=args.jobs,
                timeout=args.timeout, in_place=args.in_place, fresh_cache=args.fresh_cache, engine=engine,
                threads=args.threads,
            )
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM as Terminated
        kill_active_runs()
        terminated = isinstance(exc, Terminated)
        print("terminated" if terminated else "interrupted", file=sys.stderr, flush=True)
        return 128 + (signal.SIGTERM if terminated else signal.SIGINT)
    finally:
        if engine is not None:
            engine.close()
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)
    print("", flush=True)
    print(format_summary(results), flush=True)
    if plan is not None:
        print(f"\nresults: {plan[2] / 'results.tsv'} (summary.tsv and sweep.yaml beside it)", flush=True)
    if args.timings is not None:
        write_timings(results, args.timings, args.profile or "quick")
        print(f"\ntimings written to {args.timings}", flush=True)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
