"""The work log of the smoke scale (kae_utils.core.scale), the GPU estimates made from it and make gpu-check's plan."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from data_scripts import gpu_check, gpu_estimate
from kae_utils.core import scale
from kae_utils.training.trainer import Trainer


@pytest.fixture()
def work_log(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("KAE_WORK_LOG", str(tmp_path / "work"))
    monkeypatch.setenv("KAE_WORK_TAG", "test")
    monkeypatch.setattr(scale, "_SHRUNK", [])
    return tmp_path / "work" / "test.jsonl"


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_no_log_without_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAE_WORK_LOG", raising=False)
    assert scale.work_log_path() is None
    assert scale.log_work("fit", "x", epochs=1, samples=1, steps=1, flops_per_sample=1.0, seconds=0.1,
                          device="cpu") is None
    assert isinstance(scale.count_flops(), type(scale.count_flops()))  # a no-op context


def test_work_log_names_the_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KAE_WORK_LOG", str(tmp_path))
    monkeypatch.delenv("KAE_WORK_TAG", raising=False)
    monkeypatch.setenv("KAE_RUN_DIR", str(tmp_path / "runs" / "shapes" / "02_comprehensive_classification"))
    assert scale.work_log_path() == tmp_path / "shapes-02_comprehensive_classification.jsonl"


def test_paper_values_come_from_what_was_shrunk(work_log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAE_SCALE", "smoke")
    small = scale.profile_settings({"full": dict(adapt_epochs=5, retrain_epochs=5, transfer_size=20000)}, "full")
    assert small == dict(adapt_epochs=1, retrain_epochs=1, transfer_size=40)
    assert scale.paper_value("iterations", 1) == 5 and scale.paper_value("images", 40) == 20000
    assert scale.paper_value("iterations", 3) == 15, "a sum of shrunk epochs scales with them"
    assert scale.paper_value("images", 20) == 10000, "a subset of the transfer set scales with it"
    assert scale.paper_value("images", 898) == 898, "a set the smoke scale never touched stays as it is"
    with scale.paper_counts(epochs=12, samples_factor=250.0):
        assert scale.paper_value("iterations", 1) == 12 and scale.paper_value("images", 16) == 4000
    record = scale.log_work("fit", "student", epochs=1, samples=40, steps=1, flops_per_sample=1e6, seconds=0.5,
                            device="cpu", batch_size=128)
    assert record["paper scale"] == {"epochs": 5, "samples": 20000, "steps": 5 * math.ceil(20000 / 128),
                                     "samples_seen": 100000, "flops": 1e6 * 100000}
    steps = scale.log_work("steps", "transfers", epochs=1, samples=40, steps=18, flops_per_sample=2.0, seconds=1,
                           device="cpu")
    assert steps["paper scale"]["steps"] == 18 * 5, "a full-batch loop: its steps scale with the iterations only"
    assert [r["desc"] for r in _records(work_log)] == ["student", "transfers"]
    scale.shrink_images(100000, 32, record=False)  # the zoo's smoke registry: defined, not trained here
    assert scale.paper_value("images", 512) == 512


def test_trainer_logs_its_steps_and_flops(work_log: Path) -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    x, y = torch.randn(20, 3, 2, 2), torch.randint(0, 3, (20,))
    Trainer(model, epochs=2, batch_size=8, progress=False, desc="tiny").fit((x, y))
    [record] = _records(work_log)
    assert record["kind"] == "fit" and record["desc"] == "tiny" and record["scale"] == "paper"
    assert record["this scale"] == record["paper scale"]
    assert record["this scale"]["epochs"] == 2 and record["this scale"]["samples"] == 20
    assert record["this scale"]["steps"] == 2 * math.ceil(20 / 8)
    # forward 2*12*3 per image, backward about twice that: the counter sees the real ops
    assert 2 * 12 * 3 <= record["flops_per_sample"] <= 4 * 2 * 12 * 3


def test_generators_log_the_images_they_draw(work_log: Path) -> None:
    from kae_utils.data.shapes import generate_shapes
    from kae_utils.data.shapes_config import ShapesConfig

    generate_shapes(5, seed=3, config=ShapesConfig(image_size=32))
    [record] = _records(work_log)
    assert record["kind"] == "data" and record["desc"] == "shapes" and record["image_size"] == 32
    assert record["this scale"]["samples"] == record["paper scale"]["samples"] == 5


def _write_log(folder: Path, name: str, records: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def _fit(steps: int, flops: float, samples: int = 100, paper_samples: int = 100, seconds: float = 1.0,
         device: str = "cpu") -> dict:
    return {"kind": "fit", "desc": "f", "device": device, "seconds": seconds, "flops_per_sample": flops / samples,
            "this scale": {"steps": steps, "samples": samples, "flops": flops},
            "paper scale": {"steps": steps, "samples": paper_samples, "flops": flops}}


def test_estimate_sums_steps_flops_and_data(tmp_path: Path) -> None:
    smoke = tmp_path / "smoke"
    data = {"kind": "data", "desc": "scenes", "image_size": 64, "this scale": {"samples": 16},
            "paper scale": {"samples": 1000}}
    _write_log(smoke / "work", "default-04_student_becoming_master", [data, _fit(1000, 3e14), _fit(500, 0.0)])
    _write_log(smoke / "work", "zoo-others", [_fit(100, 1.5e13)])
    _write_log(smoke / "work", "zoo-taskonomy", [_fit(100, 1.5e13)])
    rows, how = gpu_estimate.estimate(smoke, root=tmp_path)
    assert "assumed" in how
    by_step = {r["step"]: r for r in rows}
    assert list(by_step) == ["zoo build", "04_student_becoming_master"], "the zoo first, its parts summed"
    zoo = 200 * gpu_estimate.STEP_S + 3e13 / gpu_estimate.FLOPS_PER_S
    assert float(by_step["zoo build"]["gpu_estimate_s"]) == pytest.approx(zoo, abs=0.5)
    speed = 1000.0  # no measured generator speeds under tmp_path
    nb = 1500 * gpu_estimate.STEP_S + 3e14 / gpu_estimate.FLOPS_PER_S + 1000 / speed + gpu_estimate.START_S
    assert float(by_step["04_student_becoming_master"]["gpu_estimate_s"]) == pytest.approx(nb, abs=0.5)


def test_training_never_sees_more_images_than_were_made(tmp_path: Path) -> None:
    """transfer_size 20,000 of the 898 digits is all of them: the paper-scale count is capped by the data made."""
    data = {"kind": "data", "desc": "digits", "image_size": 8, "this scale": {"samples": 1797},
            "paper scale": {"samples": 1797}}
    _write_log(tmp_path, "default-02_comprehensive_classification",
               [data, _fit(10, 1e9, samples=40, paper_samples=20000)])
    step = gpu_estimate.steps_from_log(tmp_path / "default-02_comprehensive_classification.jsonl")
    assert step.steps == math.ceil(10 * 1797 / 20000) and step.flops == pytest.approx(1e9 * 1797 / 20000)


def test_calibration_recovers_the_constants(tmp_path: Path) -> None:
    rows = [_fit(s, f, seconds=s * 0.002 + f / 4e13, device="cuda") for s, f in ((10, 1e12), (100, 1e12),
                                                                               (10, 1e14), (50, 5e13))]
    _write_log(tmp_path, "zoo", rows)
    step_s, flops_per_s = gpu_estimate.calibrate(tmp_path)
    assert step_s == pytest.approx(0.002) and flops_per_s == pytest.approx(4e13)


def test_gpu_check_plans_by_priority_within_the_time_left() -> None:
    estimates = {"a": 100.0, "b": 400.0, "c": 50.0}
    plan = gpu_check.plan(estimates, ["a", "b", "c", "d"], 300.0)
    assert [run for run, _ in plan] == ["a", "c", "d"], "b does not fit; d has no estimate: it gets what is left"
    limits = dict(plan)
    assert limits["a"] == 2 * 100 + 60 and limits["c"] == 2 * 50 + 60 and limits["d"] == 300 - 150
    runs = gpu_check.notebook_runs([])
    labels = [label for label, _, _ in runs]
    assert labels[:4] == ["02_comprehensive_classification", "02_comprehensive_classification (shapes)",
                          "03_common_feature_learning", "03_common_feature_learning (shapes)"]
    assert labels[-1] == "00_datasets" and len(labels) == 12
    assert [label for label, _, _ in gpu_check.notebook_runs(["06", "05"])] == ["05_adaptive_amalgamation",
                                                                                "06_filtered_amalgamation"]


def test_gpu_check_refuses_a_machine_without_cuda(capsys: pytest.CaptureFixture) -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    assert gpu_check.main(["--steps", "smoke", "--no-commit"]) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().err


def test_gpu_check_commits_every_file_that_kae_readme_rewrites(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    for name in ("README.md", "docs/reproduction.md", "docs/zoo.md", "docs/notes.txt"):
        (tmp_path / name).write_text("x\n")
    assert gpu_check._generated_files(tmp_path) == ["README.md", "docs/reproduction.md", "docs/zoo.md"]
