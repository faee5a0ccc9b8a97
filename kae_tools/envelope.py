"""The reproduction envelope: for every claim, its effect in the paper, in the upstream reproduction and in ours
(the stored seed, and the spread over the seeds of ``make seeds``), from the files in ``results/`` only.

Inputs, all written by runs or by hand with their sources:

- ``results/quick/<nb>.json``: the stored run (``make outputs``); each claim's :class:`kae_utils.evaluation.results.Effect`;
- ``results/seeds/<nb>.tsv``: the seeds sweep (``make seeds``), ``claim.N``, ``untestable.N`` and ``effect.N`` per seed;
- ``results/published_effects.yaml``: the paper's and the upstream reproduction's effect, each with its arithmetic
  and source (checked by ``tests/test_published_effects.py``).

Outputs (``kae readme``): ``results/envelope.tsv`` (one row per claim), ``results/envelope.png`` (one row per claim:
the paper's dot, the upstream dot, our seeds as a range, the claim's tolerance as a band), and the markdown of the
README's summary block and of the site page ``docs/reproduction.md``.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kae_tools.notebooks.catalog import NOTEBOOK_GLOB, code_sha

__all__ = [
    "ENVELOPE_FIGURE",
    "ENVELOPE_TSV",
    "PUBLISHED",
    "ClaimRow",
    "format_effect",
    "load_rows",
    "plot_envelope",
    "render_page_block",
    "render_readme_block",
    "rows_table",
    "write_envelope",
]

#: One row per claim (written by ``kae readme``).
ENVELOPE_TSV = Path("results") / "envelope.tsv"
#: One row per claim: the paper's effect, the upstream reproduction's, our seeds' range, the tolerance band.
ENVELOPE_FIGURE = Path("results") / "envelope.png"
#: The published effects, with their sources.
PUBLISHED = Path("results") / "published_effects.yaml"


@dataclass
class ClaimRow:
    """One claim of one notebook, with its effect wherever it was measured or published."""

    notebook: str
    number: int
    claim: str
    holds: bool
    untestable: str
    effect: dict[str, Any] | None  # {"name", "value", "bound", "holds_if"} of the stored run
    seeds: list[dict[str, Any]] = field(default_factory=list)  # {"seed", "value", "holds", "untestable"}
    seeds_current: bool = False  # the seeds ran the notebook as it is stored
    paper: dict[str, Any] | None = None
    upstream: dict[str, Any] | None = None

    @property
    def seed_values(self) -> list[float]:
        return [s["value"] for s in self.seeds if s["value"] is not None]

    @property
    def held_over_seeds(self) -> str:
        return f"{sum(s['holds'] for s in self.seeds)}/{len(self.seeds)}" if self.seeds else ""


def _published(root: Path) -> dict[tuple[str, int], dict[str, Any]]:
    import yaml

    path = root / PUBLISHED
    entries = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else []
    return {(e["notebook"], int(e["claim"])): e for e in entries or []}


def _number(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _seed_rows(path: Path, count: int, notebook_sha: str) -> tuple[list[list[dict[str, Any]]], bool]:
    """Per claim, the seeds' values and verdicts from ``results/seeds/<nb>.tsv`` (ok runs only); and whether
    they ran the stored version of the notebook."""
    from kae_tools.runner.tables import read_table

    per_claim: list[list[dict[str, Any]]] = [[] for _ in range(count)]
    if not path.exists():
        return per_claim, False
    table = read_table(path)
    table = table[table["status"] == "ok"]
    current = "code_sha" in table and set(table["code_sha"].astype(str)) == {notebook_sha}
    for _, run in table.sort_values("SEED").iterrows():
        for i in range(count):
            verdict = run.get(f"claim.{i + 1}")
            if not isinstance(verdict, str):
                continue
            per_claim[i].append({"seed": int(run["SEED"]), "value": _number(run.get(f"effect.{i + 1}")),
                                 "holds": verdict == "PASS", "untestable": bool(run.get(f"untestable.{i + 1}") is True)})
    return per_claim, current


def load_rows(root: Path) -> list[ClaimRow]:
    """Every claim of every notebook that has a stored run, in notebook and claim order."""
    published = _published(root)
    rows: list[ClaimRow] = []
    for notebook in sorted((root / "notebooks").glob(NOTEBOOK_GLOB)):
        stored = root / "results" / "quick" / f"{notebook.stem}.json"
        if not stored.exists():
            continue
        items = (json.loads(stored.read_text(encoding="utf-8")).get("claims") or {}).get("items") or []
        seeds, current = _seed_rows(root / "results" / "seeds" / f"{notebook.stem}.tsv", len(items), code_sha(notebook))
        for number, item in enumerate(items, 1):
            entry = published.get((notebook.stem, number)) or {}
            rows.append(ClaimRow(notebook.stem, number, item["claim"], bool(item["holds"]), item.get("untestable") or "",
                                 item.get("effect"), seeds[number - 1], current, entry.get("paper"), entry.get("upstream")))
    return rows


def format_effect(value: float | None, bound: float | None = None) -> str:
    """An effect for a table: signed with three decimals, a ratio of 10 or more as an integer, a tiny bound
    (below 0.001, e.g. an exactness tolerance) in scientific notation; ``"–"`` without a value."""
    if value is None:
        return "–"
    if abs(value) >= 10:
        return f"{value:.0f}"
    if bound is not None and 0 < abs(bound) < 1e-3:
        return f"{value:.1e}"
    return f"{value:+.3f}"


def _tolerance(effect: dict[str, Any]) -> str:
    sign = {"at least": "≥", "at most": "≤", "within": "|·| ≤"}[effect["holds_if"]]
    return f"{sign} {format_effect(effect['bound'], effect['bound'])}"


def _spread(row: ClaimRow) -> str:
    values = row.seed_values
    if not values:
        return "–"
    bound = row.effect["bound"] if row.effect else None
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    spread = format_effect(std, bound).lstrip("+")
    return f"{format_effect(mean, bound)} ± {spread} [{format_effect(min(values), bound)}, {format_effect(max(values), bound)}]"


def rows_table(rows: Sequence[ClaimRow]):
    """The envelope as a ``pandas.DataFrame`` (``results/envelope.tsv``), one row per claim."""
    import pandas as pd

    records = []
    for r in rows:
        e, values = r.effect or {}, r.seed_values
        records.append({
            "notebook": r.notebook, "claim": r.number, "text": r.claim, "effect": e.get("name"),
            "holds_if": e.get("holds_if"), "bound": e.get("bound"),
            "stored_value": e.get("value"), "stored_holds": r.holds, "stored_untestable": r.untestable,
            "seeds": ",".join(str(s["seed"]) for s in r.seeds), "seeds_current": r.seeds_current,
            "seeds_held": r.held_over_seeds, "seeds_untestable": sum(s["untestable"] for s in r.seeds),
            "seeds_mean": statistics.fmean(values) if values else None,
            "seeds_std": statistics.stdev(values) if len(values) > 1 else None,
            "seeds_min": min(values) if values else None, "seeds_max": max(values) if values else None,
            "paper": (r.paper or {}).get("value"), "paper_source": (r.paper or {}).get("source"),
            "upstream": (r.upstream or {}).get("value"), "upstream_source": (r.upstream or {}).get("source"),
        })
    return pd.DataFrame(records)


def _band(effect: dict[str, Any], lo: float, hi: float) -> tuple[float, float]:
    bound = effect["bound"]
    if effect["holds_if"] == "at least":
        return bound, hi
    if effect["holds_if"] == "at most":
        return lo, bound
    return -abs(bound), abs(bound)


def plot_envelope(rows: Sequence[ClaimRow], path: Path) -> Path | None:
    """One row per claim with an effect, each on its own scale: the tolerance band where the claim holds (green),
    our seeds (grey dots, their range a line), the stored seed (black), the paper (red diamond) and the upstream
    reproduction (blue square). ``None`` when no claim has an effect."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in rows if r.effect and r.effect.get("value") is not None]
    if not shown:
        return None
    fig, axes = plt.subplots(len(shown), 1, figsize=(9, 0.42 * len(shown) + 0.8), squeeze=False)
    for ax, row in zip(axes[:, 0], shown, strict=True):
        e = row.effect
        points = [e["value"], e["bound"], *row.seed_values,
                  *[p["value"] for p in (row.paper, row.upstream) if p]]
        lo, hi = min(points), max(points)
        pad = (hi - lo) * 0.15 or max(abs(hi), 1e-6) * 0.15
        lo, hi = lo - pad, hi + pad
        ax.axvspan(*_band(e, lo, hi), color="tab:green", alpha=0.15, lw=0)
        ax.axvline(e["bound"], color="tab:green", lw=0.8)
        if row.seed_values:
            ax.hlines(0, min(row.seed_values), max(row.seed_values), color="0.55", lw=2)
            ax.plot(row.seed_values, [0] * len(row.seed_values), "o", color="0.55", ms=3)
        ax.plot([e["value"]], [0], "o", color="black", ms=5)
        if row.paper:
            ax.plot([row.paper["value"]], [0], "D", color="tab:red", ms=6)
        if row.upstream:
            ax.plot([row.upstream["value"]], [0], "s", color="tab:blue", ms=6)
        ax.set_xlim(lo, hi)
        ax.set_yticks([])
        ax.tick_params(axis="x", labelsize=6, pad=1, length=2)
        label = f"{row.notebook[:2]} #{row.number}" + (" (untestable)" if row.untestable else "")
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
        ax.set_title(e["name"], fontsize=6.5, loc="left", pad=1.5)
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
    handles = [plt.Line2D([], [], marker=m, color=c, ls="", ms=s) for m, c, s in
               (("o", "black", 5), ("o", "0.55", 3), ("D", "tab:red", 6), ("s", "tab:blue", 6))]
    handles.append(plt.Rectangle((0, 0), 1, 1, color="tab:green", alpha=0.15))
    fig.legend(handles, ["ours, stored seed", "ours, seeds of make seeds", "paper", "upstream reproduction",
                         "where the claim holds (its tolerance)"], loc="upper center", ncol=5, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / fig.get_figheight()), h_pad=0.6)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return path


