"""Tests for kae_utils.training.cache: keys, load-or-train, bad files, atomic writes, locking."""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import kae_utils.training.cache as cache
from kae_utils.training.cache import (
    CACHE_FORMAT_VERSION,
    CacheInfo,
    cache_path,
    clear_cache,
    config_key,
    load_or_compute,
    load_or_train,
)

CFG = {"arch": "mlp", "width": 8, "seed": 0, "opt": {"lr": 0.1, "betas": [0.9, 0.99]}}


# ------------------------------------------------------------------------------------ helpers



def make_model(width: int = 8, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Linear(width, 3))


def fit(model: nn.Module, steps: int = 5) -> dict:
    """A few SGD steps in train mode (updates the BatchNorm running statistics); draws from torch's RNG.

    Plain SGD by hand: building a ``torch.optim`` optimiser the first time costs seconds of imports.
    """
    model.train()
    losses = []
    for _ in range(steps):
        x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
        loss = nn.functional.cross_entropy(model(x), y)
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= 0.1 * p.grad
        losses.append(loss.item())
    return {"history": {"loss": losses}}


class Counter:
    """A train() that counts its calls."""

    def __init__(self, extra: dict | None = None) -> None:
        self.calls = 0
        self.extra = extra

    def __call__(self, model: nn.Module) -> dict:
        self.calls += 1
        history = fit(model)
        return history if self.extra is None else self.extra


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def no_warnings_call(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return load_or_train(*args, **kwargs)


# ---------------------------------------------------------------------------------------- keys


def test_config_key_golden_value():
    # If this changes, every cached teacher is silently invalidated: bump CACHE_FORMAT_VERSION on purpose.
    assert config_key({"arch": "resnet", "width": 16, "seed": 0}) == "d182f4471fc0caa3"
    assert CACHE_FORMAT_VERSION == 1


def test_config_key_is_16_hex_chars():
    key = config_key(CFG)
    assert len(key) == 16 and all(c in "0123456789abcdef" for c in key)


def test_config_key_mixes_in_format_version(monkeypatch):
    before = config_key(CFG)
    monkeypatch.setattr(cache, "CACHE_FORMAT_VERSION", CACHE_FORMAT_VERSION + 1)
    assert config_key(CFG) != before


@pytest.mark.parametrize(
    "change",
    [
        {"arch": "cnn"},
        {"width": 9},
        {"width": 8.0},  # int and float differ in JSON
        {"seed": True},  # so do bool and int
        {"seed": None},
        {"opt": {"lr": 0.1000001, "betas": [0.9, 0.99]}},
        {"opt": {"lr": 0.1, "betas": [0.99, 0.9]}},
        {"opt": {"lr": 0.1, "betas": [0.9, 0.99], "wd": 0}},
        {"extra_key": 0},
    ],
)
def test_config_key_changes_with_any_value(change):
    assert config_key({**CFG, **change}) != config_key(CFG)


def test_config_key_ignores_dict_order():
    a = {"a": 1, "b": {"x": 1, "y": [1, {"p": 1, "q": 2}]}}
    b = {"b": {"y": [1, {"q": 2, "p": 1}], "x": 1}, "a": 1}
    assert config_key(a) == config_key(b)


def test_config_key_list_equals_tuple():
    assert config_key({"sizes": (1, 2, (3, 4))}) == config_key({"sizes": [1, 2, [3, 4]]})


@pytest.mark.parametrize(
    ("config", "where"),
    [
        ({"model": {"layers": [1, object()]}}, r"model\.layers\[1\]"),
        ({"device": torch.device("cpu")}, "device"),
        ({"a": {"n": np.int64(3)}}, r"a\.n"),
        ({"a": [{"lr": float("nan")}]}, r"a\[0\]\.lr"),
        ({"a": {"s": {1, 2}}}, r"a\.s"),
        ({"a": {1: "x"}}, r"\ba\b"),
    ],
)
def test_config_key_rejects_non_json_values_naming_the_path(config, where):
    with pytest.raises(TypeError, match=where):
        config_key(config)


def test_config_key_rejects_non_mapping():
    with pytest.raises(TypeError):
        config_key([1, 2])  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------- cache_path


def test_cache_path_layout(tmp_path):
    assert cache_path("teacher_a.v1", CFG, tmp_path) == tmp_path / f"teacher_a.v1-{config_key(CFG)}.pt"


@pytest.mark.parametrize("name", ["", "a/b", "../x", "a b", "tëacher", "a*", None])
def test_cache_path_rejects_bad_names(tmp_path, name):
    with pytest.raises(ValueError, match="cache name"):
        cache_path(name, CFG, tmp_path)  # type: ignore[arg-type]


def test_default_cache_dir_comes_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("KAE_CACHE_DIR", str(tmp_path / "cachedir"))
    assert cache_path("x", CFG).parent == tmp_path / "cachedir"
    load_or_compute("feat", CFG, lambda: {"a": 1})
    assert (tmp_path / "cachedir" / f"feat-{config_key(CFG)}.pt").is_file()


# -------------------------------------------------------------------------------- load_or_train


def test_cold_trains_once_warm_loads(tmp_path):
    train = Counter()
    model, info = no_warnings_call("t", CFG, make_model, train, cache_dir=tmp_path)
    assert train.calls == 1
    assert isinstance(info, CacheInfo) and info.from_cache is False
    assert info.path == cache_path("t", CFG, tmp_path) and info.path.is_file()
    assert info.key == config_key(CFG)
    assert model.training is False

    model2, info2 = no_warnings_call("t", CFG, make_model, train, cache_dir=tmp_path)
    assert train.calls == 1
    assert info2.from_cache is True and info2.path == info.path and info2.key == info.key
    assert model2.training is False


def test_other_config_or_name_trains_again(tmp_path):
    train = Counter()
    load_or_train("t", CFG, make_model, train, cache_dir=tmp_path)
    load_or_train("t", {**CFG, "seed": 1}, make_model, train, cache_dir=tmp_path)
    load_or_train("u", CFG, make_model, train, cache_dir=tmp_path)
    assert train.calls == 3
    load_or_train("t", {**CFG, "seed": 1}, make_model, train, cache_dir=tmp_path)
    assert train.calls == 3


def test_warm_model_is_bit_identical_including_batchnorm_buffers(tmp_path):
    cold, _ = load_or_train("bn", CFG, make_model, fit, cache_dir=tmp_path)
    warm, info = load_or_train("bn", CFG, lambda: make_model(seed=123), fit, cache_dir=tmp_path)
    assert info.from_cache
    assert states_equal(cold.state_dict(), warm.state_dict())
    # the running statistics really moved away from their initial values, so they were round-tripped
    assert not torch.equal(warm[1].running_mean, torch.zeros(8))
    assert warm[1].num_batches_tracked.item() == 5
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        assert torch.equal(cold(x), warm(x))


def test_extra_round_trips(tmp_path):
    extra = {
        "history": {"loss": [1.5, 0.75, 0.5], "acc": [0.1, 0.2]},
        "best": 0.875,
        "epochs": 3,
        "ok": True,
        "note": "adam",
        "none": None,
        "pair": (1, 2.5),
        "curve": torch.arange(4.0),
        "np_float": np.float64(0.25),
    }
    _, cold = load_or_train("x", CFG, make_model, Counter(extra), cache_dir=tmp_path)
    _, warm = load_or_train("x", CFG, make_model, Counter(), cache_dir=tmp_path)
    assert warm.from_cache
    for info in (cold, warm):
        assert info.extra["history"] == extra["history"]
        assert info.extra["best"] == 0.875 and info.extra["epochs"] == 3 and info.extra["ok"] is True
        assert info.extra["note"] == "adam" and info.extra["none"] is None
        assert info.extra["pair"] == (1, 2.5)
        assert torch.equal(info.extra["curve"], torch.arange(4.0))
        assert type(info.extra["np_float"]) is float and info.extra["np_float"] == 0.25


def test_train_returning_none_gives_empty_extra(tmp_path):
    _, cold = load_or_train("n", CFG, make_model, lambda m: None, cache_dir=tmp_path)
    _, warm = load_or_train("n", CFG, make_model, lambda m: None, cache_dir=tmp_path)
    assert cold.extra == {} and warm.extra == {} and warm.from_cache


@pytest.mark.parametrize(
    "extra",
    [{"obj": object()}, {"arr": np.zeros(3)}, {"nested": {"f": lambda: 1}}, {"s": {1, 2}}, {"p": Path(".")}],
)
def test_non_serialisable_extra_raises_and_writes_nothing(tmp_path, extra):
    with pytest.raises(TypeError, match="extra"):
        load_or_train("bad", CFG, make_model, lambda m: extra, cache_dir=tmp_path)
    assert not cache_path("bad", CFG, tmp_path).exists()


def test_non_serialisable_state_dict_raises(tmp_path):
    class WithExtraState(nn.Linear):
        def get_extra_state(self):
            return object()

        def set_extra_state(self, state):
            pass

    with pytest.raises(TypeError, match="state_dict"):
        load_or_train("es", CFG, lambda: WithExtraState(2, 2), lambda m: None, cache_dir=tmp_path)


def test_nothing_printed_cold_or_warm(tmp_path, capsys):
    load_or_train("quiet", CFG, make_model, fit, cache_dir=tmp_path)
    load_or_compute("quietc", CFG, lambda: {"a": torch.ones(2)}, cache_dir=tmp_path)
    cold = capsys.readouterr()
    load_or_train("quiet", CFG, make_model, fit, cache_dir=tmp_path)
    load_or_compute("quietc", CFG, lambda: {"a": torch.ones(2)}, cache_dir=tmp_path)
    warm = capsys.readouterr()
    assert cold.out == warm.out == ""
    assert cold.err == warm.err == ""


def test_rng_state_after_call_same_warm_or_cold(tmp_path):
    def draws():
        return torch.rand(3), np.random.rand(2), random.random()

    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    _, cold = load_or_train("rng", CFG, lambda: make_model(seed=0), fit, cache_dir=tmp_path)
    after_cold = draws()
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    _, warm = load_or_train("rng", CFG, lambda: make_model(seed=0), fit, cache_dir=tmp_path)
    after_warm = draws()
    assert not cold.from_cache and warm.from_cache
    assert torch.equal(after_cold[0], after_warm[0])
    assert np.array_equal(after_cold[1], after_warm[1]) and after_cold[2] == after_warm[2]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_map_location_cuda_without_gpu_refuses_and_keeps_the_file(tmp_path):
    load_or_train("ml", CFG, make_model, fit, cache_dir=tmp_path)
    path = cache_path("ml", CFG, tmp_path)
    data = path.read_bytes()
    with pytest.raises(RuntimeError, match="CUDA"):
        load_or_train("ml", CFG, make_model, fit, cache_dir=tmp_path, map_location="cuda")
    assert path.read_bytes() == data


# ------------------------------------------------------------------------------ bad cache files


def _check_rebuilt(tmp_path, name="t", expect_reason="unreadable"):
    """A call over a bad file warns, retrains, and leaves a valid file that the next call loads quietly."""
    train = Counter()
    with pytest.warns(RuntimeWarning, match=expect_reason):
        model, info = load_or_train(name, CFG, make_model, train, cache_dir=tmp_path)
    assert train.calls == 1 and not info.from_cache
    payload = torch.load(info.path, map_location="cpu", weights_only=True)
    assert payload["format"] == CACHE_FORMAT_VERSION and payload["key"] == info.key
    assert states_equal(payload["state_dict"], model.state_dict())
    _, again = no_warnings_call(name, CFG, make_model, train, cache_dir=tmp_path)
    assert again.from_cache and train.calls == 1
    return info


def test_truncated_file_is_rebuilt(tmp_path):
    _, info = load_or_train("t", CFG, make_model, fit, cache_dir=tmp_path)
    data = info.path.read_bytes()
    info.path.write_bytes(data[: len(data) // 2])
    _check_rebuilt(tmp_path, expect_reason=r"cache file .* is unreadable \(torch.load failed")


@pytest.mark.parametrize("garbage", [b"", b"not a torch file\n" * 10, os.urandom(4096)])
def test_garbage_file_is_rebuilt(tmp_path, garbage):
    cache_path("t", CFG, tmp_path).write_bytes(garbage)
    _check_rebuilt(tmp_path)


def _good_payload(**changes):
    model = make_model()
    payload = {
        "format": CACHE_FORMAT_VERSION,
        "name": "t",
        "key": config_key(CFG),
        "config": cache._normalise_config(CFG),
        "state_dict": dict(model.state_dict()),
        "extra": {},
    }
    payload.update(changes)
    return payload


class NotPlainData:
    pass


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (None, "not a dict"),  # the payload is a list
        ({"format": CACHE_FORMAT_VERSION + 1}, "format"),
        ({"key": "0" * 16}, "key"),
        ({"name": "other"}, "name"),
        ({"config": {**CFG, "width": 999}}, "config differs"),  # as after a hash collision
        ({"state_dict": None}, "state_dict"),
        ({"extra": [1]}, "extra"),
        ({"extra": {"x": NotPlainData()}}, "torch.load failed"),  # refused by weights_only
    ],
)
def test_bad_payload_is_rebuilt(tmp_path, changes, reason):
    payload = [1, 2, 3] if changes is None else _good_payload(**changes)
    torch.save(payload, cache_path("t", CFG, tmp_path))
    _check_rebuilt(tmp_path, expect_reason=reason)


def test_good_handmade_payload_is_accepted(tmp_path):
    # guards the test above: the unmodified payload is valid, so each change alone triggers the rebuild
    torch.save(_good_payload(), cache_path("t", CFG, tmp_path))
    _, info = no_warnings_call("t", CFG, make_model, Counter(), cache_dir=tmp_path)
    assert info.from_cache


def test_architecture_mismatch_is_rebuilt_from_a_pristine_model(tmp_path):
    load_or_train("arch", CFG, lambda: make_model(width=8), fit, cache_dir=tmp_path)

    # same first layer, one extra layer: a strict load copies the first layer and then fails
    def build():
        torch.manual_seed(5)
        return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3), nn.Linear(3, 3))

    reference = build().state_dict()
    seen = {}

    def train(model):
        seen["state"] = {k: v.clone() for k, v in model.state_dict().items()}
        fit(model)

    with pytest.warns(RuntimeWarning, match="does not fit"):
        model, info = load_or_train("arch", CFG, build, train, cache_dir=tmp_path)
    assert not info.from_cache
    assert states_equal(seen["state"], reference), "train() got a model partly overwritten by the bad file"
    _, again = no_warnings_call("arch", CFG, build, train, cache_dir=tmp_path)
    assert again.from_cache


