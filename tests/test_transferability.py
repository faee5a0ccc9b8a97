"""kae_utils.methods.transferability: every estimator against its authors' definition.

Golden values: on four tiny fixtures (F1: 30 samples x 4 dimensions, 3 classes; F2: 8 samples x 12 dimensions,
more dimensions than samples; F1c: F1 with a constant feature; FID: 12 identical rows) each value below was
computed by running the reference code named in the estimator's docstring (thuml/LogME ``LogME.py`` @56551ca
``_fit_icml`` / ``_fit_fixed_point`` with numba's ``@njit`` removed; thuml/Transfer-Learning-Library
``tllib/ranking/hscore.py`` and ``transrate.py`` @efe6e33; Long-Kai/TransRate @247d41a ``pre_transrate`` +
``process_transrate_logs``; TencentARC/SFDA ``metrics.py`` ``SFDA_Score`` @3b7edf7; dbolya/parc ``methods.py``
@ddfca43; mgholamikn/ETran ``metrics.py`` ``LDA_Score`` / ``Energy_Score`` @d4551ed), or, for GBC, a line-by-line
NumPy transcription of google-research ``stable_transfer/transferability/gbc.py`` @1d4d2f1 (TensorFlow), on
these exact arrays. Where the reference code fails on a degenerate fixture (NaN, or a linear-algebra error)
the value is the documented guard. Then the properties: absent classes, invariances, orderings.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import special, stats

from kae_utils.methods import transferability as tr


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _f1() -> tuple[np.ndarray, np.ndarray]:
    gen, y = _rng(2024), np.repeat([0, 1, 2], 10)
    return gen.normal(size=(30, 4)) + 1.5 * np.eye(4)[y], y


def _f2() -> tuple[np.ndarray, np.ndarray]:
    gen, y = _rng(7), np.array([0, 0, 0, 1, 1, 1, 2, 2])
    return gen.normal(size=(8, 12)) + np.eye(12)[y], y


def _f1c() -> tuple[np.ndarray, np.ndarray]:
    x, y = _f1()
    return np.hstack([x, np.full((30, 1), 3.0)]), y


def _fid() -> tuple[np.ndarray, np.ndarray]:
    return np.tile([1.0, 2.0, 3.0], (12, 1)), np.tile([0, 1, 2], 4)


FIXTURES = {"F1": _f1, "F2": _f2, "F1c": _f1c, "FID": _fid}

ESTIMATORS = {
    "logme": tr.logme,
    "logme fixed-point": lambda x, y: tr.logme(x, y, variant="fixed-point"),
    "h-score (Ledoit-Wolf)": tr.h_score,
    "h-score (Bao)": lambda x, y: tr.h_score(x, y, shrinkage=0.0),
    "transrate": tr.transrate,
    "transrate (tllib)": lambda x, y: tr.transrate(x, y, variant="tllib"),
    "gbc": tr.gbc,
    "gbc (diagonal)": lambda x, y: tr.gbc(x, y, gaussian="diagonal"),
    "sfda": tr.sfda,
    "parc": tr.parc,
    "etran lda": tr.etran_lda,
}

# estimator -> fixture -> value of the reference code (module docstring); H-score (Ledoit-Wolf): TLlib's value
# times (N - 1) / N, the normalisation the docstring explains
GOLDEN = {
    "logme": {"F1": -0.7272727077947274, "F2": -0.8117613348495464, "F1c": -0.5950924688580274,
              "FID": -0.7815026997635086},
    "logme fixed-point": {"F1": -0.7272638247921385, "F2": 0.14531193939982434, "F1c": -0.5950800564425202,
                          "FID": -0.7814367706183268},
    "h-score (Ledoit-Wolf)": {"F1": 0.19951430058093442, "F2": 0.961314399609465, "F1c": 0.6303406672541886,
                              "FID": 0.0},
    "h-score (Bao)": {"F1": 0.9280566667730599, "F2": 1.9999999999999993, "F1c": 0.9280566667730599, "FID": 0.0},
    "transrate": {"F1": 0.05910425208470249, "F2": 1.8526558188940805, "F1c": 0.05910425208470249,
                  "FID": 0.0},  # FID: the code's SVD fails on its 0/0 rows; 0 is the guard
    "transrate (tllib)": {"F1": 0.352160506366868, "F2": 17.894252760157332, "F1c": 0.352160506366868, "FID": 0.0},
    "gbc": {"F1": -3.145716501717822, "F2": -0.43311555784578254, "F1c": -2.677316227524182, "FID": -6.0},
    "gbc (diagonal)": {"F1": -3.330097917294255, "F2": -0.2871045570654605, "F1c": -3.330097917294257, "FID": -6.0},
    "sfda": {"F1": 0.46660882539037213, "F2": 1.0, "F1c": 0.4666884954413186,
             "FID": 1 / 3},  # FID: the code's eigh fails; the pseudo-inverse gives sum_c pi_c^2
    "parc": {"F1": 37.4696053226235, "F2": 2.5526488924709403, "F1c": 37.03432635066357,
             "FID": 0.0},  # FID: the code gives NaN; a constant dissimilarity scores 0
    "etran lda": {"F1": 0.6572349443727358, "F2": 0.9505872144546688, "F1c": 0.6572349443727359,
                  "FID": 1 / 3},  # FID: the code's eigh fails; the class-mean classifier gives sum_c pi_c^2
}


@pytest.mark.parametrize("fixture", list(FIXTURES))
@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_golden_values_from_the_reference_code(name, fixture):
    x, y = FIXTURES[fixture]()
    assert ESTIMATORS[name](x, y) == pytest.approx(GOLDEN[name][fixture], rel=1e-9, abs=1e-12)


def test_etran_energy_golden_and_its_one_sample_floor():
    x = _rng(11).normal(size=(400, 6))  # 400 samples: the code keeps the lowest 2
    assert tr.etran_energy(x) == pytest.approx(0.9273230623088817, rel=1e-12)
    small = _rng(12).normal(size=(10, 3))  # the code would average no sample; here the lowest one
    assert tr.etran_energy(small) == pytest.approx(special.logsumexp(small, axis=1).min())


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_an_absent_class_is_not_a_class(name):
    x, y = _f1()
    gapped = np.array([1, 4, 6])[y]  # class values 0, 2, 3 and 5 have no sample
    assert ESTIMATORS[name](x, gapped) == pytest.approx(ESTIMATORS[name](x, y), rel=1e-9, abs=1e-12)


def test_logme_absent_classes_were_scored_before_the_fix():
    """The old code built one column per value in range(max(y) + 1): empty columns moved the score."""
    x, y = _f1()
    gapped = np.array([1, 4, 6])[y]
    old = np.mean([tr.logme(x, column, classification=False) for column in np.eye(7)[gapped].T])
    assert tr.logme(x, gapped) == pytest.approx(tr.logme(x, y))
    assert abs(old - tr.logme(x, gapped)) > 0.1


def test_nleep_is_the_reference_pipeline_and_counts_present_classes():
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    x, y = _f1()
    reduced = PCA(n_components=0.8, svd_solver="full").fit_transform(x)
    posteriors = GaussianMixture(n_components=15, covariance_type="full", random_state=3).fit(reduced).predict_proba(reduced)
    assert tr.nleep(x, y, seed=3) == pytest.approx(tr.leep(posteriors, y))
    assert tr.nleep(x, np.array([1, 4, 6])[y], seed=3) == pytest.approx(tr.nleep(x, y, seed=3))  # 5 x 3 components
    gen, labels = _rng(8), np.repeat([0, 1, 2], 30)
    separated = gen.normal(size=(90, 4)) + 6 * np.eye(4)[labels]
    assert tr.nleep(separated, labels) > tr.nleep(gen.normal(size=(90, 4)), labels) + 0.3


# ----------------------------------------------------------------------------- properties per estimator


def test_logme_finds_the_evidence_maximum_and_prefers_informative_features():
    gen = _rng(5)
    f = gen.normal(size=(60, 4))
    y = f @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.3 * gen.normal(size=60)
    score = tr.logme(f, y)
    grid = np.logspace(-3, 3, 61)  # the ICML form stops within 1 % of alpha / beta: close to the grid's best
    best = max(tr.logme_evidence(f, y, a, b) for a in grid for b in grid)
    assert score >= best - 1e-3
    assert tr.logme(f, y, variant="converged") >= best - 1e-6
    assert score > tr.logme(gen.normal(size=(60, 4)), y) + 0.5


def test_logme_evidence_golden_one_dimensional():
    # F = [1, 1]^T, y = [1, 1], alpha = beta = 1: A = 1 + 2 = 3, m = 2/3, residual 2 (1/3)^2 = 2/9
    expected = (math.log(1) + 2 * math.log(1) - 2 / 9 - 4 / 9 - math.log(3) - 2 * math.log(2 * math.pi)) / 2 / 2
    assert tr.logme_evidence([[1.0], [1.0]], [1.0, 1.0], 1.0, 1.0) == pytest.approx(expected)


def test_logme_classification_is_the_mean_over_one_hot_columns_and_takes_tensors():
    gen = _rng(6)
    f, y = gen.normal(size=(40, 3)), gen.integers(0, 3, size=40)
    per_column = [tr.logme(f, column, classification=False) for column in np.eye(3)[y].T]
    assert tr.logme(f, y) == pytest.approx(np.mean(per_column))
    assert tr.logme(torch.as_tensor(f), torch.as_tensor(y)) == pytest.approx(np.mean(per_column))
    with pytest.raises(ValueError, match="variant"):
        tr.logme(f, y, variant="exact")


def test_logme_variants_agree_when_f_has_full_column_rank():
    x, y = _f1()  # N > D, full rank: the forms differ only by their stopping rules
    for variant in ("fixed-point", "converged"):
        assert tr.logme(x, y, variant=variant) == pytest.approx(tr.logme(x, y), abs=1e-4)
    wide, labels = _f2()  # N < D: the fixed point leaves (D - k)/2N log alpha out; the converged ICML form does not
    assert tr.logme(wide, labels, variant="converged") == pytest.approx(tr.logme(wide, labels), abs=0.05)
    assert tr.logme(wide, labels, variant="fixed-point") > tr.logme(wide, labels) + 0.5


def test_h_score_closed_forms():
    # centred features [-1.5, -0.5, 0.5, 1.5]: variance 1.25; class means -1 and 1: between-class variance 1
    x, y = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1])
    assert tr.h_score(x, y, shrinkage=0.0) == pytest.approx(0.8)
    # one dimension: shrinkage towards the mean eigenvalue changes nothing but the factor (1 - a)
    assert tr.h_score(x, y, shrinkage=0.25) == pytest.approx(0.75 * 0.8)
    assert tr.h_score(np.array([[0.0], [0.0], [2.0], [2.0]]), y, shrinkage=0.0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shrinkage"):
        tr.h_score(x, y, shrinkage=1.0)


def test_h_score_ledoit_wolf_is_the_regularised_formula():
    from sklearn.covariance import LedoitWolf

    x, y = _f2()
    centred = x - x.mean(axis=0)
    fitted = LedoitWolf().fit(centred)
    means = np.stack([centred[y == c].mean(axis=0) for c in range(3)])[y]
    expected = np.trace(np.linalg.inv(fitted.covariance_) @ ((1 - fitted.shrinkage_) * means.T @ means / len(x)))
    assert tr.h_score(x, y) == pytest.approx(expected)


def test_transrate_closed_forms():
    # TLlib: R(Z) = 1/2 ln(1 + 20/4); classes: 1/2 ln(1 + 2/2) and 1/2 ln(1 + 18/2); eps = 1
    z, y = np.array([[1.0], [-1.0], [3.0], [-3.0]]), np.array([0, 0, 1, 1])
    expected = 0.5 * math.log(6) - 0.5 * (0.5 * math.log(2) + 0.5 * math.log(10))
    assert tr.transrate(z, y, eps=1.0, variant="tllib") == pytest.approx(expected)
    # the authors': rows scaled to norm 1 (all +-1), Z^T Z / n = 1 and per class 1; rank 1: 0
    assert tr.transrate(z, y, eps=1.0) == pytest.approx(0.0)
    gen, labels = _rng(7), np.repeat([0, 1, 2], 20)
    separated = gen.normal(size=(60, 3)) + 4 * np.eye(3)[labels]
    for variant in tr.TRANSRATE_VARIANTS:
        assert (tr.transrate(separated, labels, variant=variant)
                > tr.transrate(gen.normal(size=(60, 3)), labels, variant=variant))


def test_transrate_authors_form_is_bounded_where_tllib_grows_with_the_dimension():
    """Rows of norm 1 give eigenvalues of Z^T Z / n at most 1, and the rank divides the sum: the authors' value
    is at most 1/2 log(1 + 1/eps) in any dimension. TLlib's sums log(1 + l / (n eps)) over every dimension."""
    gen, labels = _rng(3), np.repeat([0, 1, 2], 30)
    bound = 0.5 * math.log1p(1 / 1e-4)
    tllib = [tr.transrate(gen.normal(size=(90, d)), labels, variant="tllib") for d in (4, 64, 256)]
    authors = [tr.transrate(gen.normal(size=(90, d)), labels) for d in (4, 64, 256)]
    assert tllib[0] < tllib[1] < tllib[2] and tllib[2] > 20 * bound
    assert all(0 <= value < bound for value in authors)


