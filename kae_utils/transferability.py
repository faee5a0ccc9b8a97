"""Transferability estimators and how to score them (notebooks 08 and 09).

A transferability estimator predicts, without fine-tuning, how well a trained source model will serve a
target task. Two families are implemented here, each from its paper's formula (none is on PyPI):

* **label-free, model to model**: compare what two models compute on the same probe images:
  :func:`attribution_affinity` (mean cosine of attribution maps, Song et al. 2019), :func:`rsa`
  (representational similarity analysis: Spearman between the models' dissimilarity matrices),
  :func:`linear_cka` (centred kernel alignment), and DEPARA's graph similarity
  (:func:`depara_similarity`, Song et al. 2020: nodes = attributions, edges = feature similarities);
* **label-based, features of the source on labelled target data**: :func:`logme` (evidence of a Bayesian
  linear model; regression and classification), :func:`h_score`, :func:`transrate`, :func:`gbc`
  (Bhattacharyya coefficients between class Gaussians), :func:`leep` and :func:`nce` (from a source's
  class predictions), :func:`nleep` (LEEP on a Gaussian mixture of the features).

Every estimator returns a number where **higher means more transferable**. Rankings are scored against
a ground truth (held-out losses of real transfers: lower is better) with :func:`precision_recall_at_k`,
:func:`per_target_spearman` and :func:`top1_regret`; :func:`random_precision` is the chance level.
Inputs are NumPy arrays or tensors; computations are in float64.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from scipy import stats

__all__ = [
    "attribution_affinity",
    "depara_similarity",
    "edge_vector",
    "gbc",
    "h_score",
    "leep",
    "linear_cka",
    "logme",
    "logme_evidence",
    "nce",
    "nleep",
    "per_target_spearman",
    "pixels_as_samples",
    "precision_recall_at_k",
    "random_precision",
    "ranking_scores",
    "rsa",
    "top1_regret",
    "transrate",
]


def _array(x, name: str, ndim: int | None = None) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=np.float64)
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions; got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def _labels(y, n: int) -> np.ndarray:
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"labels must be a vector of {n} class indices; got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise ValueError("labels must be non-negative integers")
    return y.astype(np.int64)


def _flat(x, name: str) -> np.ndarray:
    a = _array(x, name)
    if a.ndim < 2:
        raise ValueError(f"{name} must be (samples, ...); got shape {a.shape}")
    return a.reshape(len(a), -1)


# ------------------------------------------------------------------------------------ label-free


def _cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return (a * b).sum(axis=1) / np.maximum(norms, 1e-12)


def attribution_affinity(maps_a, maps_b) -> float:
    """``(1/N) sum_n cos(A_a(x_n), A_b(x_n))``: the mean cosine between two models' attribution maps of the
    same N probe images (each map flattened), as in Song et al. (NeurIPS 2019). 1 means identical maps."""
    a, b = _flat(maps_a, "maps_a"), _flat(maps_b, "maps_b")
    if a.shape != b.shape:
        raise ValueError(f"attribution maps differ in shape: {a.shape} vs {b.shape}")
    return float(_cosine_rows(a, b).mean())


def _upper(matrix: np.ndarray) -> np.ndarray:
    return matrix[np.triu_indices(len(matrix), k=1)]


def rsa(features_a, features_b) -> float:
    """Representational similarity: Spearman correlation between the two models' dissimilarity matrices
    (``1 - Pearson correlation`` between every pair of probe images' features; upper triangles)."""
    a, b = _flat(features_a, "features_a"), _flat(features_b, "features_b")
    if len(a) != len(b) or len(a) < 3:
        raise ValueError("rsa needs the same probe images (at least 3) for both models")
    rdm_a, rdm_b = 1 - np.corrcoef(a), 1 - np.corrcoef(b)
    return float(stats.spearmanr(_upper(rdm_a), _upper(rdm_b))[0])


def linear_cka(features_a, features_b) -> float:
    """Linear centred kernel alignment ``||B^T A||_F^2 / (||A^T A||_F ||B^T B||_F)`` of the centred features
    (Kornblith et al. 2019): 1 for features equal up to rotation and scale, near 0 for unrelated ones."""
    a, b = _flat(features_a, "features_a"), _flat(features_b, "features_b")
    if len(a) != len(b):
        raise ValueError("linear_cka needs the same probe images for both models")
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)
    cross = np.linalg.norm(b.T @ a) ** 2
    return float(cross / (np.linalg.norm(a.T @ a) * np.linalg.norm(b.T @ b)))


