"""kae_utils.methods.transferability.ranking: P@K, R@K, Spearman, weighted Kendall tau and regret against an oracle, a random ranking and
hand-worked cases; the target-agnostic baseline never reads its target; the bootstrap's intervals cover the point
value and shrink with more probes on a synthetic case whose ranking is known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from kae_utils.methods.transferability import ranking as rk


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _truth(n_targets: int = 4, n_sources: int = 6, seed: int = 9) -> dict[str, dict[str, float]]:
    gen = _rng(seed)
    return {f"t{t}": {f"s{s}": float(gen.uniform(0.1, 1.0)) for s in range(n_sources)} for t in range(n_targets)}


def _oracle(truth):
    return {t: {s: -loss for s, loss in losses.items()} for t, losses in truth.items()}


# ------------------------------------------------------------------------------------ one ranking


def test_oracle_and_random_rankings():
    truth = _truth()
    oracle = _oracle(truth)
    pr = rk.precision_recall_at_k(oracle, truth, relevant=2)
    assert pr[1] == (1.0, 0.5) and pr[2] == (1.0, 1.0) and pr[4] == (0.5, 1.0)
    assert all(v == pytest.approx(1.0) for v in rk.per_target_spearman(oracle, truth).values())
    assert all(v == pytest.approx(1.0) for v in rk.weighted_kendall(oracle, truth).values())
    assert all(v == 0.0 for v in rk.top1_regret(oracle, truth).values())
    gen = _rng(10)  # a random ranking's P@K averages relevant / sources
    draws = [rk.precision_recall_at_k({t: {s: gen.random() for s in losses} for t, losses in truth.items()},
                                      truth, relevant=2, ks=[3])[3][0] for _ in range(2000)]
    assert np.mean(draws) == pytest.approx(rk.random_precision(6, 2), abs=0.01)


def test_rankings_check_their_inputs():
    truth = _truth()
    with pytest.raises(ValueError, match="no estimator scores for target"):
        rk.precision_recall_at_k({}, truth, relevant=2)
    partial = {t: dict(list(losses.items())[:3]) for t, losses in truth.items()}
    with pytest.raises(ValueError, match="different sources"):
        rk.per_target_spearman(partial, truth)
    with pytest.raises(ValueError, match="relevant must be in"):
        rk.random_precision(6, 7)


def test_ranking_scores_by_hand():
    """Two targets, three sources; relevant = 1. Golden values worked out by hand."""
    truth = {"a": {"x": 1.0, "y": 2.0, "z": 4.0}, "b": {"x": 3.0, "y": 1.0, "z": 2.0}, "c": {"x": 1.0, "y": 1.5, "z": 2.0}}
    scores = {"a": {"x": 0.9, "y": 0.5, "z": 0.1},   # exact order: Spearman 1, hit at K=1, regret 0
              "b": {"x": 0.9, "y": 0.1, "z": 0.5}}   # picks x (loss 3 vs best 1): regret 2; ranks x, z, y vs y, z, x: -1
    res = rk.ranking_scores(scores, truth, relevant=1, ks=[1, 2])
    assert res["targets"] == 2, "only the targets the estimator scores"
    assert res["P@K"] == {1: 0.5, 2: 0.25} and res["R@K"] == {1: 0.5, 2: 0.5}
    assert res["spearman"] == {"a": pytest.approx(1.0), "b": pytest.approx(-1.0)}
    assert res["weighted tau"] == {"a": pytest.approx(1.0), "b": pytest.approx(-1.0)}
    assert res["spearman mean"] == pytest.approx(0.0) and res["spearman std"] == pytest.approx(1.0)
    assert res["regret"] == pytest.approx(1.0)


def test_weighted_kendall_is_scipys_and_weighs_the_top():
    truth = {"t": {f"s{i}": float(i + 1) for i in range(6)}}  # s0 best
    top_swap = {"t": {"s0": 4.0, "s1": 5.0, "s2": 3.0, "s3": 2.0, "s4": 1.0, "s5": 0.0}}  # the best two swapped
    bottom_swap = {"t": {"s0": 5.0, "s1": 4.0, "s2": 3.0, "s3": 2.0, "s4": 0.0, "s5": 1.0}}  # the worst two swapped
    tau_top, tau_bottom = rk.weighted_kendall(top_swap, truth)["t"], rk.weighted_kendall(bottom_swap, truth)["t"]
    sources = sorted(truth["t"])
    expected = stats.weightedtau([top_swap["t"][s] for s in sources], [-truth["t"][s] for s in sources])[0]
    assert tau_top == pytest.approx(expected)
    assert tau_top < tau_bottom < 1.0  # a swap among the best sources costs more
    assert rk.per_target_spearman(top_swap, truth)["t"] == pytest.approx(rk.per_target_spearman(bottom_swap, truth)["t"])
    assert rk.weighted_kendall({"t": dict.fromkeys(sources, 1.0)}, truth)["t"] == 0.0  # a constant score


# ------------------------------------------------------------------------- the target-agnostic baseline


def test_target_agnostic_scores_by_hand():
    truth = {"a": {"x": 1.0, "y": 2.0, "z": 3.0},      # places x 0, y .5, z 1
             "b": {"x": 3.0, "y": 1.0, "z": 2.0},      # places x 1, y 0, z .5
             "c": {"x": 1.0, "y": 3.0, "z": 2.0}}      # places x 0, y 1, z .5
    scores = rk.target_agnostic_scores(truth)
    assert scores["a"] == pytest.approx({"x": -0.5, "y": -0.5, "z": -0.5})  # from b and c only
    assert scores["b"] == pytest.approx({"x": 0.0, "y": -0.75, "z": -0.75})
    assert scores["c"] == pytest.approx({"x": -0.5, "y": -0.25, "z": -0.75})


def _transfer_loss(features: np.ndarray, labels: np.ndarray) -> float:
    """A stand-in for a transfer: the held-out error of a least-squares fit (even samples fit, odd scored)."""
    w, *_ = np.linalg.lstsq(features[::2], labels[::2], rcond=None)
    return float(np.mean((features[1::2] @ w - labels[1::2]) ** 2))


def test_the_target_agnostic_baseline_never_reads_its_target():
    """Each target has its own labelled images; each source a fixed encoder. Perturbing target t's images changes
    t's transfers (its ground truth, what any estimator reading them would see) and not t's baseline ranking;
    changing another target's labels does move it (the baseline reads the other targets)."""
    gen = _rng(5)
    tasks, n, k = [f"task{i}" for i in range(5)], 80, 6
    encoders = {s: gen.normal(size=(k, 4)) for s in tasks}
    weights = {t: gen.normal(size=k) for t in tasks}
    images = {t: gen.normal(size=(n, k)) for t in tasks}

    def truth_from(imgs, wts=weights):
        return {t: {s: _transfer_loss(imgs[t] @ encoders[s], imgs[t] @ wts[t]) for s in tasks if s != t}
                for t in tasks}

    def perturb(t):
        return dict(images, **{t: images[t] + gen.normal(scale=2.0, size=(n, k))})

    before, after = truth_from(images), truth_from(perturb("task2"))
    assert before["task2"] != pytest.approx(after["task2"]), "the perturbation must change the target's transfers"
    assert all(before[t] == after[t] for t in tasks if t != "task2")
    assert rk.target_agnostic_scores(before)["task2"] == rk.target_agnostic_scores(after)["task2"]
    elsewhere = rk.target_agnostic_scores(truth_from(images, dict(weights, task0=-weights["task0"] ** 3)))
    assert elsewhere["task2"] != rk.target_agnostic_scores(before)["task2"]


