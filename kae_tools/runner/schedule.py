"""Scheduling: many runs on an engine, records back in input order (:func:`run_specs`), and the plain
batch of notebooks (:func:`run_notebooks`) that ``kae run`` and ``make outputs`` start.

An engine (:class:`Engine`, implemented in :mod:`kae_tools.runner.executors`) submits specs and hands back
futures; this module logs each run's end, turns a lost task into a ``failed`` record, and on an exception
or Ctrl-C cancels and kills everything still running.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, as_completed
from pathlib import Path
from typing import Protocol

from kae_tools.runner.console import end_line, print_line, say
from kae_tools.runner.executors import LocalEngine
from kae_tools.runner.spec import (
    DEFAULT_TIMEOUT,
    KERNEL_NAME,
    RunResult,
    RunSpec,
    first_lines,
    injected_parameters,
)

__all__ = ["Engine", "run_notebooks", "run_specs"]


class Engine(Protocol):
    """Where runs execute (see :mod:`kae_tools.runner.executors`): submit specs, cancel everything, close."""

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
        error=first_lines(f"the run's task was lost: {type(exc).__name__}: {exc}"),
        run_id=spec.run_id,
        parameters=dict(spec.parameters) if spec.parameters is not None else None,
    )


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
    log = log if log is not None else print_line
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1; got {jobs}")
    if not specs:
        return []
    own = engine is None
    if engine is None:
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
            say(log, end_line(outcome(future, spec)))

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
    successfully is replaced by its executed copy cleaned with :mod:`kae_tools.notebooks.nbclean`.
    ``out`` defaults to ``<repo>/runs``; ``timeout`` (seconds, ``None`` or 0 for none) applies per
    notebook; ``fresh_cache`` gives each notebook an empty temporary ``KAE_CACHE_DIR``. With several jobs,
    each kernel gets ``OMP_NUM_THREADS`` = its share of the cores unless that is already set (or
    ``threads`` says how many). ``log`` receives one line when each notebook starts and ends (default:
    printed and flushed; pass ``log=lambda line: None`` for silence). ``engine``: where to execute
    (default: this machine, see :mod:`kae_tools.runner.executors`). One failure never stops the others.
    """
    injected = injected_parameters(profile, parameters, in_place)
    if out is None:
        # kae_utils.env imports torch (seconds): only when no ``out`` is given
        from kae_utils.env import repo_root

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


