"""Tests of data_scripts (fetch, checksums, safe unpacking, converters) and kae_utils.data.real.

No test touches the network: every converter runs on tiny fake archives built here in the real
formats (pickled CIFAR batches, MATLAB v5 .mat files written by scipy, tar/tgz of PIL-made JPEGs
with the official index files, an HDF5 MATLAB v7.3 file when h5py is installed), and the offline
behaviour is simulated by replacing ``data_scripts.common.open_url``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import pickle
import subprocess
import sys
import tarfile
import time
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.io import savemat

from data_scripts import common, fetch
from data_scripts.cifar import convert_cifar
from data_scripts.common import ChecksumError, OfflineError, RemoteFile, UnsafeArchiveError
from data_scripts.finegrained import (
    convert_cub200,
    convert_fgvc_aircraft,
    convert_stanford_cars,
    convert_stanford_dogs,
)
from data_scripts.nyuv2 import (
    convert_nyuv2,
    convert_nyuv2_arrays,
    normals_from_depth,
    nyu13_lookup,
    read_splits,
)
from kae_utils.core.paths import repo_root
from kae_utils.data.real import (
    NYU13_CLASSES,
    REAL_DATASETS,
    NYUv2Split,
    RealClassification,
    fetch_command,
    load_class_splits,
    load_real,
    real_available,
)

# ------------------------------------------------------------------------------------------ helpers


def _add_bytes(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def _add_dir(tf: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    tf.addfile(info)


def _jpeg(color: tuple[int, int, int], size: tuple[int, int] = (20, 16)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="JPEG", quality=98)
    return buf.getvalue()


def _color(k: int) -> tuple[int, int, int]:
    """A distinct, JPEG-robust colour for image number k."""
    return (20 + 37 * k) % 256, (200 - 29 * k) % 256, (60 + 53 * k) % 256


def _mat_bytes(variables: dict) -> bytes:
    buf = io.BytesIO()
    savemat(buf, variables)
    return buf.getvalue()


def _cell(strings: list[str]) -> np.ndarray:
    cell = np.empty((len(strings), 1), dtype=object)
    for i, s in enumerate(strings):
        cell[i, 0] = s
    return cell


def _read_index(path: Path) -> list[tuple[str, int]]:
    with path.open(newline="") as f:
        return [(row["path"], int(row["label"])) for row in csv.DictReader(f)]


def _mean_rgb(x: torch.Tensor) -> np.ndarray:
    return (x.mean(dim=(-2, -1)) * 255).numpy()


# -------------------------------------------------------------------------------- checksums, TOFU


def test_checksum_mismatch_names_file_and_digests(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"hello")
    actual = hashlib.md5(b"hello").hexdigest()
    assert common.verify_file(path, "md5", actual) == actual
    with pytest.raises(ChecksumError) as err:
        common.verify_file(path, "md5", "0" * 32)
    msg = str(err.value)
    assert str(path) in msg and "0" * 32 in msg and actual in msg


def test_trust_on_first_use_records_then_verifies(tmp_path):
    raw = tmp_path / "raw" / "x"
    archive = tmp_path / "thing.tar"
    archive.write_bytes(b"first copy")
    remote = RemoteFile("thing.tar", "https://example.invalid/thing.tar", "https://example.invalid/")
    msg = common.verify_or_record(archive, remote, raw)
    assert "trust on first use" in msg
    sums = common.read_sums(raw / "SHA256SUMS")
    assert sums == {"thing.tar": hashlib.sha256(b"first copy").hexdigest()}
    assert "verified" in common.verify_or_record(archive, remote, raw)
    archive.write_bytes(b"a changed copy")
    with pytest.raises(ChecksumError, match="thing.tar"):
        common.verify_or_record(archive, remote, raw)


def test_published_checksum_wins_over_tofu(tmp_path):
    archive = tmp_path / "c.tgz"
    archive.write_bytes(b"payload")
    good = RemoteFile("c.tgz", "u", "p", md5=hashlib.md5(b"payload").hexdigest())
    assert "published" in common.verify_or_record(archive, good, tmp_path)
    assert not (tmp_path / "SHA256SUMS").exists()
    with pytest.raises(ChecksumError):
        common.verify_or_record(archive, RemoteFile("c.tgz", "u", "p", sha256="ab" * 32), tmp_path)


# ------------------------------------------------------------------------------ downloads, offline


def test_download_streams_to_part_then_renames(tmp_path, monkeypatch):
    payload = b"x" * 3_000_000
    seen = []

    def fake_open(url, timeout):
        seen.append((url, timeout))
        return io.BytesIO(payload)

    monkeypatch.setattr(common, "open_url", fake_open)
    remote = RemoteFile("f.bin", "https://example.invalid/f.bin", "https://example.invalid/")
    paths = common.ensure_files("demo", [remote], root=tmp_path, timeout=3.0)
    dest = tmp_path / "raw" / "demo" / "f.bin"
    assert paths == {"f.bin": dest} and dest.read_bytes() == payload
    assert not dest.with_name("f.bin.part").exists()
    assert seen == [("https://example.invalid/f.bin", 3.0)]
    assert common.read_sums(tmp_path / "raw" / "demo" / "SHA256SUMS")["f.bin"] == hashlib.sha256(payload).hexdigest()
    # a second call finds the file and only verifies it
    monkeypatch.setattr(common, "open_url", lambda url, timeout: pytest.fail("should not download again"))
    assert common.ensure_files("demo", [remote], root=tmp_path) == paths


def test_offline_fails_fast_with_instructions(tmp_path, monkeypatch, capsys):
    def offline(url, timeout):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(common, "open_url", offline)
    start = time.perf_counter()
    status = fetch.main(["stanford_dogs", "--root", str(tmp_path)])
    elapsed = time.perf_counter() - start
    err = capsys.readouterr().err
    assert status == 1 and elapsed < 3.0
    assert "http://vision.stanford.edu/aditya86/ImageNetDogs/images.tar" in err
    assert "--archive" in err and str(tmp_path / "raw" / "stanford_dogs") in err
    assert "if this address has moved" in err
    assert not list((tmp_path / "raw" / "stanford_dogs").glob("*.part"))


def test_interrupted_download_leaves_no_part_file(tmp_path, monkeypatch):
    class Broken(io.BytesIO):
        def read(self, n=-1):
            raise TimeoutError("read timed out")

    monkeypatch.setattr(common, "open_url", lambda url, timeout: Broken(b""))
    remote = RemoteFile("g.bin", "https://example.invalid/g.bin", "https://example.invalid/page")
    with pytest.raises(OfflineError, match="--archive"):
        common.download("demo", remote, tmp_path / "g.bin")
    assert list(tmp_path.iterdir()) == []


def test_archive_with_wrong_name_is_refused(tmp_path):
    other = tmp_path / "other.tar"
    other.write_bytes(b"")
    with pytest.raises(common.DataScriptError, match="images.tar"):
        fetch.prepare("stanford_dogs", tmp_path / "root", [other])


# --------------------------------------------------------------------------------- safe unpacking


def test_unsafe_tar_members_are_rejected(tmp_path):
    for name in ("../evil.txt", "/abs/evil.txt", "ok/../../evil.txt"):
        archive = tmp_path / "bad.tar"
        with tarfile.open(archive, "w") as tf:
            _add_bytes(tf, "fine.txt", b"fine")
            _add_bytes(tf, name, b"evil")
        dest = tmp_path / "out"
        with pytest.raises(UnsafeArchiveError, match="evil"):
            common.safe_extract(archive, dest)
        with pytest.raises(UnsafeArchiveError):
            list(common.iter_archive_files(archive))
        assert not (tmp_path / "evil.txt").exists() and not (dest / "fine.txt").exists()


def test_tar_symlink_escaping_is_rejected_and_safe_tar_extracts(tmp_path):
    archive = tmp_path / "link.tar"
    with tarfile.open(archive, "w") as tf:
        link = tarfile.TarInfo("data/link")
        link.type, link.linkname = tarfile.SYMTYPE, "../../outside"
        tf.addfile(link)
    with pytest.raises(UnsafeArchiveError, match="link"):
        common.safe_extract(archive, tmp_path / "out")
    good = tmp_path / "good.tgz"
    with tarfile.open(good, "w:gz") as tf:
        _add_dir(tf, "top")
        _add_bytes(tf, "top/a.txt", b"A")
    written = common.safe_extract(good, tmp_path / "out2")
    assert [p.read_bytes() for p in written] == [b"A"]


def test_unsafe_zip_member_is_rejected(tmp_path):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("good.txt", "g")
        zf.writestr("../evil.txt", "e")
    with pytest.raises(UnsafeArchiveError):
        common.safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


# ------------------------------------------------------------------------------------------- CIFAR


def _cifar_batch(rng: np.random.Generator, n: int, num_classes: int, cifar100: bool) -> dict:
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    if cifar100:
        fine = [int(v) for v in rng.integers(0, num_classes, n)]
        return {b"filenames": [b"f.png"] * n, b"batch_label": b"b", b"fine_labels": fine,
                b"coarse_labels": [f // 5 for f in fine], b"data": data}
    return {b"batch_label": b"b", b"labels": [int(v) for v in rng.integers(0, num_classes, n)],
            b"data": data, b"filenames": [b"f.png"] * n}


@pytest.fixture(scope="module")
def cifar10_archive(tmp_path_factory):
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("cifar10")
    batches = {"data_batch_1": _cifar_batch(rng, 4, 10, False), "data_batch_2": _cifar_batch(rng, 4, 10, False),
               "test_batch": _cifar_batch(rng, 4, 10, False)}
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    meta = {b"num_cases_per_batch": 4, b"label_names": names, b"num_vis": 3072}
    archive = folder / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        _add_dir(tf, "cifar-10-batches-py")
        for name, batch in {**batches, "batches.meta": meta}.items():
            _add_bytes(tf, f"cifar-10-batches-py/{name}", pickle.dumps(batch, protocol=2))
        _add_bytes(tf, "cifar-10-batches-py/readme.html", b"<html></html>")
    return archive, batches


def test_cifar10_round_trip(cifar10_archive, tmp_path):
    archive, batches = cifar10_archive
    summary = convert_cifar(archive, tmp_path / "cifar10", "cifar10")
    assert summary == {"train": 8, "test": 4, "classes": 10}
    raw = torch.load(tmp_path / "cifar10" / "train.pt", weights_only=True)
    assert raw["images"].dtype == torch.uint8 and raw["images"].shape == (8, 3, 32, 32)
    assert raw["labels"].dtype == torch.int64
    train = load_real("cifar10", "train", root=tmp_path)
    assert isinstance(train, RealClassification)
    x, y, classes = train
    expected = np.concatenate([batches["data_batch_1"][b"data"], batches["data_batch_2"][b"data"]])
    assert torch.equal((x * 255).round().to(torch.uint8), torch.from_numpy(expected.reshape(8, 3, 32, 32)))
    assert y.tolist() == batches["data_batch_1"][b"labels"] + batches["data_batch_2"][b"labels"]
    assert classes[0] == "airplane" and len(classes) == 10 and x.dtype == torch.float32
    test = load_real("cifar10", "test", root=tmp_path, size=16)
    assert test.x.shape == (4, 3, 16, 16) and test.y.tolist() == batches["test_batch"][b"labels"]
    assert load_class_splits("cifar10", root=tmp_path)["2_parts"] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]


def test_cifar100_coarse_labels(tmp_path):
    rng = np.random.default_rng(1)
    train, test = _cifar_batch(rng, 4, 100, True), _cifar_batch(rng, 3, 100, True)
    meta = {b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
            b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)]}
    archive = tmp_path / "cifar-100-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for name, obj in (("train", train), ("test", test), ("meta", meta)):
            _add_bytes(tf, f"cifar-100-python/{name}", pickle.dumps(obj, protocol=2))
    assert convert_cifar(archive, tmp_path / "cifar100", "cifar100") == {"train": 4, "test": 3, "classes": 100}
    split = load_real("cifar100", "test", root=tmp_path)
    assert split.y.tolist() == test[b"fine_labels"] and split.coarse_y.tolist() == test[b"coarse_labels"]
    assert split.classes[7] == "fine7" and split.coarse_classes[3] == "coarse3"
    assert torch.equal((split.x * 255).round().to(torch.uint8).reshape(3, -1), torch.from_numpy(test[b"data"]))


def test_cifar_pickle_with_foreign_globals_is_refused(tmp_path):
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        _add_bytes(tf, "cifar-10-batches-py/test_batch", pickle.dumps({b"data": Path("x")}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        convert_cifar(archive, tmp_path / "out", "cifar10")


def test_cli_checksum_mismatch_exits_1(cifar10_archive, tmp_path, capsys):
    archive, _ = cifar10_archive
    status = fetch.main(["cifar10", "--root", str(tmp_path), "--archive", str(archive)])
    err = capsys.readouterr().err
    assert status == 1
    assert "checksum mismatch" in err and "cifar-10-python.tar.gz" in err
    assert "c58f30108f718f92721af3b95e74349a" in err and common.file_digest(archive, "md5") in err
    assert not real_available("cifar10", tmp_path)


# ------------------------------------------------------------------------------------------- NYUv2

#: NYU-40 -> NYU-13 (Couprie et al. 2013), as in class13Mapping.mat.
NYU40_TO_13 = [12, 5, 6, 1, 4, 9, 10, 12, 13, 6, 8, 6, 13, 10, 6, 13, 6, 7, 7, 5,
               7, 3, 2, 6, 11, 7, 7, 7, 7, 7, 7, 6, 7, 7, 7, 7, 7, 7, 6, 7]


def _nyu_meta(folder: Path) -> tuple[Path, Path, Path, np.ndarray]:
    """splits.mat (3 train / 2 test of 5), classMapping40.mat and class13Mapping.mat; raw->13 table."""
    rng = np.random.default_rng(2)
    splits, m40, m13 = folder / "splits.mat", folder / "classMapping40.mat", folder / "class13Mapping.mat"
    savemat(splits, {"trainNdxs": np.array([[1], [3], [4]], dtype=float), "testNdxs": np.array([[2], [5]], dtype=float)})
    raw_to40 = rng.integers(1, 41, 894)
    savemat(m40, {"mapClass": raw_to40[None].astype(float), "className": _cell([f"c{i}" for i in range(40)]).T})
    struct = np.zeros((1, 1), dtype=[("labels13", object), ("names13", object)])
    struct[0, 0]["labels13"] = np.array([NYU40_TO_13], dtype=float)
    struct[0, 0]["names13"] = _cell(list(NYU13_CLASSES[1:])).T
    savemat(m13, {"classMapping13": struct})
    expected = np.concatenate([[0], np.array(NYU40_TO_13)[raw_to40 - 1]])
    return splits, m40, m13, expected


def _nyu_arrays(n: int = 5, h: int = 12, w: int = 16) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images, depths, labels in the .mat's HDF5 layout: (N, 3, W, H), (N, W, H), (N, W, H)."""
    rng = np.random.default_rng(3)
    rgb_hw = rng.integers(0, 256, size=(n, 3, h, w), dtype=np.uint8)
    depth_hw = np.full((n, h, w), 2.0, dtype=np.float32) + np.arange(n, dtype=np.float32)[:, None, None]
    labels_hw = rng.integers(0, 895, size=(n, h, w)).astype(np.uint16)
    return rgb_hw.transpose(0, 1, 3, 2).copy(), depth_hw.transpose(0, 2, 1).copy(), labels_hw.transpose(0, 2, 1).copy()


