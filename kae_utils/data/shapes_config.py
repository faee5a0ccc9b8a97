"""What a ``shapes`` data set is: its attributes and their values, its configuration (:class:`ShapesConfig`) and
the counter-based draws of every image's parameters. The renderer is :mod:`kae_utils.data.shapes`.
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass, fields, replace

import torch

from kae_utils.core.params import check_choice
from kae_utils.data.hashing import MASK32, hash32

__all__ = ["ATTRIBUTES", "ATTRIBUTE_VALUES", "BLOB_GRID", "BLOCK", "COLOUR_RGB", "LINE_SLOTS", "SHAPES_PRESETS",
           "Draws", "ShapesConfig", "draw_plan", "splitmix64"]


#: The attributes of the main object, in the order of ``ShapesBatch.labels``.
ATTRIBUTES: tuple[str, ...] = ("shape", "colour", "size", "position", "fill")

#: Value names of every attribute (index = integer label). Positions are the 3x3 grid cells, row-major.
ATTRIBUTE_VALUES: dict[str, tuple[str, ...]] = {
    "shape": ("circle", "square", "triangle", "diamond", "star", "cross", "hexagon", "ring"),
    "colour": ("red", "green", "blue", "yellow", "magenta", "cyan"),
    "size": ("small", "medium", "large"),
    "position": (
        "top-left",
        "top-centre",
        "top-right",
        "middle-left",
        "centre",
        "middle-right",
        "bottom-left",
        "bottom-centre",
        "bottom-right",
    ),
    "fill": ("solid", "stripes", "checker", "dots"),
}

#: RGB in [0, 1] of every colour (pairwise distances >= 0.55, so they survive noise and jitter).
COLOUR_RGB: dict[str, tuple[float, float, float]] = {
    "red": (0.90, 0.12, 0.12),
    "green": (0.15, 0.75, 0.20),
    "blue": (0.15, 0.30, 0.95),
    "yellow": (0.95, 0.85, 0.15),
    "magenta": (0.85, 0.20, 0.85),
    "cyan": (0.15, 0.85, 0.90),
}

#: Names accepted by :meth:`ShapesConfig.preset`.
SHAPES_PRESETS: tuple[str, ...] = ("easy", "default", "hard")

#: Images are rendered in aligned blocks of this many indices (noise generator and chunk consistency).
BLOCK = 256
#: Background line slots per image; each is drawn with probability ``clutter``.
LINE_SLOTS = 3
#: Side of the low-resolution grid of colour blobs that is upsampled into the background.
BLOB_GRID = 4
_MAX_DISTRACTORS = 4
_MASK32 = MASK32
_MASK64 = 0xFFFFFFFFFFFFFFFF


# ---------------------------------------------------------------------------------------- config


def _check_range(name: str, value: object, low: float, high: float, integer: bool = False) -> None:
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or not (low <= value <= high):  # type: ignore[operator]
        raise ValueError(f"ShapesConfig.{name} must be {kind} in [{low}, {high}]; got {value!r}")


@dataclass(frozen=True)
class ShapesConfig:
    """Every difficulty knob of ``shapes``; the defaults give a task that is learnable but not trivial.

    Attributes:
        image_size: side of the square RGB images, in pixels (>= 16).
        noise: standard deviation of the Gaussian pixel noise added last (images are then clipped to [0, 1]).
        clutter: in [0, 1]; amplitude of the low-frequency colour blobs of the background and the
            probability of each of its 3 random lines.
        distractors: number (0-4) of smaller objects of other shapes and colours behind the main one.
        occlusion: probability that a grey bar is drawn in front of (and across part of) the main object.
        rotation_jitter: the main object is rotated uniformly in +-this many degrees (0-180).
        scale_jitter: relative jitter of the object's radius around its size bin (0-0.5; the bins
            overlap in radius from about 0.2 on).
        position_jitter: share (0-1) of its grid cell over which the object's centre is spread;
            1 puts it anywhere in the cell, close to the cell borders too.
        colour_jitter: uniform jitter of each RGB channel of the object's colour (0-0.5).
    """

    image_size: int = 32
    noise: float = 0.08
    clutter: float = 0.5
    distractors: int = 2
    occlusion: float = 0.3
    rotation_jitter: float = 30.0
    scale_jitter: float = 0.15
    position_jitter: float = 1.0
    colour_jitter: float = 0.08

    def __post_init__(self) -> None:
        if isinstance(self.image_size, bool) or not isinstance(self.image_size, int) or self.image_size < 16:
            raise ValueError(f"ShapesConfig.image_size must be an integer >= 16; got {self.image_size!r}")
        _check_range("noise", self.noise, 0.0, 1.0)
        _check_range("clutter", self.clutter, 0.0, 1.0)
        _check_range("distractors", self.distractors, 0, _MAX_DISTRACTORS, integer=True)
        _check_range("occlusion", self.occlusion, 0.0, 1.0)
        _check_range("rotation_jitter", self.rotation_jitter, 0.0, 180.0)
        _check_range("scale_jitter", self.scale_jitter, 0.0, 0.5)
        _check_range("position_jitter", self.position_jitter, 0.0, 1.0)
        _check_range("colour_jitter", self.colour_jitter, 0.0, 0.5)

    @classmethod
    def easy(cls, **overrides: object) -> ShapesConfig:
        """Little noise and clutter, no distractors or occluders, small jitter: every attribute is clear."""
        base = cls(
            noise=0.03,
            clutter=0.1,
            distractors=0,
            occlusion=0.0,
            rotation_jitter=10.0,
            scale_jitter=0.05,
            position_jitter=0.5,
            colour_jitter=0.0,
        )
        return replace(base, **overrides)

    @classmethod
    def hard(cls, **overrides: object) -> ShapesConfig:
        """More noise and clutter, three distractors, frequent occluders, overlapping size bins."""
        base = cls(
            noise=0.15,
            clutter=0.9,
            distractors=3,
            occlusion=0.6,
            rotation_jitter=60.0,
            scale_jitter=0.25,
            position_jitter=1.0,
            colour_jitter=0.15,
        )
        return replace(base, **overrides)

    @classmethod
    def preset(cls, name: str, **overrides: object) -> ShapesConfig:
        """The ``"easy"``, ``"default"`` or ``"hard"`` configuration, with ``overrides`` replaced."""
        check_choice("preset", name, SHAPES_PRESETS)
        if name == "easy":
            return cls.easy(**overrides)
        if name == "hard":
            return cls.hard(**overrides)
        return replace(cls(), **overrides)

    def as_dict(self) -> dict[str, object]:
        """The knobs as a plain dict (for run records)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


