"""The browser tests' helpers that need no browser (these run with the unit tests)."""

from __future__ import annotations

import pytest

from tests.browser.browser import WatchedPage, chromium_path, is_local


@pytest.mark.parametrize(("url", "local"), [
    ("http://127.0.0.1:8888/lab", True),
    ("http://localhost:1/x.js", True),
    ("http://[::1]:80/", True),
    ("data:image/png;base64,AAAA", True),
    ("about:blank", True),
    ("https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js", False),
    ("http://127.0.0.2.example.org/", False),
    ("http://10.0.0.1/", False),
])
def test_is_local(url, local):
    assert is_local(url) is local


def test_problems_name_each_kind():
    watched = WatchedPage(page=None, external=["https://x.org/a.js"], console_errors=["boom"],
                          failed_requests=["HTTP 404 http://127.0.0.1/b.png"])
    assert watched.problems() == ["request to another host (blocked): https://x.org/a.js", "console error: boom",
                                  "failed request: HTTP 404 http://127.0.0.1/b.png"]
    watched.reset()
    assert watched.problems() == []


def test_missing_chromium_fails_with_the_fix(monkeypatch):
    monkeypatch.setenv("KAE_CHROMIUM", "")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(pytest.fail.Exception, match="make browser-deps"):
        chromium_path()
