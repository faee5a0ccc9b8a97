"""Label-free estimators, model to model: attribution affinity (Song et al. 2019), RSA, linear CKA, DEPARA's
graph similarity (Song et al. 2020), and their values under resampled probes for the bootstrap.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

from kae_utils.methods.transferability.common import as_samples, upper_triangle

# ------------------------------------------------------------------------------------ label-free


def _cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return (a * b).sum(axis=-1) / np.maximum(norms, 1e-12)


def attribution_affinity(maps_a, maps_b) -> float:
    """``(1/N) sum_n cos(A_a(x_n), A_b(x_n))``: the mean cosine between two models' attribution maps of the
    same N probe images (each map flattened), as in Song et al. (NeurIPS 2019). 1 means identical maps."""
    a, b = as_samples(maps_a, "maps_a"), as_samples(maps_b, "maps_b")
    if a.shape != b.shape:
        raise ValueError(f"attribution maps differ in shape: {a.shape} vs {b.shape}")
    return float(_cosine_rows(a, b).mean())


def rsa(features_a, features_b) -> float:
    """Representational similarity: Spearman correlation between the two models' dissimilarity matrices
    (``1 - Pearson correlation`` between every pair of probe images' features; upper triangles)."""
    a, b = as_samples(features_a, "features_a"), as_samples(features_b, "features_b")
    if len(a) != len(b) or len(a) < 3:
        raise ValueError("rsa needs the same probe images (at least 3) for both models")
    rdm_a, rdm_b = 1 - np.corrcoef(a), 1 - np.corrcoef(b)
    return float(stats.spearmanr(upper_triangle(rdm_a), upper_triangle(rdm_b))[0])


def linear_cka(features_a, features_b) -> float:
    """Linear centred kernel alignment ``||B^T A||_F^2 / (||A^T A||_F ||B^T B||_F)`` of the centred features
    (Kornblith et al. 2019): 1 for features equal up to rotation and scale, near 0 for unrelated ones."""
    a, b = as_samples(features_a, "features_a"), as_samples(features_b, "features_b")
    if len(a) != len(b):
        raise ValueError("linear_cka needs the same probe images for both models")
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)
    cross = np.linalg.norm(b.T @ a) ** 2
    return float(cross / (np.linalg.norm(a.T @ a) * np.linalg.norm(b.T @ b)))


def edge_vector(features) -> np.ndarray:
    """DEPARA's edges: the cosine similarity of every pair of probe images' features, after subtracting the
    mean feature over the probes (upper triangle, no diagonal)."""
    f = as_samples(features, "features")
    f = f - f.mean(axis=0)
    unit = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    return upper_triangle(unit @ unit.T)


def depara_similarity(maps_a, features_a, maps_b, features_b, lam: float = 1.0) -> dict[str, float]:
    """DEPARA (Song et al., CVPR 2020): ``S = S_V + lam * S_E`` between two models' attribution graphs.

    ``S_V``: mean cosine of the nodes (the attribution maps, :func:`attribution_affinity`); ``S_E``:
    Spearman correlation of the edge vectors (:func:`edge_vector` of each model's features). Returns all three.
    """
    s_v = attribution_affinity(maps_a, maps_b)
    s_e = float(stats.spearmanr(edge_vector(features_a), edge_vector(features_b))[0])
    return {"nodes": s_v, "edges": s_e, "total": s_v + lam * s_e}


# ------------------------------------------------------------------ label-free, probes resampled


def _resample(index, n: int) -> np.ndarray:
    idx = np.asarray(index)
    if idx.ndim != 2 or not np.issubdtype(idx.dtype, np.integer) or idx.min() < 0 or idx.max() >= n:
        raise ValueError(f"index must be (resamples, probes) of integers in [0, {n}); got shape {idx.shape}")
    return idx


def _per_model(values: Sequence, name: str) -> list[np.ndarray]:
    arrays = [as_samples(v, name) for v in values]
    if len({a.shape[0] for a in arrays}) != 1:
        raise ValueError(f"every model's {name} must cover the same probe images")
    return arrays


def resampled_affinity(maps: Sequence, index) -> np.ndarray:
    """:func:`attribution_affinity` of every pair of models on each resample of the probes: ``maps[m]`` is model
    ``m``'s ``(N, ...)`` maps, ``index`` a ``(B, N)`` array of probe indices (drawn with replacement). Returns
    ``(B, M, M)``: the mean over each resample of the per-probe cosines (vectorised: one count matrix)."""
    arrays = _per_model(maps, "maps")
    if len({a.shape for a in arrays}) != 1:
        raise ValueError("every model's maps must have the same shape")
    a = np.stack(arrays)
    n = a.shape[1]
    idx = _resample(index, n)
    unit = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
    per_probe = np.einsum("mnd,knd->nmk", unit, unit)  # (N, M, M) cosines
    counts = np.stack([np.bincount(row, minlength=n) for row in idx]) / idx.shape[1]
    return np.einsum("bn,nmk->bmk", counts, per_probe)


