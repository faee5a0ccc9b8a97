"""The smoke scale of the full profile (kae_utils.core.scale): its rules, and that every notebook's settings obey them."""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

import pytest

from kae_utils.benchmarks import taskonomy
from kae_utils.core import scale
from kae_utils.data.registry import OFFLINE_SIZES, offline_config, offline_sizes

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))


# ------------------------------------------------------------------------------------------ the rules


def test_scale_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAE_SCALE", raising=False)
    assert scale.current_scale() == "paper" and not scale.is_smoke("full")
    monkeypatch.setenv("KAE_SCALE", "smoke")
    assert scale.current_scale() == "smoke" and scale.is_smoke("full")
    assert not scale.is_smoke("quick"), "the quick profile is never shrunk"
    monkeypatch.setenv("KAE_SCALE", "tiny")
    with pytest.raises(ValueError, match="KAE_SCALE must be one of 'paper', 'smoke'; got 'tiny'"):
        scale.current_scale()


@pytest.mark.parametrize(("key", "kind"), [
    ("seeds", "keep"), ("gt_seeds", "keep"), ("temperatures", "keep"), ("tasks", "keep"), ("ablations", "keep"),
    ("student_widths", "keep"), ("widths", "keep"), ("hidden", "keep"), ("image_size", "keep"),
    ("batch_size", "keep"), ("lr", "keep"), ("student_lr", "keep"), ("rounds", "keep"), ("transfer_copies", "keep"),
    ("epochs", "iterations"), ("block_epochs", "iterations"), ("steps", "iterations"),
    ("transfer_size", "images"), ("tsne_images", "images"), ("probes", "images"), ("train", "images"),
    ("test", "images"), ("zoo_train", "images"),
    ("momentum", None), ("epochs_per_round", None), ("n", None),
])
def test_classify(key: str, kind: str | None) -> None:
    assert scale.classify(key) == kind


def test_shrink_keeps_the_branches_and_shrinks_every_count() -> None:
    full = dict(seeds=[0, 1, 2], temperatures=(1, 2, 20), ablations=True, teacher="a-zoo-entry",
                student_widths=(32, 64, 128), batch_size=256, lr=2e-3, transfer_size=20000, align_images=1000,
                block_epochs=4, total_epochs=20, nested=dict(steps=400, hidden=64), none_here=None)
    small = scale.shrink(full)
    for key in ("seeds", "temperatures", "ablations", "teacher", "student_widths", "batch_size", "lr", "none_here"):
        assert small[key] == full[key], key
    assert small["transfer_size"] == 40 and small["align_images"] == scale.IMAGE_FLOOR  # 20000 / 500; the floor
    assert (small["block_epochs"], small["total_epochs"]) == (1, 5), "the shortest phase is one epoch, ratios kept"
    assert small["nested"] == {"steps": 1, "hidden": 64}
    assert full["transfer_size"] == 20000, "a copy: the original is untouched"


def test_shrink_keeps_a_check_between_phases() -> None:
    """Notebook 06 refuses total_epochs <= stages * block_epochs; the proportional rule keeps that true."""
    for block, total in ((4, 20), (5, 21), (3, 15), (2, 30)):
        small = scale.shrink(dict(block_epochs=block, total_epochs=total))
        assert (total > 4 * block) == (small["total_epochs"] > 4 * small["block_epochs"]), (block, total, small)


def test_image_floor_follows_the_image_size() -> None:
    assert scale.shrink_images(10) == 10, "never more than there were"
    assert scale.shrink_images(8000) == scale.IMAGE_FLOOR
    assert scale.shrink_images(8000, image_size=128) == scale.IMAGE_FLOOR
    assert scale.shrink_images(50000, image_size=32) == scale.SMALL_IMAGE_FLOOR == 512
    assert scale.shrink_images(10000, image_size=32) == 512 and scale.shrink_images(400, image_size=32) == 400
    assert scale.shrink(dict(image_size=64, train=4000)) == dict(image_size=64, train=16)
    assert scale.shrink(dict(image_size=32, train=50000, test=10000)) == dict(image_size=32, train=512, test=512)


def test_an_unclassified_count_is_refused_by_name() -> None:
    settings = dict(seeds=[0], warmup=500, labels=("a", "b"), flag=True, nested=dict(momentum=0.9))
    assert scale.unclassified(settings) == ["warmup", "nested.momentum"]
    with pytest.raises(ValueError, match=r"cannot scale 'warmup', 'nested.momentum' of 09's LAYER_CFG.*RULES"):
        scale.shrink(settings, where="09's LAYER_CFG")


def test_profile_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = {"quick": dict(epochs=5, train=100), "full": dict(epochs=50, train=50000)}
    monkeypatch.delenv("KAE_SCALE", raising=False)
    assert scale.profile_settings(settings, "full") == dict(epochs=50, train=50000)
    assert scale.profile_settings(settings, "full") is not settings["full"], "a copy"
    monkeypatch.setenv("KAE_SCALE", "smoke")
    assert scale.profile_settings(settings, "full") == dict(epochs=1, train=100)
    assert scale.profile_settings(settings, "quick") == dict(epochs=5, train=100)
    with pytest.raises(ValueError, match="PROFILE must be one of 'quick', 'full'; got 'paper'"):
        scale.profile_settings(settings, "paper")


