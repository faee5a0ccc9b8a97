"""The tables of a sweep's runs: ``results.tsv`` (one row per run), ``summary.tsv`` (mean and std over one
parameter, usually ``SEED``), the lines printed at the end, the README's markdown table and ``plot.png``.

pandas and matplotlib are imported only inside the functions that need them (``kae run`` without a sweep
never loads them).
"""

from __future__ import annotations

import io
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kae_tools.runner.spec import RunResult
from kae_utils.core.atomic import atomic_write, atomic_write_text

__all__ = [
    "claim_columns",
    "flatten",
    "format_mean_std",
    "format_value",
    "metric_columns",
    "parameter_columns",
    "plot_summary",
    "read_table",
    "results_table",
    "summarise",
    "summary_lines",
    "summary_markdown",
    "write_table",
]

_FIXED_COLUMNS = ("notebook", "run_id")
_STATUS_COLUMNS = ("status", "wall_s", "claims")


def format_value(value: Any) -> str:
    """A parameter value as it appears in run ids and tables (``4``, ``0.5``, ``True``, ``None``, text)."""
    if isinstance(value, list):
        return "[" + ";".join(format_value(v) for v in value) + "]"
    return str(value)


def flatten(value: Any, prefix: str) -> dict[str, Any]:
    """Nested dicts to ``prefix.a.b`` keys; lists become compact JSON text, ``None`` stays ``None``."""
    if isinstance(value, Mapping):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(flatten(item, f"{prefix}.{key}"))
        return flat
    if isinstance(value, (list, tuple)):
        return {prefix: json.dumps(value, separators=(",", ":"))}
    return {prefix: value}


def _first_line(text: str | None) -> str | None:
    return text.strip().splitlines()[0] if text and text.strip() else None


def _row(result: RunResult) -> dict[str, Any]:
    record = result.metrics or {}
    items = (record.get("claims") or {}).get("items") or []
    row: dict[str, Any] = {"notebook": result.notebook, "run_id": result.run_id or "default"}
    row.update(result.parameters or {})
    row.update({"status": result.status, "wall_s": round(result.wall_s, 2), "claims": result.claims})
    row.update({f"claim.{i}": "PASS" if it.get("holds") else "FAIL" for i, it in enumerate(items, 1)})
    row.update({f"untestable.{i}": bool(it.get("untestable")) for i, it in enumerate(items, 1)})
    row.update({f"effect.{i}": (it.get("effect") or {}).get("value") for i, it in enumerate(items, 1)})
    row.update({"host": result.host, "code_sha": result.code_sha, "error": _first_line(result.error)})
    row.update(flatten(record.get("metrics") or {}, "metrics"))
    return row


def _numbered(columns: Sequence[str], prefix: str) -> list[str]:
    """The ``<prefix>.N`` columns among ``columns``, by N."""
    return sorted((c for c in columns if re.fullmatch(rf"{prefix}\.\d+", c)), key=lambda c: int(c.split(".")[1]))


def results_table(results: Sequence[RunResult]):
    """A ``pandas.DataFrame``, one row per run: notebook, run_id, the parameters (``PROFILE`` first), status,
    wall_s, claims, ``claim.N`` (PASS/FAIL), ``untestable.N`` (bool), ``effect.N`` (the claim's effect value, empty
    without one), host, code_sha (of the notebook that ran), error (first line),
    then ``metrics.<flat name>``."""
    import pandas as pd

    rows = [_row(r) for r in results]
    params: list[str] = ["PROFILE"] if any("PROFILE" in (r.parameters or {}) for r in results) else []
    for r in results:
        params.extend(k for k in (r.parameters or {}) if k not in params)
    rest: list[str] = []
    for row in rows:
        rest.extend(k for k in row if k not in rest and k not in params and k not in _FIXED_COLUMNS)
    claims = [*_numbered(rest, "claim"), *_numbered(rest, "untestable"), *_numbered(rest, "effect")]
    metrics = [c for c in rest if c.startswith("metrics.")]
    columns = [*_FIXED_COLUMNS, *params, *_STATUS_COLUMNS, *claims, "host", "code_sha", "error", *metrics]
    return pd.DataFrame(rows, columns=columns)


def write_table(table, path: str | os.PathLike) -> Path:
    """Write a DataFrame as TSV atomically (no index); return the path."""
    return atomic_write_text(path, table.to_csv(sep="\t", index=False))


def read_table(path: str | os.PathLike):
    """Read a ``results.tsv`` (or ``summary.tsv``) back as a DataFrame."""
    import pandas as pd

    return pd.read_csv(path, sep="\t", dtype={"run_id": str, "claims": str, "code_sha": str})


def parameter_columns(table) -> list[str]:
    """The parameter columns of a results table: those between ``run_id`` and ``status``."""
    columns = list(table.columns)
    return columns[columns.index("run_id") + 1 : columns.index("status")]


def claim_columns(table) -> list[str]:
    """The ``claim.N`` columns, in order."""
    return [c for c in table.columns if re.fullmatch(r"claim\.\d+", str(c))]


def metric_columns(table) -> list[str]:
    """The numeric ``metrics.*`` columns (booleans and text left out)."""
    import pandas as pd

    return [
        c for c in table.columns
        if str(c).startswith("metrics.")
        and pd.api.types.is_numeric_dtype(table[c]) and not pd.api.types.is_bool_dtype(table[c])
    ]


