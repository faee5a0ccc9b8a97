"""Label-based estimators, from a source's features (or predictions) on labelled target data: LogME, H-score,
TransRate, GBC, LEEP, NCE, N-LEEP, SFDA, PARC, ETran; and dense targets as samples (:func:`pixels_as_samples`).
Each default is its authors' definition (the docstrings name the repository, file and commit).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from scipy import special, stats

from kae_utils.core.params import check_choice
from kae_utils.methods.transferability.common import (
    LOGME_VARIANTS,
    TRANSRATE_VARIANTS,
    as_class_indices,
    as_float64,
    as_labels,
    as_samples,
    upper_triangle,
)

# ------------------------------------------------------------------------------------ label-based: LogME


def logme_evidence(features, y, alpha: float, beta: float) -> float:
    """Log evidence per sample, ``log p(y | F, alpha, beta) / N``, of the Bayesian linear model
    ``y = F w + noise`` with prior ``w ~ N(0, I / alpha)`` and noise precision ``beta`` (closed form)."""
    f, t = as_float64(features, "features", 2), as_float64(y, "y", 1)
    n, d = f.shape
    a = alpha * np.eye(d) + beta * f.T @ f
    m = beta * np.linalg.solve(a, f.T @ t)
    fit = ((t - f @ m) ** 2).sum()
    _, logdet = np.linalg.slogdet(a)
    evidence = (d * np.log(alpha) + n * np.log(beta) - beta * fit - alpha * (m @ m) - logdet
                - n * np.log(2 * np.pi)) / 2
    return float(evidence / n)


_LOGME_EPS = 1e-5  # thuml/LogME's guard in the denominators (and, in the ICML form, in the evidence)


def _logme_icml(f: np.ndarray, columns: np.ndarray, steps: int = 11, tolerance: float = 0.01) -> list[float]:
    """The ICML 2021 algorithm (``_fit_icml`` / ``each_evidence``): MacKay's updates in the eigenbasis of F^T F
    (all D eigenvalues, zeros included), at most ``steps`` = 11 steps, stopped when alpha / beta moves by less than
    ``tolerance`` = 1 %."""
    n, d = f.shape
    s, v = np.linalg.eigh(f.T @ f)
    s = np.clip(s, 0.0, None)
    out = []
    for y in columns.T:
        projected = v.T @ (f.T @ y)
        alpha, beta, lam = 1.0, 1.0, 1.0
        for _ in range(steps):
            gamma = (s / (s + lam)).sum()
            m = v @ (projected * beta / (alpha + beta * s))
            alpha_de = m @ m
            alpha = gamma / (alpha_de + _LOGME_EPS)
            beta_de = ((y - f @ m) ** 2).sum()
            beta = (n - gamma) / (beta_de + _LOGME_EPS)
            new_lam = alpha / beta
            if abs(new_lam - lam) / lam < tolerance:
                break
            lam = new_lam
        evidence = (d * np.log(alpha) + n * np.log(beta) - np.log(alpha + beta * s).sum()
                    - beta * (beta_de + _LOGME_EPS) - alpha * (alpha_de + _LOGME_EPS) - n * np.log(2 * np.pi)) / 2
        out.append(float(evidence / n))
    return out


def _logme_fixed_point(f: np.ndarray, columns: np.ndarray) -> list[float]:
    """The later fixed point (``_fit_fixed_point``, thuml/LogME's default): the same updates from the SVD of F,
    summing over its k singular values only (k = rank when N > D, k = N when N <= D), at most 11 steps, stopped
    when alpha / beta moves by <= 0.1 %. When k < D it leaves out ``(D - k)/2 log alpha`` of the log-determinant."""
    n, d = f.shape
    if n > d:  # the code's truncated_svd: from the SVD of F^T F, keeping singular values of F above 1e-10
        _, eig, vh = np.linalg.svd(f.T @ f)
        s = np.sqrt(eig)
        k = int((s > 1e-10).sum())
        s, u = s[:k], (f @ vh.T)[:, :k] / s[:k]
    else:
        u, s, _ = np.linalg.svd(f, full_matrices=False)
    sigma = s**2
    out = []
    for y in columns.T:
        x2 = (u.T @ y) ** 2
        outside = (y**2).sum() - x2.sum()  # the part of y outside the span of u
        alpha, beta = 1.0, 1.0
        for _ in range(11):
            t = alpha / beta
            gamma = (sigma / (sigma + t)).sum()
            m2 = (sigma * x2 / (t + sigma) ** 2).sum()
            res2 = (x2 / (1 + sigma / t) ** 2).sum() + outside
            alpha, beta = gamma / (m2 + _LOGME_EPS), (n - gamma) / (res2 + _LOGME_EPS)
            if abs(alpha / beta - t) / t <= 1e-3:
                break
        evidence = (d * np.log(alpha) + n * np.log(beta) - np.log(alpha + beta * sigma).sum()
                    - beta * res2 - alpha * m2 - n * np.log(2 * np.pi)) / 2
        out.append(float(evidence / n))
    return out


def logme(features, targets, *, classification: bool | None = None, variant: str = "icml") -> float:
    """LogME (You, Liu, Wang & Long, ICML 2021): the maximised log evidence per sample of a Bayesian linear model
    from the features to the targets, averaged over the target columns.

    ``targets``: class labels ``(N,)`` (``classification=True``, the default for integers): one indicator column
    **per class present**; or regression targets ``(N,)`` / ``(N, K)``, each column on its own. Per column,
    alpha (prior precision) and beta (noise precision) are set by MacKay's fixed-point updates, from alpha =
    beta = 1.

    Reference: thuml/LogME, ``LogME.py`` at commit 56551ca. ``variant="icml"`` (default) is the paper's
    algorithm, ``_fit_icml``: the evidence with every eigenvalue of F^T F (the exact log-determinant whatever N
    and D). ``variant="fixed-point"`` is ``_fit_fixed_point`` (You et al., JMLR 2022; the repository's default
    ``_fit``), which sums over the singular values of F: the same number when F has full column rank, larger
    by ``(D - k)/2N log alpha`` when N < D. ``variant="converged"``: the ICML updates until alpha / beta moves by
    less than 1e-10 (the 11-step cap and the 1 % tolerance stop them early, mostly when N < D). The repository builds ``range(max(y) + 1)`` columns, so a class
    value with no sample became an all-zero column scored only through the guards; here it is not a column.
    """
    check_choice("variant", variant, LOGME_VARIANTS)
    f = as_samples(features, "features")
    n = len(f)
    raw = targets.detach().cpu().numpy() if isinstance(targets, torch.Tensor) else np.asarray(targets)
    if classification is None:
        classification = raw.dtype.kind in "iu"
    if classification:
        index = as_class_indices(raw, n)
        columns = np.eye(index.max() + 1)[index]
    else:
        columns = as_float64(targets, "targets").reshape(n, -1)
    if variant == "fixed-point":
        return float(np.mean(_logme_fixed_point(f, columns)))
    steps, tolerance = (11, 0.01) if variant == "icml" else (10_000, 1e-10)
    return float(np.mean(_logme_icml(f, columns, steps, tolerance)))


# ------------------------------------------------------------------------- label-based: class statistics


def _class_means(f: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    counts = np.bincount(index)
    means = np.zeros((len(counts), f.shape[1]))
    np.add.at(means, index, f)
    return means / counts[:, None], counts


def _shrunk(cov: np.ndarray, a: float) -> np.ndarray:
    """``(1 - a) cov + a (tr cov / D) I``: shrinkage towards the mean eigenvalue."""
    return (1 - a) * cov + a * np.trace(cov) / len(cov) * np.eye(len(cov))


def h_score(features, labels, shrinkage: float | str = "ledoit-wolf") -> float:
    """H-score: ``tr(cov(f)^-1 cov(E[f | y]))``, how much of the features' spread lies between the class means
    (Bao et al., ICIP 2019), with the shrinkage of Ibrahim, Ponomareva & Mazumder (ECML PKDD 2022, "Newer is not
    always better"): ``H_a = tr(cov_a(f)^-1 (1 - a) cov(E[f | y]))``, ``cov_a = (1 - a) cov(f) + a (tr cov(f) / D) I``.

    ``shrinkage="ledoit-wolf"`` (default, Ibrahim et al.'s): ``a`` is the Ledoit-Wolf coefficient of the centred
    features (``sklearn.covariance.LedoitWolf``), as in thuml/Transfer-Learning-Library
    ``tllib/ranking/hscore.py`` ``regularized_h_score`` at commit b0d863f; that code divides the between-class
    covariance by N - 1 and the shrunk one by N, so its value is this one times N / (N - 1) (the same ranking
    for one target set). A number in [0, 1) fixes ``a``; ``0`` is Bao et al.'s H-score with a pseudo-inverse
    (``tllib`` ``h_score``). Covariances are over N (maximum likelihood).
    """
    from sklearn.covariance import ledoit_wolf_shrinkage

    f = as_samples(features, "features")
    index = as_class_indices(labels, len(f))
    if isinstance(shrinkage, str):
        check_choice("shrinkage", shrinkage, ("ledoit-wolf",))
    elif not 0.0 <= shrinkage < 1.0:
        raise ValueError(f"shrinkage must be 'ledoit-wolf' or a number in [0, 1); got {shrinkage}")
    f = f - f.mean(axis=0)
    cov = f.T @ f / len(f)
    if not np.trace(cov) > 0:  # identical features: no spread, nothing between the classes
        return 0.0
    a = float(ledoit_wolf_shrinkage(f, assume_centered=True)) if isinstance(shrinkage, str) else float(shrinkage)
    means, _ = _class_means(f, index)
    between = means[index].T @ means[index] / len(f)
    if a == 0.0:
        return float(np.trace(np.linalg.pinv(cov, hermitian=True) @ between))
    return float(np.trace(np.linalg.solve(_shrunk(cov, a), (1 - a) * between)))


def _coding_rate(z: np.ndarray, eps: float) -> float:
    n, d = z.shape
    return 0.5 * np.linalg.slogdet(np.eye(d) + z.T @ z / (n * eps))[1]


def transrate(features, labels, eps: float = 1e-4, variant: str = "authors") -> float:
    """TransRate (Huang, Huang, Rong, Yang & Wei, ICML 2022): the coding rate of the features minus the coding
    rate given the class, ``R(Z, eps) - R(Z, eps | Y)``, with ``R(Z, eps) = 1/2 logdet(I + Z^T Z / (n eps))``.

    ``variant="authors"`` (default): Long-Kai/TransRate at commit 247d41a, the path of its layer- and
    source-selection results (``generate_transrate/transrate.py`` ``pre_transrate`` on the centred features,
    ``extract_result_utils.py`` ``process_transrate_logs`` with its defaults): the centred features' rows are
    scaled to unit norm; ``R(Z) = 1/2 sum_i log(1 + l_i / eps)`` over the eigenvalues ``l_i`` of ``Z^T Z / n``, the
    class term ``sum_c (n_c / n) R(Z_c)`` with ``Z_c^T Z_c / n_c``, and both divided by the rank of ``Z^T Z / n``
    (so the value does not grow with the feature dimension). A row of norm 0 stays 0 (the authors' code divides
    by zero). ``variant="tllib"``: thuml/Transfer-Learning-Library ``tllib/ranking/transrate.py`` at commit
    4cc0d91: centred, unnormalised features, ``R(Z) - (1/C) sum_c R(Z_c)`` with each class's own n.
    """
    check_choice("variant", variant, TRANSRATE_VARIANTS)
    f = as_samples(features, "features")
    index = as_class_indices(labels, len(f))
    f = f - f.mean(axis=0)
    if variant == "tllib":
        return float(_coding_rate(f, eps) - np.mean([_coding_rate(f[index == c], eps) for c in range(index.max() + 1)]))
    norms = np.linalg.norm(f, axis=1, keepdims=True)
    z = np.divide(f, norms, out=np.zeros_like(f), where=norms > 0)
    second = z.T @ z / len(z)
    rank = np.linalg.matrix_rank(second)
    if rank == 0:
        return 0.0

    def rate(moment: np.ndarray) -> float:
        return 0.5 * np.log1p(np.abs(np.linalg.svd(moment, compute_uv=False)) / eps).sum() / rank

    counts = np.bincount(index)
    given = sum(counts[c] / len(z) * rate(z[index == c].T @ z[index == c] / counts[c]) for c in range(len(counts)))
    return float(rate(second) - given)


def _pca(f: np.ndarray, components, solver: str = "full", seed: int | None = None, power: str | int = "auto"):
    from sklearn.decomposition import PCA

    return PCA(n_components=components, svd_solver=solver, random_state=seed, iterated_power=power).fit_transform(f)


def gbc(features, labels, gaussian: str = "spherical", pca_dims: int | None = 64,
        variance_floor: float = 1e-4) -> float:
    """GBC (Pándy, Agostinelli, Uijlings, Ferrari & Mensink, CVPR 2022): minus the sum over ordered pairs of
    classes of the Bhattacharyya coefficient ``exp(-D_B)`` between the classes' Gaussians; 0 is perfect
    separation, the more the classes overlap, the more negative.

    Reference: google-research/google-research ``stable_transfer/transferability/gbc.py`` at commit 1d4d2f1, with
    its configuration (``config_transferability_source_selection.py``): the features reduced to ``pca_dims`` = 64
    by PCA (``svd_solver="full"``; fewer when there are fewer samples or dimensions; ``None``: no PCA); per class
    the mean and the variance (over n) of every dimension, floored at ``variance_floor`` = 1e-4;
    ``gaussian="spherical"`` (the default) replaces each class's variances by their mean. ``D_B = sum (mu_1 -
    mu_2)^2 / s / 8 + 1/2 (sum log s - 1/2 sum log s_1 - 1/2 sum log s_2)`` with ``s = (s_1 + s_2) / 2``; for
    spherical Gaussians the code sums the logarithms of the scalar variances once (not D times), and so does
    this. ``gaussian="diagonal"``: one variance per dimension.
    """
    check_choice("gaussian", gaussian, ("spherical", "diagonal"))
    f = as_samples(features, "features")
    index = as_class_indices(labels, len(f))
    if pca_dims is not None and f.shape[1] > 1 and len(f) > 1:
        f = _pca(f, min(int(pca_dims), len(f), f.shape[1]))
    means, _ = _class_means(f, index)
    variances = np.stack([np.maximum(f[index == c].var(axis=0), variance_floor) for c in range(len(means))])
    if gaussian == "spherical":
        variances = variances.mean(axis=1, keepdims=True)
    total = 0.0
    for i in range(len(means)):
        for j in range(len(means)):
            if i != j:
                s = (variances[i] + variances[j]) / 2
                distance = (((means[i] - means[j]) ** 2) / s).sum() / 8 + 0.5 * (
                    np.log(s).sum() - 0.5 * np.log(variances[i]).sum() - 0.5 * np.log(variances[j]).sum())
                total += np.exp(-distance)
    return float(-total)


# ------------------------------------------------------------------- label-based: LEEP, NCE, N-LEEP


def _joint(probabilities: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Empirical joint ``P(y, z) = (1/N) sum_i theta(x_i)_z [y_i = y]``, shape (target classes, source classes)."""
    joint = np.zeros((int(index.max()) + 1, probabilities.shape[1]))
    np.add.at(joint, index, probabilities)
    return joint / len(index)


def leep(source_probabilities, labels) -> float:
    """LEEP (Nguyen, Hassner, Seeger & Archambeau, ICML 2020): ``(1/N) sum_i log sum_z P(y_i | z) theta(x_i)_z``
    with theta the source model's softmax over its own classes z on the target images and P(y | z) the empirical
    conditional (as in ``stable_transfer/transferability/leep.py``)."""
    p = as_float64(source_probabilities, "source_probabilities", 2)
    index = as_class_indices(labels, len(p))
    if (p < 0).any() or not np.allclose(p.sum(axis=1), 1.0, atol=1e-5):
        raise ValueError("source_probabilities must be rows of probabilities (a softmax), summing to 1")
    joint = _joint(p, index)
    conditional = joint / np.maximum(joint.sum(axis=0, keepdims=True), 1e-300)  # P(y | z)
    return float(np.log(np.maximum((p * conditional[index]).sum(axis=1), 1e-300)).mean())


def nce(source_labels, labels) -> float:
    """NCE (Tran, Nguyen & Hassner, ICCV 2019): ``-H(Y | Z) = sum_{y,z} P(y, z) log P(y | z)`` with Z the source
    model's hard predictions on the target images (0 when Z determines Y)."""
    raw = source_labels.detach().cpu().numpy() if isinstance(source_labels, torch.Tensor) else np.asarray(source_labels)
    z = as_class_indices(raw, len(raw))
    return leep(np.eye(int(z.max()) + 1)[z], as_labels(labels, len(z)))


def nleep(features, labels, components: int | None = None, variance: float = 0.8, covariance: str = "full",
          seed: int = 0) -> float:
    """N-LEEP (Li et al., "Ranking Neural Checkpoints", CVPR 2021): LEEP with the posteriors of a Gaussian mixture
    fitted to the features in place of a source classifier's softmax.

    Reference: google-research/google-research ``stable_transfer/transferability/nleep.py`` at commit 4963f32
    and its configuration: PCA keeping ``variance`` = 80 % of the variance (``svd_solver="full"``), then
    scikit-learn's ``GaussianMixture`` with ``covariance="full"`` and ``components`` = 5 x the number of classes
    (the paper's ratio; here of the classes present), its default regularisation; seeded by ``seed``.
    ``covariance="diag"`` is the cheaper option.
    """
    from sklearn.mixture import GaussianMixture

    check_choice("covariance", covariance, ("full", "diag", "spherical", "tied"))
    f = as_samples(features, "features")
    index = as_class_indices(labels, len(f))
    reduced = _pca(f, variance)
    k = components or 5 * (int(index.max()) + 1)
    mixture = GaussianMixture(n_components=min(k, len(f)), covariance_type=covariance, random_state=seed).fit(reduced)
    return leep(mixture.predict_proba(reduced), index)


# ------------------------------------------------------------------------------ label-based: SFDA


def _largest_eigenvalue(a: np.ndarray, steps: int = 3) -> float:
    """SFDA's ``iterative_A``: three double steps of the power iteration from the row sums, ``x^T A y``."""
    x = a.sum(axis=1)
    y = x
    for _ in range(steps):
        y = a @ x
        y = y / max(np.linalg.norm(y), 1e-300)
        x = a @ y
        x = x / max(np.linalg.norm(x), 1e-300)
    return float(x @ a @ y)


def _lda_posteriors(f: np.ndarray, index: np.ndarray, shrinkage: float | None) -> tuple[np.ndarray, float]:
    """SFDA's regularised Fisher classifier: posteriors ``softmax(x S^-1 mu_c - 1/2 mu_c S^-1 mu_c + log pi_c)``
    with ``S`` the within-class covariance shrunk by ``shrinkage`` (``None``: ``max(exp(-5 l_max), 1e-10)``)."""
    means, counts = _class_means(f, index)
    priors = counts / len(f)
    within = sum(priors[c] * np.atleast_2d(np.cov(f[index == c].T, bias=True)) for c in range(len(means)))
    if shrinkage is None:
        shrinkage = max(float(np.exp(-5 * _largest_eigenvalue(within))), 1e-10)
    # every generalised eigenvector is kept, so the projection V V^T is the inverse of the shrunk within-class
    # covariance (V^T S V = I): the classifier is linear discriminant analysis with that covariance
    coef = (np.linalg.pinv(_shrunk(within, shrinkage), hermitian=True) @ means.T).T
    logits = f @ coef.T - 0.5 * (means * coef).sum(axis=1) + np.log(priors)
    return special.softmax(logits, axis=1), shrinkage


def sfda(features, labels) -> float:
    """SFDA (Shao, Zhao, Ge, Xu, Li, Yang & Luo, "Not All Models Are Equal", ECCV 2022): the mean posterior of
    the true class under a regularised Fisher discriminant, after ConfMix moves each sample towards the other
    classes' mean by how unsure the first discriminant is of it (a self-challenge).

    Reference: TencentARC/SFDA ``metrics.py`` ``SFDA_Score`` at commit 3b7edf7: (1) a Fisher discriminant with
    the within-class covariance ``S_w`` (priors-weighted, over n_c) shrunk as ``(1 - l) S_w + l tr(S_w)/D I``,
    ``l = max(exp(-5 lambda_max(S_w)), 1e-10)`` (lambda_max by three power-iteration steps); its posteriors p;
    (2) softened, ``p' = softmax(p)``; (3) ConfMix, ``x_i <- p'_i x_i + (1 - p'_i) mu_{-y_i}`` with ``p'_i`` the
    softened posterior of the true class and ``mu_{-c}`` the mean of the other classes' means; (4) a second
    discriminant with the same ``l`` on the mixed features; the score is the mean of its true-class posteriors
    (no logarithm, as in the code). The code keeps every generalised eigenvector, so its projection is the
    inverse of the shrunk ``S_w`` (used here, with a pseudo-inverse: identical features give ``sum_c pi_c^2``);
    it indexes classes by label value (absent classes break it), this by class present.
    """
    f = as_samples(features, "features").copy()
    index = as_class_indices(labels, len(f), minimum=2)
    posteriors, shrinkage = _lda_posteriors(f, index, None)
    softened = special.softmax(posteriors, axis=1)
    means, _ = _class_means(f, index)
    others = (means.sum(axis=0) - means) / (len(means) - 1)
    confidence = softened[np.arange(len(f)), index][:, None]
    mixed = confidence * f + (1 - confidence) * others[index]
    final, _ = _lda_posteriors(mixed, index, shrinkage)
    return float(final[np.arange(len(f)), index].mean())


# ------------------------------------------------------------------------------ label-based: PARC


def _row_correlations(x: np.ndarray) -> np.ndarray:
    """``np.corrcoef`` of the rows, with a row of zero variance correlated 0 with every row (not NaN)."""
    centred = x - x.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(centred, axis=1, keepdims=True)
    unit = np.divide(centred, norms, out=np.zeros_like(centred), where=norms > 1e-12)
    return unit @ unit.T


def parc(features, labels, pca_dims: int | None = 32, seed: int = 1919) -> float:
    """PARC (Bolya, Mittapalli & Hoffman, "Scalable Diverse Model Selection for Accessible Transfer Learning",
    NeurIPS 2021): 100 x the Spearman correlation between the samples' dissimilarity matrix in the source's
    feature space and in the label space, ``1 - corr`` of every pair (upper triangles), like RSA with the labels
    in place of a target model.

    Reference: dbolya/parc ``methods.py`` ``PARC`` and ``feature_reduce`` at commit ddfca43, as its README runs it
    (``PARC(n_dims=32)``): the features reduced to ``min(pca_dims, N)`` components (``pca_dims`` = 32) by
    scikit-learn's PCA (``svd_solver="randomized"``, ``iterated_power=1``, ``random_state`` = 1919), or kept as
    they are when they have fewer dimensions than that (where the code's PCA fails), then standardised per
    dimension; the labels one-hot (class labels) or the target vectors themselves (``(N, K)`` floats, K >= 2).
    A row of zero variance correlates 0 with every other (the code gives NaN); a constant dissimilarity matrix
    scores 0. The cost grows as N^2: subsample large sets first.
    """
    from sklearn.preprocessing import StandardScaler

    f = as_samples(features, "features")
    raw = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if raw.ndim == 1:  # one-hot rows correlate 1 within a class and -1/(C - 1) across: exact ties, not rounding
        index = as_class_indices(raw, len(f))
        label_rdm = (index[:, None] != index[None, :]).astype(np.float64)
    else:
        targets = as_float64(raw, "labels", 2)
        if targets.shape != (len(f), targets.shape[1]) or targets.shape[1] < 2:
            raise ValueError(f"regression labels must be (N, K) with K >= 2 for N = {len(f)}; got {targets.shape}")
        label_rdm = 1 - _row_correlations(targets)
    components = min(int(pca_dims), len(f)) if pca_dims is not None else None
    if components is not None and components <= f.shape[1]:
        f = _pca(f, components, solver="randomized", seed=seed, power=1)
    f = StandardScaler().fit_transform(f)
    upper_f, upper_y = upper_triangle(1 - _row_correlations(f)), upper_triangle(label_rdm)
    if np.ptp(upper_f) == 0 or np.ptp(upper_y) == 0:
        return 0.0
    return float(stats.spearmanr(upper_f, upper_y)[0] * 100)


# ------------------------------------------------------------------------------ label-based: ETran


def etran_energy(features, fraction: float = 0.005) -> float:
    """ETran's energy score (Gholami, Akbari, Wang & Zhang, ICCV 2023), label-free: ``logsumexp`` of each
    sample's feature vector (the features read as logits; minus the free energy), averaged over the ``fraction``
    of the samples with the lowest values (the most out-of-distribution ones).

    Reference: mgholamikn/ETran ``metrics.py`` ``Energy_Score(X, 0.5, 'bot')`` at commit d4551ed, which keeps the
    lowest ``int(0.5 * 10) * N // 1000`` samples (0.5 %); here at least one (the code averages nothing below
    200 samples)."""
    f = as_samples(features, "features")
    energy = special.logsumexp(f, axis=1)
    keep = max(1, int(round(fraction * 1000)) * len(f) // 1000)
    return float(np.sort(energy)[:keep].mean())


def etran_lda(features, labels, lda: str = "code") -> float:
    """ETran's classification score: the mean posterior of the true class under a linear discriminant.

    ``lda="code"`` (default) is what mgholamikn/ETran ``metrics.py`` ``LDA_Score`` at commit d4551ed computes:
    it calls ``np.linalg.eigh`` on the non-symmetric ``S_w^-1 S_b``, which returns an orthonormal basis V, and
    projects with ``V V^T = I``; its posteriors are therefore ``softmax(x mu_c - |mu_c|^2 / 2 + log pi_c)``, the
    class-mean classifier with the Euclidean metric. ``lda="fisher"``: the regularised discriminant the paper
    describes (SFDA's first stage, :func:`sfda`)."""
    check_choice("lda", lda, ("code", "fisher"))
    f = as_samples(features, "features")
    index = as_class_indices(labels, len(f))
    if lda == "fisher":
        posteriors, _ = _lda_posteriors(f, index, None)
    else:
        means, counts = _class_means(f, index)
        posteriors = special.softmax(f @ means.T - 0.5 * (means**2).sum(axis=1) + np.log(counts / len(f)), axis=1)
    return float(posteriors[np.arange(len(f)), index].mean())


def etran(energy: Mapping[str, float], lda: Mapping[str, float], energy_weight: float = 0.15) -> dict[str, float]:
    """ETran's score of every candidate source of one target: ``w minmax(energy) + (1 - w) minmax(lda)`` with
    ``w = 0.15``, each term min-max scaled over the candidates (mgholamikn/ETran ``tw.py`` at commit d4551ed, the
    classification benchmark). ``energy`` and ``lda``: :func:`etran_energy` and :func:`etran_lda` per source. A
    term equal for every candidate scales to 0."""
    if set(energy) != set(lda) or not energy:
        raise ValueError("etran needs the energy and LDA scores of the same (non-empty) set of sources")

    def minmax(values: Mapping[str, float]) -> dict[str, float]:
        low, high = min(values.values()), max(values.values())
        return {k: (v - low) / (high - low) if high > low else 0.0 for k, v in values.items()}

    e, c = minmax(energy), minmax(lda)
    return {k: energy_weight * e[k] + (1 - energy_weight) * c[k] for k in energy}


# ------------------------------------------------------------------------------------ dense targets


def pixels_as_samples(features, labels, max_samples: int = 20000, seed: int = 0,
                      neighbourhood: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Dense targets for the label-based estimators: every location of a feature map ``(N, C, h, w)`` is a
    sample (its C-vector, or with ``neighbourhood = k`` (odd) its zero-padded ``k x k`` window of C-vectors,
    ``C k^2`` values: what a k x k convolution on the features sees); the labels ``(N, ..., H, W)`` are taken
    at the feature grid (nearest), and at most ``max_samples`` locations are drawn at random (seeded).
    Returns ``(samples, C k^2)`` and the labels."""
    f = torch.as_tensor(as_float64(features, "features", 4))
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
