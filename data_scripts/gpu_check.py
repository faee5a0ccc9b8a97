"""The prepared GPU session: ``make gpu-check`` (``python -m data_scripts.gpu_check``).

A GPU is lent rarely and briefly (about 15 minutes of device time in all, at most 10 minutes per command), so
this runs, in order, what a GPU can show and a CPU cannot, and commits each step's results as it finishes:

1. ``smoke``: every notebook's full profile at smoke scale on CUDA (``tests/test_full_profile.py`` with
   ``KAE_SMOKE_DEVICE=cuda``, and the device checks of ``tests/test_device_agnostic.py``): about a minute; a
   CUDA-only crash shows here, not in the middle of a paper-scale run. Its work log calibrates the time estimates
   (``data_scripts.gpu_estimate --calibrate``), written to ``results/gpu_estimate.tsv`` before the next steps
   decide what fits.
2. ``zoo``: the full offline data sets materialised (``data_scripts.make_offline --profile full``: loaded, not
   generated, from then on), then the full-profile zoo entries at paper scale (``make zoo DEVICE=cuda
   ZOO_PROFILE=full``) into
   ``runs_full/zoo`` (``KAE_ZOO_DIR``; git ignores it: 83 MB of weights are more than the shipped zoo's 40 MB
   budget), the shipped quick entries copied beside them; their manifest records (held-out metrics, training time,
   hashes) are committed as ``results/full/zoo_manifest.json``. An interrupted build resumes at its last epoch.
3. ``notebooks``: each notebook's full profile in the order that matters most (the amalgamation notebooks first:
   ``PRIORITY``), each with a time limit from its estimate, into ``runs_full/``; its metrics go to
   ``results/full/`` and the README's full-profile column (``kae readme --collect``, which rewrites the other
   generated blocks too); 02 and 03 also on
   ``shapes`` (``results/full/shapes/``). A notebook whose estimate does not fit in the time left is skipped and
   named, for the next session.

Every step stops before ``--deadline-s`` (default 570 s: one command of at most 10 minutes). With ``--export DIR``
(``GPU_CHECK_EXPORT``, e.g. the device machine's ``$OUT``) each step's files are also copied to ``DIR/files/`` and
its commit written to ``DIR/patches/`` (``git format-patch``): ``git am DIR/patches/*.patch`` brings the results
home (or copy ``DIR/files/`` over the checkout, where the machine had no git). See "A GPU session" in ``docs/profiles.md``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from data_scripts.gpu_estimate import PRIORITY

STEPS: tuple[str, ...] = ("smoke", "zoo", "notebooks")
#: The full profile of 02 and 03 on ``shapes`` (after their default ``digits`` runs).
VARIANTS: dict[str, dict[str, str]] = {"02": {"DATASET": "shapes"}, "03": {"DATASET": "shapes"}}
#: A notebook's time limit: this many times its estimate, plus a minute (the estimate is +/- a factor of 2).
LIMIT_FACTOR, LIMIT_EXTRA_S = 2.0, 60.0
SMOKE_LIMIT_S = 300.0


def plan(estimates: dict[str, float], wanted: Sequence[str], seconds_left: float) -> list[tuple[str, float]]:
    """``(run, time limit)`` of the runs of ``wanted`` (in that order) that fit in ``seconds_left`` by their
    estimate; a run without an estimate gets what is left. Runs that do not fit are left out (named by the caller)."""
    out, left = [], seconds_left
    for run in wanted:
        estimate = estimates.get(run)
        if estimate is not None and estimate > left:
            continue
        limit = left if estimate is None else min(left, LIMIT_FACTOR * estimate + LIMIT_EXTRA_S)
        out.append((run, limit))
        left -= estimate if estimate is not None else left
    return out


def read_estimates(path: Path) -> dict[str, float]:
    """``step -> estimated seconds`` from ``results/gpu_estimate.tsv``."""
    if not path.exists():
        return {}
    with path.open() as f:
        return {r["step"]: float(r["gpu_estimate_s"]) for r in csv.DictReader(f, delimiter="\t")}


def notebook_runs(names: Sequence[str]) -> list[tuple[str, str, dict[str, str]]]:
    """``(label, stem, parameters)`` in priority order: each notebook, then its variant (02 and 03 on shapes)."""
    from kae_tools.notebooks.catalog import find_notebooks

    stems = {p.stem[:2]: p.stem for p in find_notebooks([])}
    chosen = [n[:2] for n in names] if names else list(PRIORITY)
    out = []
    for number in [n for n in PRIORITY if n in chosen] + [n for n in chosen if n not in PRIORITY]:
        stem = stems[number]
        out.append((stem, stem, {}))
        if number in VARIANTS:
            params = VARIANTS[number]
            out.append((f"{stem} ({', '.join(params.values())})", stem, params))
    return out


class Session:
    """Commands with a deadline, and commits (exported as patches)."""

    def __init__(self, root: Path, deadline_s: float, export: Path | None, commit: bool,
                 echo: Callable[[str], None] = print) -> None:
        self.root, self.start, self.deadline_s = root, time.monotonic(), deadline_s
        self.export, self.commit_enabled, self.echo = export, commit, echo

    def left(self) -> float:
        return self.deadline_s - (time.monotonic() - self.start)

    def run(self, cmd: Sequence[str], limit: float, env: dict[str, str] | None = None) -> int:
        limit = max(1.0, min(limit, self.left()))
        self.echo(f"$ {' '.join(cmd)}   (limit {limit:.0f} s)")
        try:
            return subprocess.run(cmd, cwd=self.root, env={**os.environ, **(env or {})}, timeout=limit).returncode
        except subprocess.TimeoutExpired:
            self.echo(f"  stopped after {limit:.0f} s")
            return 124

    def commit(self, paths: Sequence[str], message: str) -> None:
        """Commit ``paths`` (those that exist); with an export folder, also copy them there (``files/``) and write
        the commit as a patch. A failed commit (no git, no identity) is reported, never fatal: the copies remain."""
        existing = [p for p in paths if (self.root / p).exists()]
        if self.export is not None:
            for p in existing:
                target = self.export / "files" / p
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.root / p, target)
        if not self.commit_enabled or not existing:
            return
        git = ["git", "-c", "user.name=make gpu-check", "-c", "user.email=gpu-check@localhost"]
        try:
            subprocess.run([*git, "add", "--", *existing], cwd=self.root, check=True)
            if subprocess.run(["git", "diff", "--cached", "--quiet"], cwd=self.root).returncode == 0:
                self.echo("  nothing to commit")
                return
            subprocess.run([*git, "commit", "-q", "-m", message], cwd=self.root, check=True)
            self.echo(f"  committed: {message.splitlines()[0]}")
            if self.export is not None:
                subprocess.run([*git, "format-patch", "-q", "-1", "--binary", "-o", str(self.export / "patches")],
                               cwd=self.root, check=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            self.echo(f"  not committed ({exc}); the files are in place" + (" and exported" if self.export else ""))


def _gpu_words() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"


def _generated_files(root: Path) -> list[str]:
    """The files whose generated blocks ``kae readme`` rewrites (README.md, docs/*.md), relative to ``root``: they
    are committed with the results they show."""
    from kae_tools.readme import generated_files

    return [str(path.relative_to(root)) for path in generated_files(root)]


def step_smoke(s: Session, py: str, out: Path) -> bool:
    smoke = out / "smoke"
    if smoke.exists():
        shutil.rmtree(smoke)
    env = {"KAE_SMOKE_DEVICE": "cuda", "KAE_SMOKE_OUT": str(smoke), "KAE_SMOKE_JOBS": "2"}
    code = s.run([py, "-m", "pytest", "tests/test_full_profile.py", "tests/test_device_agnostic.py", "-p",
                  "no:cacheprovider", "-q", "-x"], SMOKE_LIMIT_S, env)
    results = s.root / "results" / "full"
    results.mkdir(parents=True, exist_ok=True)
    if (smoke / "timings.tsv").exists():
        shutil.copyfile(smoke / "timings.tsv", results / "smoke_cuda.tsv")
    if (smoke / "work").is_dir():
        s.run([py, "-m", "data_scripts.gpu_estimate", str(smoke), "--calibrate", str(smoke / "work")], 60)
    words = "passed" if code == 0 else f"FAILED (exit {code})"
    s.commit(["results/full/smoke_cuda.tsv", "results/gpu_estimate.tsv", "results/gpu_estimate.txt"],
             f"gpu-check: every full profile at smoke scale on CUDA ({_gpu_words()}): {words}; "
             "GPU estimates calibrated on it")
    return code == 0


def step_zoo(s: Session, py: str, zoo_dir: Path) -> bool:
    # the full offline sets as files first (data/, ignored by git): the zoo's entries and the notebooks load the same
    # splits again and again, and generating 60,000 shapes or 9,000 scenes at 128 x 128 each time costs minutes
    s.run([py, "-m", "data_scripts.make_offline", "--profile", "full", "--datasets", "shapes", "scenes"], 180)
    env = {"KAE_ZOO_DIR": str(zoo_dir)}
    code = s.run([py, "-m", "kae_utils.zoo", "build", "--profile", "full", "--device", "cuda"], s.left(), env)
    manifest = zoo_dir / "manifest.json"
    if manifest.exists():
        entries = json.loads(manifest.read_text())["entries"]
        full = {n: r for n, r in entries.items() if r.get("profile") == "full"}
        target = s.root / "results" / "full" / "zoo_manifest.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps({"format": 1, "entries": full}, indent=1) + "\n")
        s.commit(["results/full/zoo_manifest.json"],
                 f"gpu-check: full zoo entries built on {_gpu_words()} ({len(full)} of them"
                 f"{'' if code == 0 else ', interrupted: the next build resumes'}); their manifest records")
    return code == 0


def step_notebooks(s: Session, py: str, zoo_dir: Path, runs_root: Path, names: Sequence[str],
                   estimates: dict[str, float]) -> bool:
    env = {"KAE_ZOO_DIR": str(zoo_dir)}
    runs = notebook_runs(names)
    by_label = {label: (stem, params) for label, stem, params in runs}
    chosen = plan(estimates, [label for label, _, _ in runs], s.left() - 30)
    skipped = [label for label, _, _ in runs if label not in dict(chosen)]
    if skipped:
        s.echo(f"left for the next session (estimate over the time left): {', '.join(skipped)}")
    ok = True
    for label, limit in chosen:
        stem, params = by_label[label]
        folder = runs_root if not params else runs_root / "-".join(params.values())
        cmd = [py, "-m", "kae_tools", "run", stem, "--profile", "full", "--out", str(folder), "--timeout", f"{limit:.0f}",
               "-p", "DEVICE", "cuda"]
        for key, value in params.items():
            cmd += ["-p", key, value]
        code = s.run(cmd, limit + 30, env)
        ok &= code == 0
        metrics = folder / stem / "metrics.json"
        paths = []
        if params and metrics.exists():
            target = s.root / "results" / "full" / "-".join(params.values()) / f"{stem}.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(metrics, target)
            paths.append(str(target.relative_to(s.root)))
        elif metrics.exists():
            s.run([py, "-m", "kae_tools", "readme", "--collect", str(runs_root), "--profile", "full"], 60)
            paths += [f"results/full/{stem}.json", *_generated_files(s.root)]
        claims = ""
        if metrics.exists():
            c = json.loads(metrics.read_text()).get("claims") or {}
            claims = f"claims {c.get('held')}/{c.get('total')}" if c else ""
        words = "ok" if code == 0 else f"exit {code}"
        s.commit(paths, f"gpu-check: {label}, full profile on {_gpu_words()}: {words}{'; ' + claims if claims else ''}")
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_scripts.gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS), help="default: all three, in order")
    parser.add_argument("--nb", nargs="*", default=[], help="notebooks of the notebooks step (default: all, PRIORITY)")
    parser.add_argument("--deadline-s", type=float, default=570.0, help="stop everything after this (default 570)")
    parser.add_argument("--runs", type=Path, default=Path("runs_full"),
                        help="the notebooks' runs (default runs_full, as make reproduce); the smoke run in gpu-check/")
    parser.add_argument("--zoo", type=Path, default=Path("runs_full/zoo"), help="the full zoo (KAE_ZOO_DIR)")
    parser.add_argument("--export", type=Path, default=os.environ.get("GPU_CHECK_EXPORT") or None,
                        help="also write each commit there as a patch (GPU_CHECK_EXPORT)")
    parser.add_argument("--no-commit", action="store_true", help="write the results, commit nothing")
    args = parser.parse_args(argv)

    import torch

    from kae_utils.core.paths import repo_root

    if not torch.cuda.is_available():
        print("gpu-check needs a CUDA GPU (torch sees none); on a CPU, `make test` runs the full profiles at smoke "
              "scale and `make gpu-estimate` the time estimates", file=sys.stderr)
        return 2
    root = repo_root()
    s = Session(root, args.deadline_s, args.export, not args.no_commit)
    runs, zoo_dir = ((root / p).resolve() for p in (args.runs, args.zoo))  # an absolute path stays as it is
    out = runs / "gpu-check"
    out.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    ok = True
    for step in args.steps:
        estimates = read_estimates(root / "results" / "gpu_estimate.tsv")
        s.echo(f"== {step} ({s.left():.0f} s left)")
        if step == "smoke":
            ok &= step_smoke(s, py, out)
            if not ok:
                s.echo("the smoke run failed on CUDA: fix that before spending GPU time on the paper scale")
                return 1
        elif step == "zoo":
            if estimates.get("zoo build", 0) > s.left():
                s.echo(f"the zoo build (estimate {estimates['zoo build']:.0f} s) does not fit in {s.left():.0f} s: "
                       "it starts anyway and resumes next time")
            ok &= step_zoo(s, py, zoo_dir)
        else:
            ok &= step_notebooks(s, py, zoo_dir, runs, args.nb, estimates)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
