"""Where the batch runner's runs execute: this machine's thread pool, a Dask cluster, or SLURM jobs.

Every engine runs the same task, :func:`kae_tools.runner.execute.execute_run`, one papermill execution in a process
group of its own, and hands back its :class:`~kae_tools.runner.spec.RunResult` (metrics included), so the client
builds the results table without a shared file system.

* :class:`LocalEngine` (the default): a thread pool on this machine. Its threads only wait on the
  papermill subprocesses; no service is started.
* :func:`connect_dask` (``--dask tcp://host:8786``): submit every run to an existing Dask cluster
  (``distributed``); ``--dask local`` starts a :class:`distributed.LocalCluster` on this machine.
* :func:`slurm_engine` (``--slurm``): start Dask workers as SLURM jobs through dask-jobqueue.

Dask and dask-jobqueue are optional (``pip install "kae_utils[cluster]"``) and imported only here, only
when asked for; without them these functions raise :class:`MissingDaskError` saying what to install.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from kae_tools.runner.console import print_line, say
from kae_tools.runner.execute import execute_run, kill_active_runs
from kae_tools.runner.spec import RunSpec

__all__ = [
    "INSTALL_HINT",
    "DaskEngine",
    "LocalEngine",
    "MissingDaskError",
    "SlurmOptions",
    "connect_dask",
    "local_cluster_engine",
    "slurm_cluster",
    "slurm_cluster_kwargs",
    "slurm_engine",
    "slurm_job_script",
]

#: What to install for ``--dask`` and ``--slurm``.
INSTALL_HINT = (
    'pip install "kae_utils[cluster]" (from the repository: .venv/bin/pip install -c constraints.txt '
    "-e \".[cluster]\"; make setup installs it)"
)


class MissingDaskError(RuntimeError):
    """``--dask`` or ``--slurm`` was asked for, but the optional Dask packages are not installed."""


def _require(module: str, option: str) -> Any:
    """Import the optional ``module`` or raise :class:`MissingDaskError` naming ``option`` and the fix."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDaskError(
            f"{option} needs the optional package {module.split('.')[0]!r}, which is not installed: "
            f"{INSTALL_HINT}"
        ) from exc


# --------------------------------------------------------------------------------------------- local


class LocalEngine:
    """Runs on this machine, ``jobs`` at a time, in a thread pool (each run a papermill subprocess).

    A spec without ``slots`` gets ``jobs``, so that concurrent kernels share the cores
    (:func:`kae_tools.runner.execute.thread_env`).
    """

    name = "local"

    def __init__(self, jobs: int = 1, *, log: Callable[[str], None] | None = None) -> None:
        if jobs < 1:
            raise ValueError(f"jobs must be at least 1; got {jobs}")
        self.slots = jobs
        self._log = log if log is not None else print_line
        self._pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="kae-run")
        self._futures: list[Future] = []

    def _run(self, spec: RunSpec):
        say(self._log, f"[start]   {spec.label}")
        return execute_run(spec)

    def submit(self, spec: RunSpec) -> Future:
        """Schedule one run; it starts when a thread is free."""
        if spec.slots is None:
            spec = replace(spec, slots=self.slots)
        future = self._pool.submit(self._run, spec)
        self._futures.append(future)
        return future

    def cancel(self) -> None:
        """Drop the runs not started yet and kill the running ones with their kernels."""
        for future in self._futures:
            future.cancel()
        kill_active_runs()

    def close(self) -> None:
        """Wait for the threads (after :meth:`cancel` they end at once)."""
        self._pool.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------------------------------------- dask


class DaskEngine:
    """Runs as tasks of a Dask cluster, through ``client.get_executor(pure=False)``.

    Each task gets an explicit unique key ``kae-run-<stem> <run id>-<random>`` (identical grid points are
    never deduplicated); how many run at once is the workers' thread count. ``cluster`` is closed with the
    engine when this engine started it.
    """

    name = "dask"

    def __init__(self, client: Any, *, cluster: Any = None, log: Callable[[str], None] | None = None) -> None:
        self.client = client
        self.cluster = cluster
        self._log = log if log is not None else print_line
        self._executor = client.get_executor(pure=False)

    def submit(self, spec: RunSpec) -> Future:
        """Send one run to the scheduler (it starts when a worker thread is free)."""
        say(self._log, f"[sent]    {spec.label}")
        key = f"kae-run-{spec.label}-{uuid.uuid4().hex[:8]}"
        return self._executor.submit(execute_run, spec, key=key)

    def cancel(self) -> None:
        """Cancel every task, then kill the notebooks still running on the workers (Dask cannot stop a
        running task, and the subprocess it started would live on until its timeout)."""
        try:
            self._executor.shutdown(wait=False)
            self.client.run(kill_active_runs)
        except Exception:  # the cluster may be gone already; nothing more can be done from here
            pass

    def close(self) -> None:
        """Close the client, and the cluster if this engine started it."""
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def connect_dask(address: str, *, log: Callable[[str], None] | None = None, timeout: str = "20s") -> DaskEngine:
    """An engine on the existing Dask scheduler at ``address`` (``tcp://host:8786``).

    The workers need this repository at the same path (or the notebooks on a shared file system) and
    ``kae_utils`` importable. Raises :class:`MissingDaskError` without ``distributed`` and ``OSError`` when
    the scheduler cannot be reached.
    """
    distributed = _require("distributed", "--dask")
    try:
        client = distributed.Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise OSError(
            f"cannot reach the Dask scheduler at {address!r} ({type(exc).__name__}: {exc}); start one with "
            "`dask scheduler` and workers with `dask worker ADDRESS`, or use --dask local"
        ) from exc
    return DaskEngine(client, log=log)