def test_target_agnostic_needs_a_result_elsewhere():
    with pytest.raises(ValueError, match="no target but"):
        rk.target_agnostic_scores({"a": {"x": 1.0, "y": 2.0}, "b": {"z": 1.0, "w": 2.0}})


# ---------------------------------------------------------------------------------------- uncertainty


def test_bootstrap_indices_and_resampled_mean():
    idx = rk.bootstrap_indices(5, 4, seed=1)
    assert idx.shape == (4, 5) and idx.min() >= 0 and idx.max() < 5
    assert np.array_equal(idx, rk.bootstrap_indices(5, 4, seed=1))
    values = _rng(2).normal(size=(5, 3))
    np.testing.assert_allclose(rk.resampled_mean(values, idx), np.stack([values[row].mean(axis=0) for row in idx]))


def _noisy_estimator(n_probes: int, seed: int, resamples: int = 300):
    """A known ranking: source s has loss s + 1 on every target; the estimator sees -s plus noise per probe and
    averages the probes. Returns its scores, their bootstrap draws over the probes, and the truth."""
    gen = _rng(seed)
    targets, sources = [f"t{i}" for i in range(8)], [f"s{i}" for i in range(6)]
    truth = {t: {s: float(k + 1) for k, s in enumerate(sources)} for t in targets}
    per_probe = -np.arange(6.0)[None, None, :] + gen.normal(scale=4.0, size=(n_probes, len(targets), len(sources)))
    point = per_probe.mean(axis=0)
    draws = rk.resampled_mean(per_probe, rk.bootstrap_indices(n_probes, resamples, seed + 100))
    scores = {t: {s: float(point[i, k]) for k, s in enumerate(sources)} for i, t in enumerate(targets)}
    draw_map = {t: {s: draws[:, i, k] for k, s in enumerate(sources)} for i, t in enumerate(targets)}
    return scores, draw_map, truth