def test_shape_mismatch_is_rebuilt(tmp_path):
    load_or_train("shape", CFG, lambda: make_model(width=8), fit, cache_dir=tmp_path)
    with pytest.warns(RuntimeWarning, match="does not fit"):
        model, info = load_or_train("shape", CFG, lambda: make_model(width=9), fit, cache_dir=tmp_path)
    assert not info.from_cache and model[0].out_features == 9


# ------------------------------------------------------------------------------- atomic writes


def test_writes_leave_no_temporary_files(tmp_path):
    load_or_train("a", CFG, make_model, fit, cache_dir=tmp_path)
    load_or_train("a", CFG, make_model, fit, cache_dir=tmp_path)
    load_or_compute("b", CFG, lambda: {"x": 1}, cache_dir=tmp_path)
    key = config_key(CFG)
    names = {p.name for p in tmp_path.iterdir()}
    assert {f"a-{key}.pt", f"b-{key}.pt"} <= names
    assert all(n.endswith((".pt", ".pt.lock")) for n in names), names


def test_write_goes_through_a_temp_file_in_the_same_folder(tmp_path, monkeypatch):
    replaced, synced = [], []
    real_replace, real_fsync = os.replace, os.fsync

    def spy_fsync(fd):
        synced.append(Path(os.readlink(f"/proc/self/fd/{fd}")) if os.path.exists("/proc/self/fd") else fd)
        real_fsync(fd)

    def spy_replace(src, dst):
        src, dst = Path(src), Path(dst)
        assert not dst.exists(), "the final file must appear only through os.replace"
        assert synced, "the temporary file must be fsync'ed before it is renamed"
        if isinstance(synced[0], Path):
            assert synced[0] == src
        # the temporary file is complete before it is renamed
        assert torch.load(src, weights_only=True)["key"] == config_key(CFG)
        replaced.append((src, dst))
        real_replace(src, dst)

    monkeypatch.setattr(cache.os, "replace", spy_replace)
    monkeypatch.setattr(cache.os, "fsync", spy_fsync)
    _, info = load_or_train("a", CFG, make_model, fit, cache_dir=tmp_path)
    assert len(replaced) == 1
    src, dst = replaced[0]
    assert dst == info.path and src.parent == dst.parent and src != dst and not src.exists()