def test_nyu13_lookup_composes_894_40_13(tmp_path):
    _, m40, m13, expected = _nyu_meta(tmp_path)
    lookup = nyu13_lookup(m40, m13)
    assert lookup.shape == (895,) and lookup[0] == 0
    assert np.array_equal(lookup, expected) and set(np.unique(lookup[1:])) <= set(range(1, 14))
    direct = tmp_path / "direct13.mat"
    struct = np.zeros((1, 1), dtype=[("labelsIndex", object)])
    struct[0, 0]["labelsIndex"] = expected[None, 1:].astype(float)
    savemat(direct, {"classMapping13": struct})
    assert np.array_equal(nyu13_lookup(m40, direct), expected)


def test_nyuv2_arrays_transpose_split_and_mapping(tmp_path):
    splits, m40, m13, lookup = _nyu_meta(tmp_path)
    images, depths, labels = _nyu_arrays()
    train_idx, test_idx = read_splits(splits)
    assert train_idx.tolist() == [0, 2, 3] and test_idx.tolist() == [1, 4]
    counts = convert_nyuv2_arrays(images, depths, labels, nyu13_lookup(m40, m13), (train_idx, test_idx),
                                  tmp_path / "nyuv2", size=(12, 16))
    assert counts == {"train": 3, "test": 2}
    stored = torch.load(tmp_path / "nyuv2" / "train.pt", weights_only=True)
    assert stored["rgb"].dtype == torch.uint8 and stored["seg13"].dtype == torch.int64
    assert stored["depth"].dtype == torch.float32 and stored["normals"].dtype == torch.float32
    test = load_real("nyuv2", "test", root=tmp_path)
    assert isinstance(test, NYUv2Split) and set(test) == {"rgb", "seg13", "depth", "normals"}
    assert test["rgb"].shape == (2, 3, 12, 16) and test.depth.shape == (2, 1, 12, 16)
    assert torch.equal((test.rgb * 255).round().to(torch.uint8), torch.from_numpy(images[[1, 4]].transpose(0, 1, 3, 2)))
    assert torch.equal(test.seg13, torch.from_numpy(lookup[labels[[1, 4]].transpose(0, 2, 1).astype(np.int64)]))
    assert torch.allclose(test.depth[:, 0, 0, 0], torch.tensor([3.0, 6.0]))  # depth 2 + index
    # a fronto-parallel wall faces the camera: normal (0, 0, -1)
    assert torch.allclose(test.normals, torch.tensor([0.0, 0.0, -1.0]).view(1, 3, 1, 1).expand_as(test.normals), atol=1e-5)
    small = load_real("nyuv2", "train", root=tmp_path, size=(6, 8))
    assert small.rgb.shape == (3, 3, 6, 8) and small.seg13.shape == (3, 6, 8)
    assert set(small.seg13.unique().tolist()) <= set(range(14))
    assert torch.allclose(small.normals.norm(dim=1), torch.ones(3, 6, 8), atol=1e-5)


