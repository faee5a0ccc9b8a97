"""Parameter sweeps: ``kae sweep sweep.yaml [NOTEBOOK ...] [--resume]`` (or ``kae run ... --sweep sweep.yaml``).

A sweep file is YAML (the shipped ones are in ``sweeps/``)::

    name: kd_temperature        # optional; default: the file's stem (and --out runs/sweeps/<name>)
    notebooks: ["01"]           # optional; names as on the command line, which replaces them; default: all
    profile: quick              # optional; default quick (--profile overrides it)
    base:                       # fixed parameters of every run
      ALPHA: 0.9
    grid:                       # lists of values: every combination is one run (Cartesian product)
      TEMPERATURE: [1, 4, 20]
      SEED: [0, 1]
    runs:                       # optional explicit runs, after the grid's
      - {TEMPERATURE: 2, SEED: 0}
    summary:                    # optional: summarised over this parameter, these metrics printed
      over: SEED
      metrics: [metrics.distilled_acc.mean]
    plot:                       # optional: plot.png of the summary (mean +- std over `over`)
      x: TEMPERATURE
      y: [metrics.distilled_acc.mean, metrics.scratch_acc.mean]
      xscale: log

Every parameter is checked against each notebook's ``parameters`` cell (names and simple types) before
anything starts. A run's id is its own parameters, ``key=value`` sorted and joined by commas
(``SEED=0,TEMPERATURE=4``; ``default`` when it has none), and its folder is ``<out>/<stem>/<run id>/``
with the executed notebook, ``metrics.json``, ``run.log`` and ``record.json`` (the run's record, written
atomically when it ends; ``--resume`` skips runs whose record says ``ok`` with the same parameters and
notebook code, so a failed or killed run, or one whose notebook was edited, is re-run). Beside them: ``sweep.yaml`` (the resolved grid), ``results.tsv`` (one
row per run: notebook, run id, parameters, status, wall time, claims, ``claim.N`` PASS/FAIL, host,
code_sha, error, the flat metrics as ``metrics.<name>``), ``summary.tsv`` (mean and std over ``summary.over``) and ``plot.png``
(the tables: :mod:`kae_tools.runner.tables`).
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kae_tools.notebooks.catalog import code_sha
from kae_tools.runner.console import print_line, say
from kae_tools.runner.schedule import Engine, run_specs
from kae_tools.runner.spec import DEFAULT_TIMEOUT, KERNEL_NAME, RunResult, RunSpec
from kae_tools.runner.tables import (
    format_value,
    metric_columns,
    plot_summary,
    results_table,
    summarise,
    summary_lines,
    write_table,
)
from kae_utils.atomic import atomic_write_text

__all__ = [
    "RECORD",
    "Sweep",
    "SweepError",
    "check_parameters",
    "expand_runs",
    "load_record",
    "load_sweep",
    "missing_metrics",
    "notebook_parameters",
    "parse_sweep",
    "plan_runs",
    "run_id",
    "run_sweep",
    "save_record",
    "write_resolved",
]

#: The record of a finished run, in its folder.
RECORD = "record.json"
_KEYS = ("name", "notebook", "notebooks", "profile", "base", "grid", "runs", "summary", "plot")
_SUMMARY_KEYS = ("over", "metrics")
_PLOT_KEYS = ("x", "y", "xscale", "title")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SAFE = "._+-"


class SweepError(ValueError):
    """A sweep file or its parameters are wrong; the message says what is allowed."""


@dataclass(frozen=True)
class Sweep:
    """A parsed sweep file: its runs' own parameters (``runs``, grid product first) and the fixed ones."""

    name: str
    notebooks: tuple[str, ...] = ()
    profile: str | None = None
    base: dict[str, Any] = field(default_factory=dict)
    runs: tuple[dict[str, Any], ...] = ({},)
    over: str = "SEED"
    metrics: tuple[str, ...] = ()
    plot: dict[str, Any] | None = None
    source: Path | None = None

    @property
    def varied(self) -> list[str]:
        """Names of the parameters that differ between runs (the keys of the run ids), in file order."""
        names: list[str] = []
        for run in self.runs:
            names.extend(k for k in run if k not in names)
        return names


# ------------------------------------------------------------------------------------------ parsing


def _check_keys(what: str, data: Mapping[str, Any], allowed: Sequence[str]) -> None:
    unknown = [k for k in data if k not in allowed]
    if unknown:
        raise SweepError(f"unknown key {unknown[0]!r} in {what}; allowed keys: {', '.join(allowed)}")


