"""The built site (``make docs``) in headless Chromium, served on 127.0.0.1 with every other host blocked.

Every page: no request leaves the machine, the sidebar lists every notebook and every page of docs/, every image
loaded, every equation rendered by the local MathJax (no raw TeX left), no console errors or failed requests. Then
the landing page's index, each notebook page's "Run this notebook" box and its downloads, each page of docs/ with
its title and its generated blocks (``make readme``) rendered, and the search.
Screenshots of one page of each kind go to ``runs/browser/``.
"""

from __future__ import annotations

import functools
import http.server
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from kae_tools.notebooks.catalog import NOTEBOOK_GLOB
from kae_utils.core.paths import repo_root
from tests.browser.browser import screenshot

pytestmark = pytest.mark.browser

ROOT = repo_root()
SITE = ROOT / "docs" / "_build" / "html"
NOTEBOOKS = sorted((ROOT / "notebooks").glob(NOTEBOOK_GLOB))
#: the pages of docs/ (the reference pages, the architecture, the decisions), as docs/build_site.py stages them
DOC_PAGES = sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "index.md")
PAGES = ["index.html", "search.html", "genindex.html", *(f"notebooks/{nb.stem}.html" for nb in NOTEBOOKS),
         *(f"docs/{page.stem}.html" for page in DOC_PAGES)]
#: the page of each kind whose screenshot is kept
SCREENSHOTS = {"index.html": "site_landing", f"notebooks/{NOTEBOOKS[0].stem}.html": "site_notebook"}

# In the page: the problems with its images and equations, as lists of short descriptions.
BROKEN_IMAGES_JS = """() => [...document.images]
    .filter(img => !(img.complete && img.naturalWidth > 0))
    .map(img => img.getAttribute('src'))"""
MATH_JS = """async () => {
    if (window.MathJax && MathJax.startup) { await MathJax.startup.promise; }
    const math = [...document.querySelectorAll('.math')];
    const prose = (document.querySelector('article.bd-article') || document.body).cloneNode(true);
    prose.querySelectorAll('pre, code, .highlight, mjx-container, .cell_input').forEach(e => e.remove());
    return {
        mathjax: Boolean(window.MathJax && MathJax.version),
        math: math.length,
        unrendered: math.filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 60)),
        errors: [...document.querySelectorAll('mjx-merror')].map(e => e.textContent.slice(0, 60)),
        raw: (prose.innerText.match(/\\$\\$|\\\\\\(|\\\\\\[|\\\\begin\\{/g) || []).length,
    };
}"""
# In the page: the generated block NAME, between the comments `NAME:start ...` and `NAME:end` (MyST keeps them).
BLOCK_JS = """(name) => {
    const walker = document.createTreeWalker(document.querySelector('article.bd-article') || document.body,
                                             NodeFilter.SHOW_COMMENT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        if (!node.textContent.trim().startsWith(name + ':start')) continue;
        const block = {found: true, closed: false, text: '', tables: 0};
        for (let e = node.nextSibling; e; e = e.nextSibling) {
            if (e.nodeType === Node.COMMENT_NODE && e.textContent.trim() === name + ':end') {
                block.closed = true;
                break;
            }
            if (e.nodeType !== Node.ELEMENT_NODE) continue;
            block.text += e.innerText;
            block.tables += e.matches('table') ? 1 : e.querySelectorAll('table').length;
        }
        block.text = block.text.trim();
        return block;
    }
    return {found: false};
}"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002  (the base class's name)
        pass


@pytest.fixture(scope="module")
def site_url() -> Iterator[str]:
    """The built site, served by a thread on a free port of 127.0.0.1."""
    if not (SITE / "index.html").is_file():
        pytest.fail(f"the site is not built ({SITE} has no index.html): run `make docs`", pytrace=False)
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join()


def _markdown_has_math(notebook: Path) -> bool:
    nb = nbformat.read(notebook, as_version=4)
    return any(re.search(r"\$[^$]+\$", c.source) for c in nb.cells if c.cell_type == "markdown")


def _plain(text: str) -> str:
    """``text`` with its whitespace collapsed and Sphinx's typographic quotes made plain again."""
    quotes = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})
    return " ".join(text.translate(quotes).split())


