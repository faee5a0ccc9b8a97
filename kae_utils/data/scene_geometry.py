"""The geometry of ``scenes``: counter-based randomness, the object primitives and their ray intersections, and
the sampling of every image's scene parameters (:func:`sample_scene`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from kae_utils.data.hashing import MASK32, hash32
from kae_utils.data.scene_spec import OBJECT_CLASSES, SceneConfig

__all__ = ["INF", "S_NOISE", "SHAPES", "Scene", "dot", "hash_bits", "normalize", "sample_scene"]

_AREA = 1.95  # objects live in [-_AREA, _AREA]^2
_EPS = 1e-4  # smallest ray parameter that counts as a hit
_TORUS_STEPS = 32
_MASK32 = MASK32
_PATTERNS = ("checker", "stripes", "noise")  # procedural textures of the textured domain

# ------------------------------------------------------------------------- counter-based randomness






def _image_keys(seed: int, indices: torch.Tensor) -> torch.Tensor:
    """A 32-bit key per image that depends only on ``seed`` and the image's index."""
    k = hash32(torch.full_like(indices, seed & _MASK32))
    k = hash32(k ^ ((seed >> 32) & _MASK32))
    k = hash32(k ^ (indices & _MASK32))
    return hash32(k ^ ((indices >> 32) & _MASK32))


def hash_bits(keys: torch.Tensor, stream: int, count: int) -> torch.Tensor:
    """``(n, count)`` 32-bit hashes of ``(key, stream, j)`` for ``j < count``."""
    counters = hash32(torch.arange(count, device=keys.device) + (stream << 20))
    return hash32((hash32(keys[:, None] ^ counters[None, :]) + counters[None, :]) & _MASK32)


def _uniform(keys: torch.Tensor, stream: int, count: int) -> torch.Tensor:
    """``(n, count)`` float64 uniforms in (0, 1), one row per image key."""
    return (hash_bits(keys, stream, count).double() + 0.5) / 2.0**32


# Independent random streams (the flat and textured domains share the geometric ones).
_S_COUNT, _S_CELLS, _S_CLASS, _S_DIMS, _S_PLACE, _S_CAMERA = 1, 2, 3, 4, 5, 6
_S_LIGHT, _S_COLOUR, _S_TEXTURE, S_NOISE = 7, 8, 9, 10


# ----------------------------------------------------------------------------------------- shapes


def dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Dot product over the leading axis of 3-vectors stored as ``(3, ...)`` (broadcasting)."""
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def normalize(v: torch.Tensor) -> torch.Tensor:
    """3-vectors stored as ``(3, ...)`` scaled to unit length."""
    return v / dot(v, v).clamp_min(1e-20).sqrt()


#: The ray parameter of a miss.
INF = float("inf")


def _hit_sphere(o: torch.Tensor, d: torch.Tensor, dims: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r = dims[0]
    oy = o[1] - r
    b = o[0] * d[0] + oy * d[1] + o[2] * d[2]
    c = o[0] * o[0] + oy * oy + o[2] * o[2] - r * r
    disc = b * b - c
    t = -b - disc.clamp_min(0).sqrt()
    t = torch.where((disc > 0) & (t > _EPS), t, INF)
    normal = torch.stack([o[0] + t * d[0], oy + t * d[1], o[2] + t * d[2]]) / r
    return t, normal


def _hit_box(o: torch.Tensor, d: torch.Tensor, dims: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    half = torch.stack([dims[0], dims[1] / 2, dims[2]])
    oc = torch.stack([o[0], o[1] - half[1], o[2]])
    safe = torch.where(d.abs() < 1e-12, torch.full_like(d, 1e-12), d)
    t1 = (-half - oc) / safe
    t2 = (half - oc) / safe
    near = torch.minimum(t1, t2)
    far = torch.maximum(t1, t2)
    t_near, axis = near.max(dim=0)
    t_far = far.min(dim=0).values
    t = torch.where((t_near <= t_far) & (t_near > _EPS), t_near, INF)
    normal = -torch.sign(safe) * (torch.arange(3, device=o.device)[:, None] == axis[None, :])
    return t, normal


def _hit_cylinder(o: torch.Tensor, d: torch.Tensor, dims: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r, h = dims[0], dims[1]
    a = d[0] * d[0] + d[2] * d[2]
    b = o[0] * d[0] + o[2] * d[2]
    c = o[0] * o[0] + o[2] * o[2] - r * r
    disc = b * b - a * c
    t_side = (-b - disc.clamp_min(0).sqrt()) / a.clamp_min(1e-12)
    y_side = o[1] + t_side * d[1]
    ok_side = (disc > 0) & (a > 1e-12) & (t_side > _EPS) & (y_side >= 0) & (y_side <= h)
    t_top = (h - o[1]) / torch.where(d[1] < -1e-12, d[1], -1.0)
    x_top, z_top = o[0] + t_top * d[0], o[2] + t_top * d[2]
    ok_top = (d[1] < -1e-12) & (t_top > _EPS) & (x_top * x_top + z_top * z_top <= r * r)
    t_side = torch.where(ok_side, t_side, INF)
    t_top = torch.where(ok_top, t_top, INF)
    side = t_side <= t_top
    t = torch.minimum(t_side, t_top)
    px, pz = o[0] + t_side * d[0], o[2] + t_side * d[2]
    normal = torch.stack([
        torch.where(side, px / r, 0.0),
        torch.where(side, 0.0, 1.0),
        torch.where(side, pz / r, 0.0),
    ])
    return t, normal


def _hit_cone(o: torch.Tensor, d: torch.Tensor, dims: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    radius, h = dims[0], dims[1]
    k2 = (radius / h) ** 2
    q = h - o[1]
    a = d[0] * d[0] + d[2] * d[2] - k2 * d[1] * d[1]
    b = o[0] * d[0] + o[2] * d[2] + k2 * q * d[1]  # half of the linear coefficient
    c = o[0] * o[0] + o[2] * o[2] - k2 * q * q
    disc = b * b - a * c
    root = disc.clamp_min(0).sqrt()
    qq = -(b + torch.where(b >= 0, root, -root))  # numerically stable pair of roots
    safe_a = torch.where(a.abs() < 1e-12, torch.full_like(a, 1e-12), a)
    safe_qq = torch.where(qq.abs() < 1e-12, torch.full_like(qq, 1e-12), qq)
    best = torch.full_like(a, INF)
    for t in (qq / safe_a, c / safe_qq):
        y = o[1] + t * d[1]
        ok = (disc >= 0) & (t > _EPS) & (y >= 0) & (y <= h)
        best = torch.minimum(best, torch.where(ok, t, INF))
    p = o + best * d
    normal = normalize(torch.stack([p[0], k2 * (h - p[1]), p[2]]))
    return best, normal


def _torus_sdf(p: torch.Tensor, big: torch.Tensor, small: torch.Tensor) -> torch.Tensor:
    ring = (p[0] * p[0] + p[2] * p[2]).sqrt() - big
    tube = p[1] - small
    return (ring * ring + tube * tube).sqrt() - small


def _hit_torus(o: torch.Tensor, d: torch.Tensor, dims: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    big, small = dims[0], dims[1]
    # start at the entry into the bounding sphere and the slab 0 <= y <= 2 small, then sphere-trace
    oy = o[1] - small
    bound = big + small
    b = o[0] * d[0] + oy * d[1] + o[2] * d[2]
    disc = b * b - (o[0] * o[0] + oy * oy + o[2] * o[2] - bound * bound)
    root = disc.clamp_min(0).sqrt()
    t_exit = -b + root
    t_slab = torch.where((o[1] > 2 * small) & (d[1] < 0), (2 * small - o[1]) / d[1].clamp_max(-1e-12), 0.0)
    t = torch.maximum(torch.maximum(-b - root, t_slab), torch.zeros_like(b))
    for _ in range(_TORUS_STEPS):
        t = t + _torus_sdf(o + t * d, big, small)
    p = o + t * d
    radial = (p[0] * p[0] + p[2] * p[2]).sqrt().clamp_min(1e-12)
    normal = normalize(torch.stack([p[0] - big * p[0] / radial, p[1] - small, p[2] - big * p[2] / radial]))
    # a converged march ends on the surface; a ray that grazes past it stalls close by, facing away
    ok = (disc > 0) & (t < t_exit) & (t > _EPS) & (_torus_sdf(p, big, small).abs() < 1e-3 * (1 + small))
    ok = ok & (dot(normal, d) < 0)
    return torch.where(ok, t, INF), normal


@dataclass(frozen=True)
class _Shape:
    """How one object class is sized, bounded and intersected (local frame: base centre on the floor).

    ``sample`` maps 4 uniforms ``(..., 4)`` and the grid scale to dimensions ``(..., 4)``;
    ``footprint`` gives the radius of the floor disc the shape stays within; ``bound`` the height of
    the centre and the radius of a bounding sphere; ``hit`` the ray parameter (``inf`` on a miss) and
    the local unit normal for rays ``(3, m)`` and dimensions ``(4, m)``.
    """

    sample: Callable[[torch.Tensor, float], torch.Tensor]
    footprint: Callable[[torch.Tensor], torch.Tensor]
    bound: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
    hit: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def _dims(*columns: torch.Tensor) -> torch.Tensor:
    zeros = torch.zeros_like(columns[0])
    return torch.stack([*columns, *([zeros] * (4 - len(columns)))], dim=-1)


#: One entry per name in ``OBJECT_CLASSES`` (same order): add both to add a shape.
SHAPES: dict[str, _Shape] = {
    "sphere": _Shape(
        sample=lambda u, s: _dims(s * (0.32 + 0.23 * u[..., 0])),
        footprint=lambda d: d[..., 0],
        bound=lambda d: (d[..., 0], d[..., 0]),
        hit=_hit_sphere,
    ),
    "box": _Shape(  # half width, full height, half depth
        sample=lambda u, s: _dims(s * (0.22 + 0.18 * u[..., 0]), s * (0.4 + 0.7 * u[..., 1]),
                                  s * (0.22 + 0.18 * u[..., 2])),
        footprint=lambda d: torch.sqrt(d[..., 0] ** 2 + d[..., 2] ** 2),
        bound=lambda d: (d[..., 1] / 2, torch.sqrt(d[..., 0] ** 2 + d[..., 1] ** 2 / 4 + d[..., 2] ** 2)),
        hit=_hit_box,
    ),
    "cylinder": _Shape(  # radius, height
        sample=lambda u, s: _dims(s * (0.22 + 0.28 * u[..., 0]), s * (0.4 + 0.8 * u[..., 1])),
        footprint=lambda d: d[..., 0],
        bound=lambda d: (d[..., 1] / 2, torch.sqrt(d[..., 0] ** 2 + d[..., 1] ** 2 / 4)),
        hit=_hit_cylinder,
    ),
    "cone": _Shape(  # base radius, height
        sample=lambda u, s: _dims(s * (0.3 + 0.25 * u[..., 0]), s * (0.7 + 0.7 * u[..., 1])),
        footprint=lambda d: d[..., 0],
        bound=lambda d: (d[..., 1] / 2, torch.sqrt(d[..., 0] ** 2 + d[..., 1] ** 2 / 4)),
        hit=_hit_cone,
    ),
    "torus": _Shape(  # ring radius, tube radius (lying flat)
        sample=lambda u, s: _dims(s * (0.3 + 0.15 * u[..., 0]), s * (0.1 + 0.07 * u[..., 1])),
        footprint=lambda d: d[..., 0] + d[..., 1],
        bound=lambda d: (d[..., 1], d[..., 0] + d[..., 1]),
        hit=_hit_torus,
    ),
}
assert tuple(SHAPES) == OBJECT_CLASSES


# ------------------------------------------------------------------------------- scene parameters


def _hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``(..., 3)`` RGB from hue, saturation and value in [0, 1]."""
    out = []
    for shift in (5.0, 3.0, 1.0):
        k = torch.remainder(shift + h * 6.0, 6.0)
        out.append(v - v * s * torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0))
    return torch.stack(out, dim=-1)


