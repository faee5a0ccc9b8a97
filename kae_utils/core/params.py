"""The notebooks' parameters: allowed profiles and devices, and checks of parameter values with messages that
name what is allowed. Torch-free, imported by every layer.

Used by every notebook's validation cell and by the library's own argument checks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = ["DEVICES", "PRECISIONS", "PROFILES", "TEACHER_SOURCES", "check_choice", "check_common_parameters",
           "check_number"]

#: Allowed values of the ``DEVICE`` notebook parameter.
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
#: Allowed values of the ``PROFILE`` notebook parameter.
PROFILES: tuple[str, ...] = ("quick", "full")
#: Allowed values of the ``PRECISION`` notebook parameter (and of ``KAE_PRECISION``; :mod:`kae_utils.training.numerics`).
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")
#: Allowed values of the ``TEACHERS`` notebook parameter: load from the zoo, or retrain with the zoo's recipe.
TEACHER_SOURCES: tuple[str, ...] = ("zoo", "train")


class _Absent:
    """The default of a parameter a notebook does not have (so ``None`` stays a value to refuse)."""

    def __repr__(self) -> str:
        return "<absent>"


_ABSENT = _Absent()


def check_choice(name: str, value: object, allowed: Iterable[object]) -> object:
    """Return ``value`` if it is one of ``allowed``; otherwise raise a ``ValueError`` naming the choices.

    Used by every notebook's validation cell so that a typo in a papermill parameter fails at once
    with a message that says what would have been accepted.
    """
    allowed = tuple(allowed)
    if value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name} must be one of {choices}; got {value!r}")
    return value


def check_number(
    name: str,
    value: object,
    *,
    integer: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
    positive: bool = False,
) -> int | float:
    """Return ``value`` if it is a finite number in range; otherwise raise a ``ValueError`` saying what is allowed.

    The numeric counterpart of :func:`check_choice` for a notebook's validation cell. ``integer`` asks
    for an ``int``; ``minimum`` and ``maximum`` are inclusive bounds; ``positive`` asks for a value > 0.
    Booleans, NaN and infinities are refused (``True`` is an ``int`` to Python, not a seed to a reader).
    """
    kind = "an integer" if integer else "a number"
    bounds = []
    if positive:
        bounds.append("> 0")
    if minimum is not None and maximum is not None:
        bounds.append(f"in [{minimum}, {maximum}]")
    elif minimum is not None:
        bounds.append(f">= {minimum}")
    elif maximum is not None:
        bounds.append(f"<= {maximum}")
    wanted = " ".join([kind, *bounds])
    types = (int,) if integer else (int, float)
    ok = (
        isinstance(value, types)
        and not isinstance(value, bool)
        and (isinstance(value, int) or math.isfinite(value))
        and not (positive and value <= 0)
        and not (minimum is not None and value < minimum)
        and not (maximum is not None and value > maximum)
    )
    if not ok:
        raise ValueError(f"{name} must be {wanted}; got {value!r}")
    return value


def check_common_parameters(
    profile: object,
    device: object,
    seed: object,
    *,
    precision: object = _ABSENT,
    dataset: object = _ABSENT,
    datasets: Iterable[object] | None = None,
    teachers: object = _ABSENT,
) -> None:
    """Check the parameters the notebooks share; raise a ``ValueError`` naming the first bad one and what is allowed.

    Every notebook has ``PROFILE`` (one of :data:`PROFILES`), ``DEVICE`` (:data:`DEVICES`) and ``SEED`` (an integer
    >= 0); pass ``precision`` (``PRECISION``, :data:`PRECISIONS`), ``dataset`` with the notebook's supported
    ``datasets`` (``DATASET``) and ``teachers`` (``TEACHERS``, :data:`TEACHER_SOURCES`) where the notebook has those
    parameters. They are checked in the order PROFILE, DEVICE, PRECISION, DATASET, TEACHERS, SEED; a notebook's own
    parameters are checked after this call, in its validation cell::

        check_common_parameters(PROFILE, DEVICE, SEED, dataset=DATASET, datasets=SUPPORTED_DATASETS,
                                teachers=TEACHERS)
    """
    if (dataset is _ABSENT) != (datasets is None):
        raise TypeError("dataset and datasets go together: the DATASET parameter and the data sets it may name")
    check_choice("PROFILE", profile, PROFILES)
    check_choice("DEVICE", device, DEVICES)
    if precision is not _ABSENT:
        check_choice("PRECISION", precision, PRECISIONS)
    if datasets is not None:
        check_choice("DATASET", dataset, datasets)
    if teachers is not _ABSENT:
        check_choice("TEACHERS", teachers, TEACHER_SOURCES)
    check_number("SEED", seed, integer=True, minimum=0)
