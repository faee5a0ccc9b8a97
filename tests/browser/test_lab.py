"""JupyterLab in headless Chromium: a notebook's `kae_utils.display.widgets.explore` controls render and respond.

The Galata approach (JupyterLab's own UI-test helpers) in Python: start JupyterLab on 127.0.0.1 with a
token and a temporary Jupyter configuration, open a small prepared notebook, run all its cells through
JupyterLab's command registry, wait for the kernel to be "Idle" and for every cell's execution count,
then check the widgets' DOM: two drop-downs, the figure and the text drawn for the default choice, and a
new figure and text after another choice is selected. Nothing may say "Error displaying widget", no
request may leave the machine, and the page may log no console error. A screenshot goes to ``runs/browser/lab_widget.png``.

The notebook is small on purpose (a full training notebook takes minutes on the 2-core CPU); it calls
`explore` exactly as the paper notebooks do.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from tests.browser.browser import screenshot

pytestmark = pytest.mark.browser

NOTEBOOK = "widget_demo.ipynb"
PLOT_CELL = '''\
import matplotlib.pyplot as plt

from kae_utils.display.widgets import explore


def show(space: str, colour: str) -> None:
    """Print the choice and draw a small figure titled with it."""
    print(f"chosen: {space} / {colour}")
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1], [0, 1] if space == "raw" else [1, 0], color="C0" if colour == "class" else "C1")
    ax.set_title(f"{space} / {colour}")
    plt.show()
'''
EXPLORE_CELL = 'box = explore(show, space=["raw", "common"], colour=["class", "teacher"])'
SERVER_START_S = 120
KERNEL_S = 120


@dataclass
class Lab:
    """A running JupyterLab: its base URL, token and log file."""

    url: str
    token: str
    log: Path

    def log_tail(self, n: int = 30) -> str:
        """The last ``n`` lines of the server's log, for failure messages."""
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return "\n".join(lines[-n:])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_notebook(folder: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(PLOT_CELL), nbformat.v4.new_code_cell(EXPLORE_CELL)]
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    path = folder / NOTEBOOK
    nbformat.write(nb, path)
    return path


def _server_env(tmp: Path) -> dict[str, str]:
    """The environment of JupyterLab and its kernel: private Jupyter folders, widgets on."""
    env = {k: v for k, v in os.environ.items() if k != "CI"}  # CI (and KAE_PROGRESS=plain) turn widgets off
    for name, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                      ("JUPYTERLAB_SETTINGS_DIR", "settings"), ("JUPYTERLAB_WORKSPACES_DIR", "workspaces")):
        (tmp / sub).mkdir()
        env[name] = str(tmp / sub)
    # no "Would you like to get notified about official Jupyter news?" toast over the notebook
    notification = tmp / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps({"fetchNews": "false"}))
    env.update({"KAE_PROGRESS": "widget", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""})
    return env


def _lab_command(port: int, token: str, root: Path) -> list[str]:
    return [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
            f"--port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.news_url=None"]


def _wait_until_up(proc: subprocess.Popen, lab: Lab) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"JupyterLab exited with code {proc.returncode}:\n{lab.log_tail()}", pytrace=False)
        try:
            with urllib.request.urlopen(f"{lab.url}/api/status?token={lab.token}", timeout=5) as response:
                json.load(response)
                return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"JupyterLab did not answer on {lab.url} within {SERVER_START_S} s:\n{lab.log_tail()}",
                pytrace=False)


