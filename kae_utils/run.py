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

Exit code: 0 when every notebook ran (a claim that does not hold is a result, not a failure), 1 when
some notebook failed or timed out, 2 for a usage error (unknown notebook, refused options).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_TIMEOUT",
    "KERNEL_NAME",
    "InPlaceParametersError",
    "RunResult",
    "UnknownNotebookError",
    "find_notebooks",
    "format_summary",
    "main",
    "parse_parameter",
    "read_claims",
    "run_notebook",
    "run_notebooks",
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
# kae_utils.env (and with it torch) is imported lazily: the worker subprocess that runs papermill
# for each notebook never needs it, and importing torch costs seconds.
_ERROR_LINES = 6
_KILL_GRACE_S = 3.0


class UnknownNotebookError(ValueError):
    """A notebook name or path given to the runner matches no notebook; the message lists those available."""


class InPlaceParametersError(ValueError):
    """``--in-place`` was combined with parameters: stored outputs are made from the quick profile only."""


@dataclass
class RunResult:
    """Outcome of one notebook run.

    ``status`` is ``"ok"``, ``"failed"`` or ``"timeout"``; ``claims_held``/``claims_total`` come from the
    notebook's ``metrics.json`` (``None`` when it wrote none); ``error`` holds the first lines of the error
    (``ename: evalue`` for an exception in a cell); ``output_path`` is the executed notebook (the source
    notebook itself after a successful ``--in-place`` run).
    """

    notebook: str
    status: str
    wall_s: float
    claims_held: int | None = None
    claims_total: int | None = None
    error: str | None = None
    output_path: Path | None = None

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
    ``notebooks/[0-9][0-9]_*.ipynb``, sorted. ``root`` defaults to :func:`kae_utils.env.repo_root`.

    Raises :class:`UnknownNotebookError` (listing the available notebooks) for a name that matches
    nothing, and also when two different notebooks share a stem (their run folders would collide).
    """
    if root is None:
        from kae_utils.env import repo_root

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


def read_claims(metrics_path: Path) -> tuple[int | None, int | None]:
    """``(held, total)`` from a notebook's ``metrics.json``; ``(None, None)`` when absent or malformed."""
    try:
        claims = json.loads(Path(metrics_path).read_text(encoding="utf-8"))["claims"]
        held, total = claims["held"], claims["total"]
    except (OSError, ValueError, KeyError, TypeError):
        return None, None
    if not isinstance(held, int) or not isinstance(total, int):
        return None, None
    return held, total


def _injected_parameters(
    profile: str, parameters: Mapping[str, object] | None, in_place: bool
) -> dict[str, object] | None:
    from kae_utils.env import PROFILES

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


def _kill_active() -> None:
    with _active_lock:
        procs = list(_active)
    for proc in procs:
        _kill_tree(proc)


def _first_lines(text: str, n: int = _ERROR_LINES) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines()]
    if len(lines) > n:
        lines = [*lines[:n], "..."]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# running


def threads_per_job(jobs: int, cpus: int | None = None) -> int:
    """CPU threads each of ``jobs`` concurrent notebooks gets (``OMP_NUM_THREADS``): the cores shared out, at least 1."""
    cpus = cpus if cpus is not None else (os.cpu_count() or 1)
    return max(1, cpus // max(1, jobs))


def run_notebook(
    path: Path,
    *,
    parameters: Mapping[str, object] | None,
    out: Path,
    timeout: float | None = DEFAULT_TIMEOUT,
    in_place: bool = False,
    env: Mapping[str, str] | None = None,
    kernel_name: str = KERNEL_NAME,
) -> RunResult:
    """Execute one notebook in a subprocess; a lower-level helper of :func:`run_notebooks`.

    ``parameters`` is passed to papermill as is (``None``: nothing injected); ``env`` is the complete
    environment of the worker and its kernel (default: the current one with ``KAE_RUNS_DIR=out``).
    """
    path = Path(path).resolve()
    stem = path.stem
    out = Path(out).resolve()
    run_dir = out / stem
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.json").unlink(missing_ok=True)
    executed = run_dir / f"{stem}.ipynb"
    if executed.resolve() == path:
        raise ValueError(f"the output folder {out} would overwrite the source notebook {path}")
    if env is None:
        env = {**os.environ, "KAE_RUNS_DIR": str(out)}

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
    held, total = read_claims(run_dir / "metrics.json")
    return RunResult(
        notebook=stem,
        status=status,
        wall_s=wall_s,
        claims_held=held,
        claims_total=total,
        error=_first_lines(error) if error else None,
        output_path=output_path,
    )


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
) -> list[RunResult]:
    """Run ``paths`` (notebook files) with papermill, up to ``jobs`` at a time; results in input order.

    ``profile`` is injected as the parameter ``PROFILE`` together with ``parameters``. With
    ``in_place=True`` nothing is injected (the profile must be ``"quick"`` and ``parameters`` empty,
    otherwise :class:`InPlaceParametersError`), the kernel sees no GPU, and each notebook that ran
    successfully is replaced by its executed copy cleaned with :mod:`kae_utils.nbclean`.
    ``out`` defaults to ``<repo>/runs``; ``timeout`` (seconds, ``None`` or 0 for none) applies per
    notebook; ``fresh_cache`` gives each notebook an empty temporary ``KAE_CACHE_DIR``. With several jobs,
    each kernel gets ``OMP_NUM_THREADS`` = its share of the cores unless that is already set. ``log`` receives
    one line when each notebook starts and ends (default: printed and flushed; pass
    ``log=lambda line: None`` for silence). One failure never stops the others.
    """
    injected = _injected_parameters(profile, parameters, in_place)
    log = log if log is not None else _print
    if out is None:
        from kae_utils.env import repo_root

        out = repo_root() / "runs"
    out_dir = Path(out).expanduser().resolve()
    paths = [Path(p).resolve() for p in paths]
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1; got {jobs}")

    base_env = dict(os.environ)
    base_env.update({"KAE_RUNS_DIR": str(out_dir), "KAE_PROGRESS": "plain", "PYTHONUNBUFFERED": "1"})
    concurrent = min(jobs, len(paths))
    if concurrent > 1 and "OMP_NUM_THREADS" not in base_env:
        # share the cores: torch's thread pools oversubscribed across kernels make small ops crawl
        base_env["OMP_NUM_THREADS"] = str(threads_per_job(concurrent))
    if in_place:
        base_env["CUDA_VISIBLE_DEVICES"] = ""

    def one(path: Path) -> RunResult:
        _say(log, f"[start]   {path.stem}")
        cache_tmp = tempfile.mkdtemp(prefix="kae_cache_") if fresh_cache else None
        env = dict(base_env)
        if cache_tmp is not None:
            env["KAE_CACHE_DIR"] = cache_tmp
        try:
            result = run_notebook(
                path,
                parameters=injected,
                out=out_dir,
                timeout=timeout,
                in_place=in_place,
                env=env,
                kernel_name=kernel_name,
            )
        except Exception as exc:  # the runner itself failed for this notebook; the others go on
            result = RunResult(path.stem, "failed", 0.0, error=f"{type(exc).__name__}: {exc}")
        finally:
            if cache_tmp is not None:
                shutil.rmtree(cache_tmp, ignore_errors=True)
        _say(log, f"[{result.status:<7}] {result.notebook}  {result.wall_s:.1f} s  claims {result.claims}")
        return result

    if jobs == 1 or len(paths) <= 1:
        return [one(p) for p in paths]
    with ThreadPoolExecutor(max_workers=min(jobs, len(paths))) as pool:
        futures = [pool.submit(one, p) for p in paths]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            _kill_active()
            raise