@dataclass(frozen=True)
class Scene:
    """Per-image parameters, float32 on the render device (vectors as ``(3, n, ...)``)."""

    count: torch.Tensor  # (n,) int64
    active: torch.Tensor  # (n, K) bool
    cls: torch.Tensor  # (n, K) int64, index into OBJECT_CLASSES
    dims: torch.Tensor  # (4, n, K)
    base: torch.Tensor  # (3, n, K) base centre on the floor
    cos: torch.Tensor  # (n, K) rotation about the vertical
    sin: torch.Tensor
    bcentre: torch.Tensor  # (3, n, K) bounding spheres
    bradius: torch.Tensor  # (n, K)
    cam_pos: torch.Tensor  # (n, 3) float64
    look_at: torch.Tensor  # (n, 3) float64
    fov: torch.Tensor  # (n,) float64, degrees
    light: torch.Tensor  # (n, 3) float64, unit
    ambient: torch.Tensor  # (n,)
    intensity: torch.Tensor  # (n,)
    surfaces: torch.Tensor  # (13, n, S) per surface (floor, wall x, wall z, objects): colour (3),
    # second texture colour (3), texture frequency (1), phase (3), stripe axis (3)
    pattern: torch.Tensor  # (n, S) int64 index into _PATTERNS
    cast: torch.Tensor  # (3, n) colour cast
    specular: torch.Tensor  # (n,)
    keys: torch.Tensor  # (n,) int64