def _stop(proc: subprocess.Popen) -> None:
    """Stop the server and every process it started (kernels included)."""
    import psutil

    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    for child in children:
        if child.is_running():
            child.kill()


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[Lab]:
    """JupyterLab on a free port of 127.0.0.1, serving a folder with the prepared notebook."""
    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "root"
    root.mkdir()
    _write_notebook(root)
    port, token = _free_port(), secrets.token_hex(16)
    lab = Lab(url=f"http://127.0.0.1:{port}", token=token, log=tmp / "jupyterlab.log")
    with open(lab.log, "wb") as log:
        proc = subprocess.Popen(_lab_command(port, token, root), env=_server_env(tmp), cwd=root,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        _wait_until_up(proc, lab)
        yield lab
    finally:
        _stop(proc)


# In the page: whether every code cell shows an execution count ("[1]:"), not "[ ]:" or "[*]:".
ALL_EXECUTED_JS = """() => {
    const prompts = [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputPrompt')];
    return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
}"""
IDLE = "#jp-main-statusbar >> text=Idle"
WIDGET_OUTPUT = ".jp-OutputArea-output .widget-interact .widget-output"


def _run_all_cells(page, lab: Lab) -> None:
    page.goto(f"{lab.url}/lab/tree/{NOTEBOOK}?reset&token={lab.token}")
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=KERNEL_S * 1000)
    page.locator(IDLE).wait_for(timeout=KERNEL_S * 1000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    try:
        page.wait_for_function(ALL_EXECUTED_JS, timeout=KERNEL_S * 1000)
    except Exception as error:
        pytest.fail(f"not every cell of {NOTEBOOK} got an execution count within {KERNEL_S} s ({error})\n"
                    f"server log:\n{lab.log_tail()}", pytrace=False)
    page.locator(IDLE).wait_for(timeout=KERNEL_S * 1000)


# In the page: whether the widget's output shows the text and exactly one figure, loaded. The text and the
# figure arrive in two messages from the kernel, so both are awaited together.
CHOICE_SHOWN_JS = """([selector, text]) => {
    const output = document.querySelector(selector);
    if (!output || !output.innerText.includes(text)) { return false; }
    const images = [...output.querySelectorAll('img')];
    return images.length === 1 && images[0].complete && images[0].naturalWidth > 0;
}"""


def _expect_choice(page, text: str) -> None:
    """The widget's output shows ``text`` and one figure that loaded (within 30 s)."""
    try:
        page.wait_for_function(CHOICE_SHOWN_JS, arg=[WIDGET_OUTPUT, text], timeout=30_000)
    except Exception:
        output = page.locator(WIDGET_OUTPUT)
        shown = output.all_inner_texts() if output.count() else "(no widget output element)"
        figures = output.locator("img").count() if output.count() else 0
        pytest.fail(f"{WIDGET_OUTPUT} should show {text!r} and one loaded figure; it shows {shown} "
                    f"and {figures} figures", pytrace=False)


def test_explore_widget_renders_and_responds(watched_page, lab):
    page = watched_page.page
    _run_all_cells(page, lab)
    outputs = page.locator(".jp-NotebookPanel .jp-OutputArea-output")
    text = " ".join(outputs.all_inner_texts())
    assert "Interactive controls appear when" not in text, (
        "explore() printed its batch-mode line: the kernel did not see KAE_PROGRESS=widget")
    for bad in ("Error displaying widget", "Loading widget", "Traceback"):
        assert bad not in text, f"a cell output says {bad!r}:\n{text[:2000]}"

    selects = page.locator(".jp-OutputArea-output .widget-interact .widget-dropdown select")
    assert selects.count() == 2, f".widget-dropdown select: {selects.count()} drop-downs, expected 2"
    labels = page.locator(".jp-OutputArea-output .widget-interact .widget-dropdown label").all_inner_texts()
    assert labels == ["space", "colour"], f"drop-down labels: {labels}"
    _expect_choice(page, "chosen: raw / class")

    selects.first.select_option("common")
    _expect_choice(page, "chosen: common / class")
    selects.nth(1).select_option("teacher")
    _expect_choice(page, "chosen: common / teacher")
    screenshot(page, "lab_widget")

    problems = watched_page.problems()
    assert not problems, "JupyterLab:\n  " + "\n  ".join(problems)
