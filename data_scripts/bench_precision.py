"""Every notebook's quick profile under each numerics setting: ``python -m data_scripts.bench_precision [NB ...]``.

Run by ``make bench-precision``. Each setting is one pass over the notebooks, one after the other on the whole
machine; each notebook runs as a **strict nbval test** (the stored outputs compared cell by cell, as in
``make test-notebooks``) from a cold cache (an empty ``KAE_CACHE_DIR`` per notebook), so one pass says at once
how long the quick profile takes under that setting, whether the stored outputs hold under it, and which claims
it gives (each notebook's ``metrics.json`` goes to the pass's own ``KAE_RUNS_DIR``):

* ``fp32-nchw``: float32, contiguous memory (``KAE_PRECISION=fp32 KAE_CHANNELS_LAST=0``): the numerics of the
  code before :mod:`kae_utils.numerics`;
* ``fp32``: float32, channels-last (``KAE_PRECISION=fp32``): what a machine without native bf16 runs;
* ``bf16``: bf16 autocast and channels-last forced on every notebook (``KAE_PRECISION=bf16``), also on those
  that ask for float32;
* ``default``: each notebook's own choice: ``auto`` (bf16 autocast and channels-last on a CPU with AVX-512
  BF16) for most, float32 for those whose claims differ between the two (their ``PRECISION`` parameter).

Writes ``results/precision_quick.tsv``: per notebook the wall time of each setting, the speed-up of the default
over ``fp32`` and over ``fp32-nchw``, the stored-output cells that differ under each setting, the claims held
under each, which claims differ between ``fp32`` and ``bf16`` (a verdict or an "untestable here" mark), and
the headline numbers of both. ``--settings`` runs a subset (the table keeps the other settings'
earlier passes found in ``--out``). Runs go to ``runs_bench/precision/<setting>/``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path

from kae_utils.env import repo_root

#: (label, environment) of every setting, in the order they run.
SETTINGS: tuple[tuple[str, dict[str, str]], ...] = (
    ("fp32-nchw", {"KAE_PRECISION": "fp32", "KAE_CHANNELS_LAST": "0"}),
    ("fp32", {"KAE_PRECISION": "fp32", "KAE_CHANNELS_LAST": "1"}),
    ("bf16", {"KAE_PRECISION": "bf16", "KAE_CHANNELS_LAST": "1"}),
    ("default", {"KAE_PRECISION": "auto", "KAE_CHANNELS_LAST": "1"}),
)
#: The strict nbval options of ``make test-notebooks``.
NBVAL = ("--nbval", "--nbval-current-env", "--nbval-sanitize-with", "tests/nbval_sanitize.cfg",
         "-p", "tests.nbval_plugin", "-p", "no:cacheprovider")


def notebook_paths(names: Sequence[str]) -> list[Path]:
    """The stored notebooks named by ``names`` (stems or leading numbers such as ``"02"``); all when empty."""
    every = sorted((repo_root() / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not names:
        return every
    chosen = [nb for nb in every if any(nb.stem == n or nb.stem.split("_", 1)[0] == n for n in names)]
    unknown = [n for n in names if not any(nb.stem == n or nb.stem.split("_", 1)[0] == n for nb in every)]
    if unknown:
        raise SystemExit(f"unknown notebooks: {', '.join(unknown)}; known: {', '.join(nb.stem for nb in every)}")
    return chosen


def differing_cells(junit: Path) -> list[str]:
    """The cells (``"Cell 18"``) whose test failed in a pytest JUnit report: outputs that differ or errors."""
    failed = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(case.get("name", "?").split("::")[-1])
    return failed


def run_notebook(notebook: Path, env: Mapping[str, str], folder: Path) -> dict[str, str]:
    """One strict nbval run of ``notebook`` under ``env`` from an empty cache; its row of ``timings.tsv``."""
    junit = folder / f"{notebook.stem}.junit.xml"
    cache = Path(tempfile.mkdtemp(prefix="kae-cold-cache-"))
    run_env = {**os.environ, **env, "KAE_CACHE_DIR": str(cache), "KAE_RUNS_DIR": str(folder), "CUDA_VISIBLE_DEVICES": ""}
    start = time.perf_counter()
    code = subprocess.run([sys.executable, "-m", "pytest", *NBVAL, "-q", f"--junitxml={junit}", str(notebook)],
                          env=run_env, cwd=repo_root(), check=False).returncode
    wall = time.perf_counter() - start
    shutil.rmtree(cache, ignore_errors=True)
    cells = differing_cells(junit) if junit.exists() else ["no report"]
    status = "ok" if code == 0 else ("outputs differ" if code == 1 else f"pytest exit {code}")
    return {"notebook": notebook.stem, "status": status, "wall_s": f"{wall:.1f}", "differing_cells": ", ".join(cells)}


def run_setting(label: str, env: Mapping[str, str], notebooks: Sequence[Path], out: Path) -> int:
    """One pass over ``notebooks`` into ``out/<label>`` (its ``timings.tsv`` rows replaced); 0 when all passed."""
    folder = out / label
    folder.mkdir(parents=True, exist_ok=True)
    print(f"== {label}: {' '.join(f'{k}={v}' for k, v in env.items())}", flush=True)
    timings = folder / "timings.tsv"
    header = ["notebook", "status", "wall_s", "differing_cells"]
    rows = {}
    if timings.exists():
        lines = timings.read_text().splitlines()
        rows = {line.split("\t", 1)[0]: line for line in lines[1:]}
    status = 0
    for notebook in notebooks:
        row = run_notebook(notebook, env, folder)
        print(f"   {row['notebook']}: {row['wall_s']} s, {row['status']} {row['differing_cells']}", flush=True)
        rows[row["notebook"]] = "\t".join(row[h] for h in header)
        timings.write_text("\n".join(["\t".join(header), *(rows[k] for k in sorted(rows))]) + "\n")
        status = max(status, 0 if row["status"] == "ok" else 1)
    return status


def read_setting(folder: Path) -> dict[str, dict]:
    """``{notebook: {"wall_s", "status", "differing_cells", "claims": [bool ...], "headline"}}`` of one pass."""
    rows: dict[str, dict] = {}
    timings = folder / "timings.tsv"
    if not timings.exists():
        return rows
    lines = timings.read_text().splitlines()
    header = lines[0].split("\t")
    for line in lines[1:]:
        row = dict(zip(header, line.split("\t"), strict=True))
        record = {"wall_s": float(row["wall_s"]), "status": row["status"],
                  "differing_cells": row.get("differing_cells", ""), "claims": [], "headline": ""}
        metrics = folder / row["notebook"] / "metrics.json"
        if metrics.exists():
            data = json.loads(metrics.read_text())
            record["claims"] = [verdict(item) for item in (data.get("claims") or {}).get("items", [])]
            record["headline"] = str((data.get("metrics") or {}).get("headline", ""))
        rows[row["notebook"]] = record
    return rows


def verdict(item: Mapping) -> str:
    """A claim's verdict as the claims block prints it: ``"PASS"``, ``"FAIL"``, with ``" (untestable)"`` if marked."""
    return ("PASS" if item["holds"] else "FAIL") + (" (untestable)" if item.get("untestable") else "")