def test_nyuv2_resized_output(tmp_path):
    splits, m40, m13, _ = _nyu_meta(tmp_path)
    images, depths, labels = _nyu_arrays()
    convert_nyuv2_arrays(images, depths, labels, nyu13_lookup(m40, m13), read_splits(splits), tmp_path / "nyuv2",
                         size=(6, 8))
    train = load_real("nyuv2", "train", root=tmp_path)
    assert train.rgb.shape == (3, 3, 6, 8) and train.normals.shape == (3, 3, 6, 8)
    assert torch.allclose(train.depth[:, 0, 0, 0], torch.tensor([2.0, 4.0, 5.0]))


def test_normals_of_a_tilted_plane():
    fx, fy, cx, cy = 50.0, 52.0, 15.5, 11.5
    n_true = torch.tensor([0.3, -0.4, -1.0], dtype=torch.float64)
    n_true = n_true / n_true.norm()
    v, u = torch.meshgrid(torch.arange(24.0, dtype=torch.float64), torch.arange(32.0, dtype=torch.float64), indexing="ij")
    rays = torch.stack([(u - cx) / fx, (v - cy) / fy, torch.ones_like(u)])
    depth = -2.0 / torch.einsum("c,chw->hw", n_true, rays)  # plane n . P = -2, in front of the camera
    assert (depth > 0).all()
    normals = normals_from_depth(depth.float(), fx, fy, cx, cy)
    assert normals.shape == (3, 24, 32)
    assert torch.allclose(normals.norm(dim=0), torch.ones(24, 32), atol=1e-5)
    assert torch.allclose(normals, n_true.float().view(3, 1, 1).expand(3, 24, 32), atol=1e-4)
    points = rays * depth
    assert ((normals.double() * points).sum(0) < 0).all()  # facing the camera
    depth[0, 0] = 0.0
    assert normals_from_depth(depth.float(), fx, fy, cx, cy)[:, 0, 0].abs().sum() == 0


