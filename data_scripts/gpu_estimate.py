"""GPU time of each full-profile step, estimated from the smoke run's counts: ``python -m data_scripts.gpu_estimate``.

The smoke run (``tests/test_full_profile.py`` with ``KAE_SMOKE_OUT``; ``make gpu-estimate``) keeps a work log
(:mod:`kae_utils.core.scale`): for every training run of the zoo build and of each notebook, its optimiser steps, the
images it saw, the FLOPs of one training step per image (counted by ``torch.utils.flop_counter`` on the run's first
step: the real architecture at its real image size) and what the same run counts at paper scale; and every call of
an offline generator with the images it would draw at paper scale. The estimate of one step is

    seconds = steps x STEP_S + FLOPs / FLOPS_PER_S + generated images / generator speed + START_S

summed over its training runs at paper scale: a per-step overhead (kernel launches, the optimiser, the loss read
back every step), the arithmetic at a sustained throughput, the offline data made on the host's CPU (at the speeds
of ``results/generation_speed.tsv``, measured here on 2 threads) and a kernel's start. Without a GPU measurement
``STEP_S`` and ``FLOPS_PER_S`` are assumptions (below); ``--calibrate DIR`` fits both to the smoke run's work log
made on the GPU itself (``make gpu-check``'s first step), least squares over its training runs. Not counted:
evaluation and inference passes, figures, the estimators of 08 and 09 (their counts are not training steps), so
the figures are lower bounds of the arithmetic and upper bounds of nothing; treat them as +/- a factor of 2.

Writes ``results/gpu_estimate.tsv`` (``docs/profiles.md`` shows it) and prints it.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kae_utils.core.paths import repo_root

#: Assumed without a GPU measurement: seconds of overhead per optimiser step (launches, the loss's .item() every
#: step, Adam over the parameters) ...
STEP_S: float = 0.004
#: ... and the sustained bf16 throughput of these small convolutional nets on one H100 or H200 (a few % of peak).
FLOPS_PER_S: float = 15e12
#: Start of a notebook's kernel: imports, CUDA initialisation, the zoo's hash checks.
START_S: float = 20.0
#: The order of `make gpu-check`'s notebooks: the amalgamation notebooks first, then distillation, the estimators
#: and the data sets.
PRIORITY: tuple[str, ...] = ("02", "03", "05", "06", "04", "07", "01", "08", "09", "00")


@dataclass
class Step:
    """One step of ``make gpu-check`` (the zoo build, or one notebook run) at paper scale."""

    run: str
    steps: int = 0
    flops: float = 0.0
    images: dict[tuple[str, int], int] = field(default_factory=dict)
    smoke_s: float | None = None

    def seconds(self, step_s: float, flops_per_s: float, speeds: dict[tuple[str, int], float]) -> float:
        data = sum(n / _speed(speeds, gen, size) for (gen, size), n in self.images.items() if gen != "digits")
        start = 0.0 if self.run == "zoo build" else START_S
        return self.steps * step_s + self.flops / flops_per_s + data + start


def _speed(speeds: dict[tuple[str, int], float], generator: str, size: int) -> float:
    """Images per second of ``generator`` at ``size``: measured, or the nearest size scaled by its pixels."""
    known = {s: v for (g, s), v in speeds.items() if g == generator}
    if not known:
        return 1000.0
    nearest = min(known, key=lambda s: abs(math.log(s / size)))
    return known[nearest] * (nearest / size) ** 2


def generation_speeds(path: Path) -> dict[tuple[str, int], float]:
    """``(generator, image size) -> images per second`` from ``results/generation_speed.tsv``."""
    if not path.exists():
        return {}
    with path.open() as f:
        return {(r["generator"], int(r["image_size"])): float(r["items_per_s"]) for r in csv.DictReader(f, delimiter="\t")
                if r["generator"] in ("shapes", "scenes")}


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _run_name(log: Path) -> str:
    """``zoo build``, ``02_comprehensive_classification`` or ``02_comprehensive_classification (shapes)``."""
    if log.stem == "zoo" or log.stem.startswith("zoo-"):  # the smoke test builds its zoo in parts
        return "zoo build"
    variant, _, stem = log.stem.partition("-")
    return stem if variant == "default" else f"{stem} ({variant})"


def steps_from_log(log: Path) -> Step:
    """One step at paper scale from its work log; a notebook's training runs never see more images at paper scale
    than the largest data set it generated (``transfer_size`` 20,000 of the 898 ``digits`` is all of them)."""
    step, records = Step(_run_name(log)), _records(log)
    for r in records:
        if r["kind"] == "data":
            key = (r["desc"], r["image_size"])
            step.images[key] = step.images.get(key, 0) + r["paper scale"]["samples"]
    cap = max((r["paper scale"]["samples"] for r in records if r["kind"] == "data"), default=None)
    for r in records:
        if r["kind"] not in ("fit", "steps"):
            continue
        paper, shrink = r["paper scale"], 1.0
        if cap is not None and step.run != "zoo build" and paper["samples"] > cap:
            shrink = cap / paper["samples"]
        step.steps += math.ceil(paper["steps"] * shrink)
        step.flops += (paper["flops"] or 0.0) * shrink
    return step


def calibrate(folder: Path) -> tuple[float, float]:
    """``(STEP_S, FLOPS_PER_S)`` fitted to the training runs of a smoke run's work log made on the GPU: least squares
    of ``seconds = a steps + b FLOPs`` with ``a, b > 0`` (one of them alone when the other comes out negative)."""
    rows = [(r["this scale"]["steps"], r["this scale"]["flops"] or 0.0, r["seconds"])
            for log in sorted(folder.glob("*.jsonl")) for r in _records(log)
            if r["kind"] in ("fit", "steps") and r["device"] == "cuda"]
    if len(rows) < 2:
        raise SystemExit(f"{folder}: no training runs on CUDA to calibrate from (run the smoke test on the GPU first)")
    sxx = sum(s * s for s, _, _ in rows)
    syy = sum(f * f for _, f, _ in rows)
    sxy = sum(s * f for s, f, _ in rows)
    sxt = sum(s * t for s, _, t in rows)
    syt = sum(f * t for _, f, t in rows)
    det = sxx * syy - sxy * sxy
    a = (sxt * syy - syt * sxy) / det if det else 0.0
    b = (syt * sxx - sxt * sxy) / det if det else 0.0
    if a <= 0:  # the arithmetic alone
        a, b = 1e-6, syt / syy
    elif b <= 0:  # the steps alone
        a, b = sxt / sxx, 1e-18
    return a, 1.0 / b


def read_timings(path: Path) -> dict[str, float]:
    """The smoke run's wall times (``timings.tsv`` of the smoke test), by the names :func:`_run_name` gives."""
    if not path.exists():
        return {}
    out = {}
    with path.open() as f:
        for row in csv.DictReader(f, delimiter="\t"):
            label = row["run"]
            stem, _, variant = label.partition("-")
            if label.startswith("zoo build"):
                out["zoo build"] = out.get("zoo build", 0.0) + float(row["wall_s"])
            else:
                out[label if label == "all (wall)" else (f"{stem} ({variant})" if variant else stem)] = \
                    float(row["wall_s"])
    return out