def local_cluster_engine(
    n_workers: int = 1,
    threads_per_worker: int = 1,
    *,
    processes: bool = True,
    log: Callable[[str], None] | None = None,
) -> DaskEngine:
    """An engine on a new :class:`distributed.LocalCluster` (``--dask local``), closed with the engine.

    The scheduler listens on 127.0.0.1 only and has no dashboard.
    """
    distributed = _require("distributed", "--dask local")
    cluster = distributed.LocalCluster(
        n_workers=n_workers,
        threads_per_worker=threads_per_worker,
        processes=processes,
        host="127.0.0.1",
        dashboard_address=None,
    )
    try:
        client = distributed.Client(cluster)
    except BaseException:
        cluster.close()
        raise
    return DaskEngine(client, cluster=cluster, log=log)


# --------------------------------------------------------------------------------------------- slurm


@dataclass(frozen=True)
class SlurmOptions:
    """The ``--slurm-*`` options: ``jobs`` SLURM jobs, each one Dask worker running ``runs_per_job``
    notebooks at a time with ``threads`` CPU threads each (``--cpus-per-task`` = their product).

    ``memory`` and ``walltime`` are per job; ``gpus`` adds ``--gres=gpu:N``; ``partition`` and ``account``
    become ``-p`` and ``-A``. Anything not given here comes from dask-jobqueue's own configuration
    (``~/.config/dask/jobqueue.yaml``), e.g. the network interface of the nodes.
    """

    jobs: int = 1
    runs_per_job: int = 1
    threads: int = 4
    partition: str | None = None
    account: str | None = None
    walltime: str = "01:00:00"
    memory: str = "16GB"
    gpus: int = 0
    job_name: str = "kae-run"

    def __post_init__(self) -> None:
        for name in ("jobs", "runs_per_job", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"SLURM {name} must be at least 1; got {getattr(self, name)}")
        if self.gpus < 0:
            raise ValueError(f"SLURM gpus must be 0 or more; got {self.gpus}")


def slurm_cluster_kwargs(options: SlurmOptions) -> dict[str, Any]:
    """Keyword arguments of ``dask_jobqueue.SLURMCluster`` for ``options`` (no SLURM needed to compute)."""
    threads = str(options.threads)
    kwargs: dict[str, Any] = {
        "cores": options.runs_per_job,  # the worker's threads: notebooks at a time
        "job_cpu": options.runs_per_job * options.threads,  # --cpus-per-task
        "processes": 1,
        "memory": options.memory,
        "walltime": options.walltime,
        "job_name": options.job_name,
        "job_script_prologue": [
            f"export OMP_NUM_THREADS={threads}",
            f"export MKL_NUM_THREADS={threads}",
            "export KAE_PROGRESS=plain",
        ],
        "job_extra_directives": [f"--gres=gpu:{options.gpus}"] if options.gpus else [],
    }
    if options.partition:
        kwargs["queue"] = options.partition
    if options.account:
        kwargs["account"] = options.account
    return kwargs


def slurm_cluster(options: SlurmOptions, **overrides: Any) -> Any:
    """A ``dask_jobqueue.SLURMCluster`` for ``options`` (no job submitted yet); ``overrides`` win."""
    jobqueue = _require("dask_jobqueue", "--slurm")
    return jobqueue.SLURMCluster(**{**slurm_cluster_kwargs(options), **overrides})


def slurm_job_script(options: SlurmOptions) -> str:
    """The job script ``--slurm`` would submit, rendered without SLURM (its scheduler address is local)."""
    cluster = slurm_cluster(options, scheduler_options={"host": "127.0.0.1", "dashboard_address": None})
    try:
        return cluster.job_script()
    finally:
        cluster.close()


def slurm_engine(options: SlurmOptions, *, log: Callable[[str], None] | None = None) -> DaskEngine:
    """Start ``options.jobs`` SLURM jobs of Dask workers and return an engine on them (closed with it)."""
    distributed = _require("distributed", "--slurm")
    cluster = slurm_cluster(options)
    try:
        cluster.scale(jobs=options.jobs)
        client = distributed.Client(cluster)
    except BaseException:
        cluster.close()
        raise
    return DaskEngine(client, cluster=cluster, log=log)