def test_nyuv2_from_matlab_v73_file(tmp_path):
    h5py = pytest.importorskip("h5py", reason="h5py is not installed: the MATLAB v7.3 (HDF5) reader is untested")
    splits, m40, m13, lookup = _nyu_meta(tmp_path)
    images, depths, labels = _nyu_arrays()
    mat = tmp_path / "nyu_depth_v2_labeled.mat"
    with h5py.File(mat, "w", userblock_size=512) as f:
        f.create_dataset("images", data=images)
        f.create_dataset("depths", data=depths)
        f.create_dataset("labels", data=labels)
    with open(mat, "r+b") as f:  # MATLAB's v7.3 header lives in the HDF5 user block
        f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 .")
    assert convert_nyuv2(mat, splits, m40, m13, tmp_path / "nyuv2", size=(12, 16)) == {"train": 3, "test": 2}
    train = load_real("nyuv2", "train", root=tmp_path)
    assert torch.equal((train.rgb * 255).round().to(torch.uint8), torch.from_numpy(images[[0, 2, 3]].transpose(0, 1, 3, 2)))
    assert torch.equal(train.seg13, torch.from_numpy(lookup[labels[[0, 2, 3]].transpose(0, 2, 1).astype(np.int64)]))


# ------------------------------------------------------------------------------------ fine-grained