def _png_outputs(notebook: Path) -> int:
    nb = nbformat.read(notebook, as_version=4)
    return sum("image/png" in out.get("data", {}) for c in nb.cells if c.cell_type == "code" for out in c.outputs)


def _open(watched, url: str) -> list[str]:
    """Open ``url``; return problems found while loading (HTTP status, errors, blocked requests)."""
    response = watched.page.goto(url, wait_until="load")
    problems = [] if response is not None and response.ok else [f"HTTP {response and response.status}"]
    watched.page.wait_for_load_state("networkidle")
    return problems


def _page_problems(watched, page_name: str) -> list[str]:
    page = watched.page
    problems = []
    nav = page.locator("nav.bd-docs-nav li.toctree-l1 > a")
    if not page.locator("nav.bd-docs-nav").is_visible():
        problems.append("the sidebar navigation (nav.bd-docs-nav) is not visible")
    if nav.count() != len(NOTEBOOKS) + len(DOC_PAGES):
        problems.append(f"nav.bd-docs-nav lists {nav.count()} pages, not the {len(NOTEBOOKS)} notebooks and "
                        f"the {len(DOC_PAGES)} pages of docs/")
    problems += [f"image not loaded: {src}" for src in page.evaluate(BROKEN_IMAGES_JS)]
    math = page.evaluate(MATH_JS)
    if math["math"] and not math["mathjax"]:
        problems.append(f"{math['math']} equations (.math) but MathJax is not loaded")
    problems += [f"equation not rendered: {text!r}" for text in math["unrendered"]]
    problems += [f"MathJax error: {text!r}" for text in math["errors"]]
    if math["raw"]:
        problems.append(f"{math['raw']} raw TeX delimiters ($$, \\(, \\[, \\begin) left in the text")
    notebook = ROOT / "notebooks" / f"{Path(page_name).stem}.ipynb"
    if page_name.startswith("notebooks/"):
        if _markdown_has_math(notebook) and math["math"] == 0:
            problems.append("the notebook's markdown has $...$ equations but the page has no .math element")
        images = page.locator("div.cell_output img").count()
        if images != _png_outputs(notebook):
            problems.append(f"{images} figures in the page, {_png_outputs(notebook)} PNG outputs in {notebook.name}")
    return problems


@pytest.mark.parametrize("page_name", PAGES)
def test_page(watched_page, site_url, page_name):
    """Navigation, images, equations, console and network of one page; every problem named at once."""
    if not (SITE / page_name).is_file():
        pytest.fail(f"{page_name} is missing from the site: run `make docs`", pytrace=False)
    problems = _open(watched_page, f"{site_url}/{page_name}")
    problems += _page_problems(watched_page, page_name)
    problems += watched_page.problems()
    if page_name in SCREENSHOTS:
        screenshot(watched_page.page, SCREENSHOTS[page_name])
    assert not problems, f"{page_name}:\n  " + "\n  ".join(problems)


def test_landing_page_shows_the_readme_index(watched_page, site_url):
    """One row per notebook, with its claim as in the README's index and a link to its page."""
    _open(watched_page, f"{site_url}/index.html")
    table = watched_page.page.locator("article table").first
    text = _plain(table.inner_text())
    hrefs = table.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    for notebook in NOTEBOOKS:
        claim = nbformat.read(notebook, as_version=4).metadata["kae"]["claim"]
        assert _plain(claim) in text, f"index.html: the claim of {notebook.stem} is not in the table"
        assert f"notebooks/{notebook.stem}.html" in hrefs, f"index.html: no link to {notebook.stem}'s page"


