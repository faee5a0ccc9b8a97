"""Every notebook's full profile (``PROFILE="full"``), executed end to end at smoke scale (``KAE_SCALE=smoke``).

The full profile is meant for a GPU that is rarely lent. Here it runs on the CPU with every count shrunk by
:mod:`kae_utils.core.scale` (images, epochs, steps, probe images, transfer runs) and everything else as written: the
seed lists, the ablations, the branch searches, the statistics over seeds, the architectures, image sizes and full
zoo entries, built first at the same scale into a temporary zoo (``KAE_ZOO_DIR``, never ``zoo/``). Each notebook
runs through the batch runner (papermill, a fresh cache each), and must finish, write its metrics and claims, and
show its full-profile tables: the statistics over its seeds and its full-only branches.

Options (environment): ``KAE_SMOKE_DEVICE`` (``auto``, ``cpu`` or ``cuda``; ``make gpu-check`` runs it on CUDA),
``KAE_SMOKE_OUT`` (keep the zoo, the runs, the work log and ``timings.tsv`` in this folder instead of a temporary
one), ``KAE_SMOKE_JOBS`` (notebooks at a time, default 2). ``make test-full-smoke`` runs this file alone.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kae_tools.notebooks.catalog import find_notebooks
from kae_tools.runner.schedule import run_notebooks
from kae_tools.runner.spec import RunResult

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
DEVICE = os.environ.get("KAE_SMOKE_DEVICE", "auto")
JOBS = int(os.environ.get("KAE_SMOKE_JOBS", "2"))
#: A guard against a hung run, not a speed goal (those are `make bench`'s): 07's full profile alone took 404 s here at
#: smoke scale on one thread (2026-12-06), over 600 s beside the other lane.
TIMEOUT_S = 1200
#: Extra runs beyond each notebook's defaults: 02 and 03 at full profile on ``shapes`` (the full-profile
#: experiment for them in docs/profiles.md, and the only user of the full zoo's shapes teachers and backbones).
EXTRA_RUNS = (("02_comprehensive_classification", {"DATASET": "shapes"}),
              ("03_common_feature_learning", {"DATASET": "shapes"}))
#: Seconds each run took here at smoke scale (one thread): the longest start first, so two lanes end together.
EXPECTED_S = {"07": 400, "08": 75, "04": 65, "02-shapes": 40, "03-shapes": 40, "06": 32, "09": 25, "05": 25}
#: What only the full profile shows, per notebook (its extra tasks, ablations and sweeps; none of it is in the stored
#: quick-profile outputs, checked below).
FULL_ONLY = {
    "04_student_becoming_master": ["normals"],
    "05_adaptive_amalgamation": ["position, fixed S1", "position, oracle", "features only", "logits only", "R off"],
    "06_filtered_amalgamation": ["AFK, k = 1", "AFK, k = 4", "soft loss", "block only", "finetune only",
                                 "teachers' BN statistics"],
    "07_recombination": ["random importance", "one-shot pruning", "plain multi-task encoder-decoder ("],
    "08_attribution_transferability": ["keypoints2d", "object_count", "inpainting"],
    "09_depara": ["keypoints2d", "object_count", "inpainting"],
}
#: Notebooks whose full profile shows the mean over its seeds without a spread (reported, to be fixed there).
NO_SPREAD = {"07_recombination": "its results table is the mean over its two seeds, without a standard deviation"}


def _label(stem: str, parameters: dict) -> str:
    return "-".join([stem, *(str(v) for v in parameters.values())])


def _order(runs: list[tuple[Path, dict]]) -> list[tuple[Path, dict]]:
    return sorted(runs, key=lambda r: -EXPECTED_S.get("-".join([r[0].stem[:2], *map(str, r[1].values())]), 15))


def _outputs_text(path: Path) -> str:
    """Every text output of an executed notebook (streams, text/plain results, errors), joined."""
    parts = []
    for cell in json.loads(path.read_text())["cells"]:
        for out in cell.get("outputs", []):
            if "text" in out:
                parts.append("".join(out["text"]))
            data = out.get("data", {})
            if "text/plain" in data:
                parts.append("".join(data["text/plain"]))
    return "\n".join(parts)


class SmokeRun:
    """The smoke zoo's build and every notebook's run: results by label, and the wall times."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.results: dict[str, RunResult] = {}
        self.seconds: dict[str, float] = {}
        self.zoo_log = ""

    def build_zoo(self, env: dict[str, str], part: str, names: list[str]) -> None:
        """Build ``names`` (and what they start from) into ``<out>/zoo-<part>``."""
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "kae_utils.zoo", "build", *names, "--device", DEVICE],
                              env={**env, "KAE_ZOO_DIR": str(self.out / f"zoo-{part}"), "KAE_WORK_TAG": f"zoo-{part}",
                                   "OMP_NUM_THREADS": "1"},
                              cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
        self.seconds[f"zoo build ({part})"] = time.perf_counter() - start
        self.zoo_log += proc.stdout + proc.stderr
        assert proc.returncode == 0, f"the smoke zoo's build ({part}) failed:\n{(proc.stdout + proc.stderr)[-4000:]}"

    def merge_zoo(self, parts: list[str]) -> None:
        """One smoke zoo, ``<out>/zoo``, from the parts built side by side."""
        from kae_utils.zoo.smoke import smoke_registry
        from kae_utils.zoo.store import Zoo

        whole = Zoo(self.out / "zoo", smoke_registry())
        for part in parts:
            piece = Zoo(self.out / f"zoo-{part}", smoke_registry())
            whole.adopt(piece, list(piece.manifest()["entries"]))

    def run(self, path: Path, parameters: dict) -> None:
        label = _label(path.stem, parameters)
        folder = self.out / "runs" / ("-".join(str(v) for v in parameters.values()) or "default")
        [result] = run_notebooks([path], profile="full", parameters={"DEVICE": DEVICE, **parameters}, out=folder,
                                 jobs=1, timeout=TIMEOUT_S, fresh_cache=True, threads=1, log=lambda line: None)
        self.results[label], self.seconds[label] = result, result.wall_s

    def write_timings(self) -> Path:
        path = self.out / "timings.tsv"
        with path.open("w", newline="") as f:
            writer = csv.writer(f, delimiter="\t", lineterminator="\n")
            writer.writerow(["run", "status", "wall_s", "claims"])
            for label, seconds in self.seconds.items():
                if label.startswith("zoo build"):
                    writer.writerow([label, "ok", f"{seconds:.1f}", ""])
            for label, r in self.results.items():
                claims = f"{r.claims_held}/{r.claims_total}" if r.claims_total is not None else ""
                writer.writerow([label, r.status, f"{r.wall_s:.1f}", claims])
            writer.writerow(["all (wall)", "", f"{self.seconds['all']:.1f}", ""])
        return path


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> SmokeRun:
    out = Path(os.environ["KAE_SMOKE_OUT"]).resolve() if os.environ.get("KAE_SMOKE_OUT") else \
        tmp_path_factory.mktemp("full-smoke")
    out.mkdir(parents=True, exist_ok=True)
    env = {"KAE_SCALE": "smoke", "KAE_ZOO_DIR": str(out / "zoo"), "KAE_WORK_LOG": str(out / "work"),
           "KAE_PROGRESS": "plain"}
    run = SmokeRun(out)
    notebooks = find_notebooks([])
    without_zoo = [p for p in notebooks if p.stem.startswith("00")]  # 00 loads no model: it runs beside the build
    rest = _order([(p, {}) for p in notebooks if p not in without_zoo]
                  + [(ROOT / "notebooks" / f"{stem}.ipynb", params) for stem, params in EXTRA_RUNS])
    from kae_utils.zoo.registry import REGISTRY

    full = [name for name, e in REGISTRY.items() if e.profile == "full"]
    # two builds side by side (about as long, with 00 before the second), then one zoo
    parts = {"second": [n for n in full if n.startswith(("taskonomy", "scenes", "digits", "shapes-ada", "shapes-afk"))]}
    parts["first"] = [n for n in full if n not in parts["second"]]  # the shapes backbones and their teachers
    start = time.perf_counter()
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        with ThreadPoolExecutor(max_workers=JOBS) as pool:
            def second_lane() -> None:
                for p in without_zoo:
                    run.run(p, {})
                run.build_zoo(dict(os.environ), "second", parts["second"])

            lanes = [pool.submit(run.build_zoo, dict(os.environ), "first", parts["first"]), pool.submit(second_lane)]
            for lane in lanes:
                lane.result()
            run.merge_zoo(list(parts))
            for future in [pool.submit(run.run, p, params) for p, params in rest]:
                future.result()
    run.seconds["all"] = time.perf_counter() - start
    print(f"\nfull profile at smoke scale: {run.write_timings()}")
    print((run.out / "timings.tsv").read_text())
    return run


