"""The benchmarks of the numerics settings: the per-notebook precision table and the throughput measurement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from data_scripts import bench_precision, bench_training


def _fake_pass(folder: Path, rows: dict[str, tuple[float, list[bool], str]], differing: str = "") -> None:
    folder.mkdir(parents=True)
    lines = ["notebook\tstatus\twall_s\tdiffering_cells"]
    for nb, (wall, claims, headline) in rows.items():
        lines.append(f"{nb}\t{'outputs differ' if differing else 'ok'}\t{wall}\t{differing}")
        (folder / nb).mkdir()
        items = [{"claim": f"c{i}", "holds": h == "U" or bool(h), "details": "", "untestable": "why" if h == "U" else ""}
                 for i, h in enumerate(claims)]
        (folder / nb / "metrics.json").write_text(json.dumps(
            {"notebook": nb, "metrics": {"headline": headline},
             "claims": {"held": sum(i["holds"] for i in items), "total": len(claims), "items": items}}))
    (folder / "timings.tsv").write_text("\n".join(lines) + "\n")


def test_the_table_says_speed_up_claims_and_which_claims_flip(tmp_path: Path) -> None:
    _fake_pass(tmp_path / "fp32-nchw", {"01_a": (40.0, [True, True], "acc 0.90"), "02_b": (10.0, [True], "x")})
    _fake_pass(tmp_path / "fp32", {"01_a": (30.0, [True, False], "acc 0.89"), "02_b": (9.0, [True], "x")},
               differing="Cell 3, Cell 9")
    _fake_pass(tmp_path / "bf16", {"01_a": (20.0, [True, True], "acc 0.91"), "02_b": (8.0, ["U"], "y")})
    _fake_pass(tmp_path / "default", {"01_a": (20.0, [True, True], "acc 0.91"), "02_b": (8.0, [True], "y")})
    results = {label: bench_precision.read_setting(tmp_path / label) for label, _ in bench_precision.SETTINGS}
    header, first, second = bench_precision.table(results)
    cells = dict(zip(header.split("\t"), first.split("\t"), strict=True))
    assert cells["notebook"] == "01_a"
    assert (cells["fp32-nchw_s"], cells["fp32_s"], cells["default_s"]) == ("40.0", "30.0", "20.0")
    assert (cells["speedup_default_vs_fp32"], cells["speedup_default_vs_fp32_nchw"]) == ("1.50", "2.00")
    assert (cells["cells_differing_fp32"], cells["cells_differing_default"]) == ("Cell 3, Cell 9", "none")
    assert (cells["claims_fp32"], cells["claims_bf16"]) == ("1/2", "2/2")
    assert cells["claims_differing_fp32_vs_bf16"] == "2: FAIL->PASS"
    assert (cells["headline_fp32"], cells["headline_bf16"]) == ("acc 0.89", "acc 0.91")
    second_cells = dict(zip(header.split("\t"), second.split("\t"), strict=True))
    assert second_cells["claims_differing_fp32_vs_bf16"] == "1: PASS->PASS (untestable)"


def test_a_setting_not_run_gives_dashes(tmp_path: Path) -> None:
    _fake_pass(tmp_path / "default", {"01_a": (20.0, [True], "acc 0.91")})
    results = {label: bench_precision.read_setting(tmp_path / label) for label, _ in bench_precision.SETTINGS}
    header, row = bench_precision.table(results)
    cells = dict(zip(header.split("\t"), row.split("\t"), strict=True))
    assert (cells["fp32_s"], cells["speedup_default_vs_fp32"], cells["claims_differing_fp32_vs_bf16"]) == ("-",) * 3
    assert cells["default_s"] == "20.0"


def test_differing_cells_are_read_from_the_junit_report(tmp_path: Path) -> None:
    junit = tmp_path / "r.xml"
    junit.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="nb" name="notebooks/02_x.ipynb::Cell 0"/>'
        '<testcase classname="nb" name="notebooks/02_x.ipynb::Cell 18"><failure message="differ"/></testcase>'
        '<testcase classname="nb" name="notebooks/02_x.ipynb::Cell 20"><error message="boom"/></testcase>'
        '</testsuite></testsuites>')
    assert bench_precision.differing_cells(junit) == ["Cell 18", "Cell 20"]


def test_unknown_notebooks_are_refused_by_name() -> None:
    with pytest.raises(SystemExit, match="unknown notebooks: 99"):
        bench_precision.notebook_paths(["02", "99"])
    assert [p.stem[:2] for p in bench_precision.notebook_paths(["02", "00_datasets"])] == ["00", "02"]


def test_a_partial_pass_keeps_the_other_notebooks_rows(tmp_path: Path) -> None:
    tsv = tmp_path / "precision.tsv"
    tsv.write_text("notebook\tx\n01_a\told\n02_b\told\n")
    merged = bench_precision.merge_rows(tsv, ["notebook\tx", "02_b\tnew", "03_c\tnew"])
    assert merged == ["notebook\tx", "01_a\told", "02_b\tnew", "03_c\tnew"]


def test_flipped_names_claim_count_changes() -> None:
    assert bench_precision.flipped(["PASS"], ["PASS", "FAIL"]) == "claim counts differ (1 vs 2)"


def test_training_throughput_is_measured_through_the_trainer() -> None:
    case = bench_training.Case("tiny", "-", "conv", (1, 8, 8), 8,
                               lambda: torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten()),
                               lambda out: out.float().pow(2).mean())
    rate = bench_training.images_per_second(case, "fp32", True, steps=2, repeats=1)
    assert rate > 0
    assert [c.family for c in bench_training.cases()][:2] == ["digits classifiers", "shapes classifiers"]
