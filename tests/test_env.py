"""Tests for kae_utils.core.params, kae_utils.core.paths and kae_utils.notebook: parameter checks, seeding, device
choice, repository paths."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

import kae_utils
import kae_utils.core.paths as paths_module
from kae_utils.core.params import DEVICES, PROFILES, check_choice, check_number
from kae_utils.core.paths import cache_dir, repo_root, runs_dir
from kae_utils.notebook import resolve_device, seed_everything, setup_notebook


def make_fake_root(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (path / "notebooks").mkdir(exist_ok=True)
    return path


# ------------------------------------------------------------------------------------ check_choice


def test_check_choice_returns_allowed_value():
    assert check_choice("PROFILE", "full", PROFILES) == "full"
    assert check_choice("N", 3, range(5)) == 3  # any iterable, even a one-shot one


def test_check_choice_message_names_parameter_choices_and_bad_value():
    with pytest.raises(ValueError) as info:
        check_choice("PROFILE", "qiuck", PROFILES)
    assert str(info.value) == "PROFILE must be one of 'quick', 'full'; got 'qiuck'"


def test_check_choice_accepts_generator_of_choices():
    # allowed is materialised once: a generator must not be exhausted by the membership test
    with pytest.raises(ValueError, match="'a', 'b'"):
        check_choice("X", "c", (c for c in "ab"))


def test_constants():
    assert DEVICES == ("auto", "cpu", "cuda")
    assert PROFILES == ("quick", "full")


# ---------------------------------------------------------------------------------- seed_everything


def draw() -> tuple:
    return (random.random(), float(np.random.rand()), torch.rand(3).tolist())


def test_seed_everything_makes_all_three_rngs_reproducible():
    assert seed_everything(123) == 123
    first = draw()
    seed_everything(123)
    assert draw() == first
    seed_everything(124)
    other = draw()
    # every one of the three generators must change with the seed
    assert all(a != b for a, b in zip(first, other, strict=True))


def test_seed_everything_large_seed_is_reduced_for_numpy():
    # numpy only takes seeds < 2**32; torch and random take larger ones
    seed_everything(2**32 + 5)
    a = float(np.random.rand())
    seed_everything(5)
    assert float(np.random.rand()) == a


@pytest.mark.parametrize("bad", [-1, True, False, 1.0, "0", None])
def test_seed_everything_rejects_non_integers_and_negatives(bad):
    with pytest.raises(ValueError, match="non-negative integer"):
        seed_everything(bad)


# ------------------------------------------------------------------------------------ check_number


@pytest.mark.parametrize(
    ("value", "kwargs"),
    [
        (0, dict(integer=True, minimum=0)),
        (2**70, dict(integer=True, minimum=0)),  # a Python int of any size, not overflowing a float
        (1, dict(integer=True, minimum=1)),
        (0.5, dict(positive=True)),
        (3, dict(positive=True)),  # an int is a number
        (0.0, dict(minimum=0, maximum=1)),
        (1, dict(minimum=0, maximum=1)),
        (-7.25, {}),
    ],
)
def test_check_number_returns_accepted_value_unchanged(value, kwargs):
    result = check_number("X", value, **kwargs)
    assert result == value and type(result) is type(value)


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        (-1, dict(integer=True, minimum=0), "SEED must be an integer >= 0; got -1"),
        (True, dict(integer=True, minimum=0), "SEED must be an integer >= 0; got True"),
        (1.0, dict(integer=True, minimum=0), "SEED must be an integer >= 0; got 1.0"),
        ("3", dict(integer=True, minimum=0), "SEED must be an integer >= 0; got '3'"),
        (0, dict(integer=True, minimum=1), "SEED must be an integer >= 1; got 0"),
        (0, dict(positive=True), "SEED must be a number > 0; got 0"),
        (-0.5, dict(positive=True), "SEED must be a number > 0; got -0.5"),
        (1.5, dict(minimum=0, maximum=1), r"SEED must be a number in \[0, 1\]; got 1.5"),
        (-0.1, dict(minimum=0, maximum=1), r"SEED must be a number in \[0, 1\]; got -0.1"),
        (2, dict(maximum=1), "SEED must be a number <= 1; got 2"),
        (float("nan"), dict(minimum=0), "SEED must be a number >= 0; got nan"),
        (float("inf"), dict(minimum=0), "SEED must be a number >= 0; got inf"),
        (float("-inf"), {}, "SEED must be a number; got -inf"),
        (None, {}, "SEED must be a number; got None"),
        (False, {}, "SEED must be a number; got False"),
    ],
)
def test_check_number_message_names_parameter_rule_and_bad_value(value, kwargs, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        check_number("SEED", value, **kwargs)


# ----------------------------------------------------------------------------------- resolve_device


def test_resolve_device_auto_and_cpu():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto") == torch.device(expected)
    assert resolve_device() == torch.device(expected)
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")
def test_resolve_device_cuda_without_gpu_raises():
    with pytest.raises(RuntimeError, match="DEVICE"):
        resolve_device("cuda")


@pytest.mark.parametrize("bad", ["gpu", "CPU", "cuda:0", ""])
def test_resolve_device_unknown_lists_choices(bad):
    with pytest.raises(ValueError) as info:
        resolve_device(bad)
    message = str(info.value)
    assert "DEVICE" in message and repr(bad) in message
    for choice in ("'auto'", "'cpu'", "'cuda'"):
        assert choice in message


# --------------------------------------------------------------------------------------- repo_root


def test_repo_root_honours_kae_root(tmp_path, monkeypatch):
    monkeypatch.setenv("KAE_ROOT", str(tmp_path / "sub" / ".."))
    assert repo_root() == tmp_path.resolve()  # resolved, ".." collapsed


def test_repo_root_default_is_this_checkout(monkeypatch):
    monkeypatch.delenv("KAE_ROOT", raising=False)
    root = repo_root()
    assert root == Path(kae_utils.__file__).resolve().parent.parent
    assert (root / "pyproject.toml").is_file() and (root / "notebooks").is_dir()


def test_repo_root_falls_back_to_parents_of_cwd(tmp_path, monkeypatch):
    # pretend the package is installed elsewhere (not a checkout): the search starts at the cwd
    monkeypatch.delenv("KAE_ROOT", raising=False)
    monkeypatch.setattr(paths_module, "__file__", str(tmp_path / "site-packages" / "kae_utils" / "core" / "paths.py"))
    root = make_fake_root(tmp_path / "repo")
    (root / "notebooks" / "deep").mkdir()
    monkeypatch.chdir(root / "notebooks" / "deep")
    assert repo_root() == root.resolve()


def test_repo_root_needs_both_markers(tmp_path, monkeypatch):
    monkeypatch.delenv("KAE_ROOT", raising=False)
    monkeypatch.setattr(paths_module, "__file__", str(tmp_path / "site-packages" / "kae_utils" / "core" / "paths.py"))
    work = tmp_path / "work"
    work.mkdir()
    (work / "pyproject.toml").write_text("")  # no notebooks/: not a root
    monkeypatch.chdir(work)
    # tmp_path's parents might, in principle, look like a root; only assert when none does
    if any((p / "pyproject.toml").exists() and (p / "notebooks").exists() for p in work.resolve().parents):
        pytest.skip("a parent of the temporary folder looks like a repository root")
    with pytest.raises(RuntimeError, match="KAE_ROOT"):
        repo_root()


# ---------------------------------------------------------------------------- cache_dir / runs_dir


def test_cache_dir_honours_env_and_creates_it(tmp_path, monkeypatch):
    target = tmp_path / "a" / "b"
    monkeypatch.setenv("KAE_CACHE_DIR", str(target))
    assert cache_dir() == target
    assert target.is_dir()


def test_cache_dir_default_under_root(tmp_path, monkeypatch):
    monkeypatch.delenv("KAE_CACHE_DIR", raising=False)
    monkeypatch.setenv("KAE_ROOT", str(tmp_path))
    assert cache_dir() == tmp_path.resolve() / ".cache" / "kae"
    assert (tmp_path / ".cache" / "kae").is_dir()


def test_runs_dir_honours_env_and_creates_notebook_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("KAE_RUN_DIR", raising=False)
    monkeypatch.setenv("KAE_RUNS_DIR", str(tmp_path / "runs"))
    assert runs_dir() == tmp_path / "runs"
    path = runs_dir("01_kd")
    assert path == tmp_path / "runs" / "01_kd"
    assert path.is_dir()


def test_runs_dir_default_under_root(tmp_path, monkeypatch):
    monkeypatch.delenv("KAE_RUN_DIR", raising=False)
    monkeypatch.delenv("KAE_RUNS_DIR", raising=False)
    monkeypatch.setenv("KAE_ROOT", str(tmp_path))
    assert runs_dir("nb") == tmp_path.resolve() / "runs" / "nb"
    assert (tmp_path / "runs" / "nb").is_dir()


def test_runs_dir_of_one_sweep_run(tmp_path, monkeypatch):
    """The runner's KAE_RUN_DIR (one sweep run's folder) is where a notebook's files go; the root stays."""
    monkeypatch.setenv("KAE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("KAE_RUN_DIR", str(tmp_path / "sweep" / "01_kd" / "SEED=1"))
    assert runs_dir("01_kd") == tmp_path / "sweep" / "01_kd" / "SEED=1"
    assert (tmp_path / "sweep" / "01_kd" / "SEED=1").is_dir()
    assert runs_dir() == tmp_path / "runs"


# ----------------------------------------------------------------------------------- setup_notebook


def test_setup_notebook_seeds_and_returns_device():
    dev = setup_notebook(7, device="cpu")
    assert dev == torch.device("cpu")
    a = torch.rand(2).tolist()
    torch.manual_seed(7)
    assert torch.rand(2).tolist() == a


def test_setup_notebook_sets_threads():
    # the autouse fixture restores the thread count afterwards
    setup_notebook(0, device="cpu", threads=2)
    assert torch.get_num_threads() == 2


def test_setup_notebook_rejects_bad_device_and_seed():
    with pytest.raises(ValueError, match="DEVICE"):
        setup_notebook(0, device="gpu")
    with pytest.raises(ValueError, match="seed"):
        setup_notebook(-3)
