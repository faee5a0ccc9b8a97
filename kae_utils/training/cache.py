"""Load-or-train cache for teachers and other expensive artefacts.

A notebook asks for a trained model by a *name* and a *config* (a JSON-like mapping of everything
that determines the result: architecture, data, seed, epochs ...)::

    teacher, info = load_or_train("teacher-cifar", cfg, build=lambda: make_model(cfg), train=fit)

The first call builds the model, trains it and saves its ``state_dict`` to
``<cache_dir>/<name>-<key>.pt``, where ``key`` is a short hash of the config; later calls with the
same name and config build a fresh model and load the saved weights into it instead of training.

Guarantees:

* files are written atomically (temporary file in the same folder, ``fsync``, ``os.replace``), so a
  reader never sees a half-written file;
* an exclusive ``fcntl.flock`` on ``<path>.lock`` is held around check-load-or-train-save, so two
  processes asking for the same artefact train it only once (the second waits, then loads);
* files are read only with ``torch.load(..., weights_only=True)``; everything stored is checked to be
  plain data (tensors, dicts, lists, tuples, str/int/float/bool/None) before saving;
* an unreadable, truncated, mismatched or ill-fitting file is reported with a ``RuntimeWarning``,
  deleted and rebuilt, never a crash;
* nothing is printed, so a notebook's output is the same whether the cache was warm or cold; by default
  the global random-number generators are also restored after ``train()``/``compute()``, so the code
  that runs afterwards draws the same random numbers in both cases.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kae_utils.core.atomic import atomic_write, tmp_prefix
from kae_utils.core.paths import cache_dir as _default_cache_dir

try:  # POSIX only; elsewhere the cache works without locking
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "atomic_save",
    "CACHE_FORMAT_VERSION",
    "CacheInfo",
    "cache_path",
    "clear_cache",
    "config_key",
    "load_or_compute",
    "load_or_train",
    "sha256_file",
]

#: Version of the on-disk layout; it is mixed into every key, so bumping it invalidates old files.
CACHE_FORMAT_VERSION: int = 1

_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")
_KEY_LEN = 16
_FILE_RE = re.compile(r"(?P<name>[A-Za-z0-9_.-]+)-(?P<key>[0-9a-f]{16})\.pt")
_REASON_MAX = 300

StrPath = str | os.PathLike


@dataclass(frozen=True)
class CacheInfo:
    """What :func:`load_or_train` did.

    ``path``: the cache file; ``key``: the config's hash; ``from_cache``: whether the weights were
    loaded rather than trained; ``extra``: the metadata ``train()`` returned (or that was stored with
    the weights), ``{}`` when it returned ``None``.
    """

    path: Path
    key: str
    from_cache: bool
    extra: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------------- keys


def _fmt_path(path: str) -> str:
    return path or "<config>"


def _normalise_config(value: Any, path: str = "") -> Any:
    """JSON-normalise ``value`` (tuples become lists); raise ``TypeError`` naming the key path otherwise."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"config value at {_fmt_path(path)} is {value!r}, which JSON cannot represent")
        return float(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, (list, tuple)):
        return [_normalise_config(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(
                    f"config key {k!r} at {_fmt_path(path)} is a {type(k).__name__}; keys must be strings"
                )
            out[str.__str__(k)] = _normalise_config(v, f"{path}.{k}" if path else k)
        return out
    raise TypeError(
        f"config value at {_fmt_path(path)} is a {type(value).__name__} ({value!r:.80}); "
        "only str, int, float, bool, None, lists/tuples and dicts can be hashed"
    )


def _canonical_json(normalised: Any) -> str:
    return json.dumps(normalised, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def config_key(config: Mapping[str, Any]) -> str:
    """16-hex-char sha256 of the canonical JSON of ``config``, with :data:`CACHE_FORMAT_VERSION` mixed in.

    The JSON is written with ``sort_keys=True`` and ``separators=(",", ":")``, so the key does not depend
    on the order of dict entries, and tuples hash like lists. Values must be JSON-serialisable (str, int,
    float, bool, None, lists/tuples, dicts with string keys); anything else, NaN and infinities included,
    raises ``TypeError`` naming the offending key path (e.g. ``model.layers[2]``).
    """
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a mapping; got {type(config).__name__}")
    text = _canonical_json(_normalise_config(config))
    digest = hashlib.sha256(f"kae-cache-v{CACHE_FORMAT_VERSION}\n{text}".encode()).hexdigest()
    return digest[:_KEY_LEN]


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ValueError(f"cache name must match [A-Za-z0-9_.-]+; got {name!r}")
    return name


def _resolve_dir(cache_dir: StrPath | None) -> Path:
    if cache_dir is None:
        return _default_cache_dir()
    return Path(cache_dir).expanduser()


def cache_path(name: str, config: Mapping[str, Any], cache_dir: StrPath | None = None) -> Path:
    """The cache file for ``(name, config)``: ``<cache_dir>/<name>-<config_key(config)>.pt``.

    ``name`` must match ``[A-Za-z0-9_.-]+`` (otherwise ``ValueError``). ``cache_dir`` defaults to
    :func:`kae_utils.core.paths.cache_dir` (``KAE_CACHE_DIR`` or ``<repo>/.cache/kae``).
    """
    _check_name(name)
    return _resolve_dir(cache_dir) / f"{name}-{config_key(config)}.pt"


# ------------------------------------------------------------------------------------ plain data


def _to_plain(value: Any, path: str) -> Any:
    """Copy ``value`` into weights_only-safe data (tensors on the CPU); raise ``TypeError`` otherwise.

    NumPy scalars become Python numbers and tuple subclasses plain tuples; anything that is not a
    tensor, dict, list, tuple, str, int, float, bool or None is refused rather than pickled.
    """
    if value is None:
        return None
    if isinstance(value, (bool, int, float, str)):
        return _exact_scalar(value)
    if isinstance(value, (np.bool_, np.integer, np.floating)):
        return value.item()
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, list):
        return [_to_plain(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return tuple(_to_plain(v, f"{path}[{i}]") for i, v in enumerate(value))
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, (str, int, float, bool)):
                raise TypeError(f"key {k!r} in {path} is a {type(k).__name__}; only str/int/float/bool keys")
            k = _exact_scalar(k)
            out[k] = _to_plain(v, f"{path}[{k!r}]")
        return out
    hint = " (convert it with torch.as_tensor)" if isinstance(value, np.ndarray) else ""
    raise TypeError(
        f"{path} is a {type(value).__name__}{hint}; the cache stores only tensors, dicts, lists, tuples, "
        "str, int, float, bool and None (it is loaded with torch.load(weights_only=True))"
    )


def _exact_scalar(value: bool | int | float | str) -> bool | int | float | str:
    """The value as an exact built-in type (drops subclasses such as ``IntEnum`` that would be pickled)."""
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str.__str__(value)


# ------------------------------------------------------------------------- locking and writing


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``<path>.lock`` (no-op where ``fcntl`` is missing)."""
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    lock_path = path.with_name(path.name + ".lock")
    fd = -1
    try:
        while True:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            # clear_cache() may have removed the lock file while we waited; then lock the new one.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(lock_path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
            fd = -1
    except OSError as exc:  # e.g. ENOLCK on some network file systems
        if fd >= 0:
            os.close(fd)
            fd = -1
        warnings.warn(
            f"could not lock {lock_path} ({exc}); going on without a lock", RuntimeWarning, stacklevel=4
        )
    try:
        yield
    finally:
        if fd >= 0:
            with suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _tmp_prefix(path: Path) -> str:
    return tmp_prefix(path)


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, in hex (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_save(payload: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file beside ``path``, fsync it, then ``os.replace`` it onto ``path``.

    A reader never sees a half-written file; on any error the temporary file is removed. Returns ``path``
    (:func:`kae_utils.core.atomic.atomic_write` with ``torch.save``).
    """
    return atomic_write(path, lambda f: torch.save(payload, f))


def _save_or_warn(payload: dict, path: Path) -> None:
    try:
        atomic_save(payload, path)
    except OSError as exc:
        warnings.warn(
            f"could not write cache file {path} ({exc}); the result is used but not cached",
            RuntimeWarning,
            stacklevel=3,
        )


# ------------------------------------------------------------------------------------ reading


class _BadCache(Exception):
    """A cache file that cannot be used; the message is the reason."""


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first if len(first) <= _REASON_MAX else first[: _REASON_MAX - 3] + "..."


def _read_payload(
    path: Path, name: str, key: str, config_json: str, field_name: str, map_location: Any
) -> dict:
    """Load and validate a payload; raise ``_BadCache`` with the reason when it cannot be used."""
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # any failure means the file is unusable
        raise _BadCache(f"torch.load failed: {_short(exc)}") from exc
    if not isinstance(payload, dict):
        raise _BadCache(f"payload is a {type(payload).__name__}, not a dict")
    if payload.get("format") != CACHE_FORMAT_VERSION:
        raise _BadCache(f"format {payload.get('format')!r}, expected {CACHE_FORMAT_VERSION}")
    if payload.get("name") != name:
        raise _BadCache(f"stored name {payload.get('name')!r} differs from {name!r}")
    if payload.get("key") != key:
        raise _BadCache(f"stored key {payload.get('key')!r} differs from {key!r}")
    try:
        stored_json = _canonical_json(_normalise_config(payload.get("config")))
    except (TypeError, ValueError) as exc:
        raise _BadCache(f"stored config is not valid: {_short(exc)}") from exc
    if stored_json != config_json:
        raise _BadCache("stored config differs from the requested one (hash collision?)")
    if not isinstance(payload.get(field_name), dict):
        raise _BadCache(f"no {field_name!r} dict in the payload")
    if not isinstance(payload.get("extra"), dict):
        raise _BadCache("no 'extra' dict in the payload")
    return payload


def _discard(path: Path, reason: str) -> None:
    warnings.warn(f"cache file {path} is unreadable ({reason}); rebuilding it", RuntimeWarning, stacklevel=3)
    with suppress(OSError):
        path.unlink()


# ----------------------------------------------------------------------------------------- RNG


@contextmanager
def _rng_restored(enabled: bool) -> Iterator[None]:
    """Restore Python's, NumPy's and torch's (CPU and initialised CUDA) global RNG states on exit."""
    if not enabled:
        yield
        return
    py_state = random.getstate()
    np_state = np.random.get_state()
    torch_state = torch.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)


def _check_map_location(map_location: str | torch.device) -> None:
    dev = torch.device(map_location)
    if dev.type == "cuda" and not torch.cuda.is_available():
        # Refuse here: letting torch.load fail would look like a corrupt file and delete a good cache.
        raise RuntimeError(f"map_location={map_location!r} but torch sees no CUDA device")


def _entry(name: str, config: Mapping[str, Any], cache_dir: StrPath | None) -> tuple[str, Any, str, Path]:
    """The key of ``(name, config)``, the normalised config and its canonical JSON, and the cache file (its
    folder created)."""
    _check_name(name)
    key = config_key(config)
    config_norm = _normalise_config(config)
    config_json = _canonical_json(config_norm)
    directory = _resolve_dir(cache_dir)
    directory.mkdir(parents=True, exist_ok=True)
    return key, config_norm, config_json, directory / f"{name}-{key}.pt"


# -------------------------------------------------------------------------------------- public


def load_or_train(
    name: str,
    config: Mapping[str, Any],
    build: Callable[[], torch.nn.Module],
    train: Callable[[torch.nn.Module], Mapping[str, Any] | None],
    *,
    cache_dir: StrPath | None = None,
    map_location: str | torch.device = "cpu",
    restore_rng: bool = True,
) -> tuple[torch.nn.Module, CacheInfo]:
    """Return the model for ``(name, config)``, trained now or loaded from the cache, in ``eval()`` mode.

    ``build()`` makes a fresh model (it is called exactly once per call). If a valid cache file exists,
    its ``state_dict`` is loaded into that model with ``strict=True``. Otherwise ``train(model)`` trains it
    in place and may return a mapping of extra metadata (e.g. a training history of floats and lists,
    which must be plain data, else ``TypeError``); the weights (moved to the CPU, buffers included) and
    the metadata are saved atomically. An unusable cache file gives a ``RuntimeWarning``, is deleted and
    rebuilt. An exclusive file lock makes concurrent callers with the same key train only once.

    ``map_location`` is passed to ``torch.load``; the weights end up on whatever device ``build()`` put
    the model. With ``restore_rng`` (default) the global RNG states of ``random``, NumPy and torch are
    put back after ``train()``, so the code after this call sees the same random numbers whether the
    cache was warm or cold. Nothing is printed.
    """
    _check_map_location(map_location)
    key, config_norm, config_json, path = _entry(name, config, cache_dir)

    with _locked(path):
        model = build()
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"build() must return a torch.nn.Module; got {type(model).__name__}")
        if path.exists():
            try:
                payload = _read_payload(path, name, key, config_json, "state_dict", map_location)
                pristine = {k: v.clone() for k, v in model.state_dict(keep_vars=False).items()}
                try:
                    model.load_state_dict(payload["state_dict"], strict=True)
                except Exception as exc:  # missing/unexpected keys, shape mismatch ...
                    # a failed strict load may have copied some tensors already: undo that
                    model.load_state_dict(pristine, strict=True)
                    raise _BadCache(f"state_dict does not fit the model from build(): {_short(exc)}") from exc
            except _BadCache as bad:
                _discard(path, str(bad))
            else:
                model.eval()
                return model, CacheInfo(path=path, key=key, from_cache=True, extra=payload["extra"])

        with _rng_restored(restore_rng):
            returned = train(model)
        if returned is not None and not isinstance(returned, Mapping):
            raise TypeError(f"train() must return a mapping or None; got {type(returned).__name__}")
        extra = _to_plain(dict(returned or {}), "extra")
        state = _to_plain(dict(model.state_dict()), "state_dict")
        payload = {
            "format": CACHE_FORMAT_VERSION,
            "name": name,
            "key": key,
            "config": config_norm,
            "state_dict": state,
            "extra": extra,
        }
        _save_or_warn(payload, path)
    model.eval()
    return model, CacheInfo(path=path, key=key, from_cache=False, extra=extra)


def load_or_compute(
    name: str,
    config: Mapping[str, Any],
    compute: Callable[[], Mapping[str, Any]],
    *,
    cache_dir: StrPath | None = None,
    restore_rng: bool = True,
) -> dict:
    """Return ``compute()``'s dict for ``(name, config)``, computed now or loaded from the cache.

    Same caching, locking and error handling as :func:`load_or_train`, for a dict of tensors, numbers,
    strings, lists, tuples and dicts (e.g. precomputed features). Anything else raises ``TypeError``.
    The dict returned is the stored form in both the cold and the warm case: tensors detached and on
    the CPU, NumPy scalars as Python numbers.
    """
    key, config_norm, config_json, path = _entry(name, config, cache_dir)

    with _locked(path):
        if path.exists():
            try:
                payload = _read_payload(path, name, key, config_json, "value", "cpu")
            except _BadCache as bad:
                _discard(path, str(bad))
            else:
                return payload["value"]
        with _rng_restored(restore_rng):
            returned = compute()
        if not isinstance(returned, Mapping):
            raise TypeError(f"compute() must return a mapping; got {type(returned).__name__}")
        value = _to_plain(dict(returned), "value")
        payload = {
            "format": CACHE_FORMAT_VERSION,
            "name": name,
            "key": key,
            "config": config_norm,
            "value": value,
            "extra": {},
        }
        _save_or_warn(payload, path)
    return value


def clear_cache(name: str | None = None, cache_dir: StrPath | None = None) -> int:
    """Delete the cache files ``<name>-<key>.pt`` (all names when ``name`` is None); return how many.

    Only files named like cache files are touched. Each is removed while holding its lock, together
    with its lock file and any temporary files a crashed writer left behind.
    """
    if name is not None:
        _check_name(name)
    directory = _resolve_dir(cache_dir)
    if not directory.is_dir():
        return 0
    removed = 0
    for path in sorted(directory.iterdir()):
        match = _FILE_RE.fullmatch(path.name)
        if match is None or (name is not None and match["name"] != name):
            continue
        with _locked(path):
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            else:
                removed += 1
            for tmp in directory.glob(f"{_tmp_prefix(path)}*.tmp"):
                with suppress(OSError):
                    tmp.unlink()
            with suppress(OSError):
                path.with_name(path.name + ".lock").unlink()
    return removed
