"""load_dataset: one loader for offline and real sets; materialised offline files; make_offline."""

from __future__ import annotations

import json

import pytest
import torch

from data_scripts.cifar import convert_cifar
from data_scripts.make_offline import materialise, sha256_file
from kae_utils.data import DataSplit, load_dataset, load_scene_tasks, load_training_pool
from kae_utils.data.registry import OFFLINE_SIZES, all_datasets, offline_config, offline_path
from kae_utils.data.scene_spec import SCENE_TASKS
from kae_utils.data.shapes_config import ATTRIBUTES
from tests.test_data_scripts import cifar10_archive  # noqa: F401  (fixture: a tiny archive in the real format


@pytest.fixture()
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("KAE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_names():
    names = all_datasets()
    assert names[:3] == ("digits", "shapes", "scenes")
    assert {"cifar10", "cifar100", "nyuv2", "stanford_dogs", "cub200", "fgvc_aircraft", "stanford_cars"} <= set(names)


def test_digits_matches_load_digits(data_dir):
    from kae_utils.data import load_digits

    digits = load_digits()
    test = load_dataset("digits", "test")
    assert isinstance(test, DataSplit) and test.source == "offline"
    assert torch.equal(test.x, digits.x_test) and torch.equal(test.y, digits.y_test)
    assert test.classes["label"] == tuple("0123456789")


def test_shapes_sizes_targets_and_disjoint_splits(data_dir):
    train, test = load_dataset("shapes", "train"), load_dataset("shapes", "test")
    sizes = OFFLINE_SIZES["shapes"]["quick"]
    assert (len(train), len(test)) == (sizes["train"], sizes["test"])
    assert train.x.shape[1:] == (3, 32, 32)
    assert tuple(train.targets) == ATTRIBUTES
    assert train.classes["shape"][0] == "circle"
    # test images are the generator's indices after the training ones: none coincides
    assert not any(torch.equal(test.x[0], img) for img in train.x[:500])
    with pytest.raises(KeyError, match="no single 'label'"):
        _ = train.y


def test_scenes_targets_cover_the_task_registry(data_dir):
    test = load_dataset("scenes", "test")
    assert len(test) == OFFLINE_SIZES["scenes"]["quick"]["test"]
    assert set(test.targets) == set(SCENE_TASKS)
    assert test.targets["segmentation"].shape == (len(test), 64, 64)
    assert test.classes["segmentation"][:2] == ("floor", "wall")


def test_training_pool_extends_the_training_split_after_the_test_split(data_dir):
    from kae_utils.data.scene_spec import SceneConfig
    from kae_utils.data.scenes import render_scenes

    train, test = load_dataset("scenes", "train"), load_dataset("scenes", "test")
    pool = load_training_pool("scenes", "quick", len(train) + 3)
    assert len(pool) == len(train) + 3 and pool.split == "train" and set(pool.targets) == set(train.targets)
    assert torch.equal(pool.x[:len(train)], train.x)
    assert torch.equal(pool.targets["depth"][:len(train)], train.targets["depth"])
    # the three extra scenes are the stream's scenes after the test split (512 + 128 = 640 ..), with their labels
    extra = render_scenes(3, seed=0, config=SceneConfig(image_size=64), start=640)
    assert torch.equal(pool.x[len(train):], extra.rgb)
    assert torch.equal(pool.targets["segmentation"][len(train):], extra.target("segmentation"))
    assert not any(torch.equal(img, t) for img in pool.x[len(train):] for t in test.x)
    assert torch.equal(load_training_pool("scenes", "quick", 5).x, train.x[:5])
    shapes = load_training_pool("shapes", "quick", 4002)
    assert len(shapes) == 4002 and set(shapes.targets) == set(ATTRIBUTES)
    with pytest.raises(ValueError, match="generated data set"):
        load_training_pool("digits", "quick", 10)
    with pytest.raises(ValueError, match="n must be"):
        load_training_pool("scenes", "quick", 0)


def test_scene_tasks_are_the_training_pool_and_the_test_split_with_the_tasks_labels(data_dir):
    train = load_dataset("scenes", "train")
    scenes = load_scene_tasks("scenes", "quick", len(train) + 2, ["depth", "segmentation"])
    pool, test = load_training_pool("scenes", "quick", len(train) + 2), load_dataset("scenes", "test")
    assert scenes.tasks == ("depth", "segmentation") and list(scenes.gt_transfer) == list(scenes.gt_test) == ["depth", "segmentation"]
    assert torch.equal(scenes.x_transfer, pool.x) and torch.equal(scenes.x_test, test.x)
    for task in scenes.tasks:
        assert torch.equal(scenes.gt_transfer[task], pool.targets[task])
        assert torch.equal(scenes.gt_test[task], test.targets[task])
    assert scenes.train_split_size == len(train) == 512 and len(scenes.x_transfer) == 514
    assert scenes.image_shape == (3, 64, 64)
    with pytest.raises(ValueError, match="task must be one of"):
        load_scene_tasks("scenes", "quick", 4, ["depth", "colour"])


def test_seed_changes_offline_images(data_dir):
    a = load_dataset("shapes", "test", seed=0)
    b = load_dataset("shapes", "test", seed=1)
    assert not torch.equal(a.x, b.x)


def test_bad_arguments_name_the_allowed_values(data_dir):
    with pytest.raises(ValueError, match="DATASET must be one of 'digits', 'shapes', 'scenes'"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="split must be one of 'train', 'test'"):
        load_dataset("digits", "val")
    with pytest.raises(ValueError, match="PROFILE must be one of 'quick', 'full'"):
        load_dataset("digits", "train", "medium")


def test_missing_real_set_names_the_fetch_command(data_dir):
    with pytest.raises(FileNotFoundError, match="python -m data_scripts.fetch cifar10"):
        load_dataset("cifar10", "train")


def test_prepared_real_set_loads_through_the_same_function(cifar10_archive, data_dir):  # noqa: F811
    archive, batches = cifar10_archive
    convert_cifar(archive, data_dir / "cifar10", "cifar10")
    test = load_dataset("cifar10", "test")
    assert test.source == "real" and test.x.shape == (4, 3, 32, 32)
    assert test.y.tolist() == batches["test_batch"][b"labels"]
    assert test.classes["label"][0] == "airplane"


def test_make_offline_writes_files_and_manifest_that_load_dataset_uses(data_dir, capsys):
    manifest_path = materialise(["digits"], "quick", root=data_dir)
    manifest = json.loads(manifest_path.read_text())
    config = offline_config("digits", "test", "quick")
    path = offline_path(config, data_dir)
    entry = manifest["files"][str(path.relative_to(data_dir))]
    assert entry["items"] == 899 and entry["sha256"] == sha256_file(path) and entry["config"] == config
    # the materialised file is what load_dataset reads: change its content and see it come back
    payload = torch.load(path, weights_only=True)
    payload["x"] = torch.zeros_like(payload["x"])
    torch.save(payload, path)
    assert load_dataset("digits", "test").x.abs().sum() == 0
    # a file for another configuration is ignored (regenerated instead)
    payload["config"] = {**config, "split_seed": 99}
    torch.save(payload, path)
    assert load_dataset("digits", "test").x.abs().sum() > 0
    assert "899 items" in capsys.readouterr().out


def test_classification_task_is_what_notebooks_02_and_03_train_on():
    from kae_utils.data import classification_task, composite_labels, load_digits

    digits = classification_task("digits")
    reference = load_digits(size=8, test_fraction=0.5, seed=0)
    assert torch.equal(digits.x_train, reference.x_train) and torch.equal(digits.y_test, reference.y_test)
    assert digits.num_classes == 10 and digits.classes == reference.classes
    shapes = classification_task("shapes", "quick")
    test = load_dataset("shapes", "test", "quick")
    assert shapes.num_classes == 48 and shapes.classes[17] == "triangle/cyan"
    assert torch.equal(shapes.y_test, composite_labels(test.targets, ("shape", "colour"))[0])
    assert len(shapes.x_train) == 4000 and len(shapes.x_test) == 1000
    with pytest.raises(ValueError, match="DATASET must be one of 'digits', 'shapes'"):
        classification_task("scenes")
