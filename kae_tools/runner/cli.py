"""The runner's command line: ``kae run [NOTEBOOK ...] [options]`` and ``kae sweep SWEEP.yaml [NOTEBOOK ...]``.

Every notebook is executed with papermill in a subprocess of its own (its own process group, so that a
per-notebook timeout kills it together with its kernel), in the notebook's folder, into
``<out>/<stem>/<stem>.ipynb``; the source notebook is never overwritten except with ``--in-place``
(``make outputs``), which replaces it by the executed, metadata-cleaned copy only when execution
succeeded. At the end a summary table (notebook, status, wall time, claims held) is printed; the claims
are read from the ``<out>/<stem>/metrics.json`` each notebook writes through :mod:`kae_utils`.

Examples::

    kae run                                          # every notebook, quick profile
    kae run 01_knowledge_distillation --profile full --out runs_full
    kae run 01 02 --jobs 2 -p SEED 1 --timings results/timings.tsv
    kae run --in-place                               # make outputs: stored outputs, CPU, quick

Parameter sweeps (``kae sweep sweep.yaml``, the same as ``kae run --sweep sweep.yaml``; see
:mod:`kae_tools.runner.sweep`) run each grid point into ``<out>/<stem>/<run id>/`` and collect one
``results.tsv``. Every run is one task, :func:`~kae_tools.runner.execute.execute_run` of a picklable
:class:`~kae_tools.runner.spec.RunSpec`, scheduled on an executor (:mod:`kae_tools.runner.executors`):
this machine's thread pool by default, an existing Dask cluster with ``--dask ADDRESS``, or SLURM jobs
with ``--slurm``::

    kae sweep sweeps/kd_temperature.yaml 01 --jobs 2 --resume
    kae sweep sweeps/seeds.yaml --dask tcp://scheduler:8786

Exit code: 0 when every notebook ran (a claim that does not hold is a result, not a failure), 1 when
some notebook failed or timed out, 2 for a usage error (unknown notebook or parameter, refused options).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from kae_tools.notebooks.catalog import UnknownNotebookError, find_notebooks
from kae_tools.runner import executors
from kae_tools.runner.console import format_summary, write_timings
from kae_tools.runner.execute import Terminated, kill_active_runs, raise_terminated
from kae_tools.runner.executors import MissingDaskError, SlurmOptions, slurm_job_script
from kae_tools.runner.schedule import Engine, run_notebooks
from kae_tools.runner.spec import (
    DEFAULT_TIMEOUT,
    InPlaceParametersError,
    injected_parameters,
    parse_parameter,
)
from kae_tools.runner.sweep import SweepError, load_sweep, plan_runs, run_sweep

__all__ = ["main", "sweep_main"]


def _parser(sweep_file: bool = False) -> argparse.ArgumentParser:
    """``kae run``'s options; with ``sweep_file``, ``kae sweep``'s: the sweep file first, as a positional."""
    # kae_utils.core.paths imports torch (seconds); the parser needs its PROFILES
    from kae_utils.core.params import PROFILES

    if sweep_file:
        parser = argparse.ArgumentParser(
            prog="kae sweep",
            description="Run the grid of a sweep file (every notebook of it, or those named) and collect "
            "results.tsv, summary.tsv and plot.png; the same as `kae run --sweep SWEEP`.",
        )
        parser.add_argument("sweep", type=Path, metavar="SWEEP", help="a sweep file (YAML), e.g. sweeps/seeds.yaml")
    else:
        parser = argparse.ArgumentParser(
            prog="kae run",
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
    sweeps = parser.add_argument_group("sweeps (see kae_tools.runner.sweep)")
    if not sweep_file:
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


def _slurm_options(args: argparse.Namespace) -> SlurmOptions:
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
    injected_parameters(args.profile or "quick", parameters, args.in_place)
    if not paths:
        raise UnknownNotebookError("no notebooks to run")
    return paths


def _plan_sweep(args: argparse.Namespace, parameters: dict):
    """(sweep, specs, out) for ``--sweep``, every parameter checked; raises the usage errors."""
    # kae_utils.core.paths imports torch (seconds): only here, once the options are checked
    from kae_utils.core.paths import repo_root

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
    """``kae run``: returns the exit code (0 all ok, 1 some failed, 2 usage error)."""
    parser = _parser()
    return _run(parser, parser.parse_intermixed_args(list(sys.argv[1:] if argv is None else argv)))


def sweep_main(argv: Sequence[str] | None = None) -> int:
    """``kae sweep SWEEP.yaml [NOTEBOOK ...]``: ``kae run --sweep SWEEP.yaml``, the sweep file first."""
    parser = _parser(sweep_file=True)
    return _run(parser, parser.parse_intermixed_args(list(sys.argv[1:] if argv is None else argv)))


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Check the options, plan, execute and summarise; the exit code."""
    problem = _check_options(args)
    if problem:
        parser.error(problem)
    parameters = {name: parse_parameter(value) for name, value in args.parameter}
    if args.slurm_print:
        try:
            print(slurm_job_script(_slurm_options(args)), flush=True)
        except MissingDaskError as exc:
            return _error(str(exc))
        return 0

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
        previous_sigterm = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        if plan is not None:
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