def summarise(table, over: str = "SEED"):
    """Summarise a results table over the parameter ``over`` (mean and std with :func:`kae_utils.evaluation.results.mean_std`).

    One row per notebook and combination of the other parameters: ``runs`` and ``ok`` counts, the values
    of ``over`` (comma-separated), ``claim.N`` as ``held/ok runs``, then ``<column>:mean`` and
    ``<column>:std`` of ``wall_s`` (all runs) and of every numeric metric (runs that are ``ok``).
    """
    import pandas as pd

    from kae_utils.evaluation.results import mean_std

    params = [c for c in parameter_columns(table) if c != over]
    keys = ["notebook", *params]
    rows = []
    for values, group in table.groupby(keys, dropna=False, sort=False):
        ok = group[group["status"] == "ok"]
        row: dict[str, Any] = dict(zip(keys, values, strict=True))
        row.update({"runs": len(group), "ok": len(ok)})
        if over in table.columns:
            row[over] = ",".join(format_value(v) for v in group[over])
        for column in claim_columns(table):
            verdicts = ok[column].dropna()
            row[column] = f"{int((verdicts == 'PASS').sum())}/{len(verdicts)}" if len(verdicts) else None
        row["wall_s:mean"], row["wall_s:std"] = mean_std(group["wall_s"])
        for column in metric_columns(table):
            numbers = pd.to_numeric(ok[column], errors="coerce").dropna()
            if len(numbers):
                row[f"{column}:mean"], row[f"{column}:std"] = mean_std(numbers)
        rows.append(row)
    return pd.DataFrame(rows)


def format_mean_std(mean: float, std: float, digits: int = 3) -> str:
    """``"0.981 ± 0.004"``; ``"-"`` for a missing mean."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _claims_cell(row: Mapping[str, Any], claims: Sequence[str]) -> str:
    cells = [str(row[c]) for c in claims if isinstance(row.get(c), str)]
    return " · ".join(cells) if cells else "-"


def _group_label(row: Mapping[str, Any], params: Sequence[str]) -> str:
    own = [f"{p}={format_value(row[p])}" for p in params if p != "PROFILE" and not _missing(row[p])]
    return ",".join(own) or "default"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _summary_params(summary, over: str) -> list[str]:
    fixed = {"notebook", "runs", "ok", over}
    columns = list(summary.columns)
    end = columns.index("runs") if "runs" in columns else len(columns)
    return [c for c in columns[:end] if c not in fixed]


def summary_lines(summary, over: str = "SEED", metrics: Sequence[str] = ()) -> list[str]:
    """One printed line per summary row: the group, runs ok, claims per claim, the chosen metrics."""
    params = _summary_params(summary, over)
    claims = claim_columns(summary)
    lines = []
    for row in summary.to_dict("records"):
        parts = [f"{row['notebook']} {_group_label(row, params)}: {row['ok']}/{row['runs']} ok"]
        if over in row:
            parts[0] += f" ({over} {row[over]})"
        parts.append(f"claims held per claim {_claims_cell(row, claims)}")
        for metric in metrics:
            parts.append(f"{metric.removeprefix('metrics.')} {format_mean_std(row.get(f'{metric}:mean'), row.get(f'{metric}:std'))}")
        lines.append("; ".join(parts))
    return lines


def summary_markdown(summary, over: str = "SEED", metrics: Sequence[str] = ()) -> str:
    """A markdown table of a summary (for the README): group, runs, claims held per claim, metrics."""
    params = _summary_params(summary, over)
    claims = claim_columns(summary)
    header = ["notebook", *[p for p in params if p != "PROFILE"], f"runs ({over})", "claims held (per claim)"]
    header += [f"{m.removeprefix('metrics.')} (mean ± std)" for m in metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in summary.to_dict("records"):
        cells = [row["notebook"], *[format_value(row[p]) for p in params if p != "PROFILE"]]
        cells.append(f"{row['ok']}/{row['runs']} ok ({row.get(over, '-')})")
        cells.append(_claims_cell(row, claims))
        cells += [format_mean_std(row.get(f"{m}:mean"), row.get(f"{m}:std")) for m in metrics]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def plot_summary(summary, plot: Mapping[str, Any], path: str | os.PathLike, over: str = "SEED",
                 title: str | None = None) -> Path:
    """Plot ``plot["y"]`` (mean ± std over ``over``) against ``plot["x"]``, one line per metric and group
    of the other parameters; write a PNG atomically and return its path."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    x = plot["x"]
    others = [p for p in _summary_params(summary, over) if p not in (x, "PROFILE")]
    fig, ax = plt.subplots(figsize=(6, 4))
    try:
        keys = ["notebook", *others]
        for values, group in summary.groupby(keys, dropna=False, sort=False):
            group = group.sort_values(x)
            label = ",".join(f"{k}={format_value(v)}" for k, v in zip(keys[1:], values[1:], strict=True))
            for y in plot["y"]:
                if f"{y}:mean" not in group:
                    continue
                name = y.removeprefix("metrics.") + (f" ({label})" if label else "")
                ax.errorbar(group[x], group[f"{y}:mean"], yerr=group[f"{y}:std"], marker="o", capsize=3,
                            label=name)
        ax.set_xscale(plot.get("xscale") or "linear")
        ax.set_xlabel(x)
        ax.set_ylabel(f"mean ± std over {over}")
        ax.set_title(plot.get("title") or title or "")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    finally:
        plt.close(fig)
    return atomic_write(path, lambda f: f.write(buffer.getvalue()))
