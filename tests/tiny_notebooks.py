"""Tiny notebooks for the tests of sweeps and executors: a ``parameters`` cell and one cell of work.

They import nothing heavy (no torch), so a run costs about one kernel start. ``alive`` and ``wait_dead``
check the kernel whose pid ``SLEEPER`` writes.
"""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

PARAMETERS = """\
PROFILE: str = "quick"  # "quick" or "full"
SEED: int = 0  # seed
LR: float = 0.1  # a rate
MARKER: str = ""  # while this file exists, the run at SEED 1 fails
"""

# Writes metrics.json like kae_utils.evaluation.results.write_metrics does, into the runner's KAE_RUN_DIR.
SWEEPER = """\
import json, os
from pathlib import Path
if MARKER and Path(MARKER).exists() and SEED == 1:
    raise ValueError("the marker file exists at seed 1")
score = round(1.0 / (1 + SEED) + LR, 6)
items = [
    {"claim": "the rate is small", "holds": LR < 0.3, "details": ""},
    {"claim": "the seed is even", "holds": SEED % 2 == 0, "details": ""},
]
record = {
    "notebook": "STEM", "profile": PROFILE, "parameters": {"SEED": SEED, "LR": LR},
    "metrics": {"score": score, "nested": {"ten_lr": LR * 10}, "curve": [SEED, LR], "headline": f"score {score}"},
    "claims": {"held": sum(i["holds"] for i in items), "total": len(items), "items": items},
}
(Path(os.environ["KAE_RUN_DIR"]) / "metrics.json").write_text(json.dumps(record))
print("claims", record["claims"]["held"], "/", len(items))
"""

# Records the environment its kernel sees (thread limits) as metrics.
ENV_READER = """\
import json, os
from pathlib import Path
seen = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "KAE_RUN_DIR", "KAE_PROGRESS")}
record = {"notebook": "STEM", "profile": PROFILE, "parameters": {}, "metrics": seen,
          "claims": {"held": 1, "total": 1, "items": [{"claim": "it ran", "holds": True, "details": ""}]}}
(Path(os.environ["KAE_RUN_DIR"]) / "metrics.json").write_text(json.dumps(record))
"""

FAILING = 'raise ValueError("boom 42")\n'

SLEEPER = """\
import os, time
from pathlib import Path
(Path(os.environ["KAE_RUN_DIR"]) / "kernel.pid").write_text(str(os.getpid()))
time.sleep(120)
"""


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie does not); skips the test where psutil is missing."""
    psutil = pytest.importorskip("psutil")
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_dead(pid: int, seconds: float = 10) -> bool:
    """Wait up to ``seconds`` for process ``pid`` to end; return whether it did."""
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not alive(pid)


def make_notebook(folder: Path, stem: str, body: str, parameters: str = PARAMETERS) -> Path:
    """Write ``<folder>/<stem>.ipynb``: a title, the ``parameters`` cell, then ``body`` (``STEM`` replaced)."""
    nb = new_notebook()
    nb.metadata.kernelspec = {"display_name": "Python 3", "language": "python", "name": "python3"}
    params = new_code_cell(parameters)
    params.metadata.tags = ["parameters"]
    nb.cells = [new_markdown_cell(f"# {stem}"), params, new_code_cell(body.replace("STEM", stem))]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.ipynb"
    nbformat.write(nb, path)
    return path


def write_sweep(path: Path, text: str) -> Path:
    """Write a sweep file (YAML text) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