@pytest.mark.parametrize("resample_targets", [False, True])
def test_bootstrap_intervals_cover_the_value_and_shrink_with_more_probes(resample_targets):
    widths = {}
    for n_probes in (8, 200):
        scores, draws, truth = _noisy_estimator(n_probes, seed=n_probes)
        out = rk.ranking_bootstrap(scores, truth, relevant=2, draws=draws, resample_targets=resample_targets, seed=3)
        assert set(out) == set(rk.METRICS)
        for metric, interval in out.items():
            assert interval["low"] <= interval["value"] <= interval["high"], (n_probes, metric, interval)
        widths[n_probes] = {m: out[m]["high"] - out[m]["low"] for m in ("spearman", "weighted tau")}
        plain = rk.ranking_scores(scores, truth, relevant=2)
        assert out["spearman"]["value"] == pytest.approx(plain["spearman mean"])
        assert out["weighted tau"]["value"] == pytest.approx(plain["weighted tau mean"])
        assert out["P@1"]["value"] == pytest.approx(plain["P@K"][1])
        assert out["regret"]["value"] == pytest.approx(plain["regret"])
    for metric in ("spearman", "weighted tau"):
        assert widths[200][metric] < 0.5 * widths[8][metric], (metric, widths)


def test_bootstrap_without_draws_resamples_only_the_targets():
    truth = _truth(n_targets=6)
    gen = _rng(4)
    scores = {t: {s: -loss + gen.normal(scale=0.3) for s, loss in losses.items()} for t, losses in truth.items()}
    fixed = rk.ranking_bootstrap(scores, truth, relevant=2, resample_targets=False)
    assert all(v["low"] == pytest.approx(v["value"]) == pytest.approx(v["high"]) for v in fixed.values())
    over_targets = rk.ranking_bootstrap(scores, truth, relevant=2, resamples=200, seed=7)
    assert over_targets == rk.ranking_bootstrap(scores, truth, relevant=2, resamples=200, seed=7)  # seeded
    assert over_targets["spearman"]["high"] > over_targets["spearman"]["low"]
    with pytest.raises(ValueError, match="level"):
        rk.ranking_bootstrap(scores, truth, relevant=2, level=1.0)


def test_difference_bootstrap_is_paired():
    scores, draws, truth = _noisy_estimator(30, seed=1)
    same = rk.difference_bootstrap(scores, scores, truth, 2, draws, draws)
    assert all(v == {"value": 0.0, "low": 0.0, "high": 0.0} for v in same.values())
    oracle = _oracle(truth)
    worse = rk.difference_bootstrap(scores, oracle, truth, 2, draws, seed=2)
    single = rk.ranking_bootstrap(scores, truth, 2, draws, seed=2)
    assert worse["spearman"]["value"] == pytest.approx(single["spearman"]["value"] - 1.0)
    assert worse["spearman"]["high"] < 0 and worse["regret"]["low"] >= 0
    # the oracle is fixed: with the same seed, the difference's interval is the single one shifted by -1
    assert worse["spearman"]["low"] == pytest.approx(single["spearman"]["low"] - 1.0)


def test_the_vectorised_weighted_tau_is_scipys():
    from kae_utils.methods.transferability.ranking import _weighted_tau_rows

    gen = _rng(6)
    y = gen.normal(size=9)
    rows = gen.normal(size=(40, 9))
    rows[:10] = np.round(rows[:10])  # ties in x
    y_ties = np.round(y)
    for target in (y, y_ties):
        expected = [stats.weightedtau(row, target)[0] for row in rows]
        np.testing.assert_allclose(_weighted_tau_rows(rows, target), expected, atol=1e-12)
    assert _weighted_tau_rows(np.ones((2, 9)), y).tolist() == [0.0, 0.0]  # a constant score