def test_stanford_dogs(tmp_path):
    folders = ["n02085620-Chihuahua", "n02085782-Japanese_spaniel"]
    files = {f: [f"{f}/{f.split('-')[0]}_{k}.jpg" for k in range(3)] for f in folders}
    images = tmp_path / "images.tar"
    colors = {}
    with tarfile.open(images, "w") as tf:
        for i, rel in enumerate(sorted(r for rs in files.values() for r in rs)):
            colors[rel] = _color(i)
            _add_bytes(tf, f"Images/{rel}", _jpeg(colors[rel]))
    train = [files[folders[0]][0], files[folders[1]][0], files[folders[1]][1]]
    test = [files[folders[0]][1], files[folders[0]][2], files[folders[1]][2]]
    lists = tmp_path / "lists.tar"
    with tarfile.open(lists, "w") as tf:
        for name, rels in (("train_list", train), ("test_list", test), ("file_list", train + test)):
            labels = np.array([[folders.index(r.split("/")[0]) + 1] for r in rels], dtype=float)
            _add_bytes(tf, f"{name}.mat", _mat_bytes({"file_list": _cell(rels), "annotation_list": _cell(
                [r[:-4] for r in rels]), "labels": labels}))
    out = tmp_path / "data" / "stanford_dogs"
    assert convert_stanford_dogs(images, lists, out) == {"train": 3, "test": 3, "classes": 2}
    assert (out / "classes.txt").read_text().split() == folders
    assert _read_index(out / "index_train.csv") == [(train[0], 0), (train[1], 1), (train[2], 1)]
    assert real_available("stanford_dogs", tmp_path / "data")
    split = load_real("stanford_dogs", "test", root=tmp_path / "data")
    assert split.x.shape == (3, 3, 16, 20) and split.y.tolist() == [0, 0, 1]
    assert np.allclose(_mean_rgb(split.x), np.array([colors[r] for r in test]), atol=4)
    assert load_class_splits("stanford_dogs", tmp_path / "data") | {} == {
        "rule": json.loads((out / "splits.json").read_text())["rule"], "num_classes": 2,
        "2_parts": [[0], [1]]}