def write_envelope(root: Path) -> list[Path]:
    """Write ``results/envelope.tsv`` and ``results/envelope.png`` from ``results/``; return the files written."""
    from kae_tools.runner.tables import write_table

    rows = load_rows(root)
    written = [write_table(rows_table(rows), root / ENVELOPE_TSV)]
    figure = plot_envelope(rows, root / ENVELOPE_FIGURE)
    return written + ([figure] if figure else [])


def _ours_stored(row: ClaimRow) -> str:
    verdict = "PASS" if row.holds else "FAIL"
    text = f"{format_effect(row.effect.get('value'), row.effect['bound'])} {verdict}" if row.effect else verdict
    return text + " (untestable here)" if row.untestable else text


def _published_cell(entry: dict[str, Any] | None, bound: float | None) -> str:
    return format_effect(entry["value"], bound) if entry else "–"


def _seeds_note(rows: Sequence[ClaimRow]) -> str:
    if not any(r.seeds for r in rows):
        return "no seeds yet (`make seeds`)"
    seeds = sorted({s["seed"] for r in rows for s in r.seeds})
    note = f"the seeds {', '.join(map(str, seeds))} of `make seeds`"
    return note if all(r.seeds_current for r in rows) else note + " (from an earlier version of the notebook)"


def render_page_block(root: Path) -> str:
    """Markdown for ``docs/reproduction.md``'s ``<!-- envelope:table -->`` block: per notebook, one row per claim,
    then the published numbers' arithmetic and sources."""
    rows = load_rows(root)
    if not rows:
        return "_No stored runs in results/quick yet (`make outputs`)._\n"
    lines: list[str] = []
    for notebook in dict.fromkeys(r.notebook for r in rows):
        mine = [r for r in rows if r.notebook == notebook]
        lines += [f"**{notebook}**: ours from the stored run and {_seeds_note(mine)}.", "",
                  "| # | claim | effect | holds if | ours, stored seed | ours over seeds: mean ± std [min, max] "
                  "| held | paper | upstream |", "|---|---|---|---|---|---|---|---|---|"]
        for r in mine:
            e = r.effect or {}
            bound = e.get("bound")
            cells = [str(r.number), r.claim, e.get("name", "none: a yes/no check"), _tolerance(e) if e else "–",
                     _ours_stored(r), _spread(r), r.held_over_seeds or "–",
                     _published_cell(r.paper, bound), _published_cell(r.upstream, bound)]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        sources = [(r.number, kind, entry) for r in mine for kind, entry in (("paper", r.paper), ("upstream", r.upstream))
                   if entry]
        if sources:
            lines.append("")
            lines += [f"- claim {n}, {kind}: {entry['computed']}; {entry['source']}" for n, kind, entry in sources]
        lines.append("")
    return "\n".join(lines)


