"""The model zoo: registry and shipped manifest agree, loads are hash-checked, builds are deterministic and
resumable, the pretraining data is disjoint from the notebooks' data. The real zoo is never rebuilt here."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from kae_utils import zoo
from kae_utils.core.paths import repo_root
from kae_utils.data import load_dataset, load_digits
from kae_utils.training.trainer import Callback
from kae_utils.zoo.entries import Recipe, ZooEntry, ZooError, ZooIntegrityError, make_registry
from kae_utils.zoo.registry.common import digits_split, pretrain_images, scenes_data
from kae_utils.zoo.store import Zoo

# ------------------------------------------------------------------------------------ a tiny zoo


def _tiny_registry(epochs: int = 3) -> dict[str, ZooEntry]:
    """A pretrained MLP (silhouettes) and a digits teacher fine-tuned from it: both train in well under a second."""
    pre = ZooEntry(
        name="tiny-pre", task="tiny pretraining", arch="mlp",
        arch_args={"num_classes": 24, "in_channels": 1, "widths": [16], "image_size": 8},
        data=pretrain_images(0, 300, "silhouette", ("shape", "size")),
        held_out=pretrain_images(300, 100, "silhouette", ("shape", "size")),
        probe={"train": digits_split("train", (0, 1)), "test": digits_split("test", (0, 1))},
        recipe=Recipe(epochs=epochs, lr=3e-3, batch_size=64), seed=0, used_by=("tests",))
    teacher = ZooEntry(
        name="tiny-teacher", task="digits 0..1", arch="mlp",
        arch_args={"num_classes": 2, "in_channels": 1, "widths": [16], "image_size": 8},
        data=digits_split("train", (0, 1)), held_out=digits_split("test", (0, 1)),
        recipe=Recipe(epochs=epochs, lr=3e-3, batch_size=64, shift_copies=1), seed=0, init="tiny-pre",
        used_by=("tests",))
    return make_registry([pre, teacher])


@pytest.fixture()
def tiny(tmp_path: Path) -> Zoo:
    z = Zoo(tmp_path / "zoo", _tiny_registry())
    z.build(device="cpu", profile="quick", log=lambda _: None)
    return z


def test_build_writes_weights_and_manifest(tiny: Zoo) -> None:
    data = tiny.manifest()
    assert set(data["entries"]) == {"tiny-pre", "tiny-teacher"}
    for name, record in data["entries"].items():
        path = tiny.root / record["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == record["sha256"]
        assert record["config_hash"] == tiny.config_hash(name)
        assert record["parameters"] == sum(p.numel() for p in tiny.load(name).parameters())
        assert len(record["history"]["train_loss"]) == 3 and len(record["history"]["val_accuracy"]) == 3
        assert 0.0 <= record["metrics"]["accuracy"] <= 1.0
    assert data["entries"]["tiny-teacher"]["metrics"]["accuracy"] > 0.9  # 0 vs 1 is easy
    assert set(data["entries"]["tiny-pre"]["probe"]) == {"features", "raw pixels"}
    assert tiny.verify() == []
    assert not list((tiny.root / ".partial").glob("*")), "checkpoints are removed once the entry is built"


def test_build_is_deterministic_and_skips_what_is_up_to_date(tiny: Zoo, tmp_path: Path) -> None:
    again = Zoo(tmp_path / "again", _tiny_registry())
    again.build(device="cpu", profile="quick", log=lambda _: None)
    for name in ("tiny-pre", "tiny-teacher"):
        assert again.manifest()["entries"][name]["sha256"] == tiny.manifest()["entries"][name]["sha256"]
    said: list[str] = []
    assert tiny.build(device="cpu", profile="quick", log=said.append) == []
    assert said == ["tiny-pre: up to date", "tiny-teacher: up to date"]


def test_a_changed_recipe_makes_an_entry_and_those_built_on_it_stale(tiny: Zoo) -> None:
    changed = _tiny_registry(epochs=4)
    z = Zoo(tiny.root, changed)
    assert z.status("tiny-pre") == "stale"
    assert z.status("tiny-teacher") == "stale", "the teacher's hash includes its init's hash"
    with pytest.raises(ZooError, match="stale.*make zoo NAMES=tiny-pre"):
        z.load("tiny-pre")
    assert z.build(["tiny-teacher"], device="cpu", log=lambda _: None) == ["tiny-pre", "tiny-teacher"]
    assert z.status("tiny-teacher") == "built"


class _Interrupt(Callback):
    """Stops a build with KeyboardInterrupt after epoch ``at`` (0-based) of the first fit it sees."""

    def __init__(self, at: int) -> None:
        self.at, self.fired = at, False

    def on_epoch_end(self, trainer, epoch, logs) -> None:
        if not self.fired and epoch == self.at:
            self.fired = True
            raise KeyboardInterrupt


def test_an_interrupted_build_resumes_and_gives_the_same_weights(tiny: Zoo, tmp_path: Path) -> None:
    z = Zoo(tmp_path / "interrupted", _tiny_registry())
    with pytest.raises(KeyboardInterrupt):
        z.build(device="cpu", log=lambda _: None, callbacks=[_Interrupt(at=1)])
    assert z.status("tiny-pre") == "missing" and not z.weights_path("tiny-pre").exists()
    assert list((z.root / ".partial").glob("tiny-pre-*.ckpt")), "the interrupted training left its checkpoint"
    z.build(device="cpu", log=lambda _: None)
    for name in ("tiny-pre", "tiny-teacher"):
        assert z.manifest()["entries"][name]["sha256"] == tiny.manifest()["entries"][name]["sha256"]


def test_load_refuses_a_tampered_file_with_its_path(tiny: Zoo) -> None:
    path = tiny.weights_path("tiny-teacher")
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(ZooIntegrityError, match=f"refusing to load {path}"):
        tiny.load("tiny-teacher")


def test_load_refuses_a_file_built_for_another_recipe(tiny: Zoo) -> None:
    """A swapped file whose manifest record was edited to match still carries its own config hash."""
    data = tiny.manifest()
    pre, teacher = tiny.weights_path("tiny-pre"), tiny.weights_path("tiny-teacher")
    shutil.copy(pre, teacher)
    data["entries"]["tiny-teacher"]["sha256"] = data["entries"]["tiny-pre"]["sha256"]
    tiny.manifest_path.write_text(json.dumps(data))
    with pytest.raises(ZooIntegrityError, match="metadata names config"):
        tiny.load("tiny-teacher")


def test_load_of_a_missing_file_names_the_command(tiny: Zoo) -> None:
    tiny.weights_path("tiny-pre").unlink()
    with pytest.raises(ZooError, match=r"not built.*make zoo NAMES=tiny-pre"):
        tiny.load("tiny-pre")


def test_unknown_names_list_the_close_ones(tiny: Zoo) -> None:
    with pytest.raises(KeyError, match="did you mean tiny-teacher"):
        tiny.load("tiny-teachr")
    with pytest.raises(KeyError, match="scenes64-segmentation"):
        zoo.entry("scenes64-segmentaton")


def test_verify_fails_on_a_flipped_byte_a_missing_and_an_unlisted_file(tiny: Zoo) -> None:
    path = tiny.weights_path("tiny-pre")
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x10
    path.write_bytes(bytes(raw))
    tiny.weights_path("tiny-teacher").unlink()
    (tiny.root / "weights" / "stray.safetensors").write_bytes(b"x")
    problems = tiny.verify()
    assert any(p.startswith("hash mismatch") and "tiny-pre" in p for p in problems)
    assert any(p.startswith("missing") and "tiny-teacher" in p for p in problems)
    assert any(p.startswith("unlisted") and "stray" in p for p in problems)
    assert zoo.main(["verify"], zoo=tiny) == 1


def test_verify_command_passes_on_a_good_zoo(tiny: Zoo, capsys) -> None:
    assert zoo.main(["verify"], zoo=tiny) == 0
    assert "2 entries checked, 0 problem(s)" in capsys.readouterr().out


def test_list_command_shows_every_entry(tiny: Zoo, capsys) -> None:
    assert zoo.main(["list"], zoo=tiny) == 0
    out = capsys.readouterr().out
    assert "tiny-pre" in out and "tiny-teacher" in out and "accuracy" in out and "built" in out


def test_build_command_rejects_an_unknown_name(tiny: Zoo, capsys) -> None:
    assert zoo.main(["build", "tiny-prr"], zoo=tiny) == 2
    assert "did you mean tiny-pre" in capsys.readouterr().err


def test_obtain_train_retrains_through_the_cache(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("KAE_CACHE_DIR", str(tmp_path / "cache"))
    z = Zoo(tmp_path / "empty", _tiny_registry())
    model = z.obtain("tiny-teacher", "train")
    assert len(list((tmp_path / "cache").glob("zoo-tiny-teacher-*.pt"))) == 1
    assert len(list((tmp_path / "cache").glob("zoo-tiny-pre-*.pt"))) == 1, "its init is retrained too"
    again = z.obtain("tiny-teacher", "train")
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="TEACHERS must be one of 'zoo', 'train'"):
        z.obtain("tiny-teacher", "download")


def test_make_registry_checks_names_and_init_order() -> None:
    pre, teacher = _tiny_registry().values()
    with pytest.raises(ValueError, match="not defined before it"):
        make_registry([teacher, pre])
    with pytest.raises(ValueError, match="defined twice"):
        make_registry([pre, pre])
    with pytest.raises(ValueError, match="lower-case"):
        make_registry([ZooEntry(**{**pre.__dict__, "name": "Tiny_Pre"})])


# ------------------------------------------------------------------------------ the shipped zoo


def test_every_quick_entry_is_built_and_agrees_with_the_registry() -> None:
    repo = Zoo()
    data = repo.manifest()
    for name, e in repo.registry.items():
        if e.profile == "quick":
            assert repo.status(name, data) == "built", f"{name}: run `make zoo NAMES={name}` and commit zoo/"
    for name, record in data["entries"].items():
        assert name in repo.registry, f"{name} is in zoo/manifest.json but not in the registry"
        assert record["config_hash"] == repo.config_hash(name), f"{name} is stale: rebuild it"


def test_every_shipped_entry_says_how_it_was_computed() -> None:
    """Precision and memory format are recorded, so `build` on the same device, threads and numerics can
    reproduce an entry's bytes (KAE_CHANNELS_LAST=0 and --precision fp32 for the entries built before bf16)."""
    for name, record in Zoo().manifest()["entries"].items():
        assert record.get("precision") in ("fp32", "bf16"), name
        assert record.get("memory_format") in ("contiguous", "channels_last"), name


