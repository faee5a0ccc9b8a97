"""The store: ``zoo/weights/<name>.safetensors`` and ``zoo/manifest.json`` (hashes, metrics, curves), build and
verify (:class:`Zoo`), and the repository's own zoo as functions (:func:`load`, :func:`obtain`, ...).
"""

from __future__ import annotations

import contextlib
import datetime
import difflib
import hashlib
import json
import os
import subprocess
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kae_utils.core.atomic import atomic_write
from kae_utils.core.params import check_choice
from kae_utils.core.paths import repo_root
from kae_utils.models import (
    count_parameters,
)
from kae_utils.notebook import resolve_device
from kae_utils.training.cache import config_key, load_or_train, sha256_file
from kae_utils.training.numerics import Numerics, current, using
from kae_utils.zoo.entries import (
    ENTRY_PROFILES,
    TEACHER_SOURCES,
    ZOO_FORMAT,
    Recipe,
    ZooEntry,
    ZooError,
    ZooIntegrityError,
)
from kae_utils.zoo.recipes import entry_data, entry_scores, headline, linear_probe, train_entry
from kae_utils.zoo.registry import REGISTRY
from kae_utils.zoo.smoke import entry_paper_counts, smoke_registry

# the metadata of a weights file: its format, and the key of its name and config hash
_METADATA_FORMAT = "kae-zoo-1"
_METADATA_KEY = "kae_zoo"

# ------------------------------------------------------------------------------------ files


def zoo_dir() -> Path:
    """The zoo folder: ``KAE_ZOO_DIR`` or ``<repo>/zoo``.

    With ``KAE_SCALE=smoke`` the zoo is a smoke zoo (:func:`smoke_entry`): ``KAE_ZOO_DIR`` must name a folder of its
    own, never the shipped ``zoo/`` (``ZooError`` otherwise), so smoke weights never mix with real ones."""
    from kae_utils.core.scale import current_scale

    env = os.environ.get("KAE_ZOO_DIR")
    shipped = repo_root() / "zoo"
    if current_scale() == "smoke" and (not env or Path(env).expanduser().resolve() == shipped.resolve()):
        raise ZooError("KAE_SCALE=smoke trains and loads its full-profile zoo entries at smoke scale, in a zoo of its "
                       f"own: set KAE_ZOO_DIR to a temporary folder (never {shipped})")
    return Path(env).expanduser() if env else shipped


def _git_commit() -> str:
    """The commit of the code that trains (``-dirty`` when ``kae_utils`` has uncommitted changes)."""
    try:
        root = repo_root()
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "kae_utils"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
        return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _device_words(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def _rounded(value: Any, digits: int = 5) -> Any:
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v, digits) for v in value]
    return value


