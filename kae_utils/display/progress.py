"""Progress bars: widgets in interactive Jupyter, plain text in papermill, CI and terminals.

The mode comes from the ``KAE_PROGRESS`` environment variable: ``widget``, ``plain``, ``off`` or
``auto`` (default). ``auto`` uses widgets only inside a Jupyter kernel with ipywidgets installed and
outside CI; the batch runner, ``make`` and the nbval conftest set ``plain`` so no widget state is stored.
Plain bars write to stderr (not compared by nbval) and refresh at most every few seconds.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

from kae_utils.core.params import check_choice

__all__ = ["PROGRESS_MODES", "progress", "progress_mode"]

PROGRESS_MODES: tuple[str, ...] = ("auto", "widget", "plain", "off")


def _in_jupyter_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def progress_mode() -> str:
    """The progress-bar mode in force: ``"widget"``, ``"plain"`` or ``"off"``."""
    mode = os.environ.get("KAE_PROGRESS", "auto").strip().lower() or "auto"
    check_choice("KAE_PROGRESS", mode, PROGRESS_MODES)
    if mode != "auto":
        return mode
    if os.environ.get("CI") or not _in_jupyter_kernel():
        return "plain"
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return "plain"
    return "widget"


def progress(iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str = "",
             leave: bool = True, **kwargs: Any):
    """A tqdm bar over ``iterable`` in the mode of :func:`progress_mode` (a silent one when ``off``)."""
    mode = progress_mode()
    if mode == "widget":
        from tqdm.notebook import tqdm as bar

        return bar(iterable, total=total, desc=desc, leave=leave, **kwargs)
    from tqdm.std import tqdm as bar

    kwargs.setdefault("mininterval", 5.0)
    return bar(iterable, total=total, desc=desc, leave=leave, file=sys.stderr, ascii=True,
               dynamic_ncols=False, ncols=100, disable=(mode == "off"), **kwargs)
