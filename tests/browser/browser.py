"""Helpers of the browser tests: find Chromium, watch a page, save a screenshot.

Playwright is given the path of the system's Chromium (``executable_path``) and never downloads a
browser. Every page is watched (:class:`WatchedPage`): requests that would leave the machine are
aborted and recorded, and console errors, uncaught exceptions, failed requests and HTTP errors are
collected, so that a test can assert on all of them at once and name what went wrong. Screenshots for the
test log go to ``runs/browser/`` (conftest lists them at the end of the run).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from kae_utils.core.paths import repo_root

#: where the screenshots of the browser tests are saved
ARTIFACTS = repo_root() / "runs" / "browser"
#: Chromium as root in a container, with nothing to reach outside the machine
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 900}
#: the screenshots saved in this session, listed at its end
SAVED: list[Path] = []
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}


def chromium_path() -> str:
    """The Chromium to drive: ``$KAE_CHROMIUM``, else ``chromium`` on the PATH; fails with the fix if absent."""
    path = os.environ.get("KAE_CHROMIUM") or shutil.which("chromium")
    if not path:
        pytest.fail("Chromium is not installed: run `make browser-deps` (apt-get install -y chromium), "
                    "or set KAE_CHROMIUM to a Chromium binary", pytrace=False)
    return path


def is_local(url: str) -> bool:
    """Whether ``url`` stays on this machine (loopback, or a data:/blob:/about: URL)."""
    parts = urlsplit(url)
    return parts.scheme in ("data", "blob", "about") or parts.hostname in LOOPBACK


@dataclass
class WatchedPage:
    """A Playwright page and everything that went wrong on it since the last :meth:`reset`."""

    page: object
    external: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)

    def reset(self) -> None:
        """Forget what was recorded (between two pages opened in the same tab)."""
        self.external.clear()
        self.console_errors.clear()
        self.failed_requests.clear()

    def problems(self) -> list[str]:
        """One line per recorded problem: external requests, console errors, failed requests."""
        return ([f"request to another host (blocked): {url}" for url in self.external]
                + [f"console error: {text}" for text in self.console_errors]
                + [f"failed request: {text}" for text in self.failed_requests])


def watch(page) -> WatchedPage:
    """Block and record every request that leaves the machine; record errors. Returns the watcher."""
    watched = WatchedPage(page)

    def route(route) -> None:
        if is_local(route.request.url):
            route.continue_()
        else:
            watched.external.append(route.request.url)
            route.abort()

    def on_response(response) -> None:
        if response.status >= 400:
            watched.failed_requests.append(f"HTTP {response.status} {response.url}")

    def on_failed(request) -> None:
        if is_local(request.url):  # external ones are reported as blocked
            watched.failed_requests.append(f"{request.failure} {request.url}")

    page.route("**/*", route)
    page.on("console", lambda msg: msg.type == "error" and watched.console_errors.append(msg.text))
    page.on("pageerror", lambda error: watched.console_errors.append(f"uncaught {error}"))
    page.on("response", on_response)
    page.on("requestfailed", on_failed)
    return watched


def screenshot(page, name: str) -> Path:
    """Save a screenshot of what ``page`` shows as ``runs/browser/<name>.png``; return its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    SAVED.append(path)
    return path
