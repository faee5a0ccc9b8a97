"""What one run is: its specification (:class:`RunSpec`), its record (:class:`RunResult`), the parameters
injected into the notebook and the claims read back from its ``metrics.json``.

Everything here is plain data, picklable, so that a spec travels to a Dask worker and its record comes back.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_TIMEOUT",
    "ERROR_LINES",
    "KERNEL_NAME",
    "InPlaceParametersError",
    "RunResult",
    "RunSpec",
    "claims_of",
    "first_lines",
    "injected_parameters",
    "parse_parameter",
    "read_claims",
    "read_metrics_file",
]

#: Per-notebook timeout in seconds when none is given.
DEFAULT_TIMEOUT: float = 900.0
#: Kernel every notebook is executed with.
KERNEL_NAME = "python3"
#: Lines of an error message kept in a run's record.
ERROR_LINES = 6


class InPlaceParametersError(ValueError):
    """``--in-place`` was combined with parameters: stored outputs are made from the quick profile only."""


@dataclass
class RunResult:
    """Outcome of one notebook run (the record a run task returns, picklable).

    ``status`` is ``"ok"``, ``"failed"`` or ``"timeout"``; ``claims_held``/``claims_total`` come from the
    notebook's ``metrics.json`` (``None`` when it wrote none); ``error`` holds the first lines of the error
    (``ename: evalue`` for an exception in a cell); ``output_path`` is the executed notebook (the source
    notebook itself after a successful ``--in-place`` run). ``run_id`` names a sweep's run (``None`` for a
    plain run), ``parameters`` are those injected, ``metrics`` is the parsed ``metrics.json`` (so results
    come back from a cluster without a shared file system), ``host`` is where the run executed and
    ``code_sha`` the :func:`code_sha` of the notebook that ran (``--resume`` re-runs a changed notebook).
    """

    notebook: str
    status: str
    wall_s: float
    claims_held: int | None = None
    claims_total: int | None = None
    error: str | None = None
    output_path: Path | None = None
    run_id: str | None = None
    parameters: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = field(default=None, repr=False)
    host: str | None = None
    code_sha: str | None = None

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

    @property
    def label(self) -> str:
        """``"<notebook>"``, or ``"<notebook> <run id>"`` for a sweep's run."""
        return f"{self.notebook} {self.run_id}" if self.run_id else self.notebook

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (``output_path`` as a string)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["output_path"] = os.fspath(self.output_path) if self.output_path is not None else None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunResult:
        """Inverse of :meth:`to_dict`; ``ValueError`` when ``data`` is not such a record."""
        names = {f.name for f in fields(cls)}
        if not isinstance(data, Mapping) or not {"notebook", "status", "wall_s"} <= set(data):
            raise ValueError("not a run record: it needs notebook, status and wall_s")
        values = {k: v for k, v in data.items() if k in names}
        if values.get("output_path") is not None:
            values["output_path"] = Path(values["output_path"])
        return cls(**values)


@dataclass(frozen=True)
class RunSpec:
    """Everything one run needs, picklable so that it can travel to a Dask worker.

    ``parameters``: injected into the notebook as is (``None``: nothing, for ``--in-place``);
    ``runs_root``: ``KAE_RUNS_DIR`` of the run; ``run_dir``: its own folder (executed notebook,
    ``metrics.json``, ``run.log``), ``<runs_root>/<stem>`` for a plain run; ``env``: variables set on top of
    the executing machine's environment; ``threads``: CPU threads of the run (``OMP_NUM_THREADS``;
    ``None``: the executor's cores shared out, see :func:`thread_env`); ``slots``: runs executing at once
    beside it (``None``: the Dask worker's thread count, asked on the worker); ``code_sha``: the
    notebook's :func:`code_sha`, copied into the record.
    """

    path: Path
    parameters: dict[str, Any] | None
    runs_root: Path
    run_dir: Path
    run_id: str | None = None
    timeout: float | None = DEFAULT_TIMEOUT
    in_place: bool = False
    fresh_cache: bool = False
    threads: int | None = None
    slots: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    kernel_name: str = KERNEL_NAME
    code_sha: str | None = None

    @property
    def label(self) -> str:
        """``"<stem>"`` or ``"<stem> <run id>"``, as in the log lines."""
        stem = Path(self.path).stem
        return f"{stem} {self.run_id}" if self.run_id else stem


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


def read_metrics_file(metrics_path: Path) -> dict[str, Any] | None:
    """The parsed ``metrics.json`` a notebook wrote; ``None`` when it is absent or not a JSON object."""
    try:
        data = json.loads(Path(metrics_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def claims_of(record: Mapping[str, Any] | None) -> tuple[int | None, int | None]:
    """``(held, total)`` of a parsed ``metrics.json``; ``(None, None)`` when it has no well-formed claims."""
    try:
        claims = record["claims"]  # type: ignore[index]
        held, total = claims["held"], claims["total"]
    except (KeyError, TypeError):
        return None, None
    if not isinstance(held, int) or not isinstance(total, int):
        return None, None
    return held, total


def read_claims(metrics_path: Path) -> tuple[int | None, int | None]:
    """``(held, total)`` from a notebook's ``metrics.json``; ``(None, None)`` when absent or malformed."""
    return claims_of(read_metrics_file(metrics_path))


def injected_parameters(
    profile: str, parameters: Mapping[str, object] | None, in_place: bool
) -> dict[str, object] | None:
    """The parameters papermill injects: ``PROFILE`` and ``parameters``; ``None`` (nothing) for ``in_place``.

    ``ValueError`` for an unknown profile, :class:`InPlaceParametersError` for ``in_place`` with parameters.
    """
    # kae_utils.env imports torch (seconds): only the planning process needs PROFILES, never the worker
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


def first_lines(text: str, n: int = ERROR_LINES) -> str:
    """The first ``n`` lines of an error message (``...`` when there were more), trailing spaces removed."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    if len(lines) > n:
        lines = [*lines[:n], "..."]
    return "\n".join(lines)