def test_every_shipped_file_matches_the_manifest() -> None:
    assert Zoo().verify() == []


def test_shipped_weights_are_small() -> None:
    total = sum(p.stat().st_size for p in (zoo.zoo_dir() / "weights").iterdir())
    assert total <= 40 * 2**20


def test_a_full_profile_entry_that_is_not_built_says_how_to_build_it() -> None:
    repo = Zoo()
    missing = [n for n, e in repo.registry.items() if e.profile == "full" and repo.status(n) == "missing"]
    if not missing:
        pytest.skip("every full-profile entry is built")
    with pytest.raises(ZooError, match=f"not built .*GPU.*make zoo NAMES={missing[0]}"):
        repo.load(missing[0])


# --------------------------------------------------------------------------- disjoint pretraining data


def _image_hashes(x: torch.Tensor) -> set[str]:
    x = (x.float() * 255).round().to(torch.uint8).contiguous()
    return {hashlib.sha1(img.numpy().tobytes()).hexdigest() for img in x}


def test_silhouettes_crop_the_object_cell() -> None:
    masks = torch.zeros(2, 32, 32)
    masks[0, 20:24, 20:24] = 1.0  # bottom-right cell
    masks[1, 2:4, 2:4] = 1.0  # top-left cell
    out = zoo.silhouettes(masks, torch.tensor([8, 0]))
    assert out.shape == (2, 1, 8, 8)
    assert out[0].sum() == pytest.approx(16 / 4) and out[1].sum() == pytest.approx(4 / 4)
    with pytest.raises(ValueError, match="expects masks"):
        zoo.silhouettes(torch.zeros(1, 16, 16), torch.tensor([0]))