def test_failed_write_leaves_neither_final_nor_temp_file(tmp_path, monkeypatch):
    real_save = torch.save

    def half_save(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        f.truncate(f.tell() // 2)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache.torch, "save", half_save)
    with pytest.warns(RuntimeWarning, match="could not write"):
        model, info = load_or_train("a", CFG, make_model, fit, cache_dir=tmp_path)
    assert not info.from_cache and isinstance(model, nn.Module)
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


# ------------------------------------------------------------------------------------- locking


def _concurrent_worker(cache_dir: str, counter: str, out: str, barrier) -> None:
    def build():
        torch.manual_seed(os.getpid())  # different initial weights in each process
        return make_model()

    def train(model):
        with open(counter, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(1.0)
        return fit(model)

    torch.set_num_threads(1)
    barrier.wait(timeout=60)
    model, info = load_or_train("conc", CFG, build, train, cache_dir=cache_dir)
    torch.save({"state": model.state_dict(), "from_cache": info.from_cache}, out)


def _process_context():
    """A fresh-interpreter start method: forkserver with torch preloaded (quick) where there is one, else spawn.

    Not ``fork``: forking a process whose torch thread pools are running can deadlock.
    """
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["torch", __name__])  # each child then starts in milliseconds
        return ctx
    return mp.get_context("spawn")  # pragma: no cover - Windows


def test_two_processes_train_once(tmp_path):
    ctx = _process_context()
    barrier = ctx.Barrier(2)
    counter = tmp_path / "counter.txt"
    outs = [tmp_path / f"out{i}.pt" for i in range(2)]
    procs = [
        ctx.Process(target=_concurrent_worker, args=(str(tmp_path / "c"), str(counter), str(o), barrier))
        for o in outs
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert len(counter.read_text().splitlines()) == 1
    results = [torch.load(o, weights_only=True) for o in outs]
    assert sorted(r["from_cache"] for r in results) == [False, True]
    assert states_equal(results[0]["state"], results[1]["state"])


def test_lock_is_exclusive_between_threads(tmp_path):
    # flock locks belong to open file descriptions, so it also excludes threads of one process
    import threading

    path = tmp_path / "x.pt"
    inside, overlaps = [], []

    def worker():
        with cache._locked(path):
            if inside:
                overlaps.append(1)
            inside.append(1)
            time.sleep(0.05)
            inside.pop()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == []


def test_works_without_fcntl(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "fcntl", None)
    train = Counter()
    load_or_train("nf", CFG, make_model, train, cache_dir=tmp_path)
    _, info = load_or_train("nf", CFG, make_model, train, cache_dir=tmp_path)
    assert info.from_cache and train.calls == 1


# ------------------------------------------------------------------------------ load_or_compute


def test_load_or_compute_round_trip(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        g = torch.Generator().manual_seed(0)
        return {
            "features": torch.randn(10, 3, generator=g),
            "labels": [0, 1, 2],
            "meta": {"source": "cifar", "n": np.int64(10), "ratio": 0.5},
            "split": ("train", "test"),
        }

    cold = load_or_compute("feat", CFG, compute, cache_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warm = load_or_compute("feat", CFG, compute, cache_dir=tmp_path)
    assert len(calls) == 1
    for value in (cold, warm):
        assert torch.equal(value["features"], compute()["features"])
        assert value["labels"] == [0, 1, 2] and value["split"] == ("train", "test")
        assert value["meta"] == {"source": "cifar", "n": 10, "ratio": 0.5}
        assert type(value["meta"]["n"]) is int


def test_load_or_compute_rebuilds_bad_file_and_checks_types(tmp_path):
    cache_path("f", CFG, tmp_path).write_bytes(b"\x00" * 10)
    with pytest.warns(RuntimeWarning, match="unreadable"):
        assert load_or_compute("f", CFG, lambda: {"a": 1}, cache_dir=tmp_path) == {"a": 1}
    assert load_or_compute("f", CFG, lambda: {"a": 2}, cache_dir=tmp_path) == {"a": 1}
    with pytest.raises(TypeError):
        load_or_compute("g", CFG, lambda: [1, 2], cache_dir=tmp_path)  # type: ignore[return-value]
    with pytest.raises(TypeError, match="value"):
        load_or_compute("g", CFG, lambda: {"a": object()}, cache_dir=tmp_path)
    assert not cache_path("g", CFG, tmp_path).exists()


def test_model_file_is_not_read_as_computed_value(tmp_path):
    load_or_train("same", CFG, make_model, fit, cache_dir=tmp_path)
    with pytest.warns(RuntimeWarning, match="value"):
        assert load_or_compute("same", CFG, lambda: {"a": 1}, cache_dir=tmp_path) == {"a": 1}


# ---------------------------------------------------------------------------------- clear_cache


def test_clear_cache(tmp_path):
    for name, cfg in [("a", CFG), ("a", {**CFG, "seed": 1}), ("a-b", CFG), ("b", CFG)]:
        load_or_compute(name, cfg, lambda: {"x": 1}, cache_dir=tmp_path)
    (tmp_path / "notes.pt").write_bytes(b"not ours")
    (tmp_path / "readme.txt").write_text("not ours")

    assert clear_cache("a", cache_dir=tmp_path) == 2
    left = sorted(p.name for p in tmp_path.iterdir())
    assert f"a-b-{config_key(CFG)}.pt" in left and f"b-{config_key(CFG)}.pt" in left
    assert not any(n.startswith(f"a-{config_key(CFG)}") for n in left)  # lock file gone too

    assert clear_cache(cache_dir=tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.pt", "readme.txt"]
    assert clear_cache(cache_dir=tmp_path) == 0
    assert clear_cache(cache_dir=tmp_path / "missing") == 0
    with pytest.raises(ValueError):
        clear_cache("a/b", cache_dir=tmp_path)

    # after clearing, the next call computes again
    assert load_or_compute("a", CFG, lambda: {"x": 2}, cache_dir=tmp_path) == {"x": 2}


def test_clear_cache_default_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("KAE_CACHE_DIR", str(tmp_path))
    load_or_compute("d", CFG, lambda: {"x": 1})
    assert clear_cache("d") == 1