def render_readme_block(root: Path) -> str:
    """Markdown for the README's ``<!-- envelope:summary -->`` block: one line per notebook and the figure."""
    rows = load_rows(root)
    if not rows:
        return "_No stored runs in results/quick yet (`make outputs`)._\n"
    lines = ["| notebook | claims held, stored seed | claims held at every seed | claims with a published effect: "
             "ours on the same side of the tolerance as the paper / upstream |", "|---|---|---|---|"]
    for notebook in dict.fromkeys(r.notebook for r in rows):
        mine = [r for r in rows if r.notebook == notebook]
        every = (f"{sum(bool(r.seeds) and all(s['holds'] for s in r.seeds) for r in mine)}/{len(mine)}"
                 + ("" if all(r.seeds_current for r in mine) else " (earlier version)")) if any(r.seeds for r in mine) else "–"
        lines.append(f"| {notebook} | {sum(r.holds for r in mine)}/{len(mine)} | {every} | {_agreement(mine)} |")
    lines += ["", f"![The reproduction envelope: one row per claim]({ENVELOPE_FIGURE.as_posix()})"]
    return "\n".join(lines) + "\n"


def _side(effect: dict[str, Any], value: float) -> bool:
    from kae_utils.evaluation.results import Effect

    return bool(Effect(effect["name"], value, effect["bound"], effect["holds_if"]).within_bound)


def _agreement(rows: Sequence[ClaimRow]) -> str:
    """How many of the claims with a published effect have ours (the stored seed) on the same side of the
    claim's bound as the published value: ``"2 of 3"``; ``"–"`` without any."""
    compared = [(r, p) for r in rows for p in (r.paper, r.upstream) if p and r.effect and r.effect.get("value") is not None]
    if not compared:
        return "–"
    same = sum(_side(r.effect, r.effect["value"]) == _side(r.effect, p["value"]) for r, p in compared)
    return f"{same} of {len(compared)}"