def _check_values(what: str, params: Any) -> dict[str, Any]:
    """A mapping of parameter names (identifiers, not PROFILE) to YAML scalars or lists of them."""
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise SweepError(f"{what} must be a mapping NAME: value; got {type(params).__name__}")
    for name, value in params.items():
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
            raise SweepError(f"{what}: parameter names must be Python identifiers; got {name!r}")
        if name == "PROFILE":
            raise SweepError(f"{what}: PROFILE is set with the sweep's `profile:` key (or --profile)")
        items = value if isinstance(value, list) else [value]
        if not all(v is None or isinstance(v, (bool, int, float, str)) for v in items):
            raise SweepError(f"{what}: {name} must be a number, string, bool or null (or a list of them)")
    return dict(params)


def expand_runs(grid: Mapping[str, Sequence[Any]] | None, runs: Iterable[Mapping[str, Any]] = ()) -> list[dict]:
    """The grid's Cartesian product (keys in file order, the last one varying fastest), then ``runs``.

    No grid and no runs: one run without own parameters.
    """
    expanded: list[dict] = []
    if grid:
        names = list(grid)
        expanded = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grid.values())]
    expanded.extend(dict(r) for r in runs)
    return expanded or [{}]


def _notebook_names(data: Mapping[str, Any]) -> tuple[str, ...]:
    if "notebook" in data and "notebooks" in data:
        raise SweepError("give either `notebook:` or `notebooks:`, not both")
    value = data.get("notebooks", data.get("notebook"))
    if value is None or value == "all":
        return ()
    items = value if isinstance(value, list) else [value]
    # YAML reads 01 as the integer 1: give it back its two digits
    return tuple(f"{v:02d}" if isinstance(v, int) and not isinstance(v, bool) else str(v) for v in items)


def _parse_grid(data: Mapping[str, Any]) -> tuple[dict, list[dict]]:
    grid = _check_values("grid", data.get("grid"))
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SweepError(f"grid: {name} needs a non-empty list of values, e.g. {name}: [0, 1]")
    runs = data.get("runs") or []
    if not isinstance(runs, list):
        raise SweepError("runs must be a list of mappings, e.g. runs: [{SEED: 0}, {SEED: 1, LR: 0.1}]")
    runs = [_check_values(f"runs[{i}]", r) for i, r in enumerate(runs)]
    return grid, runs


def _parse_summary(data: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    summary = data.get("summary") or {}
    if not isinstance(summary, Mapping):
        raise SweepError("summary must be a mapping with `over` and `metrics`")
    _check_keys("summary", summary, _SUMMARY_KEYS)
    metrics = summary.get("metrics") or []
    if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
        raise SweepError("summary.metrics must be a list of results.tsv column names (metrics.<name>)")
    return str(summary.get("over", "SEED")), tuple(metrics)


def _parse_plot(data: Mapping[str, Any], varied: Sequence[str]) -> dict[str, Any] | None:
    plot = data.get("plot")
    if plot is None:
        return None
    if not isinstance(plot, Mapping):
        raise SweepError("plot must be a mapping with `x` and `y`")
    _check_keys("plot", plot, _PLOT_KEYS)
    if plot.get("x") not in varied:
        raise SweepError(f"plot.x must be one of the swept parameters ({', '.join(varied) or 'none'}); "
                         f"got {plot.get('x')!r}")
    ys = plot.get("y")
    ys = [ys] if isinstance(ys, str) else ys
    if not ys or not all(isinstance(y, str) for y in ys):
        raise SweepError("plot.y must name one or more results.tsv columns (metrics.<name>)")
    if plot.get("xscale", "linear") not in ("linear", "log"):
        raise SweepError(f"plot.xscale must be 'linear' or 'log'; got {plot.get('xscale')!r}")
    return {"x": plot["x"], "y": list(ys), "xscale": plot.get("xscale", "linear"), "title": plot.get("title")}


def parse_sweep(data: Any, name: str, source: Path | None = None) -> Sweep:
    """Check a sweep file's content (see the module docstring) and return the :class:`Sweep`."""
    if not isinstance(data, Mapping):
        raise SweepError(f"a sweep file holds a mapping with the keys {', '.join(_KEYS)}")
    _check_keys("the sweep file", data, _KEYS)
    name = str(data.get("name") or name)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or name.startswith("."):
        raise SweepError(f"the sweep's name must match [A-Za-z0-9_.-]+; got {name!r}")
    profile = data.get("profile")
    if profile is not None:
        from kae_utils.env import PROFILES, check_choice

        try:
            check_choice("profile", profile, PROFILES)
        except ValueError as exc:
            raise SweepError(str(exc)) from None
    base = _check_values("base", data.get("base"))
    grid, runs = _parse_grid(data)
    expanded = expand_runs(grid, runs)
    both = sorted({k for run in expanded for k in run} & set(base))
    if both:
        raise SweepError(f"{both[0]} is both fixed (base) and swept (grid or runs); keep it in one place")
    ids = [run_id(r) for r in expanded]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise SweepError(f"the run {twice[0]!r} is listed twice (grid and runs must not repeat a point)")
    over, metrics = _parse_summary(data)
    sweep = Sweep(name, _notebook_names(data), profile, base, tuple(expanded), over, metrics, None, source)
    return replace(sweep, plot=_parse_plot(data, sweep.varied))


def load_sweep(path: str | os.PathLike) -> Sweep:
    """Read and check a sweep file (``SweepError`` saying what is wrong, ``OSError`` if unreadable)."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SweepError(f"{path} is not valid YAML: {exc}") from None
    try:
        return parse_sweep(data, path.stem, source=path)
    except SweepError as exc:
        raise SweepError(f"{path}: {exc}") from None


# ----------------------------------------------------------------------------------------- run ids


def run_id(parameters: Mapping[str, Any]) -> str:
    """``key=value`` of a run's own parameters, sorted by key, joined by ``,`` (``default`` when none).

    Characters other than letters, digits and ``._+-`` in values are percent-encoded, so ids are
    folder names and ``,``/``=`` stay separators.
    """
    if not parameters:
        return "default"
    return ",".join(f"{k}={quote(format_value(parameters[k]), safe=_SAFE)}" for k in sorted(parameters))


# -------------------------------------------------------------------------------------- validation


def notebook_parameters(path: str | os.PathLike) -> dict[str, str | None]:
    """Names of a notebook's ``parameters`` cell with their annotated type (``"int"``, ..., or ``None``)."""
    import papermill

    found = papermill.inspect_notebook(str(path))
    return {name: (info.get("inferred_type_name") or None) for name, info in found.items()}


_TYPES: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}