def sample_scene(seed: int, indices: torch.Tensor, cfg: SceneConfig) -> Scene:
    """Draw every per-image parameter of the scenes ``indices`` (float64 maths, stored as float32)."""
    keys = _image_keys(seed, indices)
    n, big_k, g = len(indices), cfg.max_objects, cfg.grid
    cell = 2 * _AREA / g
    scale = 3.0 / g

    span = cfg.max_objects - cfg.min_objects + 1
    count = cfg.min_objects + torch.floor(_uniform(keys, _S_COUNT, 1)[:, 0] * span).long().clamp_max(span - 1)
    active = torch.arange(big_k, device=keys.device)[None, :] < count[:, None]
    cells = torch.argsort(hash_bits(keys, _S_CELLS, g * g), dim=1)[:, :big_k]
    n_shapes = len(OBJECT_CLASSES)
    cls = torch.floor(_uniform(keys, _S_CLASS, big_k) * n_shapes).long().clamp_max(n_shapes - 1)

    u_dims = _uniform(keys, _S_DIMS, 4 * big_k).reshape(n, big_k, 4)
    dims = torch.zeros(n, big_k, 4, dtype=torch.float64, device=keys.device)
    footprint = torch.zeros(n, big_k, dtype=torch.float64, device=keys.device)
    b_height = torch.zeros_like(footprint)
    b_radius = torch.zeros_like(footprint)
    for c, shape in enumerate(SHAPES.values()):
        is_c = cls == c
        d_c = shape.sample(u_dims, scale)
        dims = torch.where(is_c[..., None], d_c, dims)
        footprint = torch.where(is_c, shape.footprint(d_c), footprint)
        h_c, r_c = shape.bound(d_c)
        b_height = torch.where(is_c, h_c, b_height)
        b_radius = torch.where(is_c, r_c, b_radius)

    u_place = _uniform(keys, _S_PLACE, 3 * big_k).reshape(n, big_k, 3)
    slack = (cell / 2 - footprint).clamp_min(0)
    x = -_AREA + cell * ((cells % g).double() + 0.5) + (2 * u_place[..., 0] - 1) * slack
    z = -_AREA + cell * ((cells // g).double() + 0.5) + (2 * u_place[..., 1] - 1) * slack
    angle = 2 * math.pi * u_place[..., 2]

    u_cam = _uniform(keys, _S_CAMERA, 7)
    azimuth = torch.deg2rad(20 + 50 * u_cam[:, 0])
    radius = 4.6 + 1.2 * u_cam[:, 1]
    cam_pos = torch.stack([radius * torch.sin(azimuth), 2.0 + 1.2 * u_cam[:, 2], radius * torch.cos(azimuth)], 1)
    look_at = torch.stack([0.6 * u_cam[:, 3] - 0.3, 0.4 * u_cam[:, 4], 0.6 * u_cam[:, 5] - 0.3], 1)
    fov = 46 + 10 * u_cam[:, 6]

    flat = cfg.domain == "flat"
    u_light = _uniform(keys, _S_LIGHT, 8)
    if flat:
        light_az = torch.deg2rad(15 + 60 * u_light[:, 0])
        light_el = torch.deg2rad(30 + 30 * u_light[:, 1])
        ambient = 0.25 + 0.15 * u_light[:, 2]
        intensity = 1 - ambient  # ambient + intensity = 1: rgb never clips
        cast = torch.ones(n, 3, dtype=torch.float64, device=keys.device)
        specular = torch.zeros(n, dtype=torch.float64, device=keys.device)
    else:
        light_az = torch.deg2rad(5 + 80 * u_light[:, 0])
        light_el = torch.deg2rad(20 + 25 * u_light[:, 1])
        ambient = 0.08 + 0.14 * u_light[:, 2]
        intensity = 0.85 + 0.3 * u_light[:, 3]
        warm = 0.3 * u_light[:, 4] - 0.1  # mostly warm, sometimes cool
        cast = torch.stack([1 + warm, 1 + 0.1 * (u_light[:, 5] - 0.5), 1 - warm], 1)
        cast = cast * (0.9 + 0.2 * u_light[:, 6])[:, None]
        specular = 0.1 + 0.25 * u_light[:, 7]
    light = torch.stack([
        torch.cos(light_el) * torch.sin(light_az), torch.sin(light_el), torch.cos(light_el) * torch.cos(light_az)
    ], 1)

    s = 3 + big_k
    u_col = _uniform(keys, _S_COLOUR, 3 * s).reshape(n, s, 3)
    hue, sat, val = u_col[..., 0], 0.45 + 0.4 * u_col[..., 1], 0.55 + 0.35 * u_col[..., 2]
    # floor: warm greys and browns; walls: pale, one hue for both walls
    hue = torch.cat([0.05 + 0.07 * hue[:, :1], hue[:, 1:2].expand(n, 2), hue[:, 3:]], 1)
    sat = torch.cat([0.15 + 0.2 * u_col[:, :1, 1], 0.05 + 0.2 * u_col[:, 1:3, 1], sat[:, 3:]], 1)
    val = torch.cat([0.35 + 0.25 * u_col[:, :1, 2], 0.65 + 0.2 * u_col[:, 1:3, 2], val[:, 3:]], 1)
    colour = _hsv_to_rgb(hue, sat, val)

    u_tex = _uniform(keys, _S_TEXTURE, 12 * s).reshape(n, s, 12)
    colour2 = 0.5 * colour * (0.3 + 0.4 * u_tex[..., :1]) + 0.5 * _hsv_to_rgb(
        u_tex[..., 1], 0.2 + 0.6 * u_tex[..., 2], 0.2 + 0.6 * u_tex[..., 3]
    )
    pattern = torch.floor(u_tex[..., 4] * len(_PATTERNS)).long().clamp_max(len(_PATTERNS) - 1)
    structure = torch.arange(s, device=keys.device)[None, :] < 3
    frequency = torch.where(structure, 0.8 + 1.7 * u_tex[..., 5], (3.0 + 5.0 * u_tex[..., 5]) / scale)
    phase = u_tex[..., 6:9]
    axis = u_tex[..., 9:12] * 2 - 1
    axis = axis / axis.norm(dim=-1, keepdim=True).clamp_min(1e-6)

    f32 = torch.float32

    def vec(t: torch.Tensor) -> torch.Tensor:  # (n, ..., 3) float64 -> (3, n, ...) float32
        return t.movedim(-1, 0).to(f32).contiguous()

    base = torch.stack([x, torch.zeros_like(x), z], -1)
    bcentre = torch.stack([x, b_height, z], -1)
    return Scene(
        count=count, active=active, cls=cls, dims=vec(dims), base=vec(base),
        cos=torch.cos(angle).to(f32), sin=torch.sin(angle).to(f32), bcentre=vec(bcentre),
        bradius=(b_radius * 1.001 + 1e-4).to(f32), cam_pos=cam_pos, look_at=look_at, fov=fov, light=light,
        ambient=ambient.to(f32), intensity=intensity.to(f32), surfaces=vec(torch.cat([colour, colour2, frequency[..., None], phase, axis], -1)),
        pattern=pattern, cast=vec(cast),
        specular=specular.to(f32), keys=keys,
    )
