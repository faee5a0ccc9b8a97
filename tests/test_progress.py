"""Tests for kae_utils.display.progress: the mode from KAE_PROGRESS and the bars it gives."""

from __future__ import annotations

import pytest

import kae_utils.display.progress as progress_module
from kae_utils.display.progress import PROGRESS_MODES, progress, progress_mode


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """No KAE_PROGRESS or CI from the calling shell."""
    monkeypatch.delenv("KAE_PROGRESS", raising=False)
    monkeypatch.delenv("CI", raising=False)


def test_modes():
    assert PROGRESS_MODES == ("auto", "widget", "plain", "off")


@pytest.mark.parametrize(("value", "mode"), [("plain", "plain"), ("off", "off"), ("widget", "widget"),
                                             (" Plain ", "plain"), ("OFF", "off")])
def test_explicit_mode_is_honoured(monkeypatch, value, mode):
    monkeypatch.setenv("KAE_PROGRESS", value)
    assert progress_mode() == mode


def test_bad_mode_names_the_choices(monkeypatch):
    monkeypatch.setenv("KAE_PROGRESS", "fancy")
    with pytest.raises(ValueError) as info:
        progress_mode()
    message = str(info.value)
    assert "KAE_PROGRESS" in message and "'fancy'" in message
    for mode in PROGRESS_MODES:
        assert repr(mode) in message


@pytest.mark.parametrize("value", [None, "auto", ""])
def test_auto_outside_jupyter_is_plain(monkeypatch, value):
    if value is not None:
        monkeypatch.setenv("KAE_PROGRESS", value)
    assert not progress_module._in_jupyter_kernel()  # pytest is no Jupyter kernel
    assert progress_mode() == "plain"


def test_auto_inside_jupyter_is_widget_unless_ci(monkeypatch):
    pytest.importorskip("ipywidgets")
    monkeypatch.setattr(progress_module, "_in_jupyter_kernel", lambda: True)
    assert progress_mode() == "widget"
    monkeypatch.setenv("CI", "true")
    assert progress_mode() == "plain"
    monkeypatch.setenv("KAE_PROGRESS", "widget")  # an explicit choice wins over CI
    assert progress_mode() == "widget"


def test_ci_makes_auto_plain(monkeypatch):
    monkeypatch.setenv("CI", "1")
    assert progress_mode() == "plain"


def test_off_mode_is_disabled_and_still_iterates(monkeypatch, capsys):
    monkeypatch.setenv("KAE_PROGRESS", "off")
    bar = progress(range(5), desc="quiet")
    assert bar.disable
    assert list(bar) == [0, 1, 2, 3, 4]
    manual = progress(total=3)
    manual.update(3)
    manual.close()
    assert capsys.readouterr() == ("", "")


def test_plain_mode_writes_to_stderr_not_stdout(monkeypatch, capsys):
    monkeypatch.setenv("KAE_PROGRESS", "plain")
    items = list(progress(range(4), desc="plain-bar"))
    assert items == [0, 1, 2, 3]
    out, err = capsys.readouterr()
    assert out == ""
    assert "plain-bar" in err and "4/4" in err


def test_plain_mode_bar_settings(monkeypatch, capsys):
    monkeypatch.setenv("KAE_PROGRESS", "plain")
    bar = progress(total=10, desc="x")
    try:
        assert not bar.disable
        assert bar.ascii is True  # no unicode blocks in logs
        assert bar.mininterval == 5.0  # refreshed at most every few seconds
        assert bar.total == 10
    finally:
        bar.close()
    bar = progress(total=2, mininterval=0.0)  # keyword arguments go through to tqdm
    try:
        assert bar.mininterval == 0.0
    finally:
        bar.close()
    capsys.readouterr()