# --------------------------------------------------------------------------------------------------
# reporting


def format_summary(results: Sequence[RunResult]) -> str:
    """A plain-text table (notebook, status, wall_s, claims), followed by the errors of failed notebooks."""
    header = ("notebook", "status", "wall_s", "claims")
    rows = [(r.notebook, r.status, f"{r.wall_s:.1f}", r.claims) for r in results]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(w) if i == 2 else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    out = [line(header), "  ".join("-" * w for w in widths)]
    out.extend(line(row) for row in rows)
    failures = [r for r in results if not r.ok]
    if failures:
        out.append("")
        for r in failures:
            out.append(f"{r.notebook} ({r.status}):")
            out.extend(f"    {text}" for text in (r.error or "(no error message)").splitlines())
    return "\n".join(out)


def write_timings(results: Sequence[RunResult], path: str | os.PathLike, profile: str) -> Path:
    """Write a TSV ``notebook, profile, status, wall_s, claims`` (parent folders created); return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["notebook\tprofile\tstatus\twall_s\tclaims"]
    lines.extend(f"{r.notebook}\t{profile}\t{r.status}\t{r.wall_s:.1f}\t{r.claims}" for r in results)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
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
    from kae_utils.env import PROFILES

    parser = argparse.ArgumentParser(
        prog="python -m kae_utils.run",
        description="Run the tutorial notebooks with papermill and summarise status, time and claims.",
    )
    parser.add_argument(
        "notebooks",
        nargs="*",
        metavar="NOTEBOOK",
        help="path, file name, stem or number of a notebook (default: every notebooks/NN_*.ipynb)",
    )
    parser.add_argument(
        "--profile", choices=PROFILES, default="quick", help="PROFILE parameter (default: quick)"
    )
    parser.add_argument("--jobs", type=int, default=1, help="notebooks run concurrently (default: 1)")
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: <repo>/runs)")
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (0 all ok, 1 some failed, 2 usage error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == [_WORKER_FLAG]:
        return _worker(argv[1])
    parser = _parser()
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    parameters = {name: parse_parameter(value) for name, value in args.parameter}

    try:
        paths = find_notebooks(args.notebooks)
        _injected_parameters(args.profile, parameters, args.in_place)
    except UnknownNotebookError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    except InPlaceParametersError:
        print(
            "error: --in-place takes no --profile other than quick and no -p parameters: "
            "stored outputs are made from the quick profile only",
            file=sys.stderr,
            flush=True,
        )
        return 2
    if not paths:
        print("error: no notebooks to run", file=sys.stderr, flush=True)
        return 2

    try:
        results = run_notebooks(
            paths,
            profile=args.profile,
            parameters=parameters,
            out=args.out,
            jobs=args.jobs,
            timeout=args.timeout,
            in_place=args.in_place,
            fresh_cache=args.fresh_cache,
        )
    except KeyboardInterrupt:
        _kill_active()
        print("interrupted", file=sys.stderr, flush=True)
        return 130
    print("", flush=True)
    print(format_summary(results), flush=True)
    if args.timings is not None:
        write_timings(results, args.timings, args.profile)
        print(f"\ntimings written to {args.timings}", flush=True)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