def _generated_blocks(page: Path) -> dict[str, str]:
    """The generated blocks of a page's markdown: ``{name: content}`` (``make readme`` wrote them)."""
    text = page.read_text()
    pattern = r"<!-- (?P<name>[\w./:-]+):start[^>]*-->\n(?P<body>.*?)<!-- (?P=name):end -->"
    return {m["name"]: m["body"] for m in re.finditer(pattern, text, re.S)}


def _title(page: Path) -> str:
    title = next(line for line in page.read_text().splitlines() if line.startswith("# "))
    return _plain(title[2:].replace("`", ""))


@pytest.mark.parametrize("page", DOC_PAGES, ids=lambda p: p.stem)
def test_reference_page_shows_its_title_and_generated_blocks(watched_page, site_url, page):
    """Each page of docs/: its title, and each generated block rendered (text; a table where the block has one)."""
    _open(watched_page, f"{site_url}/docs/{page.stem}.html")
    heading = watched_page.page.locator("article h1").first
    assert _plain(heading.inner_text()).rstrip("#").strip() == _title(page), f"docs/{page.stem}.html: wrong title"
    blocks = _generated_blocks(page)
    if page.stem == "reproduction":
        assert "envelope:table" in blocks, "docs/reproduction.md has no envelope:table block"
    for name, body in blocks.items():
        block = watched_page.page.evaluate(BLOCK_JS, name)
        where = f"docs/{page.stem}.html, block {name}"
        assert block["found"] and block["closed"], f"{where}: its start and end comments are not in the page"
        assert block["text"], f"{where}: rendered empty"
        if re.search(r"^\|[-|]+\|$", body, re.M):
            assert block["tables"] >= 1, f"{where}: the block holds a table, the page shows none"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_page_says_how_to_run_it(watched_page, site_url, notebook):
    """The box names `make run NB=..` and papermill, and its downloads are the stored files."""
    _open(watched_page, f"{site_url}/notebooks/{notebook.stem}.html")
    page = watched_page.page
    box = page.locator("div.admonition", has_text="Run this notebook")
    assert box.count() == 1, f"{notebook.stem}.html: no 'Run this notebook' box (div.admonition)"
    text = box.inner_text()
    for command in (f"make run NB={notebook.stem}", f"papermill -k python3 notebooks/{notebook.name}"):
        assert command in text, f"{notebook.stem}.html: the box lacks `{command}`"
    downloads = box.locator("a.download").evaluate_all("links => links.map(a => a.href)")
    for original in (notebook, notebook.with_suffix(".py")):
        url = next((u for u in downloads if u.endswith("/" + original.name)), None)
        assert url, f"{notebook.stem}.html: no download link to {original.name} (a.download)"
        body = page.request.get(url).body()
        assert body == original.read_bytes(), f"{url} is not the stored {original.relative_to(ROOT)}"
    if notebook.name.endswith(".ipynb"):
        json.loads(notebook.read_text())  # the stored notebook itself is valid JSON


def test_search_finds_a_notebook(watched_page, site_url):
    """The offline search (searchindex.js) finds a notebook's page by the longest word of its title."""
    target = NOTEBOOKS[-1]
    word = max(re.findall(r"[A-Za-z]+", nbformat.read(target, as_version=4).metadata["kae"]["title"]), key=len)
    _open(watched_page, f"{site_url}/search.html?q={word}")
    results = watched_page.page.locator("#search-results ul.search li a")
    results.first.wait_for(timeout=15_000)
    hrefs = results.evaluate_all("links => links.map(a => a.getAttribute('href'))")
    screenshot(watched_page.page, "site_search")
    assert any(f"notebooks/{target.stem}.html" in h for h in hrefs), f"search.html?q={word}: {hrefs}"
    assert not watched_page.problems(), "search.html:\n  " + "\n  ".join(watched_page.problems())
