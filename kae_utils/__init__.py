"""kae_utils: the small library shared by the knowledge-amalgamation tutorial notebooks.

Modules: ``env`` (seeding, device, paths), ``data`` (data sets), ``models`` (backbones with feature taps, an
encoder-decoder for dense tasks), ``training`` (trainer and callbacks), ``losses`` (distillation losses),
``dense`` (per-pixel losses: scale-invariant depth, angular, pixel KL/NLL), ``metrics``, ``viz`` (plots),
``cache`` (load-or-train), ``amalgamation`` (running several teachers, score amalgamation, ensembles),
``adaptive`` (entropy-based source selection, transfer bridges, their regulariser), ``results``
(metrics.json and the claims block), ``run`` (papermill batch runner), ``sweep`` (parameter sweeps and their
tables), ``executors`` (where runs execute: local pool, Dask, SLURM), ``atomic`` (atomic file writes),
``nbclean`` (notebook metadata cleaning), ``readme`` (the README's generated parts), ``scale`` (the full
profile at smoke scale, ``KAE_SCALE=smoke``, and the work log of training counts), ``zoo`` (the model zoo).
Importing the package prints nothing and imports the sub-modules lazily.
"""

__version__ = "0.1.0"