def test_gbc_closed_forms():
    # classes N(0, 1) and N(2, 1) (samples -1, 1 and 1, 3): D_B = 4 / 8 = 0.5, two ordered pairs
    f, y = np.array([[-1.0], [1.0], [1.0], [3.0]]), np.array([0, 0, 1, 1])
    for gaussian in ("spherical", "diagonal"):
        assert tr.gbc(f, y, gaussian=gaussian, pca_dims=None) == pytest.approx(-2 * math.exp(-0.5), rel=1e-6)
    assert tr.gbc(np.array([[-1.0], [1.0], [99.0], [101.0]]), y) == pytest.approx(0.0, abs=1e-12)
    # the variance floor: two classes of constant features 0.01 apart, variance 1e-4: D_B = 1e-4 / 1e-4 / 8
    f = np.array([[0.0], [0.0], [0.01], [0.01]])
    assert tr.gbc(f, y, pca_dims=None) == pytest.approx(-2 * math.exp(-1 / 8))


def test_sfda_prefers_separated_classes_and_needs_two():
    gen, labels = _rng(4), np.repeat([0, 1, 2], 20)
    separated = gen.normal(size=(60, 5)) + 5 * np.eye(5)[labels]
    assert tr.sfda(separated, labels) > tr.sfda(gen.normal(size=(60, 5)), labels) + 0.2
    assert 0 < tr.sfda(separated, labels) <= 1
    x = separated.copy()
    tr.sfda(x, labels)
    assert np.array_equal(x, separated), "ConfMix must not change the caller's features"
    with pytest.raises(ValueError, match="at least 2 classes"):
        tr.sfda(separated, np.zeros(60, dtype=int))