def estimate(smoke: Path, calibrated: Path | None = None, root: Path | None = None) -> tuple[list[dict], str]:
    """The rows of ``results/gpu_estimate.tsv`` from the smoke run in ``smoke`` (its ``work/`` and ``timings.tsv``),
    and the words saying which constants were used."""
    root = root or repo_root()
    speeds = generation_speeds(root / "results" / "generation_speed.tsv")
    step_s, flops_per_s = calibrate(calibrated) if calibrated else (STEP_S, FLOPS_PER_S)
    how = (f"calibrated on the GPU ({calibrated}): {step_s * 1e3:.2f} ms per step, {flops_per_s / 1e12:.1f} TFLOP/s"
           if calibrated else f"assumed: {step_s * 1e3:.1f} ms per step, {flops_per_s / 1e12:.0f} TFLOP/s")
    timings = read_timings(smoke / "timings.tsv")
    steps: list[Step] = []
    for log in sorted((smoke / "work").glob("*.jsonl")):
        part = steps_from_log(log)
        same = next((s for s in steps if s.run == part.run), None)
        if same is None:
            steps.append(part)
            continue
        same.steps, same.flops = same.steps + part.steps, same.flops + part.flops
        for key, n in part.images.items():
            same.images[key] = same.images.get(key, 0) + n
    rank = {nb: i for i, nb in enumerate(PRIORITY)}
    steps.sort(key=lambda s: (s.run != "zoo build", rank.get(s.run[:2], 99), s.run))
    rows, total = [], 0.0
    for s in steps:
        seconds = s.seconds(step_s, flops_per_s, speeds)
        total += seconds
        rows.append({"step": s.run, "smoke_cpu_s": f"{timings[s.run]:.0f}" if s.run in timings else "",
                     "paper_steps": s.steps, "paper_tflop": f"{s.flops / 1e12:.1f}",
                     "paper_images_generated": sum(n for (g, _), n in s.images.items() if g != "digits"),
                     "gpu_estimate_s": f"{seconds:.0f}", "cumulative_min": f"{total / 60:.1f}"})
    return rows, how


def write(rows: list[dict], how: str, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    path.with_suffix(".txt").write_text(how + "\n")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_scripts.gpu_estimate", description=__doc__.splitlines()[0])
    parser.add_argument("smoke", nargs="?", type=Path, default=Path("runs/full-smoke"),
                        help="the smoke run's folder (KAE_SMOKE_OUT of tests/test_full_profile.py)")
    parser.add_argument("--calibrate", type=Path, default=None, metavar="WORK",
                        help="a work log folder of the smoke run made on the GPU: fit the per-step and FLOP costs")
    parser.add_argument("--out", type=Path, default=None, help="default: results/gpu_estimate.tsv")
    args = parser.parse_args(argv)
    if not (args.smoke / "work").is_dir():
        print(f"{args.smoke}/work not found: run the smoke test first (make gpu-estimate)", file=sys.stderr)
        return 2
    rows, how = estimate(args.smoke, args.calibrate)
    out = write(rows, how, args.out or repo_root() / "results" / "gpu_estimate.tsv")
    print(how)
    print(out.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