def test_cub200(tmp_path):
    classes = ["001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross"]
    rows = []  # (image id, path, class id 1-based, is_train)
    for c, name in enumerate(classes, start=1):
        for k in range(2):
            rows.append((len(rows) + 1, f"{name}/{name[4:]}_{k:04d}.jpg", c, k == 0))
    archive = tmp_path / "CUB_200_2011.tgz"
    with tarfile.open(archive, "w:gz") as tf:
        _add_bytes(tf, "attributes.txt", b"1 has_bill_shape::curved\n")
        _add_dir(tf, "CUB_200_2011")
        _add_bytes(tf, "CUB_200_2011/README", b"readme")
        _add_bytes(tf, "CUB_200_2011/images.txt", "".join(f"{i} {p}\n" for i, p, _, _ in rows).encode())
        _add_bytes(tf, "CUB_200_2011/image_class_labels.txt", "".join(f"{i} {c}\n" for i, _, c, _ in rows).encode())
        _add_bytes(tf, "CUB_200_2011/train_test_split.txt", "".join(f"{i} {int(t)}\n" for i, _, _, t in rows).encode())
        _add_bytes(tf, "CUB_200_2011/classes.txt", "".join(f"{i} {n}\n" for i, n in enumerate(classes, 1)).encode())
        for i, p, _, _ in rows:
            _add_bytes(tf, f"CUB_200_2011/images/{p}", _jpeg(_color(i), size=(24 + i, 18)))
    out = tmp_path / "cub200"
    assert convert_cub200(archive, out, size=10) == {"train": 3, "test": 3, "classes": 3}
    assert _read_index(out / "index_test.csv") == [(p, c - 1) for _, p, c, t in rows if not t]
    assert (out / "classes.txt").read_text().splitlines() == classes
    with Image.open(out / "images_10" / rows[0][1]) as img:
        assert min(img.size) == 10
    with pytest.raises(ValueError, match="size"):  # originals differ in size
        load_real("cub200", "train", root=tmp_path)
    split = load_real("cub200", "train", root=tmp_path, size=10)
    assert split.x.shape == (3, 3, 10, 10) and split.y.tolist() == [0, 1, 2]
    assert np.allclose(_mean_rgb(split.x), np.array([_color(i) for i, _, _, t in rows if t]), atol=6)