def test_parc_is_rsa_against_the_labels():
    gen, labels = _rng(9), np.repeat([0, 1, 2], 15)
    separated = gen.normal(size=(45, 6)) + 4 * np.eye(6)[labels]
    assert tr.parc(separated, labels) > tr.parc(gen.normal(size=(45, 6)), labels) + 20
    targets = gen.normal(size=(45, 3))
    assert tr.parc(targets + 0.01 * gen.normal(size=(45, 3)), targets, pca_dims=None) > 90  # regression targets
    with pytest.raises(ValueError, match="K >= 2"):
        tr.parc(separated, targets[:, :1])


def test_etran_scales_each_term_over_the_candidates():
    energy, lda = {"a": 1.0, "b": 3.0, "c": 2.0}, {"a": 0.9, "b": 0.5, "c": 0.7}
    scores = tr.etran(energy, lda)
    assert scores == pytest.approx({"a": 0.85, "b": 0.15, "c": 0.15 * 0.5 + 0.85 * 0.5})
    assert tr.etran({"a": 1.0, "b": 1.0}, {"a": 0.2, "b": 0.4}) == pytest.approx({"a": 0.0, "b": 0.85})
    with pytest.raises(ValueError, match="same"):
        tr.etran({"a": 1.0}, {"b": 1.0})