def edge_vector(features) -> np.ndarray:
    """DEPARA's edges: the cosine similarity of every pair of probe images' features, after subtracting the
    mean feature over the probes (upper triangle, no diagonal)."""
    f = _flat(features, "features")
    f = f - f.mean(axis=0)
    unit = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    return _upper(unit @ unit.T)


def depara_similarity(maps_a, features_a, maps_b, features_b, lam: float = 1.0) -> dict[str, float]:
    """DEPARA (Song et al., CVPR 2020): ``S = S_V + lam * S_E`` between two models' attribution graphs.

    ``S_V``: mean cosine of the nodes (the attribution maps, :func:`attribution_affinity`); ``S_E``:
    Spearman correlation of the edge vectors (:func:`edge_vector` of each model's features). Returns all three.
    """
    s_v = attribution_affinity(maps_a, maps_b)
    s_e = float(stats.spearmanr(edge_vector(features_a), edge_vector(features_b))[0])
    return {"nodes": s_v, "edges": s_e, "total": s_v + lam * s_e}


# ------------------------------------------------------------------------------------ label-based


def logme_evidence(features, y, alpha: float, beta: float) -> float:
    """Log evidence per sample, ``log p(y | F, alpha, beta) / N``, of the Bayesian linear model
    ``y = F w + noise`` with prior ``w ~ N(0, I / alpha)`` and noise precision ``beta`` (closed form)."""
    f, t = _array(features, "features", 2), _array(y, "y", 1)
    n, d = f.shape
    a = alpha * np.eye(d) + beta * f.T @ f
    m = beta * np.linalg.solve(a, f.T @ t)
    fit = ((t - f @ m) ** 2).sum()
    _, logdet = np.linalg.slogdet(a)
    evidence = (d * np.log(alpha) + n * np.log(beta) - beta * fit - alpha * (m @ m) - logdet
                - n * np.log(2 * np.pi)) / 2
    return float(evidence / n)


def _logme_column(u_ty: np.ndarray, sigma: np.ndarray, y: np.ndarray, f: np.ndarray, v: np.ndarray,
                  max_iter: int, tol: float) -> tuple[float, float]:
    """MacKay's fixed point for (alpha, beta) of one target column, in the eigenbasis of F^T F."""
    n, d = f.shape
    alpha, beta = 1.0, 1.0
    for _ in range(max_iter):
        gamma = (beta * sigma / (alpha + beta * sigma)).sum()  # effective number of parameters
        m = v @ (beta * u_ty / (alpha + beta * sigma))  # posterior mean of w
        residual = ((y - f @ m) ** 2).sum()
        new_alpha = gamma / max(m @ m, 1e-12)
        new_beta = (n - gamma) / max(residual, 1e-12)
        done = abs(new_alpha / new_beta - alpha / beta) <= tol * alpha / beta
        alpha, beta = new_alpha, new_beta
        if done:
            break
    return alpha, beta


def logme(features, targets, *, classification: bool | None = None, max_iter: int = 100, tol: float = 1e-4) -> float:
    """LogME (You et al., ICML 2021): the maximised log evidence per sample of a Bayesian linear model from
    the features to the targets, averaged over the target columns.

    ``targets``: class labels ``(N,)`` (one-hot columns are used; ``classification=True``) or regression
    targets ``(N,)`` / ``(N, K)`` (each column on its own). Per column, ``alpha`` (prior precision) and
    ``beta`` (noise precision) maximise the evidence by MacKay's fixed-point updates.
    """
    f = _flat(features, "features")
    n = len(f)
    raw = targets.detach().cpu().numpy() if isinstance(targets, torch.Tensor) else np.asarray(targets)
    if classification is None:
        classification = raw.dtype.kind in "iu"
    if classification:
        y = _labels(raw, n)
        columns = np.eye(int(y.max()) + 1)[y]
    else:
        columns = _array(targets, "targets").reshape(n, -1)
    sigma, v = np.linalg.eigh(f.T @ f)
    sigma = np.clip(sigma, 0.0, None)
    scores = []
    for k in range(columns.shape[1]):
        y_k = columns[:, k]
        alpha, beta = _logme_column(v.T @ (f.T @ y_k), sigma, y_k, f, v, max_iter, tol)
        scores.append(logme_evidence(f, y_k, alpha, beta))
    return float(np.mean(scores))