def test_digits_pretraining_images_are_disjoint_from_digits() -> None:
    pre = zoo.entry("digits-pre-convnet16")
    x_pre, y_pre = zoo.entry_data({**pre.data, "n": 2000})
    x_held, _ = zoo.entry_data(pre.held_out)
    digits = load_digits()
    assert x_pre.shape[1:] == digits.x_train.shape[1:] == (1, 8, 8)
    assert int(y_pre.max()) < 24
    notebooks = _image_hashes(torch.cat([digits.x_train, digits.x_test]))
    assert not _image_hashes(x_pre) & notebooks
    assert not _image_hashes(x_held) & _image_hashes(x_pre), "held-out and training images differ"


def test_shapes_pretraining_stream_is_disjoint_from_the_notebooks_shapes() -> None:
    pre = zoo.entry("shapes-pre-convnet32")
    assert pre.data["seed"] != 0 and pre.data["labels"] == list(zoo.SHAPES_PRETRAIN_LABELS)
    assert not set(pre.data["labels"]) & {"shape", "colour"}, "never the notebooks' target labels"
    x_pre, _ = zoo.entry_data({**pre.data, "n": 1000})
    quick = torch.cat([load_dataset("shapes", s, "quick").x for s in ("train", "test")])
    assert not _image_hashes(x_pre) & _image_hashes(quick)


