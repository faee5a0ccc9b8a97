"""Build the notebooks' site: ``python docs/build_site.py`` (``make docs``); open ``docs/_build/html/index.html``.

1. Fetch the local MathJax 3 copy when it is missing (``docs/fetch_mathjax.py``).
2. Stage the sources in ``docs/_build/src``: ``docs/index.md``, ``README.md`` (the landing page includes
   its introduction and its notebook index), the other pages of ``docs/`` (``docs/*.md``, staged under ``docs/``
   so that the notebooks' links to ``../docs/<page>.md`` resolve on the site as in the repository), the figures
   of ``results/`` (``results/**/*.png``, which the pages show as ``../results/...``) and every notebook matching
   :data:`kae_tools.notebooks.catalog.NOTEBOOK_GLOB` with its paired text form, copied with their modification times
   (so that Sphinx rebuilds only what changed); files no longer there are removed. Copies, not links:
   Sphinx resolves links between documents through symbolic links and would lose them.
3. ``sphinx-build -W --keep-going -b html -c docs docs/_build/src docs/_build/html``: any warning fails
   the build. The notebooks are rendered from their stored outputs, never executed.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
BUILD = DOCS / "_build"
SRC = BUILD / "src"
HTML = BUILD / "html"


def sources(root: Path = ROOT) -> dict[Path, Path]:
    """The files of the site's source tree: ``{path under the staged tree: original file}``."""
    from kae_tools.notebooks.catalog import NOTEBOOK_GLOB
    from kae_tools.notebooks.pairing import text_path

    files = {Path("index.md"): DOCS / "index.md", Path("README.md"): root / "README.md"}
    for page in sorted((root / "docs").glob("*.md")):
        if page.name != "index.md":
            files[Path("docs") / page.name] = page
    for figure in sorted((root / "results").glob("**/*.png")):
        files[figure.relative_to(root)] = figure
    for notebook in sorted((root / "notebooks").glob(NOTEBOOK_GLOB)):
        files[Path("notebooks") / notebook.name] = notebook
        text = text_path(notebook, root)
        if text.exists():
            files[Path("notebooks") / text.name] = text
    return files


def stage(src: Path = SRC, root: Path = ROOT) -> list[Path]:
    """Mirror :func:`sources` into ``src`` (copy what changed, delete what is gone); return the staged files."""
    files = sources(root)
    for stale in [p for p in src.rglob("*") if p.is_file() and p.relative_to(src) not in files]:
        stale.unlink()
    for rel, original in files.items():
        target = src / rel
        if target.exists() and target.stat().st_mtime == original.stat().st_mtime \
                and target.stat().st_size == original.stat().st_size:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(original, target)
    return [src / rel for rel in files]


def build(out: Path = HTML) -> int:
    """Fetch MathJax, stage the sources and run Sphinx with warnings as errors; return its exit code."""
    from fetch_mathjax import fetch
    from sphinx.cmd.build import build_main

    fetch()
    stage()
    return build_main(["-W", "--keep-going", "-q", "-b", "html", "-c", str(DOCS), str(SRC), str(out)])


if __name__ == "__main__":
    sys.path.insert(0, str(DOCS))
    code = build()
    if code == 0:
        print(f"site built: {HTML / 'index.html'}")
    sys.exit(code)
