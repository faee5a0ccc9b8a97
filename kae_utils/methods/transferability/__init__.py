"""Transferability estimators, each as its authors define it (notebooks 08 and 09).

A transferability estimator predicts, without fine-tuning, how well a trained source model will serve a
target task. Two families are implemented here (none is on PyPI under its own name):

* **label-free, model to model**: compare what two models compute on the same probe images:
  :func:`attribution_affinity` (mean cosine of attribution maps, :func:`attribution_maps`, Song et al. 2019),
  :func:`rsa` (representational similarity analysis), :func:`linear_cka` (centred kernel alignment) and DEPARA's
  graph similarity (:func:`depara_similarity`, Song et al. 2020: nodes = attributions, edges = feature
  similarities);
  their values under resampled probes for the bootstrap: :func:`resampled_affinity`, :func:`resampled_rsa`,
  :func:`resampled_linear_cka`, :func:`resampled_edge_similarity`;
* **label-based, features of the source on labelled target data**: :func:`logme`, :func:`h_score`,
  :func:`transrate`, :func:`gbc`, :func:`nleep`, :func:`sfda`, :func:`parc` and ETran
  (:func:`etran_energy`, :func:`etran_lda`, :func:`etran`); :func:`leep` and :func:`nce` from a source's
  own class predictions.

Each label-based estimator's **default is its authors' definition**, read from their released code; the
docstring names the repository, file and commit, and says where that code differs from the paper or from a
library's version. The library forms (TLlib's TransRate, thuml's LogME fixed point, diagonal GBC, H-score
without or with a fixed shrinkage, diagonal N-LEEP) are named options. Every estimator counts only the classes
present in the labels (a class value with no sample is not a class), returns a number where **higher means more
transferable**, and computes in float64. Scoring rankings against a ground truth is in
:mod:`.ranking`; :mod:`.harness` turns the models' pairwise similarities into each target's scores and their
scores into the rows of the results table (the ranking harness of notebooks 08 and 09).
"""

from __future__ import annotations

from kae_utils.methods.transferability.attribution import (
    ATTRIBUTION_METHODS,
    attribution_maps,
    epsilon_lrp_relus,
)
from kae_utils.methods.transferability.common import LOGME_VARIANTS, TRANSRATE_VARIANTS
from kae_utils.methods.transferability.label_based import (
    etran,
    etran_energy,
    etran_lda,
    gbc,
    h_score,
    leep,
    logme,
    logme_evidence,
    nce,
    nleep,
    parc,
    pixels_as_samples,
    sfda,
    transrate,
)
from kae_utils.methods.transferability.label_free import (
    attribution_affinity,
    depara_similarity,
    edge_vector,
    linear_cka,
    resampled_affinity,
    resampled_edge_similarity,
    resampled_linear_cka,
    resampled_rsa,
    rsa,
)

__all__ = ["ATTRIBUTION_METHODS", "LOGME_VARIANTS", "TRANSRATE_VARIANTS", "attribution_affinity", "attribution_maps", "depara_similarity", "edge_vector", "epsilon_lrp_relus", "etran", "etran_energy", "etran_lda", "gbc", "h_score", "leep", "linear_cka", "logme", "logme_evidence", "nce", "nleep", "parc", "pixels_as_samples", "resampled_affinity", "resampled_edge_similarity", "resampled_linear_cka", "resampled_rsa", "rsa", "sfda", "transrate"]