def test_scenes_teachers_train_on_scenes_no_notebook_uses() -> None:
    teacher = zoo.entry("scenes64-segmentation")
    assert teacher.data["seed"] == zoo.SCENES_TEACHER_SEED != 0
    x_teach, _ = zoo.entry_data({**teacher.data, "n": 256})
    quick = torch.cat([load_dataset("scenes", s, "quick").x for s in ("train", "test")])
    assert not _image_hashes(x_teach) & _image_hashes(quick)
    held = teacher.held_out
    assert (held["seed"], held["start"], held["n"]) == (0, 512, 128), "scored on notebook 04's quick test split"


def test_dense_and_multitask_entries_build_and_score(tmp_path: Path) -> None:
    scenes = scenes_data(["segmentation", "depth"], 32, 0, 16, seed=3)
    held = scenes_data(["segmentation", "depth"], 32, 16, 8, seed=3)
    dense = ZooEntry(name="tiny-depth", task="depth", arch="encdec",
                     arch_args={"kind": "depth", "out_channels": 1, "widths": [4, 8]},
                     data={**scenes, "task": "depth"}, held_out={**held, "task": "depth"},
                     recipe=Recipe(epochs=1, lr=3e-3, batch_size=8))
    multi = ZooEntry(name="tiny-mt", task="seg + depth", arch="mtencdec",
                     arch_args={"tasks": ["segmentation", "depth"], "widths": [4, 8]},
                     data=scenes, held_out=held, recipe=Recipe(epochs=1, lr=3e-3, batch_size=8))
    z = Zoo(tmp_path / "zoo", make_registry([dense, multi]))
    z.build(device="cpu", log=lambda _: None)
    records = z.manifest()["entries"]
    assert set(records["tiny-depth"]["metrics"]) == {"RMSE", "abs rel", "delta<1.25"}
    assert {"segmentation mIoU", "depth RMSE"} <= set(records["tiny-mt"]["metrics"])
    assert zoo.headline(multi) == ("segmentation mIoU", True) and zoo.headline(dense) == ("RMSE", False)
    out = z.load("tiny-mt")(torch.rand(2, 3, 32, 32))
    assert out["segmentation"].shape == (2, 7, 32, 32) and out["depth"].shape == (2, 1, 32, 32)
    # the depth heads start at the mean log-depth of the training labels
    _, y = zoo.entry_data(multi.data)
    for e in (dense, multi):
        model = e.build_model()
        zoo.start_depth_head(e, model, [y["segmentation"], y["depth"]] if e is multi else [y["depth"]])
        head = model.heads["depth"] if e is multi else model.head
        assert head.proj.bias.item() == pytest.approx(y["depth"].log().mean().item(), rel=1e-6)