def flipped(a: Sequence[str], b: Sequence[str]) -> str:
    """``"2: PASS->FAIL; 5: FAIL (untestable)->FAIL"`` for the claims (1-based) whose verdicts differ; ``"none"``."""
    if len(a) != len(b):
        return f"claim counts differ ({len(a)} vs {len(b)})"
    diffs = [f"{i}: {x}->{y}" for i, (x, y) in enumerate(zip(a, b, strict=True), 1) if x != y]
    return "; ".join(diffs) or "none"


def held(verdicts: Sequence[str]) -> str:
    """``"3/4"``: the claims that hold out of all."""
    return f"{sum(v.startswith('PASS') for v in verdicts)}/{len(verdicts)}"


def _speedup(base: dict | None, new: dict | None) -> str:
    return f"{base['wall_s'] / new['wall_s']:.2f}" if base and new and new["wall_s"] > 0 else "-"


def table(results: Mapping[str, Mapping[str, dict]]) -> list[str]:
    """The TSV lines (header first) from ``{setting: {notebook: record}}``; a setting not run gives ``-``."""
    labels = [label for label, _ in SETTINGS]
    notebooks = sorted(set().union(*(r.keys() for r in results.values())))
    header = ["notebook", *(f"{label}_s" for label in labels), "speedup_default_vs_fp32",
              "speedup_default_vs_fp32_nchw", *(f"cells_differing_{label}" for label in labels),
              *(f"claims_{label}" for label in labels), "claims_differing_fp32_vs_bf16",
              "headline_fp32", "headline_bf16"]
    lines = ["\t".join(header)]
    for nb in notebooks:
        rec = {label: results.get(label, {}).get(nb) for label in labels}
        walls = [f"{r['wall_s']:.1f}" if r else "-" for r in rec.values()]
        speeds = [_speedup(rec["fp32"], rec["default"]), _speedup(rec["fp32-nchw"], rec["default"])]
        cells = [(r["differing_cells"] or "none") if r else "-" for r in rec.values()]
        claims = [held(r["claims"]) if r and r["claims"] else "-" for r in rec.values()]
        differ = flipped(rec["fp32"]["claims"], rec["bf16"]["claims"]) if rec["fp32"] and rec["bf16"] else "-"
        heads = [(r["headline"] if r else "-").replace("\t", " ") for r in (rec["fp32"], rec["bf16"])]
        lines.append("\t".join([nb, *walls, *speeds, *cells, *claims, differ, *heads]))
    return lines


def merge_rows(path: Path, lines: Sequence[str]) -> list[str]:
    """``lines`` plus the rows of the existing TSV at ``path`` for notebooks ``lines`` does not have (sorted)."""
    new = {line.split("\t", 1)[0]: line for line in lines[1:]}
    old = path.read_text().splitlines()[1:] if path.exists() else []
    kept = {line.split("\t", 1)[0]: line for line in old if line.split("\t", 1)[0] not in new}
    return [lines[0], *(row for _, row in sorted({**kept, **new}.items()))]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_scripts.bench_precision", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="notebooks (stems or numbers); default: all")
    parser.add_argument("--out", type=Path, default=repo_root() / "runs_bench" / "precision")
    parser.add_argument("--tsv", type=Path, default=repo_root() / "results" / "precision_quick.tsv")
    parser.add_argument("--settings", nargs="+", choices=[label for label, _ in SETTINGS],
                        default=[label for label, _ in SETTINGS], help="the settings to run (default: all four)")
    parser.add_argument("--only-table", action="store_true", help="rewrite the TSV from the runs already in --out")
    args = parser.parse_args(argv)
    status = 0
    if not args.only_table:
        notebooks = notebook_paths(args.notebooks)
        for label, env in SETTINGS:
            if label in args.settings:
                status = max(status, run_setting(label, env, notebooks, args.out))
    results = {label: read_setting(args.out / label) for label, _ in SETTINGS}
    lines = merge_rows(args.tsv, table(results))
    args.tsv.parent.mkdir(parents=True, exist_ok=True)
    args.tsv.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"written to {args.tsv}")
    return status


if __name__ == "__main__":
    sys.exit(main())
