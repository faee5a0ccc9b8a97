"""Sphinx configuration of the notebooks' site. Build it with ``make docs`` (``docs/build_site.py``).

The sources are staged by ``docs/build_site.py`` in ``docs/_build/src``: the landing page ``docs/index.md``,
README.md (which it includes), the other pages of ``docs/`` with the figures of ``results/`` they show, and
every notebook matching :data:`kae_tools.notebooks.catalog.NOTEBOOK_GLOB`, so new
notebooks appear by themselves. The pages are the stored notebooks, rendered with their outputs and never
re-executed (myst-nb, execution off), in the Jupyter Book theme. Equations are rendered by a local
MathJax 3 (``docs/fetch_mathjax.py``), so the site makes no request to another host.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path[:0] = [str(DOCS), str(DOCS / "_ext")]

from fetch_mathjax import DEFAULT_DEST as MATHJAX_DIR  # noqa: E402

project = "Knowledge amalgamation notebooks"
author = "the kae_utils authors"
copyright = "the kae_utils authors"

extensions = ["myst_nb", "kae_site"]
root_doc = "index"
# README.md is staged only to be included by the landing page
exclude_patterns = ["README.md", "**/.ipynb_checkpoints"]

# notebooks: stored outputs only
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
# `$$...$$` inside a paragraph or list item is display math, as in Jupyter (notebook 03 has one)
myst_dmath_double_inline = True

# equations: the local MathJax 3 copy (made by docs/fetch_mathjax.py) served from _static/mathjax3/
if not (MATHJAX_DIR / "mathjax3" / "tex-mml-chtml.js").exists():
    raise RuntimeError(f"MathJax is missing from {MATHJAX_DIR}: build with `make docs` "
                       "(it runs `python docs/fetch_mathjax.py` first)")
html_static_path = ["_static", str(MATHJAX_DIR)]
html_css_files = ["kae.css"]
mathjax_path = "mathjax3/tex-mml-chtml.js"

html_theme = "sphinx_book_theme"
html_title = "Knowledge amalgamation, reproduced in notebooks"
html_theme_options = {
    "use_download_button": True,
    "use_fullscreen_button": False,
    "show_toc_level": 2,
    "navigation_with_keys": False,
    # the landing page is one wide table: no in-page contents beside it
    "secondary_sidebar_items": {"**": ["page-toc"], "index": []},
}
html_last_updated_fmt = None
html_copy_source = True
# an explicit colour mode: without one the theme logs a console error on a first visit
html_context = {"default_mode": "light"}