def test_data_sets_and_taskonomy_follow_the_scale(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAE_SCALE", raising=False)
    assert offline_sizes("shapes", "full") == OFFLINE_SIZES["shapes"]["full"]
    paper = taskonomy.settings("full")
    monkeypatch.setenv("KAE_SCALE", "smoke")
    small = offline_sizes("shapes", "full")
    assert small["image_size"] == 32 and small["train"] < OFFLINE_SIZES["shapes"]["full"]["train"]
    assert offline_config("shapes", "train", "full")["n_train"] == small["train"], "the materialised file's key too"
    assert offline_sizes("shapes", "quick") == OFFLINE_SIZES["shapes"]["quick"]
    smoke = taskonomy.settings("full")
    assert smoke["tasks"] == paper["tasks"] and smoke["image_size"] == paper["image_size"]
    assert smoke["widths"] == paper["widths"] and smoke["transfer"]["label_size"] == paper["transfer"]["label_size"]
    assert smoke["zoo_train"] < paper["zoo_train"] and smoke["transfer"]["steps"] < paper["transfer"]["steps"]
    assert taskonomy.settings("full", at_scale=False) == paper, "the zoo's registry reads the settings as written"


@pytest.mark.parametrize("settings", [*(v for v in OFFLINE_SIZES.values()), *taskonomy.PROFILE_SETTINGS.values()])
def test_library_settings_are_classified(settings: dict) -> None:
    for profile_settings in settings.values() if "full" in settings else [settings]:
        assert scale.unclassified(profile_settings) == []


# ---------------------------------------------------------------------- the notebooks' settings


class _Unknown:
    """A name the settings refer to that this test cannot evaluate: its key must be classified."""


class _Names(dict):
    def __missing__(self, key: str) -> object:
        return getattr(builtins, key, _Unknown())


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and (getattr(n.func, "id", None) == name or getattr(n.func, "attr", None) == name)]


def _assigned(tree: ast.Module, name: str) -> ast.expr:
    values = [n.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
              and any(isinstance(t, ast.Name) and t.id == name for t in n.targets)]
    assert values, f"{name} is passed to profile_settings but never assigned"
    return values[0]


def _profiles(path: Path) -> list[tuple[str, dict]]:
    """``(where, one profile's settings)`` for every dict a notebook passes to ``profile_settings``."""
    tree = ast.parse(path.read_text())
    out = []
    for call in _calls(tree, "profile_settings"):
        arg = call.args[0]
        where = f"{path.stem}: {arg.id if isinstance(arg, ast.Name) else 'the dict'} of line {call.lineno}"
        node = _assigned(tree, arg.id) if isinstance(arg, ast.Name) else arg
        value = eval(compile(ast.Expression(node), str(path), "eval"), {"__builtins__": {}, "SEED": 0, "range": range}, _Names(SEED=0))
        out += [(f"{where}, {profile}", settings) for profile, settings in value.items()]
    return out


def _unclassified(settings: dict) -> list[str]:
    unknown = [k for k, v in settings.items() if isinstance(v, _Unknown) and scale.classify(k) is None]
    return scale.unclassified({k: v for k, v in settings.items() if not isinstance(v, _Unknown)}) + unknown


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_settings_are_classified(path: Path) -> None:
    """Every numeric setting of every profile is kept or shrunk by a rule: a new count added to a notebook's
    SETTINGS fails here until it is sorted into a kind of kae_utils.core.scale.RULES."""
    for where, settings in _profiles(path):
        missing = _unclassified(settings)
        assert not missing, (f"{where}: no rule of kae_utils.core.scale.RULES classifies {missing}; add each to a rule "
                             "(a count the smoke scale shrinks, or a setting it keeps)")
        scale.shrink({k: v for k, v in settings.items() if not isinstance(v, _Unknown)}, where)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_take_their_profile_through_the_scale(path: Path) -> None:
    """A notebook's profile settings come through ``profile_settings`` (or ``taskonomy.settings``, which applies the
    same scale), never ``SETTINGS[PROFILE]`` directly: otherwise KAE_SCALE=smoke would run its full profile at
    paper scale."""
    tree = ast.parse(path.read_text())
    direct = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Subscript)
              and isinstance(n.slice, ast.Name) and n.slice.id == "PROFILE"
              and (isinstance(n.value, ast.Dict) or (isinstance(n.value, ast.Name) and n.value.id.isupper()))]
    assert not direct, f"{path.name}: lines {direct} index a settings dict by PROFILE; use profile_settings"
    if path.stem != "00_datasets":  # 00 has no settings of its own: it describes the data sets
        assert _calls(tree, "profile_settings") or _calls(tree, "settings"), f"{path.name}: no profile_settings"
