"""pytest plugin for ``pytest --nbval notebooks/`` (loaded with ``-p tests.nbval_plugin`` by ``make test``).

* Kernels inherit this process's environment: plain-text progress bars (no widget state) and no GPU,
  so a run compares against outputs made the same way by ``make outputs``.
* stderr (progress bars, warnings), HTML and JavaScript outputs and widget views are not compared;
  text/plain, images' presence and the claims block are.
"""

from __future__ import annotations

import os

os.environ["KAE_PROGRESS"] = "plain"
os.environ["CUDA_VISIBLE_DEVICES"] = ""

_SKIP = ("stderr", "text/html", "application/javascript", "application/vnd.jupyter.widget-view+json")


def pytest_collectstart(collector):
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += _SKIP
