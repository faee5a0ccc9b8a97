"""Show the library's code in a notebook, the same way everywhere: :func:`show_source` renders a function's or a
class's whole source as a Python code block (Markdown through ``IPython.display`` in a notebook, plain text
elsewhere). Torch-free; it imports nothing of the library.
"""

from __future__ import annotations

import inspect
import re
import textwrap

__all__ = ["markdown_block", "show_source", "source_text"]


def source_text(obj: object, *, start: str | None = None) -> str:
    """The source of ``obj`` (a function, method or class), dedented, without trailing blank lines.

    With ``start``, the text begins at the first line that contains ``start`` (dedented again); a ``ValueError``
    says so when no line does.
    """
    text = textwrap.dedent(inspect.getsource(obj)).rstrip()
    if start is None:
        return text
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if start in line:
            return textwrap.dedent("\n".join(lines[index:])).rstrip()
    raise ValueError(f"no line of the source of {getattr(obj, '__qualname__', obj)!r} contains {start!r}")


def markdown_block(text: str) -> str:
    """``text`` as a fenced Python code block, its fence longer than any run of backticks inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}python\n{text}\n{fence}"


def _shell() -> object | None:
    """The running IPython shell, or ``None`` (IPython absent, or a plain Python process)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def show_source(obj: object, *, start: str | None = None) -> None:
    """Show the whole source of ``obj`` (or from the line containing ``start``): a Markdown code block in an
    IPython session, plain text printed otherwise. The one way the notebooks show library code."""
    text = source_text(obj, start=start)
    if _shell() is None:
        print(text)
        return
    from IPython.display import Markdown, display

    display(Markdown(markdown_block(text)))