def _aircraft_archive(tmp_path: Path) -> tuple[Path, dict[str, list[tuple[str, str]]], list[str]]:
    variants = ["707-320", "A300B4", "Cessna 172"]
    lists = {"train": [("1025794", "707-320"), ("1340192", "Cessna 172")],
             "val": [("0056978", "A300B4")],
             "test": [("1514522", "Cessna 172"), ("0062765", "707-320")]}
    archive = tmp_path / "fgvc-aircraft-2013b.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        _add_bytes(tf, "fgvc-aircraft-2013b/README.html", b"")
        _add_bytes(tf, "fgvc-aircraft-2013b/data/variants.txt", "\n".join(variants).encode() + b"\n")
        _add_bytes(tf, "fgvc-aircraft-2013b/data/families.txt", b"Boeing 707\n")
        for split, items in lists.items():
            text = "".join(f"{i} {v}\n" for i, v in items).encode()
            _add_bytes(tf, f"fgvc-aircraft-2013b/data/images_variant_{split}.txt", text)
            _add_bytes(tf, f"fgvc-aircraft-2013b/data/images_family_{split}.txt", b"")
        for k, (i, _) in enumerate(item for items in lists.values() for item in items):
            _add_bytes(tf, f"fgvc-aircraft-2013b/data/images/{i}.jpg", _jpeg(_color(k)))
    return archive, lists, variants


def test_fgvc_aircraft_variants_to_ids(tmp_path):
    archive, lists, variants = _aircraft_archive(tmp_path)
    out = tmp_path / "fgvc_aircraft"
    assert convert_fgvc_aircraft(archive, out) == {"train": 3, "test": 2, "classes": 3}
    assert _read_index(out / "index_train.csv") == [("1025794.jpg", 0), ("1340192.jpg", 2), ("0056978.jpg", 1)]
    assert _read_index(out / "index_test.csv") == [("1514522.jpg", 2), ("0062765.jpg", 0)]
    assert (out / "classes.txt").read_text().splitlines() == variants
    split = load_real("fgvc_aircraft", "test", root=tmp_path)
    assert split.classes == tuple(variants) and split.y.tolist() == [2, 0]


def test_cli_prepares_from_archive_with_tofu_and_size(tmp_path, monkeypatch, capsys):
    archive, _, _ = _aircraft_archive(tmp_path)
    monkeypatch.setattr(common, "open_url", lambda url, timeout: pytest.fail("no download expected"))
    root = tmp_path / "root"
    assert fetch.main(["fgvc_aircraft", "--root", str(root), "--archive", str(archive), "--size", "8"]) == 0
    out = capsys.readouterr().out
    assert "trust on first use" in out and "done: fgvc_aircraft" in out
    sums = common.read_sums(root / "raw" / "fgvc_aircraft" / "SHA256SUMS")
    assert sums == {"fgvc-aircraft-2013b.tar.gz": common.file_digest(archive)}
    assert (root / "fgvc_aircraft" / "images_8" / "1025794.jpg").is_file()
    assert load_real("fgvc_aircraft", "train", root=root, size=8).x.shape == (3, 3, 8, 8)
    # a second run with --force verifies against the recorded digest
    assert fetch.main(["fgvc_aircraft", "--root", str(root), "--archive", str(archive), "--force"]) == 0
    assert "recorded on first use" in capsys.readouterr().out


def _annos(items: list[tuple[str, int]], with_class: bool = True) -> np.ndarray:
    fields = [("bbox_x1", object), ("bbox_y1", object), ("bbox_x2", object), ("bbox_y2", object)]
    fields += [("class", object)] if with_class else []
    arr = np.zeros((1, len(items)), dtype=fields + [("fname", object)])
    for k, (fname, cls) in enumerate(items):
        arr[0, k]["bbox_x1"], arr[0, k]["bbox_y1"] = np.array([[1.0]]), np.array([[2.0]])
        arr[0, k]["bbox_x2"], arr[0, k]["bbox_y2"] = np.array([[9.0]]), np.array([[7.0]])
        if with_class:
            arr[0, k]["class"] = np.array([[float(cls)]])
        arr[0, k]["fname"] = fname
    return arr


