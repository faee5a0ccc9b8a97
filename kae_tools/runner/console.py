"""What the runner prints and writes about its runs: log lines, the summary table, the timings file.

Lines from several threads (a local pool's runs end in their own threads) go through :func:`say`, which
holds one lock, so they never interleave.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from kae_tools.runner.spec import RunResult

__all__ = ["end_line", "format_summary", "print_line", "say", "write_timings"]

_print_lock = threading.Lock()


def print_line(line: str) -> None:
    """The default log: print ``line`` and flush."""
    print(line, flush=True)


def say(log: Callable[[str], None], line: str) -> None:
    """Hand ``line`` to ``log`` under the print lock (one whole line at a time, whatever thread calls)."""
    with _print_lock:
        log(line)


def end_line(result: RunResult) -> str:
    """The log line of a run that ended: status, label, wall time, claims."""
    return f"[{result.status:<7}] {result.label}  {result.wall_s:.1f} s  claims {result.claims}"


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

