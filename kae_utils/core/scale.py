"""The smoke scale of the full profile: the same code path, every count shrunk (``KAE_SCALE=smoke``).

The ``full`` profile is meant for a GPU; a GPU is rarely lent, and a crash in one of its untried branches (the seed
loop, an ablation, the statistics over seeds, a full-size data loader) would waste the time it is lent for. With
``KAE_SCALE=smoke`` in the environment, every full-profile setting of the notebooks, the offline data sets
(:data:`kae_utils.data.registry.OFFLINE_SIZES`), the mini-Taskonomy (:mod:`kae_utils.benchmarks.taskonomy`) and the zoo's
full entries (:func:`kae_utils.zoo.smoke.smoke_entry`) is shrunk by one set of rules on its keys, so each notebook's full
profile runs end to end in seconds on a CPU::

    CFG = profile_settings(SETTINGS, PROFILE)   # a notebook's one line: SETTINGS[PROFILE], smoke-scaled if asked

The rules (:data:`RULES`) sort every numeric key into one of three kinds:

* ``keep``: what decides *which* code runs and how it computes: seed lists, temperature and task lists, ablation
  switches, widths and other architecture sizes, image sizes, batch sizes, learning rates, pruning rounds, the
  number of augmented copies of a set;
* ``iterations``: epochs and steps. The smallest iteration count of a settings dict becomes 1 and every other one
  is divided by the same number, rounded up, so the ratios between phases (and the checks a notebook makes on
  them, e.g. "the total budget leaves a finetune epoch after every block phase") hold;
* ``images``: every count of images (data set splits, transfer sets, probe sets, images for a figure):
  ``n -> min(n, max(floor, ceil(n / IMAGE_FACTOR)))``, the floor :data:`IMAGE_FLOOR` images, or
  :data:`SMALL_IMAGE_FLOOR` in a dict that names a small ``image_size`` (32 x 32).

A numeric key that no rule classifies is refused at smoke scale (and by a unit test over every notebook's
settings), so a new setting must be sorted into a kind before the smoke run accepts it. The smoke scale only
ever applies to the ``full`` profile; the quick profile is never changed. What it shows and what it cannot
(numbers, timings, claims: only a GPU run at paper scale can give those) is in the profiles page, ``docs/profiles.md``.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import math
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "IMAGE_FACTOR",
    "IMAGE_FLOOR",
    "SMALL_IMAGE_FLOOR",
    "SMALL_IMAGE_SIZE",
    "RULES",
    "SCALES",
    "classify",
    "count_flops",
    "current_scale",
    "is_smoke",
    "log_data",
    "log_work",
    "paper_counts",
    "paper_value",
    "profile_settings",
    "scaled",
    "shrink",
    "shrink_images",
    "unclassified",
    "work_log_path",
]

#: Allowed values of ``KAE_SCALE``: ``paper`` (the default: the settings as written) and ``smoke``.
SCALES: tuple[str, ...] = ("paper", "smoke")
#: Image counts are divided by this at smoke scale ...
IMAGE_FACTOR: int = 500
#: ... but never below this many (or the original count, if smaller) ...
IMAGE_FLOOR: int = 16
#: ... and, in a settings dict whose ``image_size`` is at most ``SMALL_IMAGE_SIZE``, never below
#: ``SMALL_IMAGE_FLOOR``: 512 images of 32 x 32 hold every one of the 48 shape x colour classes of ``shapes`` (a
#: class subset of its test split must not be empty), and small images are cheap.
SMALL_IMAGE_SIZE: int = 32
SMALL_IMAGE_FLOOR: int = 512

_KEEP = "keep"
_ITERATIONS = "iterations"
_IMAGES = "images"

#: ``(kind, key pattern, why)``, first match wins; a pattern matches the whole key.
RULES: tuple[tuple[str, str, str], ...] = (
    (_KEEP, r"(.+_)?seeds|temperatures|tasks|sources|targets|ablations|precompute|teachers?",
     "which branches run: seed lists, sweeps, tasks, switches"),
    (_KEEP, r"(.+_)?widths|teacher_width|hidden|code_channels|blocks|image_size|label_size",
     "architectures and image sizes"),
    (_KEEP, r"(.+_)?lr(_.+)?|weight_decay|batch_size|rounds|(.+_)?copies",
     "optimisation per step; pruning rounds and augmentation copies (a branch structure, small numbers)"),
    (_ITERATIONS, r"(.+_)?epochs|(.+_)?steps", "iteration counts: the smallest becomes 1, the others keep their ratio"),
    (_IMAGES, r"transfer_size|(.+_)?images|probes|zoo_train|zoo_held_out|target_train|target_val|train|test",
     "image counts: divided by IMAGE_FACTOR, at least IMAGE_FLOOR"),
)


def current_scale() -> str:
    """``KAE_SCALE`` from the environment (``paper`` when unset); an unknown value raises ``ValueError``."""
    value = os.environ.get("KAE_SCALE", "").strip() or "paper"
    if value not in SCALES:
        raise ValueError(f"KAE_SCALE must be one of {', '.join(repr(s) for s in SCALES)}; got {value!r}")
    return value


def is_smoke(profile: str = "full") -> bool:
    """Whether ``profile``'s settings are shrunk now: ``KAE_SCALE=smoke`` and the ``full`` profile."""
    return profile == "full" and current_scale() == "smoke"


