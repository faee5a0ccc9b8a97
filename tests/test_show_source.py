"""kae_utils.display.source: the one way the notebooks show library code."""

from __future__ import annotations

import sys

import pytest

from kae_utils.display import source as source_module
from kae_utils.display.source import markdown_block, show_source, source_text


def _example(x: int) -> int:
    """Twice x."""
    y = 2 * x
    return y


class _Holder:
    def method(self) -> str:
        """An indented method."""
        return "``` inside"


def test_source_text_is_the_whole_source_dedented():
    assert source_text(_example) == (
        'def _example(x: int) -> int:\n    """Twice x."""\n    y = 2 * x\n    return y')
    method = source_text(_Holder.method)
    assert method.startswith("def method(self) -> str:") and method.endswith('return "``` inside"')
    assert source_text(_Holder).startswith("class _Holder:")


def test_source_text_from_a_start_line():
    assert source_text(_example, start="y = 2") == "y = 2 * x\nreturn y"
    with pytest.raises(ValueError, match="no line of the source of '_example' contains 'z = '"):
        source_text(_example, start="z = ")


def test_markdown_block_fence_outlasts_backticks_inside():
    assert markdown_block("a = 1") == "```python\na = 1\n```"
    assert markdown_block('s = "````"') == '`````python\ns = "````"\n`````'


def test_plain_text_without_an_ipython_shell(capsys, monkeypatch):
    monkeypatch.setattr(source_module, "_shell", lambda: None)
    assert show_source(_example) is None
    assert capsys.readouterr().out == source_text(_example) + "\n"


def test_markdown_in_an_ipython_shell(monkeypatch):
    display_module = pytest.importorskip("IPython.display")
    shown = []
    monkeypatch.setattr(source_module, "_shell", lambda: object())
    monkeypatch.setattr(display_module, "display", shown.append)
    show_source(_Holder.method)
    assert len(shown) == 1 and isinstance(shown[0], display_module.Markdown)
    assert shown[0].data == markdown_block(source_text(_Holder.method))
    assert shown[0].data.startswith("````python\ndef method")


def test_no_ipython_installed_means_plain_text(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "IPython", None)  # import IPython raises ImportError
    show_source(_example, start="return")
    assert capsys.readouterr().out == "return y\n"