def h_score(features, labels, shrinkage: float = 0.0) -> float:
    """H-score (Bao et al., ICIP 2019): ``tr(cov(f)^+ cov(E[f | y]))``, how much of the features' spread is
    between the class means. ``shrinkage`` in [0, 1) blends cov(f) with its mean eigenvalue times I
    (Ibrahim et al. 2022), which stabilises it for many feature dimensions."""
    f = _flat(features, "features")
    y = _labels(labels, len(f))
    if not 0.0 <= shrinkage < 1.0:
        raise ValueError(f"shrinkage must be in [0, 1); got {shrinkage}")
    f = f - f.mean(axis=0)
    cov = f.T @ f / len(f)
    if shrinkage:
        cov = (1 - shrinkage) * cov + shrinkage * np.trace(cov) / len(cov) * np.eye(len(cov))
    class_means = np.zeros_like(f)
    for c in np.unique(y):
        class_means[y == c] = f[y == c].mean(axis=0)
    between = class_means.T @ class_means / len(f)
    return float(np.trace(np.linalg.pinv(cov, hermitian=True) @ between))


def _coding_rate(z: np.ndarray, eps: float) -> float:
    n, d = z.shape
    return 0.5 * np.linalg.slogdet(np.eye(d) + z.T @ z / (n * eps))[1]


def transrate(features, labels, eps: float = 1e-4) -> float:
    """TransRate (Huang et al., ICML 2022): the coding rate of the centred features minus the mean coding rate
    of each class's features, ``R(Z) - (1/C) sum_c R(Z_c)`` with ``R(Z) = 1/2 logdet(I + Z^T Z / (n eps))``."""
    f = _flat(features, "features")
    y = _labels(labels, len(f))
    f = f - f.mean(axis=0)
    classes = np.unique(y)
    return float(_coding_rate(f, eps) - np.mean([_coding_rate(f[y == c], eps) for c in classes]))


def gbc(features, labels, eps: float = 1e-8) -> float:
    """GBC (Pándy et al., CVPR 2022): minus the sum over ordered pairs of classes of the Bhattacharyya
    coefficient ``exp(-D_B)`` between the classes' diagonal Gaussians. 0 is perfect separation; the more the
    classes overlap, the more negative. (The paper first reduces the features to 64 dimensions by PCA.)"""
    f = _flat(features, "features")
    y = _labels(labels, len(f))
    classes = np.unique(y)
    means = np.stack([f[y == c].mean(axis=0) for c in classes])
    variances = np.stack([f[y == c].var(axis=0) + eps for c in classes])
    total = 0.0
    for i in range(len(classes)):
        for j in range(len(classes)):
            if i == j:
                continue
            var = (variances[i] + variances[j]) / 2
            distance = (((means[i] - means[j]) ** 2) / var).sum() / 8 + 0.5 * (
                np.log(var).sum() - 0.5 * (np.log(variances[i]).sum() + np.log(variances[j]).sum()))
            total += np.exp(-distance)
    return float(-total)


