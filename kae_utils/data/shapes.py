"""``shapes``: synthetic 2D images whose main object has five attributes, rendered offline in torch.

It stands in for the fine-grained data sets of the amalgamation papers (Stanford Dogs, CUB-200, ...)
in notebooks where teachers are experts on different class subsets or different attributes. Every
image shows one main object with a ``shape`` (8 kinds), ``colour`` (6), ``size`` (3 bins),
``position`` (the 3x3 grid cell of its centre) and ``fill`` pattern (4), on a cluttered background
with pixel noise, smaller distractor objects behind it and, sometimes, an occluding bar in front;
shape x colour gives a 48-way task (:func:`composite_labels`).

Rendering is vectorised over images and pixels: per-image parameters are drawn from a
counter-based hash of ``(seed, image index, parameter name)``, then signed distances of every shape
are evaluated on the pixel grid of all images at once and turned into anti-aliased coverage. Image
``i`` of a seed is the same whichever chunk it is generated in, so sets can be materialised piece
by piece: ``generate_shapes(50, start=50)`` equals the second half of ``generate_shapes(100)``.
"""

from __future__ import annotations

import functools
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from kae_utils.core.params import check_choice
from kae_utils.core.scale import log_data
from kae_utils.data.hashing import MASK32, hash32
from kae_utils.data.subsets import ClassSubset, class_subset

__all__ = [
    "ATTRIBUTES",
    "ATTRIBUTE_VALUES",
    "COLOUR_RGB",
    "SHAPES_PRESETS",
    "ShapesBatch",
    "ShapesClassView",
    "ShapesConfig",
    "ShapesSplit",
    "composite_class_names",
    "composite_labels",
    "generate_shapes",
    "make_shapes_split",
]

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

#: Mean radius of the main object per size bin, as a fraction of the image side.
_SIZE_FRACTIONS: tuple[float, ...] = (0.14, 0.21, 0.29)
#: Brightness of the dark parts of a patterned fill, relative to the object's colour.
_FILL_SHADE = 0.55
#: Images are rendered in aligned blocks of this many indices (noise generator and chunk consistency).
_BLOCK = 256
#: Background line slots per image; each is drawn with probability ``clutter``.
_LINE_SLOTS = 3
#: Side of the low-resolution grid of colour blobs that is upsampled into the background.
_BLOB_GRID = 4
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


def _splitmix64(x: int) -> int:
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
        base = _splitmix64(zlib.crc32(name.encode()) ^ _splitmix64(seed))
        keys += [_splitmix64(base + j) for j in range(count)]
        where[name] = slice(pos, pos + count)
        pos += count
    k = torch.tensor([[x & _MASK32, x >> 32] for x in keys], dtype=torch.int64)
    return k, where


class _Draws:
    """Uniforms in [0, 1) that depend only on (seed, image index, parameter name, slot).

    All parameters of ``plan`` (name -> number of slots) are hashed at once, as one ``(n, slots)`` matrix.
    """

    def __init__(self, seed: int, index: torch.Tensor, plan: dict[str, int]) -> None:
        key = _splitmix64(seed)
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


def _plan(config: ShapesConfig) -> dict[str, int]:
    """Every per-image random parameter that rendering under ``config`` draws, with its number of slots."""
    plan = {a: 1 for a in ATTRIBUTES}
    plan.update({"x": 1, "y": 1, "scale": 1, "angle": 1, "rgb": 3, "phase": 2})
    plan.update({"background": 1, "blobs": 3 * _BLOB_GRID * _BLOB_GRID})
    plan.update({f"line_{p}": _LINE_SLOTS for p in ("present", "angle", "x", "y", "width")})
    plan["line_rgb"] = 3 * _LINE_SLOTS
    for j in range(config.distractors):
        for p, count in (("shape", 1), ("colour", 1), ("fill", 1), ("x", 1), ("y", 1), ("radius", 1)):
            plan[f"distractor{j}_{p}"] = count
        plan.update({f"distractor{j}_angle": 1, f"distractor{j}_rgb": 3, f"distractor{j}_phase": 2})
    for p in ("", "_x", "_y", "_angle", "_length", "_width", "_grey"):
        plan["occluder" + p] = 1
    return plan