def test_stanford_cars(tmp_path):
    class_names = ["AM General Hummer SUV 2000", "Acura RL Sedan 2012"]
    train_items, test_items = [("00001.jpg", 2), ("00002.jpg", 1)], [("00001.jpg", 1), ("00002.jpg", 2), ("00003.jpg", 1)]
    tgz = {}
    for split, items, offset in (("train", train_items, 0), ("test", test_items, 10)):
        tgz[split] = tmp_path / f"cars_{split}.tgz"
        with tarfile.open(tgz[split], "w:gz") as tf:
            for k, (fname, _) in enumerate(items):
                _add_bytes(tf, f"cars_{split}/{fname}", _jpeg(_color(offset + k)))
    devkit = tmp_path / "car_devkit.tgz"
    names = np.empty((1, len(class_names)), dtype=object)
    names[0, :] = class_names
    with tarfile.open(devkit, "w:gz") as tf:
        _add_bytes(tf, "devkit/README.txt", b"")
        _add_bytes(tf, "devkit/cars_meta.mat", _mat_bytes({"class_names": names}))
        _add_bytes(tf, "devkit/cars_train_annos.mat", _mat_bytes({"annotations": _annos(train_items)}))
        _add_bytes(tf, "devkit/cars_test_annos.mat", _mat_bytes({"annotations": _annos(test_items, with_class=False)}))
    test_annos = tmp_path / "cars_test_annos_withlabels.mat"
    savemat(test_annos, {"annotations": _annos(test_items)})
    out = tmp_path / "stanford_cars"
    assert convert_stanford_cars(tgz["train"], tgz["test"], devkit, test_annos, out) == {
        "train": 2, "test": 3, "classes": 2}
    assert _read_index(out / "index_test.csv") == [("test/00001.jpg", 0), ("test/00002.jpg", 1), ("test/00003.jpg", 0)]
    split = load_real("stanford_cars", "train", root=tmp_path)
    assert split.classes == tuple(class_names) and split.y.tolist() == [1, 0]
    assert np.allclose(_mean_rgb(split.x), np.array([_color(0), _color(1)]), atol=4)
    test = load_real("stanford_cars", "test", root=tmp_path)
    assert np.allclose(_mean_rgb(test.x), np.array([_color(10), _color(11), _color(12)]), atol=4)
    # the unlabelled test annotations are refused with a pointer to the right file
    unlabelled = tmp_path / "no_labels.mat"
    savemat(unlabelled, {"annotations": _annos(test_items, with_class=False)})
    with pytest.raises(common.DataScriptError, match="withlabels"):
        convert_stanford_cars(tgz["train"], tgz["test"], devkit, unlabelled, tmp_path / "other")


# ------------------------------------------------------------------------------- API and CLI edges


def test_load_real_missing_names_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("KAE_DATA_DIR", str(tmp_path))
    for name in REAL_DATASETS:
        assert not real_available(name)
        with pytest.raises(FileNotFoundError, match=f"python -m data_scripts.fetch {name}"):
            load_real(name, "train")
    assert fetch_command("cifar10", tmp_path) == "python -m data_scripts.fetch cifar10"
    assert fetch_command("cifar10", tmp_path / "elsewhere").endswith(f"--root {tmp_path / 'elsewhere'}")
    with pytest.raises(ValueError, match="unknown real data set"):
        load_real("imagenet", "train")
    with pytest.raises(ValueError, match="split"):
        load_real("cifar10", "val")


def test_registry_names_agree():
    assert tuple(fetch.DATASETS) == REAL_DATASETS


def test_cli_list_and_size_errors(capsys):
    assert fetch.main(["--list"]) == 0
    listing = capsys.readouterr().out
    for spec in fetch.DATASETS.values():
        assert spec.name in listing and all(r.filename in listing for r in spec.remotes)
    with pytest.raises(SystemExit) as exc:
        fetch.main(["cifar10", "--size", "64"])
    assert exc.value.code == 2
    assert fetch.parse_size(fetch.DATASETS["nyuv2"], "120x160") == (120, 160)
    assert fetch.parse_size(fetch.DATASETS["nyuv2"], "96") == (96, 128)
    assert fetch.parse_size(fetch.DATASETS["cub200"], "256") == 256


def test_cli_unknown_name_exits_2_listing_names():
    proc = subprocess.run([sys.executable, "-m", "data_scripts.fetch", "imagenet"], cwd=repo_root(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "unknown data set 'imagenet'" in proc.stderr
    assert all(name in proc.stderr for name in REAL_DATASETS)