def test_etran_lda_code_form_is_the_class_mean_classifier():
    x, y = _f1()
    means = np.stack([x[y == c].mean(axis=0) for c in range(3)])
    logits = x @ means.T - 0.5 * (means**2).sum(axis=1) + np.log(1 / 3)
    posteriors = np.exp(logits - logits.max(axis=1, keepdims=True))
    posteriors /= posteriors.sum(axis=1, keepdims=True)
    assert tr.etran_lda(x, y) == pytest.approx(posteriors[np.arange(30), y].mean())
    assert tr.etran_lda(x, y, lda="fisher") != pytest.approx(tr.etran_lda(x, y))


def test_leep_golden_and_extremes():
    theta = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    y = np.array([0, 1, 0])
    p_y_given_z = np.array([[1.4 / 1.7, 0.6 / 1.3], [0.3 / 1.7, 0.7 / 1.3]])  # worked out by hand
    expected = np.mean([math.log(theta[i] @ p_y_given_z[y[i]]) for i in range(3)])
    assert tr.leep(theta, y) == pytest.approx(expected)
    assert tr.leep(theta, np.array([2, 5, 2])) == pytest.approx(expected)  # absent classes
    assert tr.leep(np.eye(2), [0, 1]) == pytest.approx(0.0)
    assert tr.leep(np.full((2, 2), 0.5), [0, 1]) == pytest.approx(math.log(0.5))
    with pytest.raises(ValueError, match="softmax"):
        tr.leep(np.array([[0.5, 0.6]]), [0])