# ---------------------------------------------------------------------------- counter-based draws


def splitmix64(x: int) -> int:
    """SplitMix64 finaliser on a Python int (exact 64-bit arithmetic)."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)






@functools.lru_cache(maxsize=64)
def _stream_keys(seed: int, plan: tuple[tuple[str, int], ...]) -> tuple[torch.Tensor, dict[str, slice]]:
    """Two 32-bit keys per slot of every parameter in ``plan``, and where each parameter's slots lie."""
    keys, where, pos = [], {}, 0
    for name, count in plan:
        base = splitmix64(zlib.crc32(name.encode()) ^ splitmix64(seed))
        keys += [splitmix64(base + j) for j in range(count)]
        where[name] = slice(pos, pos + count)
        pos += count
    k = torch.tensor([[x & _MASK32, x >> 32] for x in keys], dtype=torch.int64)
    return k, where


class Draws:
    """Uniforms in [0, 1) that depend only on (seed, image index, parameter name, slot).

    All parameters of ``plan`` (name -> number of slots) are hashed at once, as one ``(n, slots)`` matrix.
    """

    def __init__(self, seed: int, index: torch.Tensor, plan: dict[str, int]) -> None:
        key = splitmix64(seed)
        h = hash32(hash32(index ^ (key & _MASK32)) ^ (key >> 32))
        keys, self._where = _stream_keys(seed, tuple(plan.items()))
        h = hash32(hash32(h[:, None] ^ keys[None, :, 0]) ^ keys[None, :, 1])
        self._u = (h >> 8).to(torch.float32) * (1.0 / (1 << 24))

    def uniform(self, name: str) -> torch.Tensor:
        """``(n, slots)`` uniforms of the parameter ``name``, or ``(n,)`` when it has one slot."""
        where = self._where[name]
        u = self._u[:, where]
        return u[:, 0] if where.stop - where.start == 1 else u

    def integers(self, name: str, high: int) -> torch.Tensor:
        """Uniform integers in ``[0, high)`` (int64), shaped like :meth:`uniform`."""
        return (self.uniform(name) * high).long().clamp_(max=high - 1)


def draw_plan(config: ShapesConfig) -> dict[str, int]:
    """Every per-image random parameter that rendering under ``config`` draws, with its number of slots."""
    plan = {a: 1 for a in ATTRIBUTES}
    plan.update({"x": 1, "y": 1, "scale": 1, "angle": 1, "rgb": 3, "phase": 2})
    plan.update({"background": 1, "blobs": 3 * BLOB_GRID * BLOB_GRID})
    plan.update({f"line_{p}": LINE_SLOTS for p in ("present", "angle", "x", "y", "width")})
    plan["line_rgb"] = 3 * LINE_SLOTS
    for j in range(config.distractors):
        for p, count in (("shape", 1), ("colour", 1), ("fill", 1), ("x", 1), ("y", 1), ("radius", 1)):
            plan[f"distractor{j}_{p}"] = count
        plan.update({f"distractor{j}_angle": 1, f"distractor{j}_rgb": 3, f"distractor{j}_phase": 2})
    for p in ("", "_x", "_y", "_angle", "_length", "_width", "_grey"):
        plan["occluder" + p] = 1
    return plan
