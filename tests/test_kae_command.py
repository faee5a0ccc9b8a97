"""The ``kae`` command (kae_tools.__main__): its help, an unknown command, dispatch to each tool, ``kae seeds``'s
composition of the seeds sweep and the README collection, and the installed console script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from kae_tools import __main__ as kae
from kae_tools.notebooks.nbclean import clean_file

COMMANDS = ["run", "sweep", "seeds", "readme", "pair", "clean", "zoo"]


def test_help_lists_every_command(capsys):
    assert kae.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: kae COMMAND")
    for name in COMMANDS:
        assert f"\n  {name} " in out
    assert list(kae.COMMANDS) == COMMANDS


def test_no_command_is_a_usage_error(capsys):
    assert kae.main([]) == 2
    assert "usage: kae COMMAND" in capsys.readouterr().err


def test_unknown_command_is_a_clear_error(capsys):
    assert kae.main(["frobnicate", "--help"]) == 2
    err = capsys.readouterr().err
    assert "kae: unknown command 'frobnicate'; choose from run, sweep, seeds, readme, pair, clean, zoo" in err


@pytest.mark.parametrize("name", COMMANDS)
def test_each_command_has_its_own_help(name, capsys):
    assert kae.main([name, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: ")
    if name != "zoo":  # the zoo's own parser keeps its module's name (python -m kae_utils.zoo)
        assert out.startswith(f"usage: kae {name}")


def test_a_usage_error_of_a_command_is_exit_code_2(capsys):
    assert kae.main(["run", "--jobs", "0"]) == 2
    assert "--jobs must be at least 1" in capsys.readouterr().err


def test_dispatch_reaches_the_tool(tmp_path, capsys):
    """``kae clean --check`` is nbclean's own check: 1 for a notebook with run metadata, 0 once cleaned."""
    nb = new_notebook()
    nb.metadata.papermill = {"version": "2.7.0"}
    nb.cells = [new_code_cell("1 + 1", execution_count=7)]
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    assert kae.main(["clean", "--check", str(path)]) == 1
    assert f"would clean: {path}" in capsys.readouterr().out
    clean_file(path)
    assert kae.main(["clean", "--check", str(path)]) == 0


def test_seeds_is_the_seeds_sweep_then_its_collection(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(kae.cli, "sweep_main", lambda argv: calls.append(("sweep", argv)) or 1)
    monkeypatch.setattr(kae.readme, "main", lambda argv: calls.append(("readme", argv)) or 0)
    assert kae.main(["seeds", "05", "--jobs", "2", "--out", str(tmp_path)]) == 1  # the runner's exit code
    (_, sweep), (_, collect) = calls
    assert sweep[0].endswith("sweeps/seeds.yaml") and sweep[1:5] == ["--out", sweep[2], "--resume", "05"]
    assert sweep[-2:] == ["--out", str(tmp_path)]  # the caller's --out wins (argparse takes the last)
    assert collect == ["--collect-seeds", str(tmp_path)]  # collected even though a run failed

    calls.clear()
    monkeypatch.setattr(kae.cli, "sweep_main", lambda argv: calls.append(("sweep", argv)) or 2)
    assert kae.main(["seeds", "nope"]) == 2  # a usage error: nothing ran, nothing collected
    assert [c for c, _ in calls] == ["sweep"]


def test_module_and_console_script_entry_points():
    done = subprocess.run([sys.executable, "-m", "kae_tools", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "usage: kae COMMAND" in done.stdout
    script = Path(sys.executable).with_name("kae")
    assert script.exists(), "the console script `kae` is missing: make setup installs it ([project.scripts])"
    done = subprocess.run([str(script), "nope"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "unknown command 'nope'" in done.stderr
