"""The ranking harness of notebooks 08 and 09: from the models' pairwise similarities to each target's scores of
its candidate sources, those scores' ranking against the ground truth with bootstrap intervals, and the rows of
the results table.

Every model is a source; a target is a source whose task was transferred to. ``matrix[i, j]`` is the similarity
of ``sources[i]`` and ``sources[j]``; a target's candidates are the other sources. The scoring itself (P@K,
Spearman, weighted tau, regret, the bootstraps) is :mod:`.ranking`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from kae_utils.methods.transferability import ranking as rk

__all__ = ["ceiling_ranking", "ci", "draws_from", "evaluate_ranking", "first_picks", "oracle_curves",
           "pair_matrices", "scores_from", "table_row"]

Scores = Mapping[str, Mapping[str, float]]


def pair_matrices(values: Mapping[str, Any], sources: Sequence[str], similarity: Callable[[Any, Any], Any],
                  n_out: int = 1) -> list[np.ndarray]:
    """``n_out`` symmetric matrices over ``sources`` (ones on the diagonal), one per value that
    ``similarity(values[a], values[b])`` returns (a tuple when ``n_out > 1``); computed once per unordered pair."""
    out = [np.eye(len(sources)) for _ in range(n_out)]
    for i, a in enumerate(sources):
        for j in range(i + 1, len(sources)):
            values_ij = similarity(values[a], values[sources[j]])
            for m, v in zip(out, values_ij if n_out > 1 else (values_ij,), strict=True):
                m[i, j] = m[j, i] = v
    return out


def scores_from(matrix: np.ndarray, sources: Sequence[str], targets: Sequence[str]) -> dict[str, dict[str, float]]:
    """``scores[target][source]``: the similarity of the source's model with the target's model (the others)."""
    sources = list(sources)
    return {t: {s: float(matrix[sources.index(s), sources.index(t)]) for s in sources if s != t} for t in targets}


def draws_from(matrices: np.ndarray, sources: Sequence[str],
               targets: Sequence[str]) -> dict[str, dict[str, np.ndarray]]:
    """``draws[target][source]``: the ``(B,)`` similarities of the two models over ``B`` resamples of the probes,
    from ``matrices`` of shape ``(B, sources, sources)``."""
    sources = list(sources)
    return {t: {s: matrices[:, sources.index(s), sources.index(t)] for s in sources if s != t} for t in targets}


def evaluate_ranking(scores: Scores, truth: Scores, relevant: int, ks: Sequence[int], *,
                     draws: Mapping[str, Mapping[str, np.ndarray]] | None, baseline: Scores, ceiling_scores: Scores,
                     ceiling_truth: Scores, resamples: int, seed: int) -> dict:
    """The ranking scores of ``scores`` on the targets it covers (:func:`.ranking.ranking_scores`), then
    ``interval`` (their bootstrap intervals, with the probes' ``draws`` where the estimator has them),
    ``vs target-agnostic`` (the paired difference to ``baseline``) and ``ceiling`` (the intervals of the ceiling's
    scores, a second ground-truth run against ``ceiling_truth``, on the same targets). The same ``resamples`` and
    ``seed`` for every estimator: the same draws of the targets."""
    res = dict(rk.ranking_scores(scores, truth, relevant, ks))
    res["interval"] = rk.ranking_bootstrap(scores, truth, relevant, draws, resamples=resamples, seed=seed)
    res["vs target-agnostic"] = rk.difference_bootstrap(scores, baseline, truth, relevant, draws, resamples=resamples,
                                                        seed=seed)
    res["ceiling"] = rk.ranking_bootstrap({t: ceiling_scores[t] for t in scores}, ceiling_truth, relevant,
                                          resamples=resamples, seed=seed)
    return res


def ceiling_ranking(ceiling_scores: Scores, ceiling_truth: Scores, relevant: int, ks: Sequence[int], *,
                    resamples: int, seed: int) -> dict:
    """The ranking scores of the ceiling (a second ground-truth run scored against the first) on every target,
    with their bootstrap ``interval``."""
    return {**rk.ranking_scores(ceiling_scores, ceiling_truth, relevant, ks),
            "interval": rk.ranking_bootstrap(ceiling_scores, ceiling_truth, relevant, resamples=resamples, seed=seed)}


def oracle_curves(relevant: int, ks: Sequence[int]) -> dict[str, dict[int, float]]:
    """P@K and R@K of the oracle (the ground truth ranking itself): ``min(1, relevant / K)`` and
    ``min(K, relevant) / relevant``."""
    return {"P@K": {k: min(1.0, relevant / k) for k in ks}, "R@K": {k: min(k, relevant) / relevant for k in ks}}


def ci(interval: Mapping[str, float], sign: str = "") -> str:
    """An interval as text: ``value [low, high]``, two decimals (``sign="+"`` shows the sign)."""
    return f"{interval['value']:{sign}.2f} [{interval['low']:{sign}.2f}, {interval['high']:{sign}.2f}]"


def table_row(res: Mapping[str, Any], ks: Sequence[int]) -> dict[str, Any]:
    """The scores' columns of a results-table row: P@1 with its 90 % interval, P@2..P@5, Spearman and weighted tau
    with their intervals, the difference to the target-agnostic baseline where ``res`` has it, the top-1 regret."""
    iv = res["interval"]
    out = {"P@1 [90 %]": ci(iv["P@1"]), **{f"P@{k}": res["P@K"][k] for k in ks[1:5]},
           "Spearman [90 %]": ci(iv["spearman"]), "weighted τ [90 %]": ci(iv["weighted tau"])}
    if "vs target-agnostic" in res:
        out["Δ Spearman vs target-agnostic [90 %]"] = ci(res["vs target-agnostic"]["spearman"], "+")
    out["top-1 regret"] = res["regret"]
    return out


def first_picks(scores: Scores, truth: Scores, relevant: int) -> dict[str, str]:
    """Per target, the source ranked first with its score, marked `` *`` when it is among the ``relevant`` best
    transfers of ``truth`` (lower loss is better): what P@1 counts."""
    picks = {}
    for t, by_source in scores.items():
        pick = max(by_source, key=by_source.get)
        hit = pick in sorted(truth[t], key=truth[t].get)[:relevant]
        picks[t] = f"{pick} ({by_source[pick]:.2f})" + (" *" if hit else "")
    return picks