def _fp16_scores(e: ZooEntry, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Held-out metrics after rounding every weight to float16 and back (would fp16 storage lose anything?)."""
    import copy

    rounded = copy.deepcopy(model)
    with torch.no_grad():
        for t in rounded.state_dict().values():
            if t.is_floating_point():
                t.copy_(t.half().float())
    return entry_scores(e, rounded, x, y)


def _architecture(e: ZooEntry) -> str:
    words = f"{e.arch} {tuple(e.arch_args.get('widths', ()))}"
    if "encoder_widths" in e.arch_args:
        words += f", encoder {tuple(e.arch_args['encoder_widths'])}"
    return words


def _recipe_words(r: Recipe) -> str:
    words = f"{r.optimizer} lr {r.lr:g}, {r.schedule}, {r.epochs} epochs, batch {r.batch_size}"
    if r.shift_copies:
        words += f", +{r.shift_copies} shifted cop{'y' if r.shift_copies == 1 else 'ies'}"
    return words


# ------------------------------------------------------------------------------------------ the zoo


class Zoo:
    """A zoo folder (``weights/`` and ``manifest.json``) together with the registry that defines its entries.

    ``Zoo()`` is the repository's own (``zoo/`` and :data:`REGISTRY`); tests make small ones in a temporary
    folder. The module-level functions (:func:`load`, :func:`build`, ...) act on ``Zoo()``.
    """

    def __init__(self, root: str | os.PathLike | None = None, registry: dict[str, ZooEntry] | None = None) -> None:
        from kae_utils.core.scale import current_scale

        self.root = Path(root) if root is not None else zoo_dir()
        self.smoke = registry is None and current_scale() == "smoke"
        self.registry = (smoke_registry() if self.smoke else REGISTRY) if registry is None else registry
        self._repository_registry = registry is None or registry is REGISTRY

    # -- definitions
    def entry(self, name: str) -> ZooEntry:
        """The entry ``name``; an unknown name raises ``KeyError`` listing the closest ones."""
        if name in self.registry:
            return self.registry[name]
        close = difflib.get_close_matches(str(name), list(self.registry), n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"no zoo entry named {name!r}{hint} (`python -m kae_utils.zoo list` shows them all)")

    def config(self, name: str) -> dict[str, Any]:
        """Everything that determines the weights of ``name``; the ``init`` entry enters by its own hash."""
        e = self.entry(name)
        cfg = e.own_config()
        cfg["init"] = None if e.init is None else {"name": e.init, "config_hash": self.config_hash(e.init)}
        return cfg

    def config_hash(self, name: str) -> str:
        return config_key(self.config(name))

    # -- files
    def weights_path(self, name: str) -> Path:
        return self.root / "weights" / f"{name}.safetensors"

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    def manifest(self) -> dict[str, Any]:
        """The manifest ``{"format": 1, "entries": {name: record}}`` (empty when there is none yet)."""
        if not self.manifest_path.exists():
            return {"format": ZOO_FORMAT, "entries": {}}
        data = json.loads(self.manifest_path.read_text())
        if data.get("format") != ZOO_FORMAT:
            raise ZooError(f"{self.manifest_path} has format {data.get('format')!r}; this code reads {ZOO_FORMAT}")
        return data

    def _write_manifest(self, data: dict[str, Any]) -> None:
        text = json.dumps({"format": ZOO_FORMAT, "entries": dict(sorted(data["entries"].items()))}, indent=1) + "\n"
        atomic_write(self.manifest_path, lambda f: f.write(text.encode()))

    def _save_weights(self, name: str, model: nn.Module) -> Path:
        from safetensors.torch import save

        tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        # one metadata key: safetensors writes several in a random order, and the bytes must be reproducible
        meta = json.dumps({"format": _METADATA_FORMAT, "name": name, "config_hash": self.config_hash(name)},
                          sort_keys=True)
        data = save(tensors, metadata={_METADATA_KEY: meta})
        return atomic_write(self.weights_path(name), lambda f: f.write(data))

    def status(self, name: str, data: dict[str, Any] | None = None) -> str:
        """``built``, ``missing`` (no manifest record or no file) or ``stale`` (the recipe changed since)."""
        record = (data or self.manifest())["entries"].get(self.entry(name).name)
        if record is None or not self.weights_path(name).exists():
            return "missing"
        return "built" if record["config_hash"] == self.config_hash(name) else "stale"

    # -- building
    def _record(self, e: ZooEntry, model: nn.Module, info: dict[str, Any], path: Path, device: torch.device,
                commit: str) -> dict:
        x_val, y_val = entry_data(e.held_out)
        record = {
            "config_hash": self.config_hash(e.name),
            "file": f"weights/{path.name}",
            "sha256": sha256_file(path),
            "bytes": path.stat().st_size,
            "dtype": "float32",
            "parameters": count_parameters(model),
            "profile": e.profile,
            "task": e.task,
            "architecture": _architecture(e),
            "starts_from": e.init,
            "used_by": list(e.used_by),
            "metrics": entry_scores(e, model, x_val, y_val),
            "metrics_if_fp16": _fp16_scores(e, model, x_val, y_val),
            "history": info["history"],
            "train_seconds": info["train_seconds"],
            "device": _device_words(device),
            **current(device).manifest(),
            "torch": torch.__version__,
            "commit": commit,
            "built": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "recipe": self.config(e.name),
        }
        if e.probe is not None:
            record["probe"] = {"features": linear_probe(model, e.probe), "raw pixels": linear_probe(None, e.probe)}
        return _rounded(record)

    def _selected(self, names: Sequence[str], profile: str) -> list[ZooEntry]:
        if not names:
            wanted = ENTRY_PROFILES if profile == "all" else (profile,)
            return [e for e in self.registry.values() if e.profile in wanted]
        chosen = set()
        for name in names:  # an entry's init comes along
            current: str | None = self.entry(name).name
            while current is not None:
                chosen.add(current)
                current = self.registry[current].init
        return [e for n, e in self.registry.items() if n in chosen]

    def build(self, names: Sequence[str] = (), *, device: str = "auto", profile: str = "auto",
              precision: str = "auto", log: Callable[[str], None] = print,
              callbacks: Sequence[Any] = ()) -> list[str]:
        """Train every selected entry that is missing or stale; returns the names it (re)built.

        ``names``: entries to build (and the entries they start from); default every entry of ``profile``:
        ``quick``, ``full``, ``all``, or ``auto`` (``all`` on a GPU, ``quick`` on a CPU). The training state
        is checkpointed under ``<zoo>/.partial/`` after every epoch, so an interrupted build resumes there.
        ``precision``: the numerics of training and scoring (:mod:`kae_utils.training.numerics`), recorded in the
        manifest with the memory format; the same device, threads and precision give the same bytes.
        """
        check_choice("profile", profile, ("auto", "all", *ENTRY_PROFILES))
        dev = resolve_device(device)
        if profile == "auto":
            profile = "all" if dev.type == "cuda" else "quick"
        shipped = repo_root() / "zoo"
        if self._repository_registry and self.root.resolve() != shipped.resolve():
            # a zoo of its own (KAE_ZOO_DIR: a smoke zoo, or the full entries built apart from zoo/) starts with a
            # copy of the shipped quick entries, which the full profiles use too (09, 02 and 03 on digits)
            adopted = self.adopt(Zoo(shipped, REGISTRY), [n for n, e in self.registry.items() if e.profile == "quick"])
            if adopted:
                log(f"zoo {self.root}: {len(adopted)} quick entries copied from the shipped zoo {shipped}")
        with using(precision, dev) as numerics:
            return self._build(names, dev, profile, numerics, log, callbacks)

    def _build(self, names: Sequence[str], dev: torch.device, profile: str, numerics: Numerics,
               log: Callable[[str], None], callbacks: Sequence[Any]) -> list[str]:
        built, commit = [], _git_commit()  # the code as it was when the build started (and was imported)
        for e in self._selected(names, profile):
            state = self.status(e.name)
            if state == "built":
                log(f"{e.name}: up to date")
                continue
            log(f"{e.name}: {state}, training ({e.recipe.epochs} epochs on {_device_words(dev)}, "
                f"{numerics.describe().removeprefix('numerics: ')})")
            partial = self.root / ".partial" / f"{e.name}-{self.config_hash(e.name)}.ckpt"
            init_model = self.load(e.init, dev) if e.init is not None else None
            with entry_paper_counts(e) if self.smoke else contextlib.nullcontext():  # for the work log (kae_utils.core.scale)
                model, info = train_entry(e, dev, init_model=init_model, checkpoint=partial, callbacks=callbacks)
            path = self._save_weights(e.name, model)
            data = self.manifest()
            data["entries"][e.name] = self._record(e, model, info, path, dev, commit)
            self._write_manifest(data)
            partial.unlink(missing_ok=True)
            metric, _ = headline(e)
            log(f"{e.name}: built, held-out {metric} {data['entries'][e.name]['metrics'][metric]:.4f}")
            built.append(e.name)
        return built

    def adopt(self, source: Zoo, names: Sequence[str]) -> list[str]:
        """Copy the entries ``names`` that ``source`` has built (file and manifest record, hash-checked) into this
        zoo, where this zoo's registry defines them the same way; returns the names copied (those missing here)."""
        data, theirs, copied = self.manifest(), source.manifest(), []
        for name in names:
            if self.status(name, data) == "built" or source.status(name, theirs) != "built":
                continue
            if source.config_hash(name) != self.config_hash(name):
                continue
            payload = source.weights_path(name).read_bytes()
            if hashlib.sha256(payload).hexdigest() != theirs["entries"][name]["sha256"]:
                raise ZooIntegrityError(f"refusing to copy {source.weights_path(name)}: its SHA-256 does not match "
                                        f"{source.manifest_path}")
            atomic_write(self.weights_path(name), lambda f, payload=payload: f.write(payload))
            data["entries"][name] = theirs["entries"][name]
            copied.append(name)
        if copied:
            self._write_manifest(data)
        return copied

    def verify(self) -> list[str]:
        """Problems found by rehashing every weights file against the manifest (an empty list: all good).

        A problem is a listed file that is missing, a file whose SHA-256 differs from the manifest's, or a
        file in ``weights/`` that the manifest does not list.
        """
        data, problems = self.manifest(), []
        for name, record in sorted(data["entries"].items()):
            path = self.root / record["file"]
            if not path.exists():
                problems.append(f"missing: {path} (listed in the manifest as {name!r})")
            elif sha256_file(path) != record["sha256"]:
                problems.append(f"hash mismatch: {path} does not match the manifest's SHA-256 for {name!r}")
        listed = {Path(r["file"]).name for r in data["entries"].values()}
        folder = self.root / "weights"
        if folder.exists():
            problems += [f"unlisted: {p} (not in the manifest)" for p in sorted(folder.iterdir()) if p.name not in listed]
        return problems

    # -- loading
    def load(self, name: str, device: torch.device | str = "cpu") -> nn.Module:
        """The trained model ``name``, in eval mode on ``device``, after checking its hash.

        Raises ``KeyError`` for an unknown name (listing the close ones), :class:`ZooError` when it is not
        built or stale (naming the command that builds it), :class:`ZooIntegrityError` when the file does not
        match the manifest (refused, with its path).
        """
        from safetensors import safe_open
        from safetensors.torch import load as load_bytes

        e = self.entry(name)
        path, record = self.weights_path(name), self.manifest()["entries"].get(name)
        how = f"run `make zoo NAMES={name}` (or `python -m kae_utils.zoo build {name}`)"
        if record is None or not path.exists():
            where = " (a full-profile entry, meant to be built on a GPU)" if e.profile == "full" else ""
            raise ZooError(f"zoo entry {name!r} is not built{where}: {how}")
        if record["config_hash"] != self.config_hash(name):
            raise ZooError(f"zoo entry {name!r} is stale (its recipe changed since {path} was built): {how}")
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != record["sha256"]:
            raise ZooIntegrityError(f"refusing to load {path}: its SHA-256 does not match {self.manifest_path} "
                                    f"(the file was changed or damaged); {how}")
        with safe_open(str(path), framework="pt") as f:
            recorded = json.loads((f.metadata() or {}).get(_METADATA_KEY, "{}")).get("config_hash")
        if recorded != self.config_hash(name):
            raise ZooIntegrityError(f"refusing to load {path}: its metadata names config {recorded!r}, "
                                    f"the registry {self.config_hash(name)!r}; {how}")
        model = e.build_model()
        model.load_state_dict(load_bytes(data))
        device = torch.device(device)
        return current(device).prepare_model(model.to(device)).eval()

    def obtain(self, name: str, source: str = "zoo", device: torch.device | str = "cpu") -> nn.Module:
        """What a notebook's ``TEACHERS`` parameter asks for: ``"zoo"`` loads the shipped weights; ``"train"``
        retrains with the same recipe (its ``init`` entry too) through the teacher cache (``kae_utils.training.cache``),
        so a reader can watch it being made."""
        check_choice("TEACHERS", source, TEACHER_SOURCES)
        if source == "zoo":
            return self.load(name, device)
        e, dev = self.entry(name), torch.device(device)
        init_model = self.obtain(e.init, "train", dev) if e.init is not None else None

        def train(model: nn.Module) -> dict:
            trained, info = train_entry(e, dev, init_model=init_model)
            model.load_state_dict(trained.state_dict())
            return {"train_seconds": info["train_seconds"]}

        # the precision enters the cache key: bf16 and fp32 training give different weights
        config = {**self.config(name), "numerics": current(dev).manifest()}
        model, _ = load_or_train(f"zoo-{name}", config, e.build_model, train)
        return current(dev).prepare_model(model.to(dev)).eval()

    # -- tables
    def summary(self, names: Iterable[str]) -> list[dict[str, Any]]:
        """One row per entry for a notebook: task, architecture, start, recipe, parameters, held-out metric."""
        data, rows = self.manifest(), []
        for name in names:
            e, record = self.entry(name), data["entries"].get(name, {})
            metric, _ = headline(e)
            rows.append({"entry": name, "task": e.task, "architecture": _architecture(e),
                         "starts from": e.init or "random weights", "recipe": _recipe_words(e.recipe),
                         "parameters": record.get("parameters", count_parameters(e.build_model())),
                         f"held-out {metric}": record.get("metrics", {}).get(metric),
                         "status": self.status(name, data)})
        return rows

    def list_rows(self) -> list[dict[str, Any]]:
        """The rows of ``python -m kae_utils.zoo list``."""
        data, rows = self.manifest(), []
        for name, e in self.registry.items():
            record, state = data["entries"].get(name), self.status(name, data)
            metric, _ = headline(e)
            value = record["metrics"][metric] if record and state == "built" else None
            rows.append({"name": name, "profile": e.profile, "task": e.task, "architecture": _architecture(e),
                         "params": record["parameters"] if record else "",
                         "held-out": f"{metric} {value:.4f}" if value is not None else "",
                         "used by": ", ".join(e.used_by), "status": "not built" if state == "missing" else state})
        return rows


# ------------------------------------------------------------------------- the repository's own zoo


def entry(name: str) -> ZooEntry:
    """The registry entry ``name`` (``KeyError`` listing the close ones when unknown)."""
    return Zoo().entry(name)


def load(name: str, device: torch.device | str = "cpu") -> nn.Module:
    """The shipped model ``name`` in eval mode on ``device``, hash-checked; see :meth:`Zoo.load`."""
    return Zoo().load(name, device)


def obtain(name: str, source: str = "zoo", device: torch.device | str = "cpu") -> nn.Module:
    """``TEACHERS="zoo"``: load ``name``; ``"train"``: retrain it with its recipe; see :meth:`Zoo.obtain`."""
    return Zoo().obtain(name, source, device)


def summary(names: Iterable[str]) -> list[dict[str, Any]]:
    """Recipe and held-out metrics of ``names``, one row each (for ``pandas.DataFrame``)."""
    return Zoo().summary(names)


def record(name: str) -> dict[str, Any]:
    """The manifest record of ``name`` (metrics, learning curve, training time, commit ...)."""
    data = Zoo().manifest()["entries"]
    if name not in data:
        raise ZooError(f"zoo entry {entry(name).name!r} is not built: run `make zoo NAMES={name}`")
    return data[name]


def markdown_index(zoo: Zoo | None = None) -> str:
    """The zoo as a markdown table (for ``docs/zoo.md``): one row per entry, from the registry and the manifest."""
    rows = (zoo or Zoo()).list_rows()
    columns = ("name", "profile", "task", "architecture", "params", "held-out", "used by", "status")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r[c]).replace("|", "\\|") for c in columns) + " |" for r in rows]
    return "\n".join(lines)
