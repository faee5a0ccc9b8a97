"""Measure the batch runner's overhead per run: ``python -m data_scripts.bench_runner`` (run by ``make bench``).

The same tiny notebook (a ``parameters`` cell and one cell that writes metrics.json) is run ``--runs``
times, one at a time, through the local pool and through a Dask ``LocalCluster`` with one worker
process. Per engine, ``results/runner_overhead.tsv`` gets:

* ``startup_s``: creating the engine (a thread pool; a scheduler and a worker process);
* ``per_run_s``: wall time per run seen by the client, submission to record;
* ``notebook_s``: the median time inside the task (papermill and its kernel, the same for both);
* ``overhead_s``: ``per_run_s - notebook_s``, what the engine adds to each run;
* ``noop_ms``: the median round trip of an empty task (scheduling alone), from ``--noops`` of them.

Run on a shared machine, the numbers include its load; the kernel start dominates a run either way.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from kae_tools.runner import executors
from kae_tools.runner.execute import available_cpus
from kae_tools.runner.spec import RunSpec
from kae_utils.env import repo_root

_BODY = """\
import json, os
from pathlib import Path
record = {"notebook": "00_bench", "profile": PROFILE, "parameters": {"SEED": SEED}, "metrics": {"seed": SEED},
          "claims": {"held": 1, "total": 1, "items": [{"claim": "it ran", "holds": True, "details": ""}]}}
(Path(os.environ["KAE_RUN_DIR"]) / "metrics.json").write_text(json.dumps(record))
"""


def tiny_notebook(folder: Path) -> Path:
    """Write the benchmark's notebook (no torch import: a run costs about one kernel start)."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook()
    nb.metadata.kernelspec = {"display_name": "Python 3", "language": "python", "name": "python3"}
    params = new_code_cell('PROFILE: str = "quick"  # profile\nSEED: int = 0  # seed\n')
    params.metadata.tags = ["parameters"]
    nb.cells = [params, new_code_cell(_BODY)]
    path = folder / "00_bench.ipynb"
    nbformat.write(nb, path)
    return path


def _specs(path: Path, out: Path, runs: int) -> list[RunSpec]:
    return [
        RunSpec(path, {"PROFILE": "quick", "SEED": i}, out, out / "00_bench" / f"SEED={i}", run_id=f"SEED={i}",
                timeout=300, env={"KAE_PROGRESS": "plain"})
        for i in range(runs)
    ]


def _noop_ms(submit: Callable[[], object], count: int) -> float:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        submit().result()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def measure(engine_name: str, path: Path, out: Path, runs: int, noops: int) -> dict[str, object]:
    """Start one engine, time ``runs`` sequential runs and ``noops`` empty tasks through it, close it."""
    start = time.perf_counter()
    if engine_name == "local":
        engine = executors.LocalEngine(1, log=lambda line: None)
        noop = lambda: engine._pool.submit(abs, -1)  # noqa: E731 - the pool's own round trip
    else:
        engine = executors.local_cluster_engine(n_workers=1, threads_per_worker=1, log=lambda line: None)
        noop = lambda: engine.client.submit(abs, -1, pure=False)  # noqa: E731
    startup = time.perf_counter() - start
    try:
        per_run, inside = [], []
        for spec in _specs(path, out / engine_name, runs):
            start = time.perf_counter()
            result = engine.submit(spec).result()
            per_run.append(time.perf_counter() - start)
            inside.append(result.wall_s)
            if not result.ok:
                raise RuntimeError(f"the benchmark notebook failed under {engine_name}: {result.error}")
        noop_ms = _noop_ms(noop, noops)
    finally:
        engine.close()
    per_run_s, notebook_s = statistics.median(per_run), statistics.median(inside)
    return {"engine": engine_name, "runs": runs, "startup_s": startup, "per_run_s": per_run_s,
            "notebook_s": notebook_s, "overhead_s": per_run_s - notebook_s, "noop_ms": noop_ms}


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; writes the TSV and prints it."""
    parser = argparse.ArgumentParser(prog="python -m data_scripts.bench_runner", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of the tiny notebook per engine (default: 5)")
    parser.add_argument("--noops", type=int, default=50, help="empty tasks per engine (default: 50)")
    parser.add_argument("--out", type=Path, default=None, help="TSV (default: results/runner_overhead.tsv)")
    args = parser.parse_args(argv)
    out_path = args.out or repo_root() / "results" / "runner_overhead.tsv"
    rows = []
    with tempfile.TemporaryDirectory(prefix="kae_bench_runner_") as tmp:
        path = tiny_notebook(Path(tmp))
        for name in ("local", "dask LocalCluster"):
            rows.append(measure(name, path, Path(tmp) / "runs", args.runs, args.noops))
    header = ["engine", "runs", "startup_s", "per_run_s", "notebook_s", "overhead_s", "noop_ms", "cpus", "python"]
    lines = ["\t".join(header)]
    for row in rows:
        lines.append("\t".join([
            str(row["engine"]), str(row["runs"]), *(f"{row[k]:.3f}" for k in header[2:6]), f"{row['noop_ms']:.2f}",
            str(available_cpus()), platform.python_version(),
        ]))
    from kae_utils.atomic import atomic_write_text

    atomic_write_text(out_path, "\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nwritten to {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