def test_multihead_entry_trains_on_a_subset_of_fills(tmp_path: Path) -> None:
    """A multi-task attribute teacher (notebooks 05 and 06) trained only on some fill patterns."""
    spec = {"source": "shapes", "seed": 5, "start": 0, "n": 400, "image_size": 32, "view": "rgb",
            "labels": ["shape", "colour"], "per_attribute": True, "where": {"fill": [0, 1]}}
    held = {**spec, "start": 400, "n": 200, "where": None}
    teacher = ZooEntry(name="tiny-heads", task="shape and colour", arch="multihead",
                       arch_args={"backbone": "convnet", "heads": {"shape": 8, "colour": 6}, "in_channels": 3,
                                  "widths": [4, 8]},
                       data=spec, held_out=held, recipe=Recipe(epochs=2, lr=3e-3, batch_size=64))
    x, y = zoo.entry_data(spec)
    full = zoo.entry_data({**spec, "where": None})[0]
    assert set(y) == {"shape", "colour"} and 0 < len(x) < len(full), "only fills 0 and 1 are kept"
    z = Zoo(tmp_path / "zoo", make_registry([teacher]))
    z.build(device="cpu", log=lambda _: None)
    record = z.manifest()["entries"]["tiny-heads"]
    assert set(record["metrics"]) == {"shape accuracy", "colour accuracy"}
    assert zoo.headline(teacher) == ("shape accuracy", True) and "loss" not in z.config("tiny-heads")
    out = z.load("tiny-heads")(torch.rand(3, 3, 32, 32))
    assert out["shape"].shape == (3, 8) and out["colour"].shape == (3, 6)


def test_afk_teachers_cover_every_attribute_once_and_train_on_images_no_notebook_uses() -> None:
    """Notebook 06's multi-task teachers: disjoint task sets covering the five attributes, a stream of their own."""
    from kae_utils.data.shapes_config import ATTRIBUTES

    for profile in ("quick", "full"):
        names = zoo.afk_teacher_names(profile)
        entries = [zoo.entry(name) for name in names.values()]
        tasks = [t for e in entries for t in e.tasks]
        assert sorted(tasks) == sorted(ATTRIBUTES) and len(set(tasks)) == len(tasks)
        for e in entries:
            assert e.kind == "multihead" and e.profile == profile and "06" in e.used_by
            assert e.data["seed"] == zoo.AFK_TEACHER_SHAPES_SEED != 0
            assert e.held_out == {"source": "shapes-split", "split": "test", "profile": profile,
                                  "labels": list(e.tasks), "per_attribute": True}
    teacher = zoo.entry(zoo.afk_teacher_names("quick")["T1"])
    x_teach, y = zoo.entry_data({**teacher.data, "n": 1000})
    assert set(y) == set(teacher.tasks)
    quick = torch.cat([load_dataset("shapes", s, "quick").x for s in ("train", "test")])
    assert not _image_hashes(x_teach) & _image_hashes(quick)
    with pytest.raises(ValueError, match="profile must be one of"):
        zoo.afk_teacher_names("medium")