def _typed(notebook: str, name: str, value: Any, kind: str | None) -> Any:
    """``value`` checked against the annotated ``kind`` (an int for a float becomes a float)."""
    allowed = _TYPES.get(kind or "")
    if allowed is None or value is None:
        return value
    is_bool = isinstance(value, bool)
    if not isinstance(value, allowed) or (is_bool and kind != "bool"):
        raise SweepError(
            f"parameter {name} of {notebook} is annotated {kind}; got {value!r} ({type(value).__name__})"
        )
    return float(value) if kind == "float" and not is_bool else value


def check_parameters(path: str | os.PathLike, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``parameters`` against the notebook's ``parameters`` cell; return them typed.

    Raises :class:`SweepError` naming the notebook, the unknown parameter and the allowed names, or the
    annotated type a value does not have.
    """
    stem = Path(path).stem
    allowed = notebook_parameters(path)
    for name in parameters:
        if name not in allowed:
            raise SweepError(
                f"unknown parameter {name!r} for {stem}; its parameters are: {', '.join(allowed) or '(none)'}"
            )
    return {name: _typed(stem, name, value, allowed[name]) for name, value in parameters.items()}


def plan_runs(
    sweep: Sweep,
    paths: Sequence[Path],
    out: Path,
    *,
    profile: str = "quick",
    extra: Mapping[str, Any] | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    fresh_cache: bool = False,
    threads: int | None = None,
    kernel_name: str = KERNEL_NAME,
) -> list[RunSpec]:
    """One :class:`RunSpec` per notebook and run, every parameter checked first (``SweepError``).

    Each run gets ``PROFILE``, the sweep's ``base``, then ``extra`` (``-p`` on the command line), then its
    own parameters; its folder is ``<out>/<stem>/<run id>``.
    """
    out = Path(out).resolve()
    fixed = {**sweep.base, **dict(extra or {})}
    specs = []
    for path in paths:
        path = Path(path).resolve()
        sha = code_sha(path)
        for own in sweep.runs:
            params = check_parameters(path, {**fixed, **own})
            rid = run_id(own)
            specs.append(
                RunSpec(
                    path=path,
                    parameters={"PROFILE": profile, **params},
                    runs_root=out,
                    run_dir=out / path.stem / rid,
                    run_id=rid,
                    timeout=timeout,
                    fresh_cache=fresh_cache,
                    threads=threads,
                    env={"KAE_PROGRESS": "plain", "PYTHONUNBUFFERED": "1"},
                    kernel_name=kernel_name,
                    code_sha=sha,
                )
            )
    return specs


def _shown_path(path: Path) -> str:
    """``path`` relative to the repository when it lies inside it (results files name no machine's folders)."""
    from kae_utils.env import repo_root

    path = Path(path).resolve()
    try:
        return os.fspath(path.relative_to(repo_root()))
    except ValueError:
        return os.fspath(path)


def write_resolved(sweep: Sweep, specs: Sequence[RunSpec], out: Path) -> Path:
    """Write ``<out>/sweep.yaml``: the sweep as resolved, every run with its folder and full parameters."""
    import yaml

    out = Path(out)
    data = {
        "name": sweep.name,
        "source": _shown_path(sweep.source) if sweep.source else None,
        "summary": {"over": sweep.over, "metrics": list(sweep.metrics)},
        "plot": sweep.plot,
        "runs": [
            {
                "notebook": Path(s.path).stem,
                "run_id": s.run_id,
                "folder": os.fspath(Path(s.run_dir).relative_to(out.resolve())),
                "parameters": s.parameters,
            }
            for s in specs
        ],
    }
    header = "# resolved by kae sweep: every run with its folder and full parameters\n"
    return atomic_write_text(out / "sweep.yaml", header + yaml.safe_dump(data, sort_keys=False))


# ----------------------------------------------------------------------------------------- records


def save_record(result: RunResult, run_dir: Path) -> Path:
    """Write ``<run_dir>/record.json`` atomically: the run's full record (``--resume`` reads it)."""
    text = json.dumps(result.to_dict(), indent=1, allow_nan=False, default=str) + "\n"
    return atomic_write_text(Path(run_dir) / RECORD, text)


def load_record(run_dir: Path) -> RunResult | None:
    """The record in ``run_dir``, or ``None`` when there is none (or it cannot be read)."""
    try:
        return RunResult.from_dict(json.loads((Path(run_dir) / RECORD).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


# ---------------------------------------------------------------------------------------- running


def missing_metrics(sweep: Sweep, table) -> list[str]:
    """Lines naming the ``summary.metrics`` and ``plot.y`` that are no numeric column of ``table``, with
    the closest column names (a typo in a sweep file is reported, not silently plotted as nothing)."""
    import difflib

    numeric = metric_columns(table)
    wanted = [*sweep.metrics, *((sweep.plot or {}).get("y") or [])]
    lines = []
    for name in dict.fromkeys(wanted):
        if name not in numeric:
            close = difflib.get_close_matches(name, numeric, n=3, cutoff=0.8)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            lines.append(f"note: {name} is not a numeric column of results.tsv{hint}")
    return lines


def _write_outputs(sweep: Sweep, results: Sequence[RunResult], out: Path, final: bool) -> Any:
    """results.tsv always; at the end also summary.tsv and plot.png. Returns the table and the summary."""
    table = results_table(results)
    write_table(table, out / "results.tsv")
    if not final:
        return table, None
    summary = summarise(table, over=sweep.over)
    write_table(summary, out / "summary.tsv")
    if sweep.plot is not None and any(f"{y}:mean" in summary for y in sweep.plot["y"]):
        plot_summary(summary, sweep.plot, out / "plot.png", over=sweep.over, title=sweep.name)
    return table, summary


def _still_valid(previous: RunResult | None, spec: RunSpec) -> bool:
    """Whether a stored record may stand for ``spec``: ok, same parameters, same notebook code."""
    return (
        previous is not None
        and previous.ok
        and previous.parameters == spec.parameters
        and previous.code_sha == spec.code_sha
    )


def run_sweep(
    sweep: Sweep,
    specs: Sequence[RunSpec],
    out: Path,
    *,
    engine: Engine | None = None,
    jobs: int = 1,
    resume: bool = False,
    log: Callable[[str], None] | None = None,
) -> list[RunResult]:
    """Execute the planned ``specs`` of ``sweep`` into ``out``; return every run's record, in plan order.

    Writes ``sweep.yaml`` first, each run's ``record.json`` as it ends, ``results.tsv`` after each run
    (so an interrupted sweep still has the table of what finished), then ``summary.tsv`` and the plot.
    With ``resume``, a run whose record says ``ok`` with the same parameters and the same notebook code
    (:func:`kae_tools.notebooks.catalog.code_sha`) is not run again.
    """
    log = log if log is not None else print_line
    out = Path(out).resolve()
    write_resolved(sweep, specs, out)
    done: dict[int, RunResult] = {}
    todo: list[int] = []
    position = {Path(spec.run_dir): i for i, spec in enumerate(specs)}
    for i, spec in enumerate(specs):
        previous = load_record(spec.run_dir) if resume else None
        if _still_valid(previous, spec):
            done[i] = previous
            say(log, f"[skip]    {spec.label} (ok in an earlier run)")
            continue
        (Path(spec.run_dir) / RECORD).unlink(missing_ok=True)
        todo.append(i)

    def finished(spec: RunSpec, result: RunResult) -> None:
        save_record(result, spec.run_dir)
        done[position[Path(spec.run_dir)]] = result
        _write_outputs(sweep, [done[k] for k in sorted(done)], out, final=False)

    run_specs([specs[i] for i in todo], engine=engine, jobs=jobs, log=log, on_result=finished)
    results = [done[i] for i in range(len(specs))]
    table, summary = _write_outputs(sweep, results, out, final=True)
    for line in [*summary_lines(summary, sweep.over, sweep.metrics), *missing_metrics(sweep, table)]:
        say(log, line)
    return results
