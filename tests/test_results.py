"""Tests for kae_utils.evaluation.results: claims, the claims block, metrics.json."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from kae_utils.evaluation.results import (
    Claim,
    ClaimsReport,
    Effect,
    check_claims,
    load_metrics,
    to_jsonable,
    write_metrics,
)


@pytest.fixture
def runs(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "runs"
    monkeypatch.setenv("KAE_RUNS_DIR", str(path))
    return path


CLAIMS = [
    Claim("the student beats the baseline", True, "0.93 vs 0.91"),
    Claim("soft targets help at T=4", False),
    Claim("the teacher is more accurate", True),
]


# -------------------------------------------------------------------------------------------- Claim


@pytest.mark.parametrize("holds", [np.bool_(True), torch.tensor(True), 1, "yes", None])
def test_claim_requires_a_real_bool(holds):
    with pytest.raises(TypeError, match="bool"):
        Claim("something", holds)


@pytest.mark.parametrize("words", ["", "   ", "\n\t"])
def test_claim_requires_words(words):
    with pytest.raises(ValueError, match="words"):
        Claim(words, True)


def test_claim_fields():
    c = Claim("x holds", bool(np.float64(1.0) > 0.5), "1.0 > 0.5")
    assert (c.claim, c.holds, c.details) == ("x holds", True, "1.0 > 0.5")
    assert Claim("y", False).details == ""


# ------------------------------------------------------------------------------------- check_claims


def test_check_claims_prints_the_block(capsys):
    report = check_claims(CLAIMS)
    out, err = capsys.readouterr()
    assert out == (
        "PASS the student beats the baseline\n"
        "FAIL soft targets help at T=4\n"
        "PASS the teacher is more accurate\n"
        "claims: 2/3 hold\n"
    )
    assert err == ""
    assert isinstance(report, ClaimsReport)
    assert (report.held, report.total) == (2, 3)
    assert report.items == tuple(CLAIMS)


def test_check_claims_echo_false_prints_nothing(capsys):
    report = check_claims(CLAIMS[:1], echo=False)
    assert capsys.readouterr().out == ""
    assert report.lines() == ["PASS the student beats the baseline", "claims: 1/1 hold"]


def test_check_claims_needs_a_claim():
    with pytest.raises(ValueError, match="at least one claim"):
        check_claims([])


def test_report_to_dict():
    d = check_claims(CLAIMS[:2], echo=False).to_dict()
    assert d == {
        "held": 1,
        "total": 2,
        "untestable": 0,
        "items": [
            {"claim": "the student beats the baseline", "holds": True, "details": "0.93 vs 0.91", "untestable": "",
             "effect": None},
            {"claim": "soft targets help at T=4", "holds": False, "details": "", "untestable": "", "effect": None},
        ],
    }


# -------------------------------------------------------------------------------------------- Effect


@pytest.mark.parametrize(("value", "bound", "holds_if", "expected"), [
    (-0.01, -0.02, "at least", True), (-0.03, -0.02, "at least", False), (-0.02, -0.02, "at least", True),
    (0.04, 0.05, "at most", True), (0.06, 0.05, "at most", False),
    (-0.015, 0.02, "within", True), (0.025, 0.02, "within", False), (-0.025, 0.02, "within", False),
    (None, 0.0, "at least", None), (float("nan"), 0.0, "at least", None),
])
def test_effect_within_bound(value, bound, holds_if, expected):
    assert Effect("a - b", value, bound, holds_if).within_bound is expected


def test_effect_rejects_bad_direction_and_empty_name():
    with pytest.raises(ValueError, match="holds_if"):
        Effect("a - b", 0.1, 0.0, "above")
    with pytest.raises(ValueError, match="name"):
        Effect(" ", 0.1, 0.0)


def test_effect_stores_plain_floats_in_metrics_json(runs):
    effect = Effect("student - teacher", np.float32(-0.25), np.float64(-0.5))
    assert type(effect.value) is float and type(effect.bound) is float
    report = check_claims([Claim("the student matches the teacher", True, effect=effect)], echo=False)
    path = write_metrics("01_kd", {}, claims=report)
    item = json.loads(path.read_text())["claims"]["items"][0]
    assert item["effect"] == {"name": "student - teacher", "value": -0.25, "bound": -0.5, "holds_if": "at least"}


def test_an_untestable_claim_is_still_checked_and_says_why(capsys):
    claims = [Claim("the student matches its teacher", False, "0.70 vs 0.88",
                    untestable="the supervised ceiling is below the teacher"),
              Claim("the student beats KD", True)]
    report = check_claims(claims)
    assert capsys.readouterr().out == (
        "FAIL the student matches its teacher (untestable here: the supervised ceiling is below the teacher)\n"
        "PASS the student beats KD\n"
        "claims: 1/2 hold (1 untestable here)\n"
    )
    assert (report.held, report.total, report.untestable) == (1, 2, 1)
    assert report.to_dict()["untestable"] == 1


# -------------------------------------------------------------------------------------- to_jsonable


def test_to_jsonable_conversions():
    value = {
        "tensor": torch.tensor([1.5, 2.0]),
        "scalar_tensor": torch.tensor(3),
        "np_float": np.float32(0.5),
        "np_int": np.int64(7),
        "np_bool": np.bool_(False),
        "array": np.arange(4).reshape(2, 2),
        "tuple": (1, (2, 3)),
        "nan": float("nan"),
        "inf": -math.inf,
        "nan_in_tensor": torch.tensor([1.0, float("nan")]),
        "path": Path("/a/b.png"),
        3: "int key",
        "none": None,
        "text": "ok",
    }
    assert to_jsonable(value) == {
        "tensor": [1.5, 2.0],
        "scalar_tensor": 3,
        "np_float": 0.5,
        "np_int": 7,
        "np_bool": False,
        "array": [[0, 1], [2, 3]],
        "tuple": [1, [2, 3]],
        "nan": None,
        "inf": None,
        "nan_in_tensor": [1.0, None],
        "path": "/a/b.png",
        "3": "int key",
        "none": None,
        "text": "ok",
    }
    assert type(to_jsonable(np.int64(7))) is int and type(to_jsonable(np.bool_(True))) is bool


@pytest.mark.parametrize("bad", [object(), {1, 2}, b"bytes", 1 + 2j])
def test_to_jsonable_rejects_unconvertible(bad):
    with pytest.raises(TypeError, match="cannot store"):
        to_jsonable({"x": bad})


# ------------------------------------------------------------------------------------ write_metrics


def test_write_metrics_file_and_format(runs):
    report = check_claims(CLAIMS, echo=False)
    path = write_metrics(
        "01_knowledge_distillation",
        {"acc": torch.tensor(0.875), "curve": (0.1, float("nan")), "per_class": np.array([1.0, 0.5])},
        claims=report,
        profile="quick",
        parameters={"SEED": 0, "WIDTHS": (16, 32)},
    )
    assert path == runs / "01_knowledge_distillation" / "metrics.json"
    text = path.read_text()
    assert text.endswith("\n") and "NaN" not in text
    data = json.loads(text)
    assert list(data) == ["notebook", "profile", "parameters", "metrics", "claims"]
    assert data["notebook"] == "01_knowledge_distillation"
    assert data["profile"] == "quick"
    assert data["parameters"] == {"SEED": 0, "WIDTHS": [16, 32]}
    assert data["metrics"] == {"acc": 0.875, "curve": [0.1, None], "per_class": [1.0, 0.5]}
    assert data["claims"] == report.to_dict()
    # written atomically: no temporary file left behind
    assert sorted(p.name for p in path.parent.iterdir()) == ["metrics.json"]


def test_write_metrics_defaults_and_overwrite(runs):
    write_metrics("nb", {"a": 1})
    path = write_metrics("nb", {"a": 2})
    data = load_metrics(path)
    assert data == {"notebook": "nb", "profile": None, "parameters": {}, "metrics": {"a": 2}, "claims": None}


@pytest.mark.parametrize("name", ["", "a/b", ".hidden", "..", "../escape"])
def test_write_metrics_rejects_bad_notebook_names(runs, name):
    with pytest.raises(ValueError, match="plain name"):
        write_metrics(name, {"a": 1})
    assert not runs.exists() or not any(runs.rglob("metrics.json"))


def test_write_metrics_rejects_unconvertible_and_writes_nothing(runs):
    with pytest.raises(TypeError, match="object"):
        write_metrics("nb", {"model": object()})
    assert not (runs / "nb" / "metrics.json").exists()


# ------------------------------------------------------------------------------------- load_metrics


def test_load_metrics_round_trip(runs):
    report = check_claims(CLAIMS, echo=False)
    path = write_metrics("nb2", {"x": [1, 2]}, claims=report, profile="full", parameters={"T": 4.0})
    data = load_metrics(path)
    assert data["metrics"] == {"x": [1, 2]}
    assert data["claims"]["held"] == 2 and data["claims"]["total"] == 3
    assert data["parameters"] == {"T": 4.0}
    assert load_metrics(str(path)) == data  # str paths too


@pytest.mark.parametrize("content", ['{"a": 1}', "[1, 2]", '{"notebook": "x"}', '"text"'])
def test_load_metrics_rejects_foreign_json(tmp_path, content):
    path = tmp_path / "other.json"
    path.write_text(content)
    with pytest.raises(ValueError, match="not a metrics.json"):
        load_metrics(path)


# ------------------------------------------------------------------------- mean_std, median_time


def test_mean_std_golden_values():
    from kae_utils.evaluation.results import mean_std

    mean, std = mean_std([0.90, 0.92, 0.94])
    assert mean == pytest.approx(0.92) and std == pytest.approx(0.02)  # sample std: sqrt((0.02^2 * 2) / 2)
    assert mean_std(iter([0.5])) == (0.5, 0.0)
    assert mean_std(x for x in (1, 3)) == (2.0, pytest.approx(2**0.5))
    with pytest.raises(ValueError, match="at least one"):
        mean_std([])


def test_median_time_warms_up_and_takes_the_median(monkeypatch):
    import kae_utils.evaluation.results as results

    clock = iter([0.0, 1.0, 10.0, 13.0, 20.0, 22.0])  # three timed calls: 1 s, 3 s, 2 s
    monkeypatch.setattr(results.time, "perf_counter", lambda: next(clock))
    calls = []
    assert results.median_time(lambda: calls.append(1), repeats=3) == 2.0
    assert len(calls) == 4  # one warm-up call is not timed
    with pytest.raises(ValueError, match="repeats"):
        results.median_time(lambda: None, repeats=0)