def _joint(probabilities: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Empirical joint ``P(y, z) = (1/N) sum_i theta(x_i)_z [y_i = y]``, shape (target classes, source classes)."""
    joint = np.zeros((int(y.max()) + 1, probabilities.shape[1]))
    np.add.at(joint, y, probabilities)
    return joint / len(y)


def leep(source_probabilities, labels) -> float:
    """LEEP (Nguyen et al., ICML 2020): ``(1/N) sum_i log sum_z P(y_i | z) theta(x_i)_z`` with theta the source
    model's softmax over its own classes z on the target images and P(y | z) the empirical conditional."""
    p = _array(source_probabilities, "source_probabilities", 2)
    y = _labels(labels, len(p))
    if (p < 0).any() or not np.allclose(p.sum(axis=1), 1.0, atol=1e-5):
        raise ValueError("source_probabilities must be rows of probabilities (a softmax), summing to 1")
    joint = _joint(p, y)
    conditional = joint / np.maximum(joint.sum(axis=0, keepdims=True), 1e-300)  # P(y | z)
    return float(np.log(np.maximum((p * conditional[y]).sum(axis=1), 1e-300)).mean())


def nce(source_labels, labels) -> float:
    """NCE (Tran et al., ICCV 2019): ``-H(Y | Z) = sum_{y,z} P(y, z) log P(y | z)`` with Z the source model's
    hard predictions on the target images (0 when Z determines Y)."""
    raw = source_labels.detach().cpu().numpy() if isinstance(source_labels, torch.Tensor) else np.asarray(source_labels)
    z = _labels(raw, len(raw))
    y = _labels(labels, len(z))
    return leep(np.eye(int(z.max()) + 1)[z], y)


def nleep(features, labels, components: int | None = None, variance: float = 0.8, seed: int = 0) -> float:
    """N-LEEP (Li et al., CVPR 2021): LEEP with the posteriors of a Gaussian mixture fitted to the features
    (after PCA keeping ``variance`` of the variance) in place of a source classifier's softmax. ``components``
    defaults to the number of target classes."""
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    f = _flat(features, "features")
    y = _labels(labels, len(f))
    reduced = PCA(n_components=variance, svd_solver="full", random_state=seed).fit_transform(f)
    k = components or len(np.unique(y))
    mixture = GaussianMixture(n_components=k, covariance_type="diag", reg_covar=1e-4, random_state=seed).fit(reduced)
    return leep(mixture.predict_proba(reduced), y)


def pixels_as_samples(features, labels, max_samples: int = 20000, seed: int = 0,
                      neighbourhood: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Dense targets for the label-based estimators: every location of a feature map ``(N, C, h, w)`` is a
    sample (its C-vector, or with ``neighbourhood = k`` (odd) its zero-padded ``k x k`` window of C-vectors,
    ``C k^2`` values: what a k x k convolution on the features sees); the labels ``(N, ..., H, W)`` are taken
    at the feature grid (nearest), and at most ``max_samples`` locations are drawn at random (seeded).
    Returns ``(samples, C k^2)`` and the labels."""
    f = torch.as_tensor(_array(features, "features", 4))
    if not isinstance(neighbourhood, int) or neighbourhood < 1 or neighbourhood % 2 == 0:
        raise ValueError(f"neighbourhood must be a positive odd integer; got {neighbourhood!r}")
    t = torch.as_tensor(labels if not isinstance(labels, np.ndarray) else labels)
    if t.ndim == 3:
        t = t[:, None]
    if t.ndim != 4 or len(t) != len(f):
        raise ValueError(f"labels must be (N, H, W) or (N, K, H, W) for the same N; got {tuple(t.shape)}")
    grid = torch.nn.functional.interpolate(t.double(), size=f.shape[-2:], mode="nearest")
    if neighbourhood > 1:
        n, c, h, w = f.shape
        windows = torch.nn.functional.unfold(f, neighbourhood, padding=neighbourhood // 2)  # (N, C k^2, h w)
        f = windows.reshape(n, c * neighbourhood**2, h, w)
    samples = f.permute(0, 2, 3, 1).reshape(-1, f.shape[1]).numpy()
    targets = grid.permute(0, 2, 3, 1).reshape(-1, grid.shape[1]).numpy()
    if not t.is_floating_point():
        targets = targets[:, 0].astype(np.int64)
    if len(samples) > max_samples:
        keep = np.random.default_rng(seed).choice(len(samples), max_samples, replace=False)
        samples, targets = samples[keep], targets[keep]
    return samples, targets


# ---------------------------------------------------------------------------------- scoring rankings


def _check_scores(scores: Mapping[str, Mapping[str, float]], truth: Mapping[str, Mapping[str, float]]) -> list[str]:
    targets = sorted(truth)
    for target in targets:
        if target not in scores:
            raise ValueError(f"no estimator scores for target {target!r}")
        if set(scores[target]) != set(truth[target]):
            raise ValueError(f"target {target!r}: the estimator scores {sorted(scores[target])} and the ground "
                             f"truth {sorted(truth[target])} name different sources")
    return targets


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
    (1: the estimator orders the sources exactly as the transfers do)."""
    out = {}
    for target in _check_scores(scores, truth):
        sources = sorted(truth[target])
        out[target] = float(stats.spearmanr([scores[target][s] for s in sources],
                                            [-truth[target][s] for s in sources])[0])
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
    """Every ranking score of one estimator on the targets it covers (the table of notebooks 08 and 09).

    ``truth`` may hold more targets than ``scores``; only those in ``scores`` count. Returns ``targets`` (how
    many), ``P@K`` and ``R@K`` (``{K: value}``, :func:`precision_recall_at_k`), ``spearman`` (per target,
    :func:`per_target_spearman`) with its ``spearman mean`` and ``spearman std`` (population), and ``regret``
    (the mean :func:`top1_regret`).
    """
    covered = {t: truth[t] for t in scores}
    pr = precision_recall_at_k(scores, covered, relevant, ks)
    spearman = per_target_spearman(scores, covered)
    regret = top1_regret(scores, covered)
    return {"targets": len(covered), "P@K": {k: v[0] for k, v in pr.items()}, "R@K": {k: v[1] for k, v in pr.items()},
            "spearman": spearman, "spearman mean": float(np.mean(list(spearman.values()))),
            "spearman std": float(np.std(list(spearman.values()))), "regret": float(np.mean(list(regret.values())))}
