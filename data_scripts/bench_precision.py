"""Every notebook's quick profile under each numerics setting: ``python -m data_scripts.bench_precision [NB ...]``.

Run by ``make bench-precision`` (about three times ``make bench``'s notebook step). Each setting is one pass of
the batch runner from a cold cache, one after the other on the whole machine:

* ``fp32-nchw``: float32, contiguous memory (``KAE_PRECISION=fp32 KAE_CHANNELS_LAST=0``): the numerics of the
  code before :mod:`kae_utils.training.numerics`;
* ``fp32``: float32, channels-last (``KAE_PRECISION=fp32``): what a machine without native bf16 runs;
* ``default``: what ``auto`` picks here (bf16 autocast and channels-last on a CPU with AVX-512 BF16).

Writes ``results/precision_quick.tsv``: per notebook the wall time of each setting, the speed-up of the default
over ``fp32-nchw``, the claims held under each, which claims differ between ``fp32`` and ``default`` (the
claims a reader without bf16 would see flip), and the headline numbers of both. Runs go to ``runs_bench/``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from kae_utils.core.paths import repo_root

#: (label, environment) of every setting, in the order they run.
SETTINGS: tuple[tuple[str, dict[str, str]], ...] = (
    ("fp32-nchw", {"KAE_PRECISION": "fp32", "KAE_CHANNELS_LAST": "0"}),
    ("fp32", {"KAE_PRECISION": "fp32", "KAE_CHANNELS_LAST": "1"}),
    ("default", {"KAE_PRECISION": "auto", "KAE_CHANNELS_LAST": "1"}),
)


def run_setting(label: str, env: Mapping[str, str], notebooks: Sequence[str], out: Path) -> int:
    """One runner pass (quick profile, cold cache) into ``out/<label>``; returns the runner's exit code."""
    command = [sys.executable, "-m", "kae_utils.run", *notebooks, "--profile", "quick", "--fresh-cache",
               "--out", str(out / label), "--timings", str(out / label / "timings.tsv")]
    print(f"== {label}: {' '.join(f'{k}={v}' for k, v in env.items())}", flush=True)
    return subprocess.run(command, env={**os.environ, **env}, check=False).returncode


def read_setting(folder: Path) -> dict[str, dict]:
    """``{notebook: {"wall_s", "status", "claims": [bool ...], "headline"}}`` of one pass."""
    rows: dict[str, dict] = {}
    timings = folder / "timings.tsv"
    if not timings.exists():
        return rows
    lines = timings.read_text().splitlines()
    header = lines[0].split("\t")
    for line in lines[1:]:
        row = dict(zip(header, line.split("\t"), strict=True))
        record = {"wall_s": float(row["wall_s"]), "status": row["status"], "claims": [], "headline": ""}
        metrics = folder / row["notebook"] / "metrics.json"
        if metrics.exists():
            data = json.loads(metrics.read_text())
            record["claims"] = [bool(item["holds"]) for item in (data.get("claims") or {}).get("items", [])]
            record["headline"] = str((data.get("metrics") or {}).get("headline", ""))
        rows[row["notebook"]] = record
    return rows


def flipped(a: Sequence[bool], b: Sequence[bool]) -> str:
    """``"2: PASS->FAIL; 5: FAIL->PASS"`` for the claims (1-based) whose verdicts differ; ``"none"``."""
    if len(a) != len(b):
        return f"claim counts differ ({len(a)} vs {len(b)})"
    word = {True: "PASS", False: "FAIL"}
    diffs = [f"{i}: {word[x]}->{word[y]}" for i, (x, y) in enumerate(zip(a, b, strict=True), 1) if x != y]
    return "; ".join(diffs) or "none"


def table(results: Mapping[str, Mapping[str, dict]]) -> list[str]:
    """The TSV lines (header first) from ``{setting: {notebook: record}}``."""
    labels = [label for label, _ in SETTINGS]
    notebooks = sorted(set().union(*(r.keys() for r in results.values())))
    header = ["notebook", *(f"{label}_s" for label in labels), "speedup_default_vs_fp32_nchw",
              *(f"claims_{label}" for label in labels), "claims_differing_fp32_vs_default",
              "headline_fp32", "headline_default"]
    lines = ["\t".join(header)]
    for nb in notebooks:
        rec = {label: results.get(label, {}).get(nb) for label in labels}
        walls = [f"{r['wall_s']:.1f}" if r else "-" for r in rec.values()]
        base, new = rec["fp32-nchw"], rec["default"]
        speed = f"{base['wall_s'] / new['wall_s']:.2f}" if base and new and new["wall_s"] > 0 else "-"
        claims = [f"{sum(r['claims'])}/{len(r['claims'])}" if r and r["claims"] else "-" for r in rec.values()]
        differ = flipped(rec["fp32"]["claims"], new["claims"]) if rec["fp32"] and new else "-"
        heads = [(r["headline"] if r else "-").replace("\t", " ") for r in (rec["fp32"], new)]
        lines.append("\t".join([nb, *walls, speed, *claims, differ, *heads]))
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
    parser.add_argument("--only-table", action="store_true", help="rewrite the TSV from the runs already in --out")
    args = parser.parse_args(argv)
    status = 0
    if not args.only_table:
        for label, env in SETTINGS:
            status = max(status, run_setting(label, env, args.notebooks, args.out))
    results = {label: read_setting(args.out / label) for label, _ in SETTINGS}
    lines = merge_rows(args.tsv, table(results))
    args.tsv.parent.mkdir(parents=True, exist_ok=True)
    args.tsv.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"written to {args.tsv}")
    return status


if __name__ == "__main__":
    sys.exit(main())