def classify(key: str) -> str | None:
    """The kind of a settings key (``keep``, ``iterations``, ``images``), or ``None`` when no rule names it."""
    for kind, pattern, _ in RULES:
        if re.fullmatch(pattern, key):
            return kind
    return None


def _numeric(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(_numeric(v) for v in value)


def unclassified(settings: Mapping[str, Any], prefix: str = "") -> list[str]:
    """The keys (nested ones as ``outer.inner``) whose value is numeric and that no rule classifies."""
    out = []
    for key, value in settings.items():
        if isinstance(value, Mapping):
            out += unclassified(value, f"{prefix}{key}.")
        elif _numeric(value) and classify(str(key)) is None:
            out.append(f"{prefix}{key}")
    return out


#: Every count this process shrank: ``(kind, as written, at smoke scale)``; read by :func:`paper_value`.
_SHRUNK: list[tuple[str, int, int]] = []


def _shrunk(kind: str, written: int, small: int) -> int:
    if (kind, written, small) not in _SHRUNK:
        _SHRUNK.append((kind, written, small))
    return small


def shrink_images(n: int, image_size: int | None = None, *, record: bool = True) -> int:
    """An image count at smoke scale: ``min(n, max(floor, ceil(n / IMAGE_FACTOR)))``, where the floor is
    :data:`IMAGE_FLOOR`, or :data:`SMALL_IMAGE_FLOOR` for images of at most :data:`SMALL_IMAGE_SIZE` pixels a side.
    ``record``: remember the pair for :func:`paper_value` (not for counts this process only defines, such as the
    zoo's smoke registry, which every notebook builds whether or not it trains those entries)."""
    small = image_size is not None and int(image_size) <= SMALL_IMAGE_SIZE
    floor = SMALL_IMAGE_FLOOR if small else IMAGE_FLOOR
    out = min(int(n), max(floor, math.ceil(int(n) / IMAGE_FACTOR)))
    return _shrunk(_IMAGES, int(n), out) if record else out


def _iteration_unit(settings: Mapping[str, Any]) -> int:
    counts = [int(v) for k, v in settings.items()
              if classify(str(k)) == _ITERATIONS and _numeric(v) and not isinstance(v, (list, tuple)) and v > 0]
    return min(counts, default=1)


def shrink(settings: Mapping[str, Any], where: str = "settings") -> dict[str, Any]:
    """A copy of ``settings`` at smoke scale (whatever ``KAE_SCALE`` says): the rules above, nested dicts too.

    Non-numeric values (strings, booleans, ``None``, lists of strings) are kept as they are. A numeric key that no
    rule classifies raises ``ValueError`` naming it and ``where`` (the notebook or module it came from).
    """
    missing = unclassified(settings)
    if missing:
        raise ValueError(
            f"KAE_SCALE=smoke cannot scale {', '.join(repr(k) for k in missing)} of {where}: no rule of "
            "kae_utils.core.scale.RULES classifies it; add it to a rule (a count the smoke scale shrinks, or a "
            "setting it keeps)")
    unit = _iteration_unit(settings)
    out: dict[str, Any] = {}
    for key, value in settings.items():
        kind = classify(str(key))
        if isinstance(value, Mapping):
            out[key] = shrink(value, f"{where}.{key}")
        elif not _numeric(value) or isinstance(value, (list, tuple)) or kind == _KEEP:
            out[key] = value
        elif kind == _ITERATIONS:
            out[key] = _shrunk(_ITERATIONS, int(value), math.ceil(int(value) / unit)) if value > 0 else value
        else:
            out[key] = shrink_images(value, settings.get("image_size"))
    return out


def scaled(settings: Mapping[str, Any], profile: str, where: str = "settings") -> dict[str, Any]:
    """A copy of one profile's ``settings``: shrunk when :func:`is_smoke` for ``profile``, as written otherwise."""
    return shrink(settings, where) if is_smoke(profile) else dict(settings)


def profile_settings(settings: Mapping[str, Mapping[str, Any]], profile: str, where: str = "SETTINGS") -> dict[str, Any]:
    """``settings[profile]`` as a new dict, at smoke scale when ``KAE_SCALE=smoke`` and ``profile`` is ``full``.

    The one line by which a notebook derives its configuration: ``CFG = profile_settings(SETTINGS, PROFILE)``.
    """
    if profile not in settings:
        raise ValueError(f"PROFILE must be one of {', '.join(repr(p) for p in settings)}; got {profile!r}")
    return scaled(settings[profile], profile, where)


# ------------------------------------------------------------------------------------- the work log
#
# With KAE_WORK_LOG=<folder>, the Trainer and the mini-Taskonomy's transfer loop append one JSON line per training
# run to <folder>/<run>.jsonl: its steps, samples, measured FLOPs per sample and wall time at this scale, and what
# the same run would count at paper scale. data_scripts/gpu_estimate.py turns the smoke run's lines into the
# GPU time estimates of docs/profiles.md (and, from a smoke run on a GPU, calibrates them).

_PAPER_COUNTS: contextvars.ContextVar[dict[str, float] | None] = contextvars.ContextVar("paper_counts", default=None)


@contextlib.contextmanager
def paper_counts(**counts: float) -> Iterator[None]:
    """Within this block, the work log takes these paper-scale counts as given (``epochs``; ``samples``, or
    ``samples_factor``, the ratio of images as written to images at this scale): the zoo build knows them (the
    entry as written), where :func:`paper_value` would have to guess."""
    token = _PAPER_COUNTS.set(dict(counts))
    try:
        yield
    finally:
        _PAPER_COUNTS.reset(token)


def paper_value(kind: str, value: int, derived: bool = True) -> int:
    """The count as written that this process shrank to ``value`` (``kind``: ``iterations`` or ``images``).

    Given counts (:func:`paper_counts`) first; else the largest written count this process shrank to ``value``
    (the conservative choice when several were); else, for a count ``derived`` from shrunk ones (a sum of epochs, a
    subset of images no larger than the largest shrunk count), ``value`` times the largest ratio of that kind; else
    ``value`` itself (a count the smoke scale did not touch, such as the fixed ``digits`` split)."""
    given = _PAPER_COUNTS.get() or {}
    if kind == _ITERATIONS and "epochs" in given:
        return int(given["epochs"])
    if kind == _IMAGES and "samples" in given:
        return int(given["samples"])
    if kind == _IMAGES and "samples_factor" in given:
        return math.ceil(value * given["samples_factor"])
    pairs = [(written, small) for k, written, small in _SHRUNK if k == kind and small > 0]
    matches = [written for written, small in pairs if small == value]
    if matches:
        return max(matches)
    if derived and pairs and (kind == _ITERATIONS or value <= max(small for _, small in pairs)):
        return math.ceil(value * max(written / small for written, small in pairs))
    return int(value)


def work_log_path() -> Path | None:
    """``<KAE_WORK_LOG>/<run>.jsonl``, or ``None`` when ``KAE_WORK_LOG`` is unset. The run: ``KAE_WORK_TAG``, else
    the last two parts of the folder the batch runner gave this notebook (``runs-01_knowledge_distillation``), else
    ``main``."""
    folder = os.environ.get("KAE_WORK_LOG")
    if not folder:
        return None
    run_dir = os.environ.get("KAE_RUN_DIR")
    run = os.environ.get("KAE_WORK_TAG") or ("-".join(Path(run_dir).parts[-2:]) if run_dir else "main")
    return Path(folder).expanduser() / f"{run}.jsonl"


def count_flops() -> contextlib.AbstractContextManager:
    """A context that counts the FLOPs of what runs inside it (``torch.utils.flop_counter.FlopCounterMode``), or
    a no-op when no work log is kept; read ``.get_total_flops()`` of the mode after the block."""
    if work_log_path() is None:
        return contextlib.nullcontext()
    from torch.utils.flop_counter import FlopCounterMode

    return FlopCounterMode(display=False)


def _append(path: Path, record: dict[str, Any]) -> dict[str, Any]:
    """Append ``record`` to the work log at ``path`` as one JSON line; returns it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
    return record


def log_work(kind: str, desc: str, *, epochs: int, samples: int, steps: int, flops_per_sample: float | None,
             seconds: float, device: str, batch_size: int | None = None) -> dict[str, Any] | None:
    """Append one training run to the work log (nothing when ``KAE_WORK_LOG`` is unset); returns the record.

    ``kind="fit"``: ``epochs`` over ``samples`` images in mini-batches of ``batch_size`` (a partial last batch
    counts as a step); ``kind="steps"``: a full-batch loop of ``epochs`` steps over ``samples`` images (``steps``:
    of all its repetitions). The paper-scale counts come from :func:`paper_value`."""
    path = work_log_path()
    if path is None:
        return None
    smoke = current_scale() == "smoke"
    p_epochs = paper_value(_ITERATIONS, epochs) if smoke else epochs
    p_samples = paper_value(_IMAGES, samples) if smoke else samples
    if kind == "steps":  # full batch: every step sees every sample
        p_steps = math.ceil(steps * p_epochs / max(epochs, 1))
        seen, p_seen = steps * samples, p_steps * p_samples
    else:
        per_epoch = math.ceil(p_samples / batch_size) if batch_size else math.ceil(steps / max(epochs, 1) * p_samples
                                                                                  / max(samples, 1))
        p_steps = p_epochs * per_epoch
        seen, p_seen = epochs * samples, p_epochs * p_samples
    record = {
        "kind": kind, "desc": desc, "device": device, "scale": current_scale(), "seconds": round(seconds, 4),
        "flops_per_sample": flops_per_sample,
        "this scale": {"epochs": epochs, "samples": samples, "steps": steps, "samples_seen": seen,
                       "flops": None if flops_per_sample is None else flops_per_sample * seen},
        "paper scale": {"epochs": p_epochs, "samples": p_samples, "steps": p_steps, "samples_seen": p_seen,
                        "flops": None if flops_per_sample is None else flops_per_sample * p_seen},
    }
    return _append(path, record)


def log_data(generator: str, image_size: int, n: int) -> dict[str, Any] | None:
    """Append one call of an offline generator (``shapes``, ``scenes``: ``n`` images of ``image_size``) to the work
    log, with the images it would draw at paper scale; nothing when ``KAE_WORK_LOG`` is unset."""
    path = work_log_path()
    if path is None:
        return None
    paper = paper_value(_IMAGES, n, derived=False) if current_scale() == "smoke" else n
    record = {"kind": "data", "desc": generator, "image_size": int(image_size), "scale": current_scale(),
              "this scale": {"samples": int(n)}, "paper scale": {"samples": int(paper)}}
    return _append(path, record)