def test_a_transfer_entry_with_a_corrupted_input_builds_and_scores(tmp_path: Path) -> None:
    """A mini-Taskonomy TaskNet (notebooks 08 and 09): denoising sees noisy scenes and predicts the clean ones."""
    from kae_utils.benchmarks import taskonomy

    spec = {**scenes_data("denoising", 16, 0, 24, seed=3), "input": "noisy"}
    held = {**scenes_data("denoising", 16, 24, 8, seed=3), "input": "noisy"}
    e = ZooEntry(name="tiny-denoise", task="denoising", arch="tasknet",
                 arch_args={"task": "denoising", "widths": [4, 8], "code_channels": 3, "blocks": 1},
                 data=spec, held_out=held, recipe=Recipe(epochs=1, lr=3e-3, batch_size=8))
    x, y = zoo.entry_data(spec)
    clean, _ = zoo.entry_data({**spec, "input": "clean"})
    assert torch.equal(y, clean) and not torch.equal(x, clean), "noisy input, clean label"
    torch.testing.assert_close(x, taskonomy.corrupt(clean, "noisy", taskonomy.input_seed(3, 0)))
    z = Zoo(tmp_path / "zoo", make_registry([e]))
    z.build(device="cpu", log=lambda _: None)
    record = z.manifest()["entries"]["tiny-denoise"]
    assert {"L1", "PSNR"} <= set(record["metrics"]) and zoo.headline(e) == ("L1", False)
    assert z.config("tiny-denoise")["loss"] == ["L1 to the clean image"]
    assert z.load("tiny-denoise")(torch.rand(2, 3, 16, 16)).shape == (2, 3, 16, 16)
    depth = ZooEntry(name="tiny-depth-t", task="depth", arch="tasknet",
                     arch_args={"task": "depth", "widths": [4, 8], "code_channels": 3},
                     data=scenes_data("depth", 16, 0, 8, seed=3), held_out=held, recipe=e.recipe)
    model, (_, y_depth) = depth.build_model(), zoo.entry_data(depth.data)
    zoo.start_depth_head(depth, model, [y_depth])
    assert model.decoder.proj.bias.item() == pytest.approx(y_depth.log().mean().item(), rel=1e-6)
    for name in ("taskonomy32-largest-class", "taskonomy64-layout"):
        assert zoo.entry(name).kind == "transfer"


def test_adaptive_pool_names_entries_and_fill_filter() -> None:
    """Notebook 05's pool: one entry per ADAPTIVE_POOL row and profile, trained on two fills, scored on all."""
    for profile in ("quick", "full"):
        names = zoo.adaptive_source_names(profile)
        assert len(names) == len(zoo.ADAPTIVE_POOL) == len(set(names))
        for name, (tasks, arch, fills) in zip(names, zoo.ADAPTIVE_POOL, strict=True):
            e = zoo.entry(name)
            assert e.kind == "multihead" and e.profile == profile and "05" in e.used_by
            assert e.tasks == tasks and e.arch_args["backbone"] == arch
            assert e.arch_args["widths"][0] == zoo.ADAPTIVE_WIDTHS[profile][arch][0]
            assert e.data["where"] == {"fill": list(fills)} and "where" not in e.held_out
    assert zoo.adaptive_source_names("quick")[0] == "shapes-ada-position-convnet8"
    for profile in ("quick", "full"):
        ref = zoo.entry(zoo.adaptive_reference_name(profile))
        assert ref.tasks == zoo.ADAPTIVE_REFERENCE_TASKS and ref.profile == profile and "where" not in ref.data
        assert tuple(ref.arch_args["widths"]) == zoo.ADAPTIVE_REFERENCE_WIDTHS[profile]
    with pytest.raises(ValueError, match="profile must be one of"):
        zoo.adaptive_source_names("medium")
    x, y = zoo.entry_data({"source": "shapes-split", "split": "test", "profile": "quick", "labels": ["fill"],
                           "per_attribute": True, "where": {"fill": [1, 3]}})
    assert len(x) == len(y["fill"]) > 0 and set(y["fill"].tolist()) == {1, 3}


def test_notebook_09_layer_sources_are_listed_as_used_by_09():
    from kae_utils.zoo.registry import ALSO_USED_BY, REGISTRY

    for name, notebooks in ALSO_USED_BY.items():
        assert name in REGISTRY, f"{name} is not a zoo entry"
        assert set(notebooks) <= set(REGISTRY[name].used_by)
    # used_by is left out of the config hash: listing a notebook does not make a built entry stale
    e = REGISTRY["digits-pre-convnet16"]
    assert dataclasses.replace(e, used_by=("02", "03")).own_config() == e.own_config()


# ---------------------------------------------------------- full-profile entries at smoke scale (issue 26)


