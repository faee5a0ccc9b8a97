"""Scoring an estimator's rankings of source models against brute-force transfers, with their uncertainty.

Notebooks 08 and 09 rank, for every target task, the candidate source models by an estimator
(:mod:`kae_utils.methods.transferability`; ``scores[target][source]``, higher = more transferable) and compare with a
ground truth of real transfers (``truth[target][source]``: held-out losses, lower = better):

* the scores of one ranking: :func:`precision_recall_at_k` (Song et al.'s P@K and R@K),
  :func:`per_target_spearman`, :func:`weighted_kendall` (the weighted Kendall tau SFDA and later papers
  report), :func:`top1_regret`, all together in :func:`ranking_scores`; :func:`random_precision` is the chance
  level;
* the **target-agnostic baseline** (:func:`target_agnostic_scores`): each source ranked by how well it
  transferred to the *other* targets, using nothing of the target itself;
* **uncertainty**: :func:`bootstrap_indices` draws resamples (of probe images or of anything else),
  :func:`resampled_mean` averages per-probe values over them, :func:`ranking_bootstrap` gives each score a
  percentile interval over resampled probes (when the estimator's scores are given per resample) and over
  resampled targets, vectorised over the resamples, and :func:`difference_bootstrap` the paired interval of the
  difference between two estimators.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

__all__ = [
    "METRICS",
    "bootstrap_indices",
    "difference_bootstrap",
    "per_target_spearman",
    "precision_recall_at_k",
    "random_precision",
    "ranking_bootstrap",
    "ranking_scores",
    "resampled_mean",
    "target_agnostic_scores",
    "top1_regret",
    "weighted_kendall",
]

#: The scores :func:`ranking_bootstrap` gives an interval to (means over targets).
METRICS: tuple[str, ...] = ("P@1", "spearman", "weighted tau", "regret")


def _check_scores(scores: Mapping[str, Mapping[str, object]], truth: Mapping[str, Mapping[str, float]]) -> list[str]:
    targets = sorted(truth)
    for target in targets:
        if target not in scores:
            raise ValueError(f"no estimator scores for target {target!r}")
        if set(scores[target]) != set(truth[target]):
            raise ValueError(f"target {target!r}: the estimator scores {sorted(scores[target])} and the ground "
                             f"truth {sorted(truth[target])} name different sources")
    return targets


def _ordered(values: Mapping[str, float], sources: Sequence[str]) -> np.ndarray:
    return np.array([values[s] for s in sources], dtype=np.float64)


def _rank_correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho, 0 when either side is constant (a constant score orders nothing)."""
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    return float(stats.spearmanr(x, y)[0])


def _weighted_tau(x: np.ndarray, y: np.ndarray) -> float:
    """``scipy.stats.weightedtau`` with its defaults (hyperbolic weights, rank=True), 0 when a side is constant."""
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    return float(stats.weightedtau(x, y)[0])


# ---------------------------------------------------------------------------- one ranking's scores


def precision_recall_at_k(scores: Mapping[str, Mapping[str, float]], truth: Mapping[str, Mapping[str, float]],
                          relevant: int, ks: Sequence[int] | None = None) -> dict[int, tuple[float, float]]:
    """P@K and R@K of an estimator's rankings, Song et al.'s protocol.

    ``scores[target][source]``: the estimator (higher = more transferable); ``truth[target][source]``: the
    transfer's held-out loss (lower = better). Per target, the ``relevant`` sources with the lowest loss are the
    relevant set; the estimator's top K are compared with it. ``P@K = hits / (targets * K)``,
    ``R@K = hits / (targets * relevant)``. Returns ``{K: (P@K, R@K)}`` for every K (default 1 .. sources).
    """
    targets = _check_scores(scores, truth)
    n_sources = len(truth[targets[0]])
    if not 1 <= relevant <= n_sources:
        raise ValueError(f"relevant must be in [1, {n_sources}]; got {relevant}")
    ks = list(ks) if ks is not None else list(range(1, n_sources + 1))
    out = {}
    for k in ks:
        hits = 0
        for target in targets:
            best = set(sorted(truth[target], key=truth[target].get)[:relevant])
            picked = sorted(scores[target], key=scores[target].get, reverse=True)[:k]
            hits += len(best.intersection(picked))
        out[k] = (hits / (len(targets) * k), hits / (len(targets) * relevant))
    return out


def random_precision(n_sources: int, relevant: int) -> float:
    """The expected P@K of a random ranking, for every K: ``relevant / n_sources`` (hypergeometric mean)."""
    if not 1 <= relevant <= n_sources:
        raise ValueError(f"relevant must be in [1, {n_sources}]; got {relevant}")
    return relevant / n_sources


