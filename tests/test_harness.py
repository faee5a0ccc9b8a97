"""kae_utils.methods.transferability.harness: the ranking harness of notebooks 08 and 09."""

from __future__ import annotations

import numpy as np
import pytest

from kae_utils.methods.transferability import ranking as rk
from kae_utils.methods.transferability.harness import (
    ceiling_ranking,
    ci,
    draws_from,
    evaluate_ranking,
    first_picks,
    oracle_curves,
    pair_matrices,
    scores_from,
    table_row,
)

SOURCES = ["a", "b", "c", "d"]
TARGETS = ["a", "c"]


def test_pair_matrices_symmetric_once_per_pair_golden():
    calls = []

    def similarity(x, y):
        calls.append((x, y))
        return x * y, x + y

    values = {"a": 1, "b": 2, "c": 3}
    prod, total = pair_matrices(values, ["a", "b", "c"], similarity, 2)
    assert calls == [(1, 2), (1, 3), (2, 3)]
    np.testing.assert_array_equal(prod, [[1, 2, 3], [2, 1, 6], [3, 6, 1]])
    np.testing.assert_array_equal(total, [[1, 3, 4], [3, 1, 5], [4, 5, 1]])
    (single,) = pair_matrices(values, ["a", "b", "c"], lambda x, y: x - y)
    np.testing.assert_array_equal(single, [[1, -1, -2], [-1, 1, -1], [-2, -1, 1]])


def test_scores_and_draws_read_the_source_row_and_target_column():
    matrix = np.arange(16.0).reshape(4, 4)  # asymmetric, so that the orientation shows
    scores = scores_from(matrix, SOURCES, TARGETS)
    assert scores == {"a": {"b": 4.0, "c": 8.0, "d": 12.0}, "c": {"a": 2.0, "b": 6.0, "d": 14.0}}
    assert all(isinstance(v, float) for t in scores.values() for v in t.values())
    matrices = np.stack([matrix, 10 * matrix])
    draws = draws_from(matrices, SOURCES, TARGETS)
    np.testing.assert_array_equal(draws["c"]["d"], [14.0, 140.0])
    assert set(draws["a"]) == {"b", "c", "d"}


def test_ci_text():
    assert ci({"value": 0.5, "low": 0.25, "high": 0.754}) == "0.50 [0.25, 0.75]"
    assert ci({"value": -0.1, "low": -0.3, "high": 0.2}, "+") == "-0.10 [-0.30, +0.20]"


def test_oracle_curves():
    assert oracle_curves(2, [1, 2, 3, 4]) == {"P@K": {1: 1.0, 2: 1.0, 3: 2 / 3, 4: 0.5},
                                               "R@K": {1: 0.5, 2: 1.0, 3: 1.0, 4: 1.0}}


TRUTH = {"t1": {"s1": 0.1, "s2": 0.2, "s3": 0.3, "s4": 0.4},  # losses: lower is better
         "t2": {"s1": 0.4, "s2": 0.1, "s3": 0.3, "s4": 0.2}}
SCORES = {"t1": {"s1": 0.9, "s2": 0.8, "s3": 0.1, "s4": 0.2},
          "t2": {"s1": 0.9, "s2": 0.2, "s3": 0.3, "s4": 0.1}}
BASELINE = {"t1": {"s1": 0.5, "s2": 0.4, "s3": 0.3, "s4": 0.2}, "t2": {"s1": 0.1, "s2": 0.2, "s3": 0.3, "s4": 0.4}}


def test_evaluate_ranking_is_the_ranking_module_with_the_same_draws():
    kwargs = dict(resamples=50, seed=3)
    res = evaluate_ranking(SCORES, TRUTH, 2, [1, 2, 3, 4], draws=None, baseline=BASELINE, ceiling_scores=BASELINE,
                           ceiling_truth=TRUTH, **kwargs)
    assert res["P@K"][1] == 0.5 and res["targets"] == 2  # t1 picks s1 (relevant), t2 picks s1 (not)
    expected = rk.ranking_scores(SCORES, TRUTH, 2, [1, 2, 3, 4])
    assert {k: res[k] for k in expected} == expected
    assert res["interval"] == rk.ranking_bootstrap(SCORES, TRUTH, 2, **kwargs)
    assert res["vs target-agnostic"] == rk.difference_bootstrap(SCORES, BASELINE, TRUTH, 2, **kwargs)
    assert res["ceiling"] == rk.ranking_bootstrap(BASELINE, TRUTH, 2, **kwargs)
    assert list(res)[-3:] == ["interval", "vs target-agnostic", "ceiling"]
    one = evaluate_ranking({"t2": SCORES["t2"]}, TRUTH, 2, [1, 2], draws=None, baseline=BASELINE,
                           ceiling_scores=BASELINE, ceiling_truth=TRUTH, **kwargs)
    assert one["targets"] == 1 and one["ceiling"] == rk.ranking_bootstrap({"t2": BASELINE["t2"]}, TRUTH, 2, **kwargs)
    ceiling = ceiling_ranking(BASELINE, TRUTH, 2, [1, 2], **kwargs)
    assert ceiling["interval"] == res["ceiling"] and ceiling["P@K"] == rk.ranking_scores(BASELINE, TRUTH, 2, [1, 2])["P@K"]


def test_table_row_columns_and_first_picks():
    res = evaluate_ranking(SCORES, TRUTH, 2, [1, 2, 3, 4], draws=None, baseline=BASELINE, ceiling_scores=BASELINE,
                           ceiling_truth=TRUTH, resamples=20, seed=0)
    row = table_row(res, [1, 2, 3, 4])
    assert list(row) == ["P@1 [90 %]", "P@2", "P@3", "P@4", "Spearman [90 %]", "weighted τ [90 %]",
                         "Δ Spearman vs target-agnostic [90 %]", "top-1 regret"]
    assert row["P@1 [90 %]"] == ci(res["interval"]["P@1"]) and row["P@2"] == res["P@K"][2]
    without = table_row(ceiling_ranking(BASELINE, TRUTH, 2, [1, 2], resamples=20, seed=0), [1, 2])
    assert "Δ Spearman vs target-agnostic [90 %]" not in without and list(without)[-1] == "top-1 regret"
    assert first_picks(SCORES, TRUTH, 2) == {"t1": "s1 (0.90) *", "t2": "s1 (0.90)"}
    assert first_picks(SCORES, TRUTH, 1)["t1"] == "s1 (0.90) *"
    with pytest.raises(KeyError):
        first_picks({"t9": {"s1": 1.0}}, TRUTH, 1)