FULL_ENTRIES = sorted(name for name, e in zoo.REGISTRY.items() if e.profile == "full")


@pytest.mark.parametrize("name", FULL_ENTRIES)
def test_smoke_entry_keeps_the_recipe_on_fewer_images(name: str) -> None:
    """The smoke scale of a full entry (KAE_SCALE=smoke) changes its counts only: the same architecture, start,
    seed, data source, image size and optimiser, one epoch, fewer images; and never a shipped entry's hash."""
    e = zoo.REGISTRY[name]
    small = zoo.smoke_entry(e)
    assert (small.arch, small.arch_args, small.init, small.seed, small.used_by, small.profile) == \
        (e.arch, e.arch_args, e.init, e.seed, e.used_by, e.profile)
    assert small.recipe == dataclasses.replace(e.recipe, epochs=1)
    for part in ("data", "held_out"):
        spec, smaller = getattr(e, part), getattr(small, part)
        assert smaller["scale"] == "smoke"
        assert {k: v for k, v in smaller.items() if k not in ("n", "scale")} == {k: v for k, v in spec.items() if k != "n"}
        assert smaller.get("n", 0) <= spec.get("n", 0)
    assert Zoo(registry=zoo.smoke_registry()).config_hash(name) != Zoo().config_hash(name)


def test_smoke_registry_changes_only_the_full_entries() -> None:
    smoke = zoo.smoke_registry()
    assert list(smoke) == list(zoo.REGISTRY)
    assert all((smoke[n] == e) == (e.profile == "quick") for n, e in zoo.REGISTRY.items())


def test_a_smoke_zoo_is_never_the_shipped_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KAE_SCALE", "smoke")
    monkeypatch.delenv("KAE_ZOO_DIR", raising=False)
    with pytest.raises(ZooError, match="KAE_SCALE=smoke .* set KAE_ZOO_DIR to a temporary folder"):
        Zoo()
    monkeypatch.setenv("KAE_ZOO_DIR", str(repo_root() / "zoo"))
    with pytest.raises(ZooError, match="never"):
        zoo.load("digits-kd-convnet64")
    monkeypatch.setenv("KAE_ZOO_DIR", str(tmp_path))
    z = Zoo()
    assert z.root == tmp_path and z.smoke and z.registry is zoo.smoke_registry()
    with pytest.raises(ZooError, match="not built"):
        z.load("digits-kd-convnet64")


def test_a_zoo_of_its_own_adopts_the_shipped_entries(tmp_path: Path) -> None:
    shipped = Zoo()
    own = Zoo(tmp_path / "own", zoo.REGISTRY)
    name = "digits-pre-convnet16"
    assert own.adopt(shipped, [name, "digits-kd-convnet64"]) == [name], "only what the shipped zoo has built"
    assert own.status(name) == "built" and own.verify() == []
    assert own.manifest()["entries"][name] == shipped.manifest()["entries"][name]
    assert own.adopt(shipped, [name]) == [], "nothing twice"
    assert isinstance(own.load(name), torch.nn.Module)


SMOKE_TRAINED = ["shapes-convnet32-c0-11", "scenes128-depth", "shapes-afk-convnet32-position-fill",
                 "taskonomy64-layout", "digits-kd-convnet64"]


@pytest.mark.slow
@pytest.mark.parametrize("name", SMOKE_TRAINED)
def test_full_profile_entry_trains_at_smoke_scale(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """One entry of each kind trained end to end at smoke scale (tests/test_full_profile.py builds them all)."""
    monkeypatch.setenv("KAE_SCALE", "smoke")
    small = zoo.smoke_entry(zoo.REGISTRY[name])
    init = zoo.REGISTRY[small.init].build_model() if small.init else None
    model, info = zoo.train_entry(small, init_model=init, progress=False)
    history = info["history"]
    assert all(len(values) == 1 for values in history.values()), "one epoch: one value per curve"
    assert all(math.isfinite(v[0]) for v in history.values()), history
    assert "train_loss" in history and any(k.startswith("val_") for k in history), "loss and held-out metrics"
