"""kae_utils: the small library shared by the knowledge-amalgamation tutorial notebooks.

Layers, lowest first; a module imports only from layers below its own (and from its own package), which
``tests/test_layers.py`` checks on the source (no circle, no upward arrow, never the tooling package)::

    kae_tools            (the repository's tooling, its own package: imports kae_utils, never the reverse)
    zoo                  the model zoo: entries, registry per notebook family, store (build, verify), CLI
    benchmarks           tasks (loss, metric, colouring per task of scenes and mini-Taskonomy), samples (labels for
                         the label-based estimators), taskonomy
    methods | notebook   distillation, dense, amalgamation, adaptive, recombination, transferability
                         (+ attribution, ranking, harness) | setup_notebook, seed_everything, resolve_device
    training             numerics, trainer, predict, cache
    evaluation           metrics, results (claims, metrics.json)
    display              viz, widgets, progress, source (show_source)
    data | models        data sets and their generators | networks
    core                 params, paths, atomic, scale: torch-free

The names below (what three or more notebooks import, method pieces aside: those stay qualified, e.g.
``from kae_utils.methods.amalgamation import train_ceiling``, so a reader sees which paper a piece belongs to)
load lazily on first use: ``import kae_utils`` imports no sub-module, torch included, and prints nothing.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> the module that defines it (a module itself when the name is a module's)
_SURFACE: dict[str, str] = {
    # core
    "DEVICES": "kae_utils.core.params",
    "PROFILES": "kae_utils.core.params",
    "check_choice": "kae_utils.core.params",
    "check_common_parameters": "kae_utils.core.params",
    "check_number": "kae_utils.core.params",
    "profile_settings": "kae_utils.core.scale",
    # notebook set-up
    "setup_notebook": "kae_utils.notebook",
    # data and models
    "ATTRIBUTE_VALUES": "kae_utils.data.shapes_config",
    "load_dataset": "kae_utils.data.registry",
    "load_training_pool": "kae_utils.data.registry",
    "build_model": "kae_utils.models",
    "count_parameters": "kae_utils.models",
    # display
    "sample_grid": "kae_utils.display.viz",
    "explore": "kae_utils.display.widgets",
    "show_source": "kae_utils.display.source",
    # evaluation
    "accuracy": "kae_utils.evaluation.metrics",
    "Claim": "kae_utils.evaluation.results",
    "Effect": "kae_utils.evaluation.results",
    "check_claims": "kae_utils.evaluation.results",
    "mean_std": "kae_utils.evaluation.results",
    "median_time": "kae_utils.evaluation.results",
    "write_metrics": "kae_utils.evaluation.results",
    # training
    "Trainer": "kae_utils.training.trainer",
    "predict_logits": "kae_utils.training.predict",
    "predict_maps": "kae_utils.training.predict",
    # the zoo's TEACHERS parameter (its allowed values live with the other parameters')
    "TEACHER_SOURCES": "kae_utils.core.params",
}
#: public sub-modules used as namespaces (``numerics.describe()``, ``zoo.load(...)``)
_MODULES: dict[str, str] = {"numerics": "kae_utils.training.numerics", "zoo": "kae_utils.zoo"}

__all__ = sorted([*_SURFACE, *_MODULES])


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        value = importlib.import_module(_MODULES[name])
    elif name in _SURFACE:
        value = getattr(importlib.import_module(_SURFACE[name]), name)
    else:
        raise AttributeError(f"module 'kae_utils' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
