"""kae_utils.display.widgets: controls in a live kernel, one printed line in batch runs, clear errors."""

from __future__ import annotations

import pytest

from kae_utils.display.widgets import explore, widgets_enabled


def plot(space: str, colour: str) -> str:
    return f"{space}/{colour}"


def test_batch_mode_prints_the_choices_and_draws_nothing(monkeypatch, capsys):
    monkeypatch.setenv("KAE_PROGRESS", "plain")
    calls = []
    assert not widgets_enabled()
    result = explore(lambda space, colour: calls.append((space, colour)), space=["raw", "common"], colour=("class",))
    assert result is None and calls == []
    assert capsys.readouterr().out == (
        "Interactive controls appear when this notebook runs in Jupyter (space: raw, common; colour: class).\n"
    )


def test_widget_mode_builds_dropdowns_that_call_the_plot(monkeypatch):
    ipywidgets = pytest.importorskip("ipywidgets")
    monkeypatch.setenv("KAE_PROGRESS", "widget")
    calls = []

    def record(space: str, colour: str) -> None:
        calls.append((space, colour))

    box = explore(record, space=["raw", "common"], colour=["class", "teacher"])
    assert isinstance(box, ipywidgets.interactive)
    dropdowns = [w for w in box.children if isinstance(w, ipywidgets.Dropdown)]
    assert [d.description for d in dropdowns] == ["space", "colour"]
    assert calls[-1] == ("raw", "class")  # drawn once with the defaults
    dropdowns[0].value = "common"
    assert calls[-1] == ("common", "class")


@pytest.mark.parametrize(
    ("controls", "error", "match"),
    [
        ({}, ValueError, "at least one control"),
        ({"space": []}, ValueError, "non-empty list"),
        ({"space": "raw"}, ValueError, "non-empty list"),
        ({"space": ["raw"]}, TypeError, "cannot be called with the controls"),
        ({"space": ["raw"], "colour": ["c"], "size": [1]}, TypeError, "cannot be called"),
    ],
)
def test_bad_controls_are_refused_in_any_mode(monkeypatch, controls, error, match):
    monkeypatch.setenv("KAE_PROGRESS", "plain")
    with pytest.raises(error, match=match):
        explore(plot, **controls)


def test_plot_fn_must_be_callable():
    with pytest.raises(TypeError, match="callable"):
        explore("not a function", space=["raw"])