def _labels() -> list[str]:
    return [_label(p.stem, {}) for p in find_notebooks([])] + [_label(s, p) for s, p in EXTRA_RUNS]


def test_smoke_zoo_holds_every_full_entry_and_no_shipped_file_changed(smoke: SmokeRun) -> None:
    from kae_utils import zoo

    manifest = json.loads((smoke.out / "zoo" / "manifest.json").read_text())["entries"]
    full = [name for name, e in zoo.REGISTRY.items() if e.profile == "full"]
    assert sorted(n for n in manifest if manifest[n]["profile"] == "full") == sorted(full)
    assert all(manifest[n]["recipe"]["data"].get("scale") == "smoke" for n in full), "built at smoke scale"
    assert zoo.Zoo(ROOT / "zoo", zoo.REGISTRY).verify() == [], "the shipped zoo is untouched"
    shipped = json.loads((ROOT / "zoo" / "manifest.json").read_text())["entries"]
    assert not any(shipped.get(n, {}).get("profile") == "full" for n in full), "no smoke entry in the shipped zoo"


@pytest.mark.parametrize("label", _labels())
def test_full_profile_runs_at_smoke_scale(smoke: SmokeRun, label: str) -> None:
    result = smoke.results[label]
    assert result.status == "ok", f"{label} (PROFILE='full', KAE_SCALE=smoke) {result.status}:\n{result.error}"
    stem = label.split("-")[0]
    metrics = json.loads((Path(result.output_path).parent / "metrics.json").read_text())
    assert metrics["profile"] == "full" and metrics["scale"] == "smoke", "a smoke run, never collected as a result"
    claims = metrics["claims"]
    assert claims and claims["total"] >= 1 and len(claims["items"]) == claims["total"]
    text = _outputs_text(Path(result.output_path))
    lines = [line for line in text.splitlines() if re.match(r"(PASS|FAIL) ", line)]
    assert len(lines) == claims["total"], f"{label}: {len(lines)} claim lines for {claims['total']} claims"
    assert f"claims: {claims['held']}/{claims['total']} hold" in text
    if stem == "00_datasets":
        return
    seeds = re.findall(r"\b(?:gt_)?seeds['\"]?:\s*\[([0-9, ]+)\]", text)
    assert seeds and max(len(s.split(",")) for s in seeds) >= 2, f"{label}: the full profile runs several seeds"
    n = max(len(s.split(",")) for s in seeds)
    if stem not in NO_SPREAD:
        assert "±" in text or f"mean of {n}" in text, f"{label}: no statistics over the seeds (mean ± std)"
    missing = [s for s in FULL_ONLY.get(stem, []) if s not in text]
    assert not missing, f"{label}: the full profile's branches did not show {missing}"


@pytest.mark.parametrize("stem", sorted(FULL_ONLY))
def test_full_only_markers_are_absent_from_the_quick_outputs(stem: str) -> None:
    """The markers above prove a full-only branch ran only if the quick profile never prints them."""
    quick = _outputs_text(ROOT / "notebooks" / f"{stem}.ipynb")
    assert [s for s in FULL_ONLY[stem] if s in quick] == []