def per_target_spearman(scores: Mapping[str, Mapping[str, float]],
                        truth: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Per target, the Spearman correlation between the estimator's scores and minus the transfer losses
    (1: the estimator orders the sources exactly as the transfers do; 0 for a constant score)."""
    out = {}
    for target in _check_scores(scores, truth):
        sources = sorted(truth[target])
        out[target] = _rank_correlation(_ordered(scores[target], sources), -_ordered(truth[target], sources))
    return out


def weighted_kendall(scores: Mapping[str, Mapping[str, float]],
                     truth: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Per target, the weighted Kendall tau between the estimator's scores and minus the transfer losses:
    ``scipy.stats.weightedtau`` with its defaults (hyperbolic weights ``1 / (rank + 1)``, so that swaps among the
    best sources count most), as SFDA (TencentARC/SFDA ``rank_correlation.py``) and the papers after it report.
    0 for a constant score."""
    out = {}
    for target in _check_scores(scores, truth):
        sources = sorted(truth[target])
        out[target] = _weighted_tau(_ordered(scores[target], sources), -_ordered(truth[target], sources))
    return out


def top1_regret(scores: Mapping[str, Mapping[str, float]], truth: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Per target, how much worse the estimator's first pick transfers than the best source, relative to the
    best: ``(loss(pick) - loss(best)) / loss(best)`` (0 when it picks the best)."""
    out = {}
    for target in _check_scores(scores, truth):
        pick = max(scores[target], key=scores[target].get)
        best = min(truth[target].values())
        out[target] = float((truth[target][pick] - best) / best)
    return out


def ranking_scores(scores: Mapping[str, Mapping[str, float]], truth: Mapping[str, Mapping[str, float]],
                   relevant: int, ks: Sequence[int] | None = None) -> dict:
    """Every ranking score of one estimator on the targets it covers (the tables of notebooks 08 and 09).

    ``truth`` may hold more targets than ``scores``; only those in ``scores`` count. Returns ``targets`` (how
    many), ``P@K`` and ``R@K`` (``{K: value}``, :func:`precision_recall_at_k`), ``spearman`` and ``weighted tau``
    (per target) with their ``... mean`` and the Spearman's ``spearman std`` (population), and ``regret`` (the
    mean :func:`top1_regret`).
    """
    covered = {t: truth[t] for t in scores}
    pr = precision_recall_at_k(scores, covered, relevant, ks)
    spearman = per_target_spearman(scores, covered)
    tau = weighted_kendall(scores, covered)
    regret = top1_regret(scores, covered)
    return {"targets": len(covered), "P@K": {k: v[0] for k, v in pr.items()}, "R@K": {k: v[1] for k, v in pr.items()},
            "spearman": spearman, "spearman mean": float(np.mean(list(spearman.values()))),
            "spearman std": float(np.std(list(spearman.values()))), "weighted tau": tau,
            "weighted tau mean": float(np.mean(list(tau.values()))), "regret": float(np.mean(list(regret.values())))}


# ------------------------------------------------------------------------- the target-agnostic baseline


def target_agnostic_scores(truth: Mapping[str, Mapping[str, float]],
                           targets: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """The target-agnostic baseline: for a target t, each candidate source scored by how well it transferred to
    the **other** targets (leave-one-target-out), without anything of t itself.

    For every other target t' that the source was transferred to, the source's place among t''s candidates is
    ``(rank - 1) / (candidates - 1)`` (0 = best, 1 = worst, by the held-out loss; ties share their mean rank), a
    scale-free stand-in for "its transfer result" since losses of different tasks are not comparable; the score
    is minus its mean over those targets (higher = better, as for every estimator). ``truth[t]`` is never read
    for target t's own scores. ``targets``: which targets to score (default: all of ``truth``).
    """
    places: dict[str, dict[str, float]] = {}
    for target, losses in truth.items():
        sources = list(losses)
        if len(sources) < 2:
            raise ValueError(f"target {target!r} has fewer than two candidate sources")
        ranks = stats.rankdata(_ordered(losses, sources))
        places[target] = {s: float((r - 1) / (len(sources) - 1)) for s, r in zip(sources, ranks, strict=True)}
    out = {}
    for target in (targets if targets is not None else list(truth)):
        scores = {}
        for source in truth[target]:
            elsewhere = [places[t][source] for t in truth if t != target and source in places[t]]
            if not elsewhere:
                raise ValueError(f"source {source!r} was transferred to no target but {target!r}: nothing to go on")
            scores[source] = -float(np.mean(elsewhere))
        out[target] = scores
    return out


# ---------------------------------------------------------------------------------------- uncertainty


def bootstrap_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    """``(resamples, n)`` indices drawn uniformly with replacement from ``range(n)`` (seeded): one bootstrap
    resample per row."""
    if n < 1 or resamples < 1:
        raise ValueError(f"need n >= 1 and resamples >= 1; got n={n}, resamples={resamples}")
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def resampled_mean(per_probe, index) -> np.ndarray:
    """The mean over each resample of per-probe values: ``per_probe`` is ``(N, ...)``, ``index`` ``(B, N)``
    (:func:`bootstrap_indices`); returns ``(B, ...)``, computed as one product with the resamples' counts."""
    values = np.asarray(per_probe, dtype=np.float64)
    idx = np.asarray(index)
    n = len(values)
    if idx.ndim != 2 or idx.min() < 0 or idx.max() >= n:
        raise ValueError(f"index must be (resamples, probes) of integers in [0, {n})")
    counts = np.stack([np.bincount(row, minlength=n) for row in idx]) / idx.shape[1]
    return np.tensordot(counts, values, axes=(1, 0))


def _lexicographic_weights(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Hyperbolic weights ``1 / (r + 1)`` by the rank r of each element in the decreasing lexicographic order of
    ``(first, second)`` (``first`` ``(B, n)``, ``second`` ``(B, n)``), as ``scipy.stats.weightedtau`` ranks."""
    by_second = np.argsort(second, axis=1, kind="stable")
    first_sorted = np.take_along_axis(first, by_second, axis=1)
    perm = np.take_along_axis(by_second, np.argsort(first_sorted, axis=1, kind="stable"), axis=1)  # ascending
    rank = np.empty_like(perm)
    np.put_along_axis(rank, perm, np.arange(perm.shape[1] - 1, -1, -1)[None].repeat(len(perm), 0), axis=1)
    return 1.0 / (rank + 1.0)


def _weighted_tau_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``scipy.stats.weightedtau(x[b], y)`` (hyperbolic weigher, additive, rank=True) for every row of ``x``
    ``(B, n)``, vectorised: the mean of ``sum w s_x s_y / sqrt(sum w s_x^2 sum w s_y^2)`` over the pairs, with
    ``w = w_i + w_j`` from the rank by ``(x, y)`` and then by ``(y, x)``; 0 where a side is constant."""
    ys = np.broadcast_to(y, x.shape)
    sx = np.sign(x[:, :, None] - x[:, None, :])
    sy = np.sign(ys[:, :, None] - ys[:, None, :])
    taus = []
    for w in (_lexicographic_weights(x, ys), _lexicographic_weights(ys, x)):
        pair = w[:, :, None] + w[:, None, :]
        num, den_x, den_y = ((pair * a).sum(axis=(1, 2)) for a in (sx * sy, sx * sx, sy * sy))
        den = np.sqrt(den_x * den_y)
        taus.append(np.clip(np.divide(num, den, out=np.zeros(len(x)), where=den > 0), -1.0, 1.0))
    return (taus[0] + taus[1]) / 2


def _per_target(draws: np.ndarray, losses: np.ndarray, relevant: int) -> dict[str, np.ndarray]:
    """The four scores of one target for every draw of the estimator's scores ``draws`` ``(B, C)``."""
    good = -losses
    ranks_truth = stats.rankdata(good)
    ranks = stats.rankdata(draws, axis=1)
    centred, centred_truth = ranks - ranks.mean(axis=1, keepdims=True), ranks_truth - ranks_truth.mean()
    norm = np.linalg.norm(centred, axis=1) * np.linalg.norm(centred_truth)
    spearman = np.divide(centred @ centred_truth, norm, out=np.zeros(len(draws)), where=norm > 0)
    pick = draws.argmax(axis=1)
    best = set(np.argsort(losses, kind="stable")[:relevant].tolist())
    return {"P@1": np.array([p in best for p in pick], dtype=np.float64),
            "spearman": spearman,
            "weighted tau": _weighted_tau_rows(draws, good),
            "regret": losses[pick] / losses.min() - 1}


def _draws_per_target(scores, truth, relevant, draws, b) -> tuple[dict, dict]:
    """Per target, the four scores of the point ranking ``(T,)`` and of every draw ``(B, T)``."""
    targets = _check_scores(scores, truth)
    if draws is not None:
        _check_scores(draws, truth)
    point = {m: np.zeros(len(targets)) for m in METRICS}
    per_draw = {m: np.zeros((b, len(targets))) for m in METRICS}
    for j, target in enumerate(targets):
        sources = sorted(truth[target])
        losses = _ordered(truth[target], sources)
        for m, v in _per_target(_ordered(scores[target], sources)[None], losses, relevant).items():
            point[m][j] = v[0]
        if draws is None:
            for m in METRICS:
                per_draw[m][:, j] = point[m][j]
            continue
        matrix = np.stack([np.asarray(draws[target][s], dtype=np.float64) for s in sources], axis=1)
        if matrix.shape[0] != b:
            raise ValueError(f"target {target!r}: {matrix.shape[0]} draws, expected {b}")
        for m, v in _per_target(matrix, losses, relevant).items():
            per_draw[m][:, j] = v
    return point, per_draw


def _resamples(draws, resamples: int | None) -> int:
    if draws is not None:
        first = next(iter(draws.values()))
        return len(next(iter(first.values())))
    return resamples or 300


def _interval(means: np.ndarray, value: float, level: float) -> dict[str, float]:
    low, high = np.quantile(means, ((1 - level) / 2, (1 + level) / 2))
    return {"value": float(value), "low": float(low), "high": float(high)}


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level}")


def _target_rows(n: int, b: int, resample_targets: bool, seed: int) -> np.ndarray:
    return bootstrap_indices(n, b, seed) if resample_targets else np.tile(np.arange(n), (b, 1))


def ranking_bootstrap(scores: Mapping[str, Mapping[str, float]], truth: Mapping[str, Mapping[str, float]],
                      relevant: int, draws: Mapping[str, Mapping[str, np.ndarray]] | None = None, *,
                      resample_targets: bool = True, resamples: int | None = None, seed: int = 0,
                      level: float = 0.90) -> dict[str, dict[str, float]]:
    """Each score of :data:`METRICS` (P@1, mean Spearman, mean weighted tau, mean top-1 regret over the targets
    the estimator covers) with a percentile bootstrap interval.

    ``scores``: the estimator's scores (the point values). ``draws`` (optional): the same scores recomputed on B
    resamples of the probe images, ``draws[target][source]`` an array of B values; without it the scores are
    taken as fixed (label-based estimators, the baselines). ``resample_targets``: each resample also draws the
    targets with replacement (``resamples`` of them, default B or 300; seeded by ``seed``), so the interval
    covers both the probes and the choice of targets. Returns ``{metric: {"value", "low", "high"}}``: the value
    from the point scores and the ``(1 - level)/2`` and ``(1 + level)/2`` quantiles of the resampled means.
    Vectorised over resamples (the weighted tau too: ``scipy.stats.weightedtau`` rewritten for small n, tested
    equal to it).
    """
    _check_level(level)
    covered = {t: truth[t] for t in scores}
    b = _resamples(draws, resamples)
    point, per_draw = _draws_per_target(scores, covered, relevant, draws, b)
    rows = _target_rows(len(covered), b, resample_targets, seed)
    return {m: _interval(np.take_along_axis(per_draw[m], rows, axis=1).mean(axis=1), point[m].mean(), level)
            for m in METRICS}


def difference_bootstrap(scores_a: Mapping[str, Mapping[str, float]], scores_b: Mapping[str, Mapping[str, float]],
                         truth: Mapping[str, Mapping[str, float]], relevant: int,
                         draws_a: Mapping[str, Mapping[str, np.ndarray]] | None = None,
                         draws_b: Mapping[str, Mapping[str, np.ndarray]] | None = None, *,
                         resample_targets: bool = True, resamples: int | None = None, seed: int = 0,
                         level: float = 0.90) -> dict[str, dict[str, float]]:
    """Estimator A minus estimator B on the targets A covers, each score of :data:`METRICS` with a paired
    percentile interval: both are resampled together (the same draws of the targets and, when both come with
    draws, the same resamples of the probes), so that what the two share cancels. An interval that contains 0
    does not order the two estimators."""
    _check_level(level)
    covered = {t: truth[t] for t in scores_a}
    b = _resamples(draws_a if draws_a is not None else draws_b, resamples)
    point_a, per_a = _draws_per_target(scores_a, covered, relevant, draws_a, b)
    point_b, per_b = _draws_per_target({t: scores_b[t] for t in covered}, covered, relevant,
                                       None if draws_b is None else {t: draws_b[t] for t in covered}, b)
    rows = _target_rows(len(covered), b, resample_targets, seed)
    return {m: _interval(np.take_along_axis(per_a[m] - per_b[m], rows, axis=1).mean(axis=1),
                         (point_a[m] - point_b[m]).mean(), level) for m in METRICS}