def test_nce_is_minus_the_conditional_entropy():
    assert tr.nce([0, 1, 0], [0, 1, 0]) == pytest.approx(0.0)
    assert tr.nce([0, 0, 0, 0], [0, 1, 0, 1]) == pytest.approx(math.log(0.5))


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


def _tied_copies(matrix: np.ndarray, rows: np.ndarray, self_value: float) -> np.ndarray:
    """A structure computed on resampled probes, with every copy of a probe given its first copy's entries (and
    a probe paired with its own copy ``self_value``): computed, copies differ by rounding errors, which a rank
    correlation would read as an order."""
    first = np.array([np.flatnonzero(rows == r)[0] for r in rows])
    tied = ((matrix + matrix.T) / 2)[np.ix_(first, first)]
    tied[rows[:, None] == rows[None, :]] = self_value
    return tied[np.triu_indices(len(rows), 1)]


def _edges(f: np.ndarray) -> np.ndarray:
    centred = f - f.mean(axis=0)
    unit = centred / np.linalg.norm(centred, axis=1, keepdims=True)
    return unit @ unit.T


def test_resampled_similarities_are_the_similarities_of_the_resampled_probes():
    gen = _rng(13)
    maps = [gen.normal(size=(10, 2, 3)) for _ in range(3)]
    feats = [gen.normal(size=(10, 4)) + 0.5 * i for i in range(3)]
    index = np.vstack([np.arange(10), gen.integers(0, 10, size=(3, 10))])  # the first row: the probes themselves
    checks = {
        "affinity": (tr.resampled_affinity(maps, index), lambda i, j, rows: tr.attribution_affinity(maps[i][rows], maps[j][rows])),
        "cka": (tr.resampled_linear_cka(feats, index), lambda i, j, rows: tr.linear_cka(feats[i][rows], feats[j][rows])),
        "rsa": (tr.resampled_rsa(feats, index), lambda i, j, rows: stats.spearmanr(
            _tied_copies(1 - np.corrcoef(feats[i][rows]), rows, 0.0),
            _tied_copies(1 - np.corrcoef(feats[j][rows]), rows, 0.0))[0]),
        "edges": (tr.resampled_edge_similarity(feats, index), lambda i, j, rows: stats.spearmanr(
            _tied_copies(_edges(feats[i][rows]), rows, 1.0), _tied_copies(_edges(feats[j][rows]), rows, 1.0))[0]),
    }
    for b in (0,):  # without repeats the plain functions apply as they are
        assert checks["rsa"][0][b, 0, 1] == pytest.approx(tr.rsa(feats[0], feats[1]))
        assert checks["edges"][0][b, 0, 1] == pytest.approx(tr.depara_similarity(maps[0], feats[0], maps[1], feats[1])["edges"])
    for name, (resampled, direct) in checks.items():
        assert resampled.shape == (4, 3, 3), name
        for b, rows in enumerate(index):
            for i in range(3):
                for j in range(3):
                    if i != j:
                        assert resampled[b, i, j] == pytest.approx(direct(i, j, rows), abs=1e-9), (name, b, i, j)
    with pytest.raises(ValueError, match="index"):
        tr.resampled_rsa(feats, np.arange(10))


# ------------------------------------------------------------------------------------ dense targets


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
