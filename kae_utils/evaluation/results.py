"""Result records: ``runs/<notebook>/metrics.json``, the claims block that ends every notebook, and the
two summaries every results table uses (mean and spread over seeds, median run time).

The claims block prints one line per claim, ``PASS <claim>`` or ``FAIL <claim>`` (words only: the
measured numbers go into metrics.json and the results table, so the block is stable across
floating-point noise), then ``claims: N/M hold``. The batch runner reads the counts back. A claim that this
run's experiment cannot test (its supervised ceiling does not reach the teacher) is still checked and
printed, followed by ``(untestable here: <reason>)``, and the summary adds ``(K untestable here)``.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kae_utils.core.atomic import atomic_write_text
from kae_utils.core.paths import runs_dir
from kae_utils.core.scale import is_smoke

__all__ = [
    "Claim",
    "Effect",
    "ClaimsReport",
    "check_claims",
    "load_metrics",
    "mean_std",
    "median_time",
    "to_jsonable",
    "write_metrics",
]


#: How an effect is checked against its bound: ``effect >= bound``, ``effect <= bound`` or ``|effect| <= bound``.
HOLDS_IF = ("at least", "at most", "within")


@dataclass(frozen=True)
class Effect:
    """A claim's effect: one number, comparable across data sets (a difference of two methods, a gap to a
    teacher, a ratio), in the units the claim is checked in, with the bound the check uses.

    The reproduction envelope (``kae readme``, ``docs/reproduction.md``) sets it beside the paper's effect
    and the upstream reproduction's, and shows ``bound`` as the claim's tolerance band.

    Args:
        name: what is measured, e.g. ``"CFL - KD, union accuracy"``.
        value: this run's value (``None`` when the run could not measure it).
        bound: the tolerance, in the effect's units.
        holds_if: ``"at least"`` (``value >= bound``), ``"at most"`` (``value <= bound``) or ``"within"``
            (``|value| <= bound``). A claim may check more than its effect (a second task, a strict
            inequality): :attr:`Claim.holds` is the claim's outcome, :attr:`within_bound` only the effect's.
    """

    name: str
    value: float | None
    bound: float
    holds_if: str = "at least"

    def __post_init__(self) -> None:
        if self.holds_if not in HOLDS_IF:
            raise ValueError(f"holds_if must be one of {HOLDS_IF}; got {self.holds_if!r}")
        if not self.name.strip():
            raise ValueError("an effect needs a name")
        if self.value is not None:
            object.__setattr__(self, "value", float(self.value))  # numpy/torch scalars become plain floats
        object.__setattr__(self, "bound", float(self.bound))

    @property
    def within_bound(self) -> bool | None:
        """Whether the value satisfies the bound (``None`` without a value)."""
        if self.value is None or not math.isfinite(self.value):
            return None
        if self.holds_if == "at least":
            return self.value >= self.bound
        if self.holds_if == "at most":
            return self.value <= self.bound
        return abs(self.value) <= self.bound


@dataclass(frozen=True)
class Claim:
    """One of a paper's claims, checked against this run.

    Args:
        claim: the claim in words, as printed after PASS/FAIL (no numbers that vary between runs).
        holds: the outcome of the explicit check.
        details: the measured numbers and the tolerance used, for metrics.json and the reader.
        untestable: empty when this run can test the claim; otherwise why it cannot, in words (e.g. "the
            supervised ceiling is below the teacher"), printed after the claim.
        effect: the claim's :class:`Effect` (``None`` for a yes/no check such as "deterministic").
    """

    claim: str
    holds: bool
    details: str = ""
    untestable: str = ""
    effect: Effect | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.holds, bool):
            # numpy/torch booleans are converted by the caller; anything else is a bug in the check
            raise TypeError(f"Claim.holds must be a bool; got {type(self.holds).__name__} for {self.claim!r}")
        if not self.claim.strip():
            raise ValueError("a claim needs words")


@dataclass(frozen=True)
class ClaimsReport:
    """The outcome of :func:`check_claims`."""

    items: tuple[Claim, ...]

    @property
    def held(self) -> int:
        return sum(c.holds for c in self.items)

    @property
    def total(self) -> int:
        return len(self.items)

    @property
    def untestable(self) -> int:
        return sum(bool(c.untestable) for c in self.items)

    def lines(self) -> list[str]:
        rows = [f"{'PASS' if c.holds else 'FAIL'} {c.claim}" + (f" (untestable here: {c.untestable})" if c.untestable else "")
                for c in self.items]
        rows.append(f"claims: {self.held}/{self.total} hold" + (f" ({self.untestable} untestable here)" if self.untestable else ""))
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {"held": self.held, "total": self.total, "untestable": self.untestable,
                "items": [asdict(c) for c in self.items]}


def check_claims(claims: Sequence[Claim], *, echo: bool = True) -> ClaimsReport:
    """Print the claims block (unless ``echo`` is false) and return the report for :func:`write_metrics`."""
    if not claims:
        raise ValueError("a claims cell needs at least one claim")
    report = ClaimsReport(tuple(claims))
    if echo:
        print("\n".join(report.lines()))
    return report


def to_jsonable(value: Any) -> Any:
    """Convert tensors, numpy values, tuples and paths into plain JSON values (nan/inf become None)."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot store {type(value).__name__} in metrics.json")


def write_metrics(
    notebook: str,
    metrics: Mapping[str, Any],
    *,
    claims: ClaimsReport | None = None,
    profile: str | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``<runs>/<notebook>/metrics.json`` atomically and return its path.

    Format: ``{"notebook", "profile", "parameters", "metrics", "claims": {"held", "total", "items"}}``, and
    ``"scale": "smoke"`` for a full profile run at smoke scale (``KAE_SCALE=smoke``, :mod:`kae_utils.core.scale`).
    The runs folder is ``KAE_RUNS_DIR`` (set by the batch runner) or ``<repo>/runs``.
    """
    if not notebook or "/" in notebook or notebook.startswith("."):
        raise ValueError(f"notebook must be a plain name like '01_knowledge_distillation'; got {notebook!r}")
    record = {
        "notebook": notebook,
        "profile": profile,
        "parameters": to_jsonable(dict(parameters or {})),
        "metrics": to_jsonable(dict(metrics)),
        "claims": claims.to_dict() if claims is not None else None,
    }
    if is_smoke(profile or ""):  # KAE_SCALE=smoke: never to be collected as a full-profile result
        record["scale"] = "smoke"
    path = runs_dir(notebook) / "metrics.json"
    return atomic_write_text(path, json.dumps(record, indent=2, sort_keys=False, allow_nan=False) + "\n")


def load_metrics(path: str | os.PathLike) -> dict[str, Any]:
    """Read a metrics.json written by :func:`write_metrics` (``ValueError`` if it is not one)."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or "notebook" not in data or "metrics" not in data:
        raise ValueError(f"{path} is not a metrics.json written by kae_utils.evaluation.results.write_metrics")
    return data


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``) of per-seed values; the spread of one value is 0.0."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("mean_std needs at least one value")
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def median_time(fn: Callable[[], object], repeats: int = 5) -> float:
    """Median wall time in seconds of ``repeats`` calls of ``fn()``, after one warm-up call."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1; got {repeats}")
    fn()  # warm-up: lazy initialisation, caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
