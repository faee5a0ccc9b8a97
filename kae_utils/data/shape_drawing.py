"""Drawing ``shapes`` images: signed distances of the eight shapes, anti-aliased coverage, fill patterns, and the
vectorised rendering of a block of images (:func:`render_block`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from kae_utils.data.shapes_config import (
    ATTRIBUTE_VALUES,
    BLOB_GRID,
    BLOCK,
    COLOUR_RGB,
    LINE_SLOTS,
    Draws,
    ShapesConfig,
    draw_plan,
    splitmix64,
)

__all__ = ["block_noise", "render_block"]

#: Mean radius of the main object per size bin, as a fraction of the image side.
_SIZE_FRACTIONS: tuple[float, ...] = (0.14, 0.21, 0.29)
#: Brightness of the dark parts of a patterned fill, relative to the object's colour.
_FILL_SHADE = 0.55

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


def render_block(
    seed: int, index: torch.Tensor, config: ShapesConfig
) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    """Images ``(n, 3, S, S)``, labels and main-object masks of the images ``index`` (one aligned block)."""
    n, size = len(index), config.image_size
    draws = Draws(seed, index, draw_plan(config))
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
    blobs = draws.uniform("blobs").view(n, 3, BLOB_GRID, BLOB_GRID)
    blobs = F.interpolate(blobs * 2.0 - 1.0, size=(size, size), mode="bilinear", align_corners=False)
    img = (grey[:, None, None, None] + (0.35 * config.clutter) * blobs).clamp_(0.0, 1.0)
    if config.clutter > 0:
        present = draws.uniform("line_present") < config.clutter
        angle = draws.uniform("line_angle") * math.pi
        px, py = draws.uniform("line_x") * size, draws.uniform("line_y") * size
        width = 0.35 + 0.4 * draws.uniform("line_width")
        rgb = draws.uniform("line_rgb").view(n, LINE_SLOTS, 3)
        for j in range(LINE_SLOTS):
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


def block_noise(seed: int, block: int, size: int) -> torch.Tensor:
    """Standard normal noise ``(BLOCK, 3, size, size)`` of one aligned block of image indices."""
    gen = torch.Generator().manual_seed(splitmix64(splitmix64(seed) ^ (block + 0x5EED)) >> 1)
    return torch.randn((BLOCK, 3, size, size), generator=gen)
