"""The reproduction envelope: for every claim, its effect in the paper, in the upstream reproduction and in ours
(the stored seed, and the spread over the seeds of ``make seeds``), from the files in ``results/`` only.

Work in progress (issue 28): the interface the README and the site use is fixed here; the tables come next.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ENVELOPE_FIGURE", "ENVELOPE_TSV", "render_page_block", "render_readme_block"]

#: One row per claim (written by ``kae readme``).
ENVELOPE_TSV = Path("results") / "envelope.tsv"
#: One row per claim: the paper's effect, the upstream reproduction's, our seeds' range, the tolerance band.
ENVELOPE_FIGURE = Path("results") / "envelope.png"


def render_readme_block(root: Path) -> str:
    """Markdown for the README's ``<!-- envelope:summary -->`` block: one line per notebook and the figure."""
    return "_The reproduction envelope is not built yet (issue 28)._\n"


def render_page_block(root: Path) -> str:
    """Markdown for ``docs/reproduction.md``'s ``<!-- envelope:table -->`` block: one row per claim."""
    return "_The reproduction envelope is not built yet (issue 28)._\n"
