"""Fixtures of the browser tests (``make test-browser``): one headless Chromium, a watched page per test.

The helpers they use are in :mod:`tests.browser.browser`; the screenshots saved are listed at the end.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.browser import CHROMIUM_ARGS, SAVED, VIEWPORT, WatchedPage, chromium_path, watch


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One headless Chromium for the whole session."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture()
def watched_page(browser) -> Iterator[WatchedPage]:
    """A fresh browser context and page, watched by :func:`watch`."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(30_000)
    try:
        yield watch(context.new_page())
    finally:
        context.close()


def pytest_terminal_summary(terminalreporter) -> None:
    """List the screenshots that this run saved, for the test log."""
    if SAVED:
        terminalreporter.section("browser screenshots")
        for path in SAVED:
            terminalreporter.write_line(str(path))
