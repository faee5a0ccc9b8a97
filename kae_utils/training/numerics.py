"""How the networks compute: float32 or bfloat16 autocast, and the memory format of images and conv weights.

One setting for the whole process, read by the trainer, the prediction helpers, the zoo builds and the
notebooks' own training loops:

* ``precision``: ``"fp32"``, ``"bf16"`` (``torch.autocast`` to bfloat16 around forward passes and losses) or
  ``"auto"``. ``"auto"`` first reads the ``KAE_PRECISION`` environment variable (how CI and the runner
  force a precision on every notebook), then picks bf16 only where the hardware runs it natively: a CUDA
  GPU with bf16, or a CPU that reports AVX-512 BF16 or AMX; fp32 elsewhere.
* channels-last memory format for 4-D activations and conv weights (``KAE_CHANNELS_LAST=0`` turns it
  off): the same numbers up to rounding, and much faster convolutions in oneDNN on the CPU.

Autocast runs matrix products and convolutions in bf16; losses, BatchNorm statistics and metrics stay in
float32 (autocast keeps reductions in float32; the losses of :mod:`kae_utils.methods.distillation` and
:mod:`kae_utils.methods.dense` cast their inputs to float32, and the trainer checks the loss in float32).
Attribution maps are computed outside autocast, in float32.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from kae_utils.core.params import PRECISIONS, check_choice  # PRECISIONS re-exported (in __all__)

__all__ = [
    "PRECISIONS",
    "Numerics",
    "cpu_has_native_bf16",
    "current",
    "describe",
    "for_call",
    "float32_loss",
    "notebook_numerics",
    "resolve_numerics",
    "set_numerics",
    "using",
]

# PRECISIONS (the allowed values of a precision setting and of ``KAE_PRECISION``) lives in kae_utils.core.params,
# with the other parameters' allowed values; it is re-exported here.
_ENV = "KAE_PRECISION"
_ENV_CHANNELS_LAST = "KAE_CHANNELS_LAST"
_CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_native_bf16(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> str | None:
    """The CPU flag that makes bf16 native here (``"avx512_bf16"`` or ``"amx_bf16"``), or ``None``.

    Read from ``/proc/cpuinfo`` (Linux); elsewhere, or when the file cannot be read, ``None``: bf16 is then
    emulated and slower than float32, so ``"auto"`` keeps float32.
    """
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return None
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[-1].split())
    return next((flag for flag in _CPU_BF16_FLAGS if flag in flags), None)


@dataclass(frozen=True)
class Numerics:
    """A resolved setting: ``precision`` is ``"fp32"`` or ``"bf16"``; ``reason`` says why."""

    precision: str
    channels_last: bool
    device_type: str
    reason: str

    def autocast(self) -> contextlib.AbstractContextManager:
        """``torch.autocast`` to bfloat16 on this device when ``precision == "bf16"``; a no-op context otherwise."""
        if self.precision != "bf16":
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=torch.bfloat16)

    def prepare_model(self, model: nn.Module) -> nn.Module:
        """``model`` with its 4-D weights in channels-last format (in place; returned for chaining)."""
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        return model

    def prepare_input(self, x: torch.Tensor) -> torch.Tensor:
        """A 4-D float image batch in channels-last format; any other tensor unchanged."""
        if self.channels_last and isinstance(x, torch.Tensor) and x.dim() == 4 and x.is_floating_point():
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def describe(self) -> str:
        """One line for a notebook to print: the precision, the memory format and the reason."""
        layout = "channels-last" if self.channels_last else "contiguous (NCHW)"
        name = "bfloat16 autocast" if self.precision == "bf16" else "float32"
        return f"numerics: {name}, {layout} ({self.reason})"

    def manifest(self) -> dict[str, str]:
        """What a zoo build records: ``{"precision": ..., "memory_format": ...}``."""
        return {"precision": self.precision, "memory_format": "channels_last" if self.channels_last else "contiguous"}


def _channels_last_default() -> bool:
    value = os.environ.get(_ENV_CHANNELS_LAST, "1").strip().lower()
    check_choice(_ENV_CHANNELS_LAST, value, ("0", "1", "false", "true", "no", "yes"))
    return value in ("1", "true", "yes")


def resolve_numerics(precision: str = "auto", device: torch.device | str = "cpu",
                     channels_last: bool | None = None) -> Numerics:
    """Turn a precision choice into a :class:`Numerics` for ``device`` (see the module's docstring).

    ``"bf16"`` asked for explicitly on hardware without native bf16 is honoured (emulated, slow) and the
    reason says so; on a CUDA GPU without bf16 it raises a ``RuntimeError``.
    """
    check_choice("precision", precision, PRECISIONS)
    device = torch.device(device)
    if channels_last is None:
        channels_last = _channels_last_default()
    if precision == "auto":
        forced = os.environ.get(_ENV, "").strip()
        if forced and forced != "auto":
            check_choice(_ENV, forced, PRECISIONS)
            return replace(resolve_numerics(forced, device, channels_last), reason=f"forced by {_ENV}={forced}")
        if device.type == "cuda":
            if torch.cuda.is_bf16_supported():
                return Numerics("bf16", channels_last, "cuda", "auto: the GPU runs bf16 natively")
            return Numerics("fp32", channels_last, "cuda", "auto: the GPU has no bf16")
        flag = cpu_has_native_bf16() if device.type == "cpu" else None
        if flag:
            return Numerics("bf16", channels_last, device.type, f"auto: the CPU reports {flag}")
        return Numerics("fp32", channels_last, device.type, "auto: no native bf16 on this device")
    if precision == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise RuntimeError("precision 'bf16' was asked for but this GPU has no bf16; use 'auto' or 'fp32'")
        native = device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16())
        return Numerics("bf16", channels_last, device.type, "asked for" if native else "asked for; emulated here, slow")
    return Numerics("fp32", channels_last, device.type, "asked for")


def notebook_numerics(precision: str = "auto", device: torch.device | str = "cpu",
                      channels_last: bool | None = None) -> Numerics:
    """A notebook's numerics: its own ``precision``, unless ``KAE_PRECISION`` forces one on every notebook.

    A notebook asks for ``"fp32"`` where its stored outputs would differ between float32 and bf16 (its claims
    sit that close to their tolerances; ``make bench-precision`` measures it), and ``"auto"`` elsewhere.
    ``KAE_PRECISION=fp32`` or ``bf16`` (CI, the benchmarks) overrides both. Only the notebook's set-up reads
    the override: a block under :func:`using` keeps the precision it names.
    """
    check_choice("precision", precision, PRECISIONS)
    forced = os.environ.get(_ENV, "").strip()
    if forced and forced != "auto":
        return resolve_numerics("auto", device, channels_last)  # its reason names the override
    return resolve_numerics(precision, device, channels_last)


_HALF = (torch.bfloat16, torch.float16)


def _upcast(value: object) -> object:
    return value.float() if isinstance(value, torch.Tensor) and value.dtype in _HALF else value


def float32_loss(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """Decorate a loss so that it computes in float32 under autocast too.

    Half-precision tensor arguments (bf16, fp16) are cast to float32 and autocast is off inside the loss, so
    its logs, softmaxes, distances and sums of squares are exact to float32; float32 and float64 inputs pass
    unchanged (a golden test in float64 stays in float64). The gradient flows back through the cast.
    """

    @functools.wraps(fn)
    def wrapper(*args: object, **kwargs: object) -> torch.Tensor:
        device_type = next((a.device.type for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)), "cpu")
        with torch.autocast(device_type, enabled=False):
            return fn(*(_upcast(a) for a in args), **{k: _upcast(v) for k, v in kwargs.items()})

    return wrapper


_current: Numerics | None = None


def set_numerics(precision: str | Numerics = "auto", device: torch.device | str = "cpu",
                 channels_last: bool | None = None) -> Numerics:
    """Resolve ``precision`` (or take a resolved :class:`Numerics`) and make it the process's setting; returns it."""
    global _current
    _current = precision if isinstance(precision, Numerics) else resolve_numerics(precision, device, channels_last)
    return _current


def current(device: torch.device | str | None = None) -> Numerics:
    """The process's setting; before any :func:`set_numerics`, ``"auto"`` resolved for ``device`` (default CPU).

    A setting made for another device type is resolved again for ``device``, so a CPU-side helper never
    opens a CUDA autocast.
    """
    if _current is not None and (device is None or torch.device(device).type == _current.device_type):
        return _current
    return resolve_numerics("auto", device if device is not None else "cpu")


def for_call(precision: str | Numerics | None, device: torch.device | str) -> Numerics:
    """The numerics of one call (a trainer, a prediction) on ``device``: the process's setting when ``precision`` is
    ``None``, ``precision`` itself when it is resolved already, else ``precision`` resolved for ``device``."""
    if precision is None:
        return current(device)
    return precision if isinstance(precision, Numerics) else resolve_numerics(precision, device)


def describe() -> str:
    """:meth:`Numerics.describe` of the current setting."""
    return current().describe()


@contextlib.contextmanager
def using(precision: str | Numerics = "auto", device: torch.device | str = "cpu",
          channels_last: bool | None = None) -> Iterator[Numerics]:
    """Within the block the process's setting is ``precision``; the previous one is restored after."""
    global _current
    before = _current
    try:
        yield set_numerics(precision, device, channels_last)
    finally:
        _current = before
