"""kae_utils.transferability: golden values on tiny fixtures worked out by hand, the properties each estimator
must have, and the ranking scores (P@K, R@K, Spearman, regret) against an oracle and a random ranking."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kae_utils import transferability as tr


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ------------------------------------------------------------------------------------------ label-free


def test_attribution_affinity_is_the_mean_cosine():
    maps = _rng().normal(size=(5, 3, 4, 4))
    assert tr.attribution_affinity(maps, maps) == pytest.approx(1.0)
    assert tr.attribution_affinity(maps, -2 * maps) == pytest.approx(-1.0)
    a, b = np.array([[1.0, 0.0], [1.0, 1.0]]), np.array([[0.0, 1.0], [1.0, 1.0]])
    assert tr.attribution_affinity(a, b) == pytest.approx((0.0 + 1.0) / 2)
    with pytest.raises(ValueError, match="differ in shape"):
        tr.attribution_affinity(maps, maps[:, :2])


def test_rsa_and_cka_invariances_and_a_golden_cka():
    x = _rng(1).normal(size=(12, 6))
    q, _ = np.linalg.qr(_rng(2).normal(size=(6, 6)))
    assert tr.rsa(x, 3 * x + 1) == pytest.approx(1.0)
    assert tr.linear_cka(x, 3 * x @ q) == pytest.approx(1.0)  # rotation and scale
    assert abs(tr.linear_cka(x, _rng(3).normal(size=(12, 6)))) < 0.9
    square = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    assert tr.linear_cka(square, square[:, :1]) == pytest.approx(4 / (math.sqrt(8) * 2))  # = 1/sqrt(2)
    with pytest.raises(ValueError, match="same probe images"):
        tr.linear_cka(x, x[:5])


def test_depara_edges_come_from_features_not_from_the_maps():
    gen = _rng(4)
    maps_a, maps_b = gen.normal(size=(8, 16)), gen.normal(size=(8, 16))
    feats_a, feats_b = gen.normal(size=(8, 5)), gen.normal(size=(8, 5))
    s = tr.depara_similarity(maps_a, feats_a, maps_b, feats_b, lam=0.5)
    assert s["total"] == pytest.approx(s["nodes"] + 0.5 * s["edges"])
    shuffled = tr.depara_similarity(maps_a, feats_a, maps_b[::-1], feats_b, lam=0.5)
    assert shuffled["edges"] == pytest.approx(s["edges"]) and shuffled["nodes"] != pytest.approx(s["nodes"])
    assert tr.depara_similarity(maps_a, feats_a, maps_a, feats_a + 7.0)["edges"] == pytest.approx(1.0)  # mean-centred
    assert len(tr.edge_vector(feats_a)) == 8 * 7 // 2


# ---------------------------------------------------------------------------------------- label-based


def test_logme_finds_the_evidence_maximum_and_prefers_informative_features():
    gen = _rng(5)
    f = gen.normal(size=(60, 4))
    y = f @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.3 * gen.normal(size=60)
    score = tr.logme(f, y)
    # the fixed point maximises the evidence: no (alpha, beta) on a wide grid is better
    grid = np.logspace(-3, 3, 61)
    best = max(tr.logme_evidence(f, y, a, b) for a in grid for b in grid)
    assert score >= best - 1e-3
    assert score > tr.logme(gen.normal(size=(60, 4)), y) + 0.5  # features unrelated to y score far lower


def test_logme_evidence_golden_one_dimensional():
    # F = [1, 1]^T, y = [1, 1], alpha = beta = 1: A = 1 + 2 = 3, m = 2/3, residual 2 (1/3)^2 = 2/9
    expected = (math.log(1) + 2 * math.log(1) - 2 / 9 - 4 / 9 - math.log(3) - 2 * math.log(2 * math.pi)) / 2 / 2
    assert tr.logme_evidence([[1.0], [1.0]], [1.0, 1.0], 1.0, 1.0) == pytest.approx(expected)


def test_logme_classification_is_the_mean_over_one_hot_columns():
    gen = _rng(6)
    f, y = gen.normal(size=(40, 3)), gen.integers(0, 3, size=40)
    columns = np.eye(3)[y]
    per_column = [tr.logme(f, columns[:, k], classification=False) for k in range(3)]
    assert tr.logme(f, y) == pytest.approx(np.mean(per_column))
    assert tr.logme(torch.as_tensor(f), torch.as_tensor(y)) == pytest.approx(np.mean(per_column))


def test_h_score_golden():
    # centred features [-1.5, -0.5, 0.5, 1.5]: variance 1.25; class means -1 and 1: between-class variance 1
    assert tr.h_score(np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1])) == pytest.approx(0.8)
    assert tr.h_score(np.array([[0.0], [0.0], [2.0], [2.0]]), np.array([0, 0, 1, 1])) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shrinkage"):
        tr.h_score(np.ones((4, 1)), np.array([0, 0, 1, 1]), shrinkage=1.0)


def test_transrate_golden():
    # R(Z) = 1/2 ln(1 + 20/4); classes: 1/2 ln(1 + 2/2) and 1/2 ln(1 + 18/2); eps = 1
    expected = 0.5 * math.log(6) - 0.5 * (0.5 * math.log(2) + 0.5 * math.log(10))
    z, y = np.array([[1.0], [-1.0], [3.0], [-3.0]]), np.array([0, 0, 1, 1])
    assert tr.transrate(z, y, eps=1.0) == pytest.approx(expected)
    gen = _rng(7)
    labels = np.repeat([0, 1, 2], 20)
    separated = gen.normal(size=(60, 3)) + 4 * np.eye(3)[labels]
    assert tr.transrate(separated, labels) > tr.transrate(gen.normal(size=(60, 3)), labels)


def test_gbc_golden():
    # classes N(0, 1) and N(2, 1) (samples -1, 1 and 1, 3): D_B = 4 / 8 = 0.5, two ordered pairs
    f, y = np.array([[-1.0], [1.0], [1.0], [3.0]]), np.array([0, 0, 1, 1])
    assert tr.gbc(f, y) == pytest.approx(-2 * math.exp(-0.5), rel=1e-6)
    assert tr.gbc(np.array([[-1.0], [1.0], [99.0], [101.0]]), y) == pytest.approx(0.0, abs=1e-12)


def test_leep_golden_and_extremes():
    theta = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    y = np.array([0, 1, 0])
    p_y_given_z = np.array([[1.4 / 1.7, 0.6 / 1.3], [0.3 / 1.7, 0.7 / 1.3]])  # worked out by hand
    expected = np.mean([math.log(theta[i] @ p_y_given_z[y[i]]) for i in range(3)])
    assert tr.leep(theta, y) == pytest.approx(expected)
    assert tr.leep(np.eye(2), [0, 1]) == pytest.approx(0.0)
    assert tr.leep(np.full((2, 2), 0.5), [0, 1]) == pytest.approx(math.log(0.5))
    with pytest.raises(ValueError, match="softmax"):
        tr.leep(np.array([[0.5, 0.6]]), [0])


def test_nce_is_minus_the_conditional_entropy():
    assert tr.nce([0, 1, 0], [0, 1, 0]) == pytest.approx(0.0)
    assert tr.nce([0, 0, 0, 0], [0, 1, 0, 1]) == pytest.approx(math.log(0.5))


def test_nleep_prefers_features_that_separate_the_classes():
    gen = _rng(8)
    labels = np.repeat([0, 1, 2], 30)
    separated = gen.normal(size=(90, 4)) + 6 * np.eye(4)[labels]
    score = tr.nleep(separated, labels)
    assert score == pytest.approx(tr.nleep(separated, labels))  # seeded
    assert score > tr.nleep(gen.normal(size=(90, 4)), labels) + 0.3


def test_pixels_as_samples_takes_labels_at_the_feature_grid():
    features = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    labels = torch.zeros(2, 4, 4, dtype=torch.int64)
    labels[:, 2:, 2:] = 5  # bottom-right quarter
    samples, targets = tr.pixels_as_samples(features, labels)
    assert samples.shape == (8, 3) and targets.dtype == np.int64
    assert targets.tolist() == [0, 0, 0, 5, 0, 0, 0, 5]
    sub, _ = tr.pixels_as_samples(features, labels, max_samples=5)
    assert sub.shape == (5, 3)
    depth = torch.rand(2, 1, 4, 4)
    _, regression = tr.pixels_as_samples(features, depth)
    assert regression.shape == (8, 1) and regression.dtype == np.float64


# ----------------------------------------------------------------------------------- scoring rankings


def _truth(n_targets: int = 4, n_sources: int = 6, seed: int = 9) -> dict[str, dict[str, float]]:
    gen = _rng(seed)
    return {f"t{t}": {f"s{s}": float(gen.uniform(0.1, 1.0)) for s in range(n_sources)} for t in range(n_targets)}


def test_oracle_and_random_rankings():
    truth = _truth()
    oracle = {t: {s: -loss for s, loss in losses.items()} for t, losses in truth.items()}
    pr = tr.precision_recall_at_k(oracle, truth, relevant=2)
    assert pr[1] == (1.0, 0.5) and pr[2] == (1.0, 1.0) and pr[4] == (0.5, 1.0)
    assert all(v == pytest.approx(1.0) for v in tr.per_target_spearman(oracle, truth).values())
    assert all(v == 0.0 for v in tr.top1_regret(oracle, truth).values())
    # a random ranking's P@K averages relevant / sources
    gen = _rng(10)
    draws = [tr.precision_recall_at_k({t: {s: gen.random() for s in losses} for t, losses in truth.items()},
                                      truth, relevant=2, ks=[3])[3][0] for _ in range(2000)]
    assert np.mean(draws) == pytest.approx(tr.random_precision(6, 2), abs=0.01)


def test_rankings_check_their_inputs():
    truth = _truth()
    with pytest.raises(ValueError, match="no estimator scores for target"):
        tr.precision_recall_at_k({}, truth, relevant=2)
    partial = {t: dict(list(losses.items())[:3]) for t, losses in truth.items()}
    with pytest.raises(ValueError, match="different sources"):
        tr.per_target_spearman(partial, truth)
    with pytest.raises(ValueError, match="relevant must be in"):
        tr.random_precision(6, 7)


def test_pixels_as_samples_with_a_neighbourhood_are_the_windows_a_convolution_sees():
    gen = _rng(21)
    feats = gen.normal(size=(2, 3, 4, 4))
    labels = gen.integers(0, 3, size=(2, 8, 8))
    x1, y1 = tr.pixels_as_samples(feats, labels)
    x3, y3 = tr.pixels_as_samples(feats, labels, neighbourhood=3)
    assert x1.shape == (32, 3) and x3.shape == (32, 27) and np.array_equal(y1, y3)
    centre = x3.reshape(32, 3, 9)[:, :, 4]
    np.testing.assert_allclose(centre, x1)
    corner = x3.reshape(2, 4, 4, 3, 9)[0, 0, 0]  # location (0, 0): the window's top-left part is padding
    np.testing.assert_allclose(corner[:, 0], 0.0)
    np.testing.assert_allclose(corner[:, 8], feats[0, :, 1, 1])
    with pytest.raises(ValueError, match="odd"):
        tr.pixels_as_samples(feats, labels, neighbourhood=2)


def test_ranking_scores_by_hand():
    """Two targets, three sources; relevant = 1. Golden values worked out by hand."""
    truth = {"a": {"x": 1.0, "y": 2.0, "z": 4.0}, "b": {"x": 3.0, "y": 1.0, "z": 2.0}, "c": {"x": 1.0, "y": 1.5, "z": 2.0}}
    scores = {"a": {"x": 0.9, "y": 0.5, "z": 0.1},   # exact order: Spearman 1, hit at K=1, regret 0
              "b": {"x": 0.9, "y": 0.1, "z": 0.5}}   # picks x (loss 3 vs best 1): regret 2; ranks x, z, y vs y, z, x: -1
    res = tr.ranking_scores(scores, truth, relevant=1, ks=[1, 2])
    assert res["targets"] == 2, "only the targets the estimator scores"
    assert res["P@K"] == {1: 0.5, 2: 0.25} and res["R@K"] == {1: 0.5, 2: 0.5}
    assert res["spearman"] == {"a": pytest.approx(1.0), "b": pytest.approx(-1.0)}
    assert res["spearman mean"] == pytest.approx(0.0) and res["spearman std"] == pytest.approx(1.0)
    assert res["regret"] == pytest.approx(1.0)