def _rank_correlations(structures: np.ndarray) -> np.ndarray:
    """Spearman correlation between every pair of ``structures[b, m]`` (vectors), per ``b``: ``(B, M, M)``."""
    ranks = stats.rankdata(structures, axis=-1)
    ranks -= ranks.mean(axis=-1, keepdims=True)
    ranks /= np.maximum(np.linalg.norm(ranks, axis=-1, keepdims=True), 1e-12)
    return np.einsum("bme,bke->bmk", ranks, ranks)


def _chunks(b: int, per_item: int, budget: int = 20_000_000) -> list[slice]:
    step = max(1, budget // max(per_item, 1))
    return [slice(i, min(i + step, b)) for i in range(0, b, step)]


def _resampled_structure_similarity(matrices: np.ndarray, idx: np.ndarray, transform, self_value: float) -> np.ndarray:
    """Spearman correlation of the upper triangles of ``transform(matrices[:, idx_b][:, :, idx_b])`` per resample.
    A probe drawn twice is paired with itself: that entry is set to ``self_value`` exactly, so that such pairs tie
    exactly (computed, they differ from it and from each other by rounding errors, which would order them)."""
    m, n = matrices.shape[0], idx.shape[1]
    out = np.empty((len(idx), m, m))
    for part in _chunks(len(idx), m * n * n):
        sub = idx[part]
        resampled = transform(matrices[:, sub[:, :, None], sub[:, None, :]].transpose(1, 0, 2, 3))  # (b, M, n, n)
        same = np.broadcast_to((sub[:, :, None] == sub[:, None, :])[:, None], resampled.shape)
        resampled = np.where(same, self_value, resampled)
        out[part] = _rank_correlations(upper_triangle(resampled))
    return out


def resampled_rsa(features: Sequence, index) -> np.ndarray:
    """:func:`rsa` of every pair of models on each resample of the probes: ``(B, M, M)``. A probe's correlation
    distances to the others do not depend on which probes are drawn, so each resample takes rows and columns of
    the full dissimilarity matrices (a probe drawn twice gives pairs at distance 0, as recomputing would)."""
    feats = _per_model(features, "features")
    rdms = np.stack([_symmetric(1 - np.corrcoef(f)) for f in feats])
    return _resampled_structure_similarity(rdms, _resample(index, rdms.shape[1]), lambda r: r, 0.0)


def _centre_gram(gram: np.ndarray) -> np.ndarray:
    return (gram - gram.mean(axis=-1, keepdims=True) - gram.mean(axis=-2, keepdims=True)
            + gram.mean(axis=(-1, -2), keepdims=True))


def _symmetric(matrix: np.ndarray) -> np.ndarray:
    """``(A + A^T) / 2``: entries (i, j) and (j, i) bitwise equal (products and means along the two axes round
    differently), so that a probe drawn twice gives exactly tied pairs."""
    return (matrix + np.swapaxes(matrix, -1, -2)) / 2


def _centred_cosines(gram: np.ndarray) -> np.ndarray:
    centred = _centre_gram(gram)
    norms = np.sqrt(np.maximum(np.diagonal(centred, axis1=-2, axis2=-1), 1e-24))
    return _symmetric(centred / norms[..., :, None] / norms[..., None, :])


def resampled_edge_similarity(features: Sequence, index) -> np.ndarray:
    """DEPARA's ``S_E`` of every pair of models on each resample of the probes: ``(B, M, M)``. The features are
    centred over the *resampled* probes (from the Gram matrices: ``H K H``), then each pair's cosine; the
    Spearman correlation of two models' upper triangles is ``S_E``."""
    feats = _per_model(features, "features")
    grams = np.stack([f @ f.T for f in feats])
    return _resampled_structure_similarity(grams, _resample(index, grams.shape[1]), _centred_cosines, 1.0)


def resampled_linear_cka(features: Sequence, index) -> np.ndarray:
    """:func:`linear_cka` of every pair of models on each resample of the probes: ``(B, M, M)``, from the Gram
    matrices (``CKA = <HKH, HLH>_F / (||HKH||_F ||HLH||_F)``, H the centring over the resampled probes)."""
    feats = _per_model(features, "features")
    grams = np.stack([f @ f.T for f in feats])
    m, n = grams.shape[0], grams.shape[1]
    idx = _resample(index, n)
    out = np.empty((len(idx), m, m))
    for part in _chunks(len(idx), m * n * n):
        sub = idx[part]
        centred = _centre_gram(grams[:, sub[:, :, None], sub[:, None, :]].transpose(1, 0, 2, 3))
        inner = np.einsum("bmij,bkij->bmk", centred, centred)
        norms = np.sqrt(np.diagonal(inner, axis1=1, axis2=2))
        out[part] = inner / np.maximum(norms[:, :, None] * norms[:, None, :], 1e-300)
    return out