# ------------------------------------------------------------------------------ signed distances
# All distances are in units of the object's radius, for points (x, y) with y pointing up.


def _length(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(x * x + y * y)


def _sd_box(x: torch.Tensor, y: torch.Tensor, bx: float, by: float) -> torch.Tensor:
    qx, qy = x.abs() - bx, y.abs() - by
    return _length(qx.clamp(min=0), qy.clamp(min=0)) + torch.maximum(qx, qy).clamp(max=0)


def _sd_circle(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return _length(x, y) - 1.0


def _sd_square(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return _sd_box(x, y, 0.82, 0.82)


def _sd_triangle(x: torch.Tensor, y: torch.Tensor, r: float = 1.1) -> torch.Tensor:
    # Equilateral triangle centred on its centroid, pointing up; r is half its side (Quilez).
    k = math.sqrt(3.0)
    px, py = x.abs() - r, y + r / k
    fold = px + k * py > 0
    px, py = torch.where(fold, (px - k * py) / 2, px), torch.where(fold, (-k * px - py) / 2, py)
    px = px - px.clamp(-2.0 * r, 0.0)
    return -_length(px, py) * torch.sign(py)


def _sd_diamond(x: torch.Tensor, y: torch.Tensor, a: float = 0.72, b: float = 1.2) -> torch.Tensor:
    # A rhombus taller than wide, so it differs from a rotated square at every angle.
    return (x.abs() / a + y.abs() / b - 1.0) * (a * b / math.hypot(a, b))


def _sd_star(x: torch.Tensor, y: torch.Tensor, r: float = 1.25, rf: float = 0.45) -> torch.Tensor:
    # Five-pointed star, outer radius r, inner radius ratio rf (Quilez).
    k1x, k1y = 0.809016994375, -0.587785252292
    k2x, k2y = -k1x, k1y
    px, py = x.abs(), y
    d = (k1x * px + k1y * py).clamp(min=0)
    px, py = px - 2 * k1x * d, py - 2 * k1y * d
    d = (k2x * px + k2y * py).clamp(min=0)
    px, py = (px - 2 * k2x * d).abs(), py - 2 * k2y * d - r
    bax, bay = rf * -k1y, rf * k1x - 1.0
    h = ((px * bax + py * bay) / (bax * bax + bay * bay)).clamp(0.0, r)
    return _length(px - bax * h, py - bay * h) * torch.sign(py * bax - px * bay)


def _sd_cross(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.minimum(_sd_box(x, y, 1.0, 0.33), _sd_box(x, y, 0.33, 1.0))


def _sd_hexagon(x: torch.Tensor, y: torch.Tensor, r: float = 0.9) -> torch.Tensor:
    # Regular hexagon with apothem r, flat top and bottom (Quilez).
    kx, ky, kz = -0.866025404, 0.5, 0.577350269
    px, py = x.abs(), y.abs()
    d = (kx * px + ky * py).clamp(max=0)
    px, py = px - 2 * kx * d, py - 2 * ky * d
    px, py = px - px.clamp(-kz * r, kz * r), py - r
    return _length(px, py) * torch.sign(py)


def _sd_ring(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (_length(x, y) - 0.72).abs() - 0.28


_SDFS = (_sd_circle, _sd_square, _sd_triangle, _sd_diamond, _sd_star, _sd_cross, _sd_hexagon, _sd_ring)


def _coverage(distance_px: torch.Tensor) -> torch.Tensor:
    """Anti-aliased coverage of a pixel whose centre lies ``distance_px`` pixels outside an edge."""
    t = (0.5 - distance_px).clamp_(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _fill_pattern(fill: int, x: torch.Tensor, y: torch.Tensor, period: float) -> torch.Tensor:
    """Share of the bright colour per pixel (1 = bright) of a fill pattern, in pixel coordinates."""
    if fill == 0:  # solid
        return torch.ones_like(x)
    fx = x / period
    fx = fx - torch.floor(fx) - 0.5  # in [-0.5, 0.5): position within one period
    if fill == 1:  # stripes: half bright, half dark
        return _coverage((fx.abs() - 0.25) * period)
    fy = y / period
    fy = fy - torch.floor(fy) - 0.5
    if fill == 2:  # checker: bright where both or neither half-periods are
        sx, sy = _coverage((fx.abs() - 0.25) * period), _coverage((fy.abs() - 0.25) * period)
        return sx * sy + (1.0 - sx) * (1.0 - sy)
    # dots: a bright disc in every cell of the lattice, on a dark ground
    return _coverage((_length(fx, fy) - 0.36) * period)


# ------------------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class _Objects:
    """Per-image parameters of one layer of objects (all tensors ``(n,)``, colours ``(n, 3)``)."""

    shape: torch.Tensor
    fill: torch.Tensor
    cx: torch.Tensor  # centre, pixels, x to the right
    cy: torch.Tensor  # centre, pixels, y down
    radius: torch.Tensor  # pixels
    angle: torch.Tensor  # radians, counter-clockwise
    rgb: torch.Tensor
    phase: torch.Tensor  # (n, 2): offset of the fill pattern, in periods


def _draw_object_layer(
    img: torch.Tensor, obj: _Objects, xs: torch.Tensor, ys: torch.Tensor, period: float
) -> torch.Tensor:
    """Paint ``obj`` (one per image) onto ``img`` ``(n, 3, H, W)`` in place; return its coverage.

    The fill pattern is laid out in the object's rotated frame, in pixels, so it turns with the object.
    """
    n = img.shape[0]
    h, w = img.shape[2], img.shape[3]
    cos, sin = torch.cos(obj.angle), torch.sin(obj.angle)
    dx = (xs[None, :] - obj.cx[:, None])[:, None, :]  # (n, 1, W)
    dy = (obj.cy[:, None] - ys[None, :])[:, :, None]  # (n, H, 1), pointing up
    # pixel-unit coordinates in the object's rotated frame
    u = dx * cos[:, None, None] + dy * sin[:, None, None]
    v = dy * cos[:, None, None] - dx * sin[:, None, None]
    alpha = torch.empty((n, h, w), dtype=img.dtype)
    bright = torch.empty((n, h, w), dtype=img.dtype)
    inv_r = (1.0 / obj.radius)[:, None, None]
    for k, sdf in enumerate(_SDFS):
        idx = (obj.shape == k).nonzero().squeeze(1)
        if len(idx):
            d = sdf(u[idx] * inv_r[idx], v[idx] * inv_r[idx])
            alpha[idx] = _coverage(d * obj.radius[idx, None, None])
    for k in range(len(ATTRIBUTE_VALUES["fill"])):
        idx = (obj.fill == k).nonzero().squeeze(1)
        if len(idx):
            ph = obj.phase[idx] * period
            bright[idx] = _fill_pattern(
                k, u[idx] + ph[:, 0, None, None], v[idx] + ph[:, 1, None, None], period
            )
    bright_rgb = obj.rgb[:, :, None, None]
    colour = bright_rgb * (_FILL_SHADE + (1.0 - _FILL_SHADE) * bright[:, None])
    a = alpha[:, None]
    img.mul_(1.0 - a).add_(a * colour)
    return alpha


def _bar_coverage(
    xs: torch.Tensor,
    ys: torch.Tensor,
    cx: torch.Tensor,
    cy: torch.Tensor,
    angle: torch.Tensor,
    half_length: torch.Tensor,
    half_width: torch.Tensor,
) -> torch.Tensor:
    """Coverage ``(n, H, W)`` of rotated rectangles (bars) in pixel units."""
    cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    dx = (xs[None, :] - cx[:, None])[:, None, :]
    dy = (cy[:, None] - ys[None, :])[:, :, None]
    u = (dx * cos + dy * sin).abs() - half_length[:, None, None]
    v = (dy * cos - dx * sin).abs() - half_width[:, None, None]
    d = _length(u.clamp(min=0), v.clamp(min=0)) + torch.maximum(u, v).clamp(max=0)
    return _coverage(d)


def _render_block(
    seed: int, index: torch.Tensor, config: ShapesConfig
) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    """Images ``(n, 3, S, S)``, labels and main-object masks of the images ``index`` (one aligned block)."""
    n, size = len(index), config.image_size
    draws = _Draws(seed, index, _plan(config))
    xs = torch.arange(size, dtype=torch.float32) + 0.5
    ys = xs
    period = size / 7.0
    cell = size / 3.0

    labels = {
        "shape": draws.integers("shape", len(ATTRIBUTE_VALUES["shape"])),
        "colour": draws.integers("colour", len(ATTRIBUTE_VALUES["colour"])),
        "size": draws.integers("size", len(ATTRIBUTE_VALUES["size"])),
        "position": draws.integers("position", len(ATTRIBUTE_VALUES["position"])),
        "fill": draws.integers("fill", len(ATTRIBUTE_VALUES["fill"])),
    }
    palette = torch.tensor([COLOUR_RGB[c] for c in ATTRIBUTE_VALUES["colour"]], dtype=torch.float32)
    size_fracs = torch.tensor(_SIZE_FRACTIONS, dtype=torch.float32)

    # background: grey level + upsampled low-resolution colour blobs + thin random lines
    grey = 0.3 + 0.4 * draws.uniform("background")
    blobs = draws.uniform("blobs").view(n, 3, _BLOB_GRID, _BLOB_GRID)
    blobs = F.interpolate(blobs * 2.0 - 1.0, size=(size, size), mode="bilinear", align_corners=False)
    img = (grey[:, None, None, None] + (0.35 * config.clutter) * blobs).clamp_(0.0, 1.0)
    if config.clutter > 0:
        present = draws.uniform("line_present") < config.clutter
        angle = draws.uniform("line_angle") * math.pi
        px, py = draws.uniform("line_x") * size, draws.uniform("line_y") * size
        width = 0.35 + 0.4 * draws.uniform("line_width")
        rgb = draws.uniform("line_rgb").view(n, _LINE_SLOTS, 3)
        for j in range(_LINE_SLOTS):
            idx = present[:, j].nonzero().squeeze(1)
            if len(idx) == 0:
                continue
            nx, ny = torch.cos(angle[idx, j]), torch.sin(angle[idx, j])
            off = (px[idx, j] * nx + py[idx, j] * ny)[:, None, None]
            dist = (
                (xs[None, :] * nx[:, None])[:, None, :] + (ys[None, :] * ny[:, None])[:, :, None] - off
            ).abs()
            a = (0.8 * _coverage(dist - width[idx, j, None, None]))[:, None]
            sub = img[idx]
            img[idx] = sub.mul_(1.0 - a).add_(a * rgb[idx, j, :, None, None])

    # distractors: smaller, other shapes and colours, anywhere, behind the main object
    jitter = config.colour_jitter
    n_shapes, n_colours = len(ATTRIBUTE_VALUES["shape"]), len(ATTRIBUTE_VALUES["colour"])
    for j in range(config.distractors):
        name = f"distractor{j}_"
        shape = (labels["shape"] + 1 + draws.integers(name + "shape", n_shapes - 1)) % n_shapes
        colour = (labels["colour"] + 1 + draws.integers(name + "colour", n_colours - 1)) % n_colours
        rgb = palette[colour] + jitter * (2.0 * draws.uniform(name + "rgb") - 1.0)
        obj = _Objects(
            shape=shape,
            fill=draws.integers(name + "fill", len(ATTRIBUTE_VALUES["fill"])),
            cx=(0.1 + 0.8 * draws.uniform(name + "x")) * size,
            cy=(0.1 + 0.8 * draws.uniform(name + "y")) * size,
            radius=_SIZE_FRACTIONS[0] * size * (0.5 + 0.3 * draws.uniform(name + "radius")),
            angle=draws.uniform(name + "angle") * (2.0 * math.pi),
            rgb=rgb.clamp(0.0, 1.0),
            phase=draws.uniform(name + "phase"),
        )
        _draw_object_layer(img, obj, xs, ys, period)

    # the main object
    row, col = labels["position"] // 3, labels["position"] % 3
    pj = config.position_jitter
    rot = math.radians(config.rotation_jitter)
    rgb = palette[labels["colour"]] + jitter * (2.0 * draws.uniform("rgb") - 1.0)
    scale = 1.0 + config.scale_jitter * (2.0 * draws.uniform("scale") - 1.0)
    main = _Objects(
        shape=labels["shape"],
        fill=labels["fill"],
        cx=(col + 0.5 + pj * (draws.uniform("x") - 0.5)) * cell,
        cy=(row + 0.5 + pj * (draws.uniform("y") - 0.5)) * cell,
        radius=size_fracs[labels["size"]] * size * scale,
        angle=rot * (2.0 * draws.uniform("angle") - 1.0),
        rgb=rgb.clamp(0.0, 1.0),
        phase=draws.uniform("phase"),
    )
    mask = _draw_object_layer(img, main, xs, ys, period)

    # occluder: a grey bar across part of the main object, in front of it
    if config.occlusion > 0:
        idx = (draws.uniform("occluder") < config.occlusion).nonzero().squeeze(1)
        if len(idx):
            r = main.radius[idx]
            a = _bar_coverage(
                xs,
                ys,
                main.cx[idx] + 0.6 * r * (2.0 * draws.uniform("occluder_x")[idx] - 1.0),
                main.cy[idx] + 0.6 * r * (2.0 * draws.uniform("occluder_y")[idx] - 1.0),
                draws.uniform("occluder_angle")[idx] * math.pi,
                r * (1.5 + draws.uniform("occluder_length")[idx]),
                (r * (0.2 + 0.15 * draws.uniform("occluder_width")[idx])).clamp(min=0.8),
            )
            grey_bar = (0.05 + 0.9 * draws.uniform("occluder_grey")[idx])[:, None, None, None]
            sub = img[idx]
            img[idx] = sub.mul_(1.0 - a[:, None]).add_(a[:, None] * grey_bar)
            mask[idx] = mask[idx] * (1.0 - a)
    return img, labels, mask


def _block_noise(seed: int, block: int, size: int) -> torch.Tensor:
    """Standard normal noise ``(_BLOCK, 3, size, size)`` of one aligned block of image indices."""
    gen = torch.Generator().manual_seed(_splitmix64(_splitmix64(seed) ^ (block + 0x5EED)) >> 1)
    return torch.randn((_BLOCK, 3, size, size), generator=gen)


# ---------------------------------------------------------------------------------------- batches


def _index_labels(labels: dict[str, torch.Tensor], indices: object) -> dict[str, torch.Tensor]:
    return {k: v[indices] for k, v in labels.items()}  # type: ignore[index]


@dataclass(frozen=True)
class ShapesBatch:
    """Images ``(n, 3, H, W)`` float32 in [0, 1], one int64 label vector ``(n,)`` per attribute.

    ``masks`` (only when asked for) is the visible coverage ``(n, H, W)`` in [0, 1] of the main object.
    """

    images: torch.Tensor
    labels: dict[str, torch.Tensor]
    masks: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, indices: torch.Tensor | Sequence[int] | slice) -> ShapesBatch:
        """The images at ``indices`` (positions, a boolean mask or a slice) with their labels and masks."""
        if not isinstance(indices, (torch.Tensor, slice)):
            indices = torch.as_tensor(list(indices), dtype=torch.int64)
        return ShapesBatch(
            images=self.images[indices],
            labels=_index_labels(self.labels, indices),
            masks=None if self.masks is None else self.masks[indices],
        )


def _check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")
    return value


def generate_shapes(
    n: int,
    seed: int = 0,
    config: ShapesConfig | None = None,
    start: int = 0,
    return_masks: bool = False,
) -> ShapesBatch:
    """Render the images ``start .. start+n-1`` of ``seed`` under ``config`` (default: ``ShapesConfig()``).

    Image ``i`` depends only on ``(seed, i, config)``: generating ``[0, 100)`` equals generating
    ``[0, 50)`` then ``[50, 100)``. Every attribute is drawn independently and uniformly, so each
    value (and each shape x colour combination) is about equally frequent. Work is done in aligned
    blocks of 256 indices, so a call costs at least one block.

    Args:
        n: number of images (>= 0).
        seed: non-negative integer; different seeds give independent data sets.
        config: the difficulty knobs.
        start: index of the first image (>= 0); ``start + n`` must stay below 2**32.
        return_masks: also return the visible coverage of the main object, ``masks`` ``(n, H, W)``.
    """
    _check_int("n", n, 0)
    _check_int("seed", seed, 0)
    _check_int("start", start, 0)
    if start + n > 2**32:
        raise ValueError(f"start + n must be <= 2**32; got {start + n}")
    if config is None:
        config = ShapesConfig()
    if not isinstance(config, ShapesConfig):
        raise ValueError(f"config must be a ShapesConfig; got {type(config).__name__}")
    size = config.image_size
    log_data("shapes", size, n)  # the work log (KAE_WORK_LOG, kae_utils.core.scale): nothing otherwise
    images = torch.empty((n, 3, size, size), dtype=torch.float32)
    labels = {a: torch.empty(n, dtype=torch.int64) for a in ATTRIBUTES}
    masks = torch.empty((n, size, size), dtype=torch.float32) if return_masks else None
    stop = start + n
    for block in range(start // _BLOCK, (stop + _BLOCK - 1) // _BLOCK):
        lo, hi = block * _BLOCK, (block + 1) * _BLOCK
        index = torch.arange(lo, hi, dtype=torch.int64)
        img, lab, mask = _render_block(seed, index, config)
        if config.noise > 0:
            img.add_(_block_noise(seed, block, size), alpha=config.noise).clamp_(0.0, 1.0)
        a, b = max(lo, start), min(hi, stop)  # the requested part of this block
        images[a - start : b - start] = img[a - lo : b - lo]
        for k in ATTRIBUTES:
            labels[k][a - start : b - start] = lab[k][a - lo : b - lo]
        if masks is not None:
            masks[a - start : b - start] = mask[a - lo : b - lo]
    return ShapesBatch(images=images, labels=labels, masks=masks)


# ------------------------------------------------------------------------------ composite labels


def _attribute_tuple(attributes: str | Sequence[str]) -> tuple[str, ...]:
    attrs = (attributes,) if isinstance(attributes, str) else tuple(attributes)
    if not attrs:
        raise ValueError("attributes must not be empty")
    unknown = [a for a in attrs if a not in ATTRIBUTE_VALUES]
    if unknown:
        allowed = ", ".join(repr(a) for a in ATTRIBUTES)
        raise ValueError(f"unknown attribute(s) {unknown}; allowed: {allowed}")
    if len(set(attrs)) != len(attrs):
        raise ValueError(f"attributes must be distinct; got {attrs}")
    return attrs


def composite_class_names(attributes: str | Sequence[str] = ("shape", "colour")) -> tuple[str, ...]:
    """Names of the composite classes of ``attributes``, e.g. ``"circle/red"`` (first attribute slowest)."""
    names: list[str] = [""]
    for i, a in enumerate(_attribute_tuple(attributes)):
        names = [f"{p}/{v}" if i else v for p in names for v in ATTRIBUTE_VALUES[a]]
    return tuple(names)


def composite_labels(
    labels: dict[str, torch.Tensor], attributes: str | Sequence[str] = ("shape", "colour")
) -> tuple[torch.Tensor, tuple[str, ...]]:
    """One label per combination of ``attributes`` (mixed radix, first attribute most significant).

    With 8 shapes and 6 colours, shape 2 and colour 5 give ``2 * 6 + 5 = 17``, named
    ``"triangle/cyan"``. A single attribute name gives that attribute's labels and value names.

    Returns:
        The composite labels (int64) and the name of every composite class.
    """
    attrs = _attribute_tuple(attributes)
    missing = [a for a in attrs if a not in labels]
    if missing:
        allowed = ", ".join(repr(a) for a in labels)
        raise ValueError(f"attribute(s) {missing} are not in these labels; allowed: {allowed}")
    out = torch.zeros_like(labels[attrs[0]], dtype=torch.int64)
    for a in attrs:
        out = out * len(ATTRIBUTE_VALUES[a]) + labels[a].long()
    return out, composite_class_names(attrs)


# ----------------------------------------------------------------------------------------- splits


@dataclass(frozen=True)
class ShapesClassView:
    """Train and test images of some classes of an attribute (or composite), relabelled ``0..k-1``.

    ``train.to_global`` / ``test.to_global`` map local labels back to the attribute's global ones.
    """

    train: ClassSubset
    test: ClassSubset
    attributes: tuple[str, ...]  #: the attribute(s) the classes are values (combinations) of
    class_names: tuple[str, ...]  #: name of every local class
    global_class_names: tuple[str, ...]  #: name of every class of the attribute (or composite)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclass(frozen=True)
class ShapesSplit:
    """Train and test sets of ``shapes``: images ``(N, 3, S, S)`` and a label dict per set.

    The test images are the indices right after the training ones, so the two never coincide.
    """

    x_train: torch.Tensor
    labels_train: dict[str, torch.Tensor]
    x_test: torch.Tensor
    labels_test: dict[str, torch.Tensor]
    config: ShapesConfig = ShapesConfig()
    seed: int = 0

    @property
    def attributes(self) -> tuple[str, ...]:
        """The attributes this split carries labels for."""
        return tuple(a for a in ATTRIBUTES if a in self.labels_train)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    def class_names(self, attributes: str | Sequence[str]) -> tuple[str, ...]:
        """Class names of an attribute or composite of attributes that this split carries."""
        return composite_labels(self.labels_train, attributes)[1]

    def num_classes(self, attributes: str | Sequence[str]) -> int:
        return len(self.class_names(attributes))

    def targets(self, attributes: str | Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Train and test labels of an attribute or composite (see :func:`composite_labels`)."""
        return (
            composite_labels(self.labels_train, attributes)[0],
            composite_labels(self.labels_test, attributes)[0],
        )

    def train_set(self, attributes: str | Sequence[str]) -> TensorDataset:
        return TensorDataset(self.x_train, self.targets(attributes)[0])

    def test_set(self, attributes: str | Sequence[str]) -> TensorDataset:
        return TensorDataset(self.x_test, self.targets(attributes)[1])

    def attribute_view(self, attributes: str | Sequence[str]) -> ShapesSplit:
        """The same images with the labels of ``attributes`` only (e.g. for a teacher of colour and size)."""
        attrs = _attribute_tuple(attributes)
        missing = [a for a in attrs if a not in self.labels_train]
        if missing:
            allowed = ", ".join(repr(a) for a in self.attributes)
            raise ValueError(f"attribute(s) {missing} are not in this split; allowed: {allowed}")
        return replace(
            self,
            labels_train={a: self.labels_train[a] for a in attrs},
            labels_test={a: self.labels_test[a] for a in attrs},
        )

    def class_view(self, attributes: str | Sequence[str], classes: Sequence[int | str]) -> ShapesClassView:
        """The images of some ``classes`` of an attribute or composite, relabelled in the order given.

        ``classes`` are global labels or class names, e.g. ``class_view("shape", range(4))`` for a
        teacher of the first four shapes, or ``class_view(("shape", "colour"), ["circle/red", ...])``.
        Built with :func:`kae_utils.data.subsets.class_subset` on the train and the test set.
        """
        y_train, names = composite_labels(self.labels_train, attributes)
        y_test, _ = composite_labels(self.labels_test, attributes)
        lookup = {name: i for i, name in enumerate(names)}
        ids: list[int] = []
        for c in classes:
            if isinstance(c, str):
                if c not in lookup:
                    raise ValueError(f"unknown class {c!r}; allowed: {', '.join(names)}")
                ids.append(lookup[c])
            else:
                c = int(c)
                if not 0 <= c < len(names):
                    raise ValueError(f"class {c} is outside [0, {len(names) - 1}]")
                ids.append(c)
        train = class_subset(self.x_train, y_train, ids)
        test = class_subset(self.x_test, y_test, ids)
        return ShapesClassView(
            train=train,
            test=test,
            attributes=_attribute_tuple(attributes),
            class_names=tuple(names[i] for i in train.classes),
            global_class_names=names,
        )


def make_shapes_split(
    n_train: int, n_test: int, seed: int = 0, config: ShapesConfig | None = None
) -> ShapesSplit:
    """Images ``0 .. n_train-1`` of ``seed`` for training and ``n_train .. n_train+n_test-1`` for testing."""
    _check_int("n_train", n_train, 1)
    _check_int("n_test", n_test, 1)
    config = ShapesConfig() if config is None else config
    train = generate_shapes(n_train, seed=seed, config=config, start=0)
    test = generate_shapes(n_test, seed=seed, config=config, start=n_train)
    return ShapesSplit(
        x_train=train.images,
        labels_train=train.labels,
        x_test=test.images,
        labels_test=test.labels,
        config=config,
        seed=seed,
    )
