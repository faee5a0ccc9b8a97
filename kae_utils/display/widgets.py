"""Interactive figure controls that degrade to one printed line in batch runs.

Notebooks store a static figure for readers who do not run them, then offer controls to redraw it
with other choices. The controls are ipywidgets, shown only in a live Jupyter kernel (the same rule as
the progress bars, :func:`kae_utils.display.progress.progress_mode`): papermill, nbval and CI runs print a
line naming the choices instead, so no widget state or widget ``text/plain`` ends up in stored outputs.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from kae_utils.display.progress import progress_mode

__all__ = ["explore", "widgets_enabled"]


def widgets_enabled() -> bool:
    """True when interactive widgets are shown (a live Jupyter kernel with ipywidgets, not CI/papermill)."""
    return progress_mode() == "widget"


def _check_controls(plot_fn: Callable[..., Any], controls: dict[str, Sequence[Any]]) -> None:
    if not callable(plot_fn):
        raise TypeError(f"plot_fn must be callable; got {type(plot_fn).__name__}")
    if not controls:
        raise ValueError("give at least one control, e.g. explore(plot, space=['teacher', 'common'])")
    for name, options in controls.items():
        if isinstance(options, (str, bytes)) or not isinstance(options, Sequence) or len(options) == 0:
            raise ValueError(f"control {name!r} needs a non-empty list of options; got {options!r}")
    try:
        inspect.signature(plot_fn).bind(**{name: options[0] for name, options in controls.items()})
    except TypeError as error:
        raise TypeError(f"plot_fn cannot be called with the controls {sorted(controls)}: {error}") from None


def explore(plot_fn: Callable[..., Any], **controls: Sequence[Any]) -> Any:
    """Drop-down controls that redraw ``plot_fn(**choice)``; in batch runs, one line instead.

    Args:
        plot_fn: draws a figure for one choice of every control (keyword arguments named as the controls).
        **controls: the options of each control, e.g. ``space=["teachers", "common"]``; the first is the default.

    Returns:
        The ``ipywidgets.interactive`` box in a live kernel, ``None`` in batch runs (nothing is drawn there;
        the notebook stores a static figure in the cell before).

    Raises:
        ValueError: no controls, or a control with no options.
        TypeError: ``plot_fn`` is not callable or does not accept the controls as keyword arguments.
    """
    _check_controls(plot_fn, controls)
    if not widgets_enabled():
        choices = "; ".join(f"{name}: {', '.join(map(str, options))}" for name, options in controls.items())
        print(f"Interactive controls appear when this notebook runs in Jupyter ({choices}).")
        return None
    import ipywidgets
    from IPython.display import display

    box = ipywidgets.interactive(plot_fn, **{name: list(options) for name, options in controls.items()})
    display(box)
    return box
