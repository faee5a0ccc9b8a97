"""``scenes``: procedurally rendered 3D rooms with a dense label for every pixel (no download).

It stands in for NYUv2 (joint scene parsing and depth) and Taskonomy (transferability across many
tasks) in the offline profile. A small ray caster written in torch renders the corner of a room (a
floor and two walls) holding 2..N objects of five shapes that rest on the floor, seen by a camera on
an arc around the scene centre under one directional light, and returns with each picture its
semantic and instance segmentation, depth, surface normals, texture and occlusion edges, shading
("reshading"), albedo and a few per-image labels. Everything is vectorised over pixels *and* images:
the Python loops run over shape classes and the torus's fixed number of march steps, never over images.

Geometry (world coordinates, y up, one unit ~ 40 cm):

* floor ``y = 0``; walls ``x = -3`` and ``z = -3`` (the room corner behind the objects);
* objects sit on a ``g x g`` grid of cells covering ``[-1.95, 1.95]^2`` (``g = 3`` up to 9 objects,
  ``g = 4`` beyond, with objects scaled by 3/4), one object per cell, jittered inside it; an object's
  footprint never leaves its cell, so objects never interpenetrate (they may touch);
* shapes (all analytic except the torus, which is sphere-traced from its bounding sphere):
  sphere, box (turned about the vertical), upright cylinder, upright cone, torus lying flat;
* the camera sits on an arc (azimuth 20..70 degrees, radius 4.6..5.8, height 2..3.2, field of view
  46..56 degrees) looking at a jittered point near the scene centre; the light is directional, from
  the camera's side of the room, so the walls and floor never shadow anything; objects cast hard
  shadows (``SceneConfig.shadows``, one shadow ray per lit pixel);
* only the camera rays and shadow rays that pass an object's bounding sphere (a screen-space box
  for camera rays, a disc in light space for shadow rays) are tested against that object exactly.

To add an object class, append its name to ``OBJECT_CLASSES`` and a ``_Shape`` to ``_SHAPES``; to
add a task derived from the rendered maps, add one ``TaskSpec`` with ``derive`` to ``TASKS``.

Randomness is counter based: every parameter of image ``i`` is an integer hash of
``(seed, i, stream, slot)``, so an image depends only on ``seed`` and its own index, never on the
batch it was rendered in (``render_scenes(8)`` equals ``render_scenes(4)`` followed by
``render_scenes(4, start=4)``), and the ``flat`` and ``textured`` domains share every geometric draw
(same rooms, objects and cameras; different light, colours and surface texture).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from kae_utils.core.params import check_choice
from kae_utils.core.scale import log_data
from kae_utils.data.hashing import MASK32, hash32

__all__ = [
    "DOMAINS",
    "MAX_OBJECTS",
    "OBJECT_CLASSES",
    "SCENE_CLASSES",
    "STRUCTURE_CLASSES",
    "TASKS",
    "TASK_KINDS",
    "SceneBatch",
    "SceneConfig",
    "TaskSpec",
    "render_scenes",
]

#: Semantic classes of the room itself (ids 0 and 1).
STRUCTURE_CLASSES: tuple[str, ...] = ("floor", "wall")
#: Semantic classes of the objects, in the order of their ids (2, 3, ...); one entry per shape in ``_SHAPES``.
OBJECT_CLASSES: tuple[str, ...] = ("sphere", "box", "cylinder", "cone", "torus")
#: All semantic classes; a pixel's ``segmentation`` label is the index of its class here.
SCENE_CLASSES: tuple[str, ...] = STRUCTURE_CLASSES + OBJECT_CLASSES
#: Visual domains: ``flat`` (flat colours, white light, no noise) and ``textured`` (procedural textures,
#: pixel noise, lower and brighter light, weaker ambient, a colour cast and a specular highlight).
DOMAINS: tuple[str, ...] = ("flat", "textured")
#: Most objects a scene may hold (a 4 x 4 grid of cells).
MAX_OBJECTS: int = 16
#: Kinds of task a ``TaskSpec`` may describe.
TASK_KINDS: tuple[str, ...] = ("segmentation", "instances", "regression", "binary", "classification", "count")

_WALL = 3.0  # walls at x = -_WALL and z = -_WALL
_AREA = 1.95  # objects live in [-_AREA, _AREA]^2
_EPS = 1e-4  # smallest ray parameter that counts as a hit
_SHADOW_OFFSET = 5e-3  # shadow rays start this far off the surface
_OCCLUSION_RATIO = 1.05  # neighbour depth ratio that makes an occlusion edge
_TORUS_STEPS = 32
_MASK32 = MASK32
_PATTERNS = ("checker", "stripes", "noise")  # procedural textures of the textured domain


# ------------------------------------------------------------------------------------------ tasks


@dataclass(frozen=True)
class TaskSpec:
    """One learnable target of a ``SceneBatch``.

    Attributes:
        kind: one of ``TASK_KINDS``; ``segmentation``/``instances``/``regression``/``binary`` are dense
            ``(n, C, H, W)`` or ``(n, H, W)`` maps, ``classification``/``count`` one value per image.
        channels: classes for ``segmentation``/``classification`` (and the largest id + 1 for
            ``instances``), channels of the map for ``regression``/``binary``, 1 for ``count``.
        field: name of the ``SceneBatch`` attribute holding the target, or of the derived target.
        derive: optional function ``SceneBatch -> Tensor`` computing the target from other fields;
            a new label map derived from the rendered ones is one ``TASKS`` entry with ``derive`` set.
        description: one line for tables and plots.
    """

    kind: str
    channels: int
    field: str
    derive: Callable[[SceneBatch], torch.Tensor] | None = None
    description: str = ""

    def __post_init__(self) -> None:
        check_choice("TaskSpec.kind", self.kind, TASK_KINDS)
        if not isinstance(self.channels, int) or self.channels < 1:
            raise ValueError(f"TaskSpec.channels must be a positive integer; got {self.channels!r}")

    @property
    def dense(self) -> bool:
        """Whether the target is a per-pixel map (as opposed to one value per image)."""
        return self.kind in ("segmentation", "instances", "regression", "binary")


def _euclidean_depth(batch: SceneBatch) -> torch.Tensor:
    """Distance from the camera centre along each pixel's ray, ``(n, 1, H, W)``."""
    h, w = batch.depth.shape[-2:]
    sx, sy = _pixel_grid(h, w, batch.depth.device)
    tan = torch.tan(torch.deg2rad(batch.camera["fov"].double()) / 2).float()
    stretch = torch.sqrt(1 + (sx[None] * tan[:, None]) ** 2 + (sy[None] * tan[:, None]) ** 2)
    return batch.depth * stretch.reshape(-1, 1, h, w)


def _foreground(batch: SceneBatch) -> torch.Tensor:
    """1 where a pixel shows an object, 0 on the floor and walls, ``(n, H, W)`` int64."""
    return (batch.segmentation >= len(STRUCTURE_CLASSES)).long()


#: Targets a notebook may train or probe on: task name -> ``TaskSpec``. Add an entry to add a task.
TASKS: dict[str, TaskSpec] = {
    "autoencoding": TaskSpec("regression", 3, "rgb", description="the image itself"),
    "segmentation": TaskSpec("segmentation", len(SCENE_CLASSES), "segmentation",
                             description="semantic class per pixel"),
    "foreground": TaskSpec("segmentation", 2, "foreground", derive=_foreground,
                           description="object vs floor/wall per pixel"),
    "instances": TaskSpec("instances", MAX_OBJECTS + 1, "instances",
                          description="object slot per pixel (0 = floor/wall)"),
    "depth": TaskSpec("regression", 1, "depth", description="z-buffer depth in scene units"),
    "depth_euclidean": TaskSpec("regression", 1, "depth_euclidean", derive=_euclidean_depth,
                                description="distance to the camera centre"),
    "normals": TaskSpec("regression", 3, "normals", description="unit surface normal, camera frame"),
    "edges2d": TaskSpec("regression", 1, "edges2d", description="Sobel magnitude of the image"),
    "occlusion_edges": TaskSpec("binary", 1, "occlusion_edges", description="depth discontinuities"),
    "reshading": TaskSpec("regression", 1, "shading", description="ambient + Lambertian shading"),
    "albedo": TaskSpec("regression", 3, "albedo", description="surface colour without light"),
    "object_count": TaskSpec("count", 1, "object_count", description="objects placed in the room"),
    "largest_class": TaskSpec("classification", len(SCENE_CLASSES), "largest_class",
                              description="class of the object covering most pixels"),
}


# ----------------------------------------------------------------------------------------- config


@dataclass(frozen=True)
class SceneConfig:
    """What ``render_scenes`` draws.

    Attributes:
        image_size: side of the square images in pixels, 8..512 (64 quick, 128 full).
        min_objects: fewest objects per scene, >= 1.
        max_objects: most objects per scene, ``min_objects..MAX_OBJECTS``; each scene draws its count
            uniformly from ``[min_objects, max_objects]``.
        domain: one of ``DOMAINS``.
        shadows: cast hard shadows of the objects (one shadow ray per lit pixel).
        pixel_noise: standard deviation of the zero-mean pixel noise added to ``rgb``; ``None`` picks
            the domain's default (0 for ``flat``, 0.03 for ``textured``). The noise is uniform, a
            crop of a fixed 512 x 512 x 3 field at a random offset and sign per image (cheap).
    """

    image_size: int = 64
    min_objects: int = 2
    max_objects: int = 5
    domain: str = "flat"
    shadows: bool = True
    pixel_noise: float | None = None

    def __post_init__(self) -> None:
        for name in ("image_size", "min_objects", "max_objects"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"SceneConfig.{name} must be an integer; got {value!r}")
        if not 8 <= self.image_size <= 512:
            raise ValueError(f"SceneConfig.image_size must be in [8, 512]; got {self.image_size}")
        if self.min_objects < 1:
            raise ValueError(f"SceneConfig.min_objects must be >= 1; got {self.min_objects}")
        if not self.min_objects <= self.max_objects <= MAX_OBJECTS:
            raise ValueError(
                f"SceneConfig.max_objects must be in [min_objects, {MAX_OBJECTS}] = "
                f"[{self.min_objects}, {MAX_OBJECTS}]; got {self.max_objects}"
            )
        check_choice("SceneConfig.domain", self.domain, DOMAINS)
        if not isinstance(self.shadows, bool):
            raise ValueError(f"SceneConfig.shadows must be True or False; got {self.shadows!r}")
        if self.pixel_noise is not None and not (
            isinstance(self.pixel_noise, (int, float)) and 0 <= self.pixel_noise <= 1
        ):
            raise ValueError(f"SceneConfig.pixel_noise must be None or in [0, 1]; got {self.pixel_noise!r}")

    @property
    def noise(self) -> float:
        """The pixel noise actually used (the domain default when ``pixel_noise`` is ``None``)."""
        if self.pixel_noise is not None:
            return float(self.pixel_noise)
        return 0.0 if self.domain == "flat" else 0.03

    @property
    def grid(self) -> int:
        """Side of the grid of cells the objects are placed on."""
        return max(3, math.ceil(math.sqrt(self.max_objects)))


# ------------------------------------------------------------------------------------------ batch


@dataclass(frozen=True, eq=False)
class SceneBatch:
    """``n`` rendered scenes with all their labels (float32 unless noted; ``H = W = image_size``).

    Attributes:
        rgb: ``(n, 3, H, W)`` image in [0, 1].
        segmentation: ``(n, H, W)`` int64, index into ``SCENE_CLASSES``.
        instances: ``(n, H, W)`` int64, 0 on floor and walls, ``1..object_count`` on objects (the
            object's slot + 1; an object hidden behind others has no pixels).
        depth: ``(n, 1, H, W)`` distance along the camera's viewing axis (z-buffer), > 0.
        normals: ``(n, 3, H, W)`` unit normals in camera coordinates (x right, y down, z forward,
            so visible surfaces have z < 0).
        edges2d: ``(n, 1, H, W)`` Sobel gradient magnitude of ``rgb`` (root mean square over the
            channels, divided by 4, the response to a unit step), clipped to [0, 1].
        occlusion_edges: ``(n, 1, H, W)`` 1.0 on the nearer pixel of every 4-neighbour pair that lies
            on different surfaces, one of them an object, whose depths differ by more than 5 %.
        shading: ``(n, 1, H, W)`` ``ambient + intensity * max(n . l, 0) * lit``, the grey light a
            surface receives (``lit`` = 0 in shadow).
        albedo: ``(n, 3, H, W)`` surface colour (textures included) without light, in [0, 1].
        object_count: ``(n,)`` int64, objects *placed* in the scene (a few may be hidden).
        largest_class: ``(n,)`` int64, class id of the object with most visible pixels (-1 when no
            object is visible, which the default camera makes practically impossible).
        camera: ``position`` ``(n, 3)``, ``look_at`` ``(n, 3)`` (world coordinates) and ``fov``
            ``(n,)`` (full field of view in degrees, horizontal = vertical).
        light: ``(n, 3)`` unit vector from the scene towards the light (world coordinates).
        indices: ``(n,)`` int64, the index of each scene in its seed's stream.
        seed: the seed the scenes were rendered with.
        config: the ``SceneConfig`` they were rendered with.

    ``rgb`` is ``albedo * shading`` in the ``flat`` domain (up to the optional ``pixel_noise``) and
    ``(albedo * shading + specular) * colour_cast + noise``, clipped, in the ``textured`` one.
    """

    rgb: torch.Tensor
    segmentation: torch.Tensor
    instances: torch.Tensor
    depth: torch.Tensor
    normals: torch.Tensor
    edges2d: torch.Tensor
    occlusion_edges: torch.Tensor
    shading: torch.Tensor
    albedo: torch.Tensor
    object_count: torch.Tensor
    largest_class: torch.Tensor
    camera: dict[str, torch.Tensor]
    light: torch.Tensor
    indices: torch.Tensor
    seed: int = 0
    config: SceneConfig = field(default_factory=SceneConfig)

    def __len__(self) -> int:
        return len(self.rgb)

    @property
    def classes(self) -> tuple[str, ...]:
        return SCENE_CLASSES

    @property
    def num_classes(self) -> int:
        return len(SCENE_CLASSES)

    def target(self, task: str) -> torch.Tensor:
        """The target of ``task`` (a key of ``TASKS``): the field it names, or its derived map."""
        check_choice("task", task, TASKS)
        spec = TASKS[task]
        return spec.derive(self) if spec.derive is not None else getattr(self, spec.field)

    def to(self, device: str | torch.device) -> SceneBatch:
        """A copy with every tensor on ``device``."""
        moved = {
            name: (value.to(device) if isinstance(value, torch.Tensor) else value)
            for name, value in vars(self).items()
        }
        moved["camera"] = {k: v.to(device) for k, v in self.camera.items()}
        return SceneBatch(**moved)


# ------------------------------------------------------------------------- counter-based randomness






def _image_keys(seed: int, indices: torch.Tensor) -> torch.Tensor:
    """A 32-bit key per image that depends only on ``seed`` and the image's index."""
    k = hash32(torch.full_like(indices, seed & _MASK32))
    k = hash32(k ^ ((seed >> 32) & _MASK32))
    k = hash32(k ^ (indices & _MASK32))
    return hash32(k ^ ((indices >> 32) & _MASK32))


def _bits(keys: torch.Tensor, stream: int, count: int) -> torch.Tensor:
    """``(n, count)`` 32-bit hashes of ``(key, stream, j)`` for ``j < count``."""
    counters = hash32(torch.arange(count, device=keys.device) + (stream << 20))
    return hash32((hash32(keys[:, None] ^ counters[None, :]) + counters[None, :]) & _MASK32)


def _uniform(keys: torch.Tensor, stream: int, count: int) -> torch.Tensor:
    """``(n, count)`` float64 uniforms in (0, 1), one row per image key."""
    return (_bits(keys, stream, count).double() + 0.5) / 2.0**32


# Independent random streams (the flat and textured domains share the geometric ones).
_S_COUNT, _S_CELLS, _S_CLASS, _S_DIMS, _S_PLACE, _S_CAMERA = 1, 2, 3, 4, 5, 6
_S_LIGHT, _S_COLOUR, _S_TEXTURE, _S_NOISE = 7, 8, 9, 10


# ----------------------------------------------------------------------------------------- shapes


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Dot product over the leading axis of 3-vectors stored as ``(3, ...)`` (broadcasting)."""
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _normalize(v: torch.Tensor) -> torch.Tensor:
    return v / _dot(v, v).clamp_min(1e-20).sqrt()


_INF = float("inf")


def _hit_sphere(o: torch.Tensor, d: torch.Tensor, dims: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r = dims[0]
    oy = o[1] - r
    b = o[0] * d[0] + oy * d[1] + o[2] * d[2]
    c = o[0] * o[0] + oy * oy + o[2] * o[2] - r * r
    disc = b * b - c
    t = -b - disc.clamp_min(0).sqrt()
    t = torch.where((disc > 0) & (t > _EPS), t, _INF)
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
    t = torch.where((t_near <= t_far) & (t_near > _EPS), t_near, _INF)
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
    t_side = torch.where(ok_side, t_side, _INF)
    t_top = torch.where(ok_top, t_top, _INF)
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
    best = torch.full_like(a, _INF)
    for t in (qq / safe_a, c / safe_qq):
        y = o[1] + t * d[1]
        ok = (disc >= 0) & (t > _EPS) & (y >= 0) & (y <= h)
        best = torch.minimum(best, torch.where(ok, t, _INF))
    p = o + best * d
    normal = _normalize(torch.stack([p[0], k2 * (h - p[1]), p[2]]))
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
    normal = _normalize(torch.stack([p[0] - big * p[0] / radial, p[1] - small, p[2] - big * p[2] / radial]))
    # a converged march ends on the surface; a ray that grazes past it stalls close by, facing away
    ok = (disc > 0) & (t < t_exit) & (t > _EPS) & (_torus_sdf(p, big, small).abs() < 1e-3 * (1 + small))
    ok = ok & (_dot(normal, d) < 0)
    return torch.where(ok, t, _INF), normal


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
_SHAPES: dict[str, _Shape] = {
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
assert tuple(_SHAPES) == OBJECT_CLASSES


# ------------------------------------------------------------------------------- scene parameters


def _hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``(..., 3)`` RGB from hue, saturation and value in [0, 1]."""
    out = []
    for shift in (5.0, 3.0, 1.0):
        k = torch.remainder(shift + h * 6.0, 6.0)
        out.append(v - v * s * torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0))
    return torch.stack(out, dim=-1)


@dataclass(frozen=True)
class _Scene:
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


def _sample_scene(seed: int, indices: torch.Tensor, cfg: SceneConfig) -> _Scene:
    """Draw every per-image parameter of the scenes ``indices`` (float64 maths, stored as float32)."""
    keys = _image_keys(seed, indices)
    n, big_k, g = len(indices), cfg.max_objects, cfg.grid
    cell = 2 * _AREA / g
    scale = 3.0 / g

    span = cfg.max_objects - cfg.min_objects + 1
    count = cfg.min_objects + torch.floor(_uniform(keys, _S_COUNT, 1)[:, 0] * span).long().clamp_max(span - 1)
    active = torch.arange(big_k, device=keys.device)[None, :] < count[:, None]
    cells = torch.argsort(_bits(keys, _S_CELLS, g * g), dim=1)[:, :big_k]
    n_shapes = len(OBJECT_CLASSES)
    cls = torch.floor(_uniform(keys, _S_CLASS, big_k) * n_shapes).long().clamp_max(n_shapes - 1)

    u_dims = _uniform(keys, _S_DIMS, 4 * big_k).reshape(n, big_k, 4)
    dims = torch.zeros(n, big_k, 4, dtype=torch.float64, device=keys.device)
    footprint = torch.zeros(n, big_k, dtype=torch.float64, device=keys.device)
    b_height = torch.zeros_like(footprint)
    b_radius = torch.zeros_like(footprint)
    for c, shape in enumerate(_SHAPES.values()):
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
    return _Scene(
        count=count, active=active, cls=cls, dims=vec(dims), base=vec(base),
        cos=torch.cos(angle).to(f32), sin=torch.sin(angle).to(f32), bcentre=vec(bcentre),
        bradius=(b_radius * 1.001 + 1e-4).to(f32), cam_pos=cam_pos, look_at=look_at, fov=fov, light=light,
        ambient=ambient.to(f32), intensity=intensity.to(f32), surfaces=vec(torch.cat([colour, colour2, frequency[..., None], phase, axis], -1)),
        pattern=pattern, cast=vec(cast),
        specular=specular.to(f32), keys=keys,
    )


# ------------------------------------------------------------------------------------------ tracing


def _pixel_grid(h: int, w: int, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    """Image-plane coordinates ``(H*W,)`` at unit ``tan(fov/2)``: x to the right, y up."""
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w * 2 - 1
    ys = 1 - (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h * 2
    return xs[None, :].expand(h, w).reshape(-1), ys[:, None].expand(h, w).reshape(-1)


def _primary_pairs(
    scene: _Scene, forward: torch.Tensor, right: torch.Tensor, up: torch.Tensor, tan: torch.Tensor, size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(ray, object) pairs worth an exact test for the camera rays: the pixels inside the screen box of
    each object's bounding sphere (from the planes through the camera's x and y axes tangent to it),
    widened by one pixel; generated directly from the boxes, without a mask over every pixel.

    ``forward``, ``right``, ``up`` ``(n, 3)`` and ``tan`` ``(n,)`` (``tan(fov / 2)``) are float64.
    Returns flat ray ids ``image * P + pixel`` and object ids ``image * K + slot``.
    """
    n, big_k = scene.cls.shape
    centre = scene.bcentre.double().movedim(0, -1) - scene.cam_pos[:, None, :]  # (n, K, 3)
    r = scene.bradius.double()
    cz = (centre * forward[:, None, :]).sum(-1)
    ahead = cz > r
    bounds = []
    for axis in (right, up):
        cx = (centre * axis[:, None, :]).sum(-1)
        # slopes m = x / z of the two planes through the camera tangent to the sphere, in units of tan
        root = (cx * cx + cz * cz - r * r).clamp_min(0).sqrt()
        denominator = torch.where(ahead, cz * cz - r * r, 1.0) * tan[:, None]
        low = torch.where(ahead, (cx * cz - r * root) / denominator, -2.0).clamp(-2.0, 2.0)
        high = torch.where(ahead, (cx * cz + r * root) / denominator, 2.0).clamp(-2.0, 2.0)
        bounds.append((low, high))
    # pixel j sits at (j + 0.5) / size * 2 - 1 in x; row i at 1 - (i + 0.5) / size * 2 in y
    (x_low, x_high), (y_low, y_high) = bounds
    col0 = torch.floor((x_low + 1) * size / 2 - 0.5).long() - 1
    col1 = torch.ceil((x_high + 1) * size / 2 - 0.5).long() + 1
    row0 = torch.floor((1 - y_high) * size / 2 - 0.5).long() - 1
    row1 = torch.ceil((1 - y_low) * size / 2 - 0.5).long() + 1
    col0, row0 = col0.clamp(0, size), row0.clamp(0, size)
    col1, row1 = col1.clamp(-1, size - 1), row1.clamp(-1, size - 1)
    width = (col1 - col0 + 1).clamp_min(0)
    count = (width * (row1 - row0 + 1).clamp_min(0) * scene.active).reshape(-1)
    obj = torch.repeat_interleave(torch.arange(n * big_k, device=r.device), count)
    offset = torch.arange(len(obj), device=r.device) - torch.repeat_interleave(torch.cumsum(count, 0) - count, count)
    w = width.reshape(-1)[obj]
    row = row0.reshape(-1)[obj] + torch.div(offset, w, rounding_mode="floor")
    col = col0.reshape(-1)[obj] + offset % w
    image = torch.div(obj, big_k, rounding_mode="floor")
    return image * (size * size) + row * size + col, obj


def _shadow_pairs(
    scene: _Scene, start: torch.Tensor, light: torch.Tensor, lit: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(ray, object) pairs worth an exact test for shadow rays from ``start`` ``(3, n, P)`` towards the
    directional ``light`` ``(n, 3)`` float64: points whose ray passes the object's bounding sphere,
    tested in light space (``lit`` ``(n, P)`` selects the rays). Same ids as ``_primary_pairs``."""
    n, big_k = scene.cls.shape
    p = start.shape[2]
    e1 = torch.linalg.cross(light, torch.tensor([[0.0, 1.0, 0.0]], dtype=light.dtype, device=light.device))
    e1 = e1 / e1.norm(dim=1, keepdim=True)
    e2 = torch.linalg.cross(light, e1)
    centre = scene.bcentre
    r = scene.bradius
    coords = []
    for axis in (e1, e2, light):
        a = axis.T.to(torch.float32)
        coords.append((_dot(start, a[:, :, None]), _dot(centre, a[:, :, None])))
    (u, cu), (v, cv), (w, cw) = coords
    du = u[:, None, :] - cu[..., None]
    dv = v[:, None, :] - cv[..., None]
    mask = (du * du + dv * dv < (r * r)[..., None]) & (w[:, None, :] < (cw + r)[..., None])
    mask = mask & lit[:, None, :] & scene.active[..., None]  # (n, K, P)
    image, slot, pixel = mask.nonzero().unbind(1)
    return image * p + pixel, image * big_k + slot


def _take(v: torch.Tensor, rays: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Columns of ``v`` ``(3, n, P)`` or ``(3, n, 1)`` (one per image) for flat ray ids ``n * P``."""
    if v.shape[2] == 1:
        return v[:, images, 0]
    return v.reshape(3, -1)[:, rays]


def _intersect_pairs(
    ray: torch.Tensor, obj: torch.Tensor, origin: torch.Tensor, direction: torch.Tensor, scene: _Scene,
    p: int, closest: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Exact intersection of candidate (ray, object) pairs; the nearest hit of every ray.

    ``origin`` and ``direction`` are ``(3, n, P)`` or ``(3, n, 1)`` (one per image). The pairs of each
    shape class are intersected together in the object's frame (the only loop). Returns ray
    parameters ``(n, P)`` (``inf`` on a miss), object slots ``(n, P)`` (-1 on a miss) and, when
    ``closest``, world normals and hit points in the object's frame ``(3, n, P)``.
    """
    n, big_k = scene.cls.shape
    device = ray.device
    image = torch.div(ray, p, rounding_mode="floor")
    base = scene.base.reshape(3, -1)[:, obj]
    cos, sin = scene.cos.reshape(-1)[obj], scene.sin.reshape(-1)[obj]
    o = _take(origin, ray, image) - base
    d = _take(direction, ray, image)
    lo = torch.stack([cos * o[0] - sin * o[2], o[1], sin * o[0] + cos * o[2]])
    ld = torch.stack([cos * d[0] - sin * d[2], d[1], sin * d[0] + cos * d[2]])
    dims = scene.dims.reshape(4, -1)[:, obj]
    cls = scene.cls.reshape(-1)[obj]

    t = torch.full((len(ray),), _INF, device=device)
    nrm = torch.zeros(3, len(ray), device=device)
    for c, shape in enumerate(_SHAPES.values()):
        sel = (cls == c).nonzero().squeeze(1)
        if len(sel):
            t_c, n_c = shape.hit(lo[:, sel], ld[:, sel], dims[:, sel])
            t[sel] = t_c
            nrm[:, sel] = n_c

    best = torch.full((n * p,), _INF, device=device)
    best.scatter_reduce_(0, ray, t, reduce="amin")
    win = torch.isfinite(t) & (t == best[ray])
    won = ray[win]
    slot = torch.full((n * p,), -1, dtype=torch.long, device=device)
    slot[won] = obj[win] % big_k
    normal = local = torch.zeros(0, device=device)
    if closest:
        normal = torch.zeros(3, n * p, device=device)
        nl, cw, sw = nrm[:, win], cos[win], sin[win]
        normal[:, won] = torch.stack([cw * nl[0] + sw * nl[2], nl[1], -sw * nl[0] + cw * nl[2]])
        local = torch.zeros(3, n * p, device=device)
        local[:, won] = lo[:, win] + t[win] * ld[:, win]
        normal, local = normal.reshape(3, n, p), local.reshape(3, n, p)
    return best.reshape(n, p), slot.reshape(n, p), normal, local


# ---------------------------------------------------------------------------------------- textures

_NOISE_SIDE = 32  # the value-noise lattice repeats every 32 cells
_PIXEL_NOISE_SIDE = 512  # the pixel-noise field is 512 x 512 (larger than any image)
_TABLES: dict[tuple[str, torch.device], torch.Tensor] = {}


def _table(name: str, device: torch.device) -> torch.Tensor:
    """Fixed random tables made from the hash (identical on every run and machine), cached per device.

    ``lattice``: ``32**3`` values in [0, 1) of the value-noise lattice; ``pixels``: ``(3, 512*512)``
    zero-mean, unit-variance uniform values of the pixel-noise field.
    """
    key = (name, device)
    if key not in _TABLES:
        if name == "lattice":
            idx = torch.arange(_NOISE_SIDE**3, device=device)
            _TABLES[key] = (hash32(idx + 0xA11CE) >> 8).float() / 2.0**24
        else:
            idx = torch.arange(3 * _PIXEL_NOISE_SIDE**2, device=device)
            values = ((hash32(idx + 0xB0B) >> 8).float() + 0.5) / 2.0**24
            _TABLES[key] = ((values - 0.5) * math.sqrt(12)).reshape(3, -1)
    return _TABLES[key]


def _value_noise(p: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Smooth 3D value noise in [0, 1] at points ``(3, m)`` (trilinear, smoothstep weights); ``keys``
    ``(m,)`` (15 bits) shift the lattice so that different surfaces get different noise."""
    lattice = _table("lattice", p.device)
    side = _NOISE_SIDE
    cell = torch.floor(p)
    frac = p - cell
    w = frac * frac * (3 - 2 * frac)
    i = cell.long() + torch.stack([keys, keys >> 5, keys >> 10])
    lo = i & (side - 1)
    hi = (i + 1) & (side - 1)
    x = (lo[0] * side * side, hi[0] * side * side)
    y = (lo[1] * side, hi[1] * side)
    z = (lo[2], hi[2])

    def corner(a: int, b: int, c: int) -> torch.Tensor:
        return torch.take(lattice, x[a] + y[b] + z[c])

    def lerp(u: torch.Tensor, v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return u + (v - u) * t

    front = lerp(lerp(corner(0, 0, 0), corner(0, 0, 1), w[2]), lerp(corner(0, 1, 0), corner(0, 1, 1), w[2]), w[1])
    back = lerp(lerp(corner(1, 0, 0), corner(1, 0, 1), w[2]), lerp(corner(1, 1, 0), corner(1, 1, 1), w[2]), w[1])
    return lerp(front, back, w[0])


def _texture(coords: torch.Tensor, table: torch.Tensor, pattern: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Pattern value in [0, 1] at texture coordinates ``(3, m)``.

    ``table`` holds the surface's frequency, phase (3) and stripe axis (3) per pixel, ``pattern`` the
    index into ``_PATTERNS``, ``keys`` a 0..255 offset of the noise lattice.
    """
    q = coords * table[0] + table[1:4]
    checker = torch.remainder(torch.floor(q).sum(0), 2.0)
    along = _dot(q, table[4:7])
    tri = (2 * (along - torch.floor(along)) - 1).abs()
    out = torch.where(pattern == 0, checker, ((tri - 0.5) * 4 + 0.5).clamp(0, 1))
    noisy = (pattern == 2).nonzero().squeeze(1)
    if len(noisy):
        sub, k = q[:, noisy] * 1.5, keys[noisy]
        out[noisy] = 0.65 * _value_noise(sub, k) + 0.35 * _value_noise(2.1 * sub, k)
    return out


# ------------------------------------------------------------------------------------------ render


def _to_image(v: torch.Tensor, size: int) -> torch.Tensor:
    """``(C, n, P)`` -> ``(n, C, H, W)``; ``(n, P)`` -> ``(n, 1, H, W)``."""
    if v.ndim == 2:
        v = v[None]
    return v.reshape(v.shape[0], v.shape[1], size, size).permute(1, 0, 2, 3).contiguous()


def _sobel(rgb: torch.Tensor) -> torch.Tensor:
    """Sobel gradient magnitude, RMS over channels, ``(n, 1, H, W)`` (replicate padding).

    Computed on the flattened padded images, where the neighbours of a pixel are fixed offsets
    (contiguous slices, fast); the wrapped-around values this produces fall on the padding only.
    """
    n, c, h, w = rgb.shape
    x = torch.nn.functional.pad(rgb, (1, 1, 1, 1), mode="replicate")
    row = w + 2
    f = x.reshape(-1)
    length = f.numel()
    dx = f[2:] - f[:-2]  # centred at f[k + 1]
    dy = f[2 * row:] - f[:-2 * row]  # centred at f[k + row]
    gx = dx[: length - 2 - 2 * row] + 2 * dx[row: length - 2 - row] + dx[2 * row: length - 2]
    gy = dy[: length - 2 * row - 2] + 2 * dy[1: length - 2 * row - 1] + dy[2: length - 2 * row]
    squared = torch.nn.functional.pad(gx * gx + gy * gy, (row + 1, row + 1))  # centred at f[k + row + 1]
    squared = squared.reshape(n, c, h + 2, w + 2)[:, :, 1:-1, 1:-1]
    return squared.mean(dim=1, keepdim=True).sqrt()


def _occlusion_edges(depth: torch.Tensor, surface: torch.Tensor) -> torch.Tensor:
    """1.0 on the nearer pixel of neighbours on different surfaces (one an object) with a depth jump."""
    out = torch.zeros_like(depth, dtype=torch.bool)
    is_object = surface >= 3
    for dim in (-1, -2):
        m = depth.shape[dim] - 1
        d0, d1 = depth.narrow(dim, 0, m), depth.narrow(dim, 1, m)
        s0, s1 = surface.narrow(dim, 0, m), surface.narrow(dim, 1, m)
        pair = (s0 != s1) & (is_object.narrow(dim, 0, m) | is_object.narrow(dim, 1, m))
        out.narrow(dim, 0, m).logical_or_(pair & (d1 > d0 * _OCCLUSION_RATIO))
        out.narrow(dim, 1, m).logical_or_(pair & (d0 > d1 * _OCCLUSION_RATIO))
    return out.float()


def _render_chunk(seed: int, indices: torch.Tensor, cfg: SceneConfig) -> dict[str, torch.Tensor]:
    """Render one chunk; vectors are laid out ``(3, n, P)``, per-image values ``(n, 1)``."""
    device = indices.device
    sc = _sample_scene(seed, indices, cfg)
    n, size, big_k = len(indices), cfg.image_size, cfg.max_objects
    p = size * size
    f32 = torch.float32

    forward = sc.look_at - sc.cam_pos
    forward = forward / forward.norm(dim=1, keepdim=True)
    right = torch.linalg.cross(forward, torch.tensor([[0.0, 1.0, 0.0]], dtype=forward.dtype, device=device))
    right = right / right.norm(dim=1, keepdim=True)
    up = torch.linalg.cross(right, forward)
    tan64 = torch.tan(torch.deg2rad(sc.fov) / 2)
    tan = tan64.to(f32)[None, :, None]
    fw, rt, upv = (v.T.to(f32)[:, :, None] for v in (forward, right, up))  # (3, n, 1)
    sx, sy = _pixel_grid(size, size, device)
    direction = _normalize(fw + rt * (sx * tan) + upv * (sy * tan))  # (3, n, P)
    origin = sc.cam_pos.T.to(f32)[:, :, None]  # (3, n, 1)

    # room: floor y = 0 (surface 0), wall x = -W (1), wall z = -W (2); the camera is inside the corner
    t_planes = (
        torch.where(direction[1] < -1e-7, -origin[1] / direction[1], _INF),
        torch.where(direction[0] < -1e-7, (-_WALL - origin[0]) / direction[0], _INF),
        torch.where(direction[2] < -1e-7, (-_WALL - origin[2]) / direction[2], _INF),
    )
    t_room = torch.minimum(torch.minimum(t_planes[0], t_planes[1]), t_planes[2])
    room = torch.where(t_planes[0] == t_room, 0, torch.where(t_planes[1] == t_room, 1, 2))
    t_room = torch.where(torch.isfinite(t_room), t_room, 100.0)  # unreachable with the default cameras

    ray, obj = _primary_pairs(sc, forward, right, up, tan64, size)
    t_obj, slot, n_obj, local = _intersect_pairs(ray, obj, origin, direction, sc, p)
    on_obj = t_obj < t_room
    t = torch.where(on_obj, t_obj, t_room)
    surface = torch.where(on_obj, 3 + slot, room)  # 0 floor, 1 wall x, 2 wall z, 3 + slot
    n_room = torch.stack([room == 1, room == 0, room == 2]).to(f32)
    normal = torch.where(on_obj, n_obj, n_room)
    point = origin + t * direction
    obj_cls = torch.gather(sc.cls, 1, slot.clamp_min(0))
    segmentation = torch.where(on_obj, len(STRUCTURE_CLASSES) + obj_cls, (room > 0).long())
    instances = torch.where(on_obj, slot + 1, 0)

    light = sc.light.T.to(f32)[:, :, None]  # (3, n, 1)
    ndl = _dot(normal, light).clamp_min(0)
    if cfg.shadows:
        start = point + _SHADOW_OFFSET * normal
        ray, obj = _shadow_pairs(sc, start, sc.light, ndl > 0)
        blocked, _, _, _ = _intersect_pairs(ray, obj, start, light, sc, p, closest=False)
        ndl = torch.where(torch.isfinite(blocked), 0.0, ndl)
    shading = sc.ambient[:, None] + sc.intensity[:, None] * ndl

    textured = cfg.domain == "textured"
    fields = sc.surfaces.shape[0] if textured else 3  # the flat domain needs the colour only
    table = torch.gather(sc.surfaces[:fields], 2, surface[None].expand(fields, n, p))  # (fields, n, P)
    albedo = table[:3]
    if textured:
        coords = torch.where(on_obj, local, point)
        pattern = torch.gather(sc.pattern, 1, surface)
        keys = (sc.keys[:, None] + 97 * surface) & 0x7FFF
        m = _texture(coords.reshape(3, -1), table[6:13].reshape(7, -1), pattern.reshape(-1), keys.reshape(-1))
        albedo = albedo + (table[3:6] - albedo) * m.reshape(n, p)
    rgb = albedo * shading
    if textured:
        half = _normalize(light - direction)
        spec = _dot(normal, half).clamp_min(0) * (ndl > 0)
        for _ in range(5):  # Blinn-Phong exponent 32
            spec = spec * spec
        rgb = (rgb + sc.specular[:, None] * spec) * sc.cast[:, :, None]
    if cfg.noise > 0:  # a crop of a fixed noise field at a random offset, with a random sign, per image
        bits = _bits(sc.keys, _S_NOISE, 1)[:, 0]
        side = _PIXEL_NOISE_SIDE
        rows = (torch.arange(size, device=device)[None, :] + (bits & (side - 1))[:, None]) & (side - 1)
        cols = (torch.arange(size, device=device)[None, :] + ((bits >> 9) & (side - 1))[:, None]) & (side - 1)
        offsets = (rows[:, :, None] * side + cols[:, None, :]).reshape(n, p)
        sign = 1.0 - 2.0 * ((bits >> 18) & 1).to(f32)
        rgb = rgb + (cfg.noise * sign[:, None]) * _table("pixels", device)[:, offsets]
    rgb = rgb.clamp(0, 1)

    depth = t * _dot(direction, fw)
    cam_normal = torch.stack([_dot(normal, rt), -_dot(normal, upv), _dot(normal, fw)])
    rgb_img = _to_image(rgb, size)
    depth_img = _to_image(depth, size)

    counts = torch.zeros(n, big_k + 1, dtype=torch.long, device=device)
    counts.scatter_add_(1, instances, torch.ones_like(instances))
    counts = counts[:, 1:]
    biggest = counts.argmax(dim=1)
    largest = torch.where(
        counts.amax(dim=1) > 0, len(STRUCTURE_CLASSES) + sc.cls.gather(1, biggest[:, None])[:, 0], -1
    )
    return {
        "rgb": rgb_img,
        "segmentation": segmentation.reshape(n, size, size),
        "instances": instances.reshape(n, size, size),
        "depth": depth_img,
        "normals": _to_image(cam_normal, size),
        "edges2d": (_sobel(rgb_img) / 4).clamp(0, 1),
        "occlusion_edges": _occlusion_edges(depth_img, surface.reshape(n, 1, size, size)),
        "shading": _to_image(shading, size),
        "albedo": _to_image(albedo.clamp(0, 1), size),
        "object_count": sc.count,
        "largest_class": largest,
        "position": sc.cam_pos.to(f32),
        "look_at": sc.look_at.to(f32),
        "fov": sc.fov.to(f32),
        "light": sc.light.to(f32),
    }


def render_scenes(
    n: int,
    seed: int = 0,
    config: SceneConfig | None = None,
    start: int = 0,
    chunk_size: int | None = None,
    device: str | torch.device | None = None,
) -> SceneBatch:
    """Render scenes ``start .. start + n - 1`` of the stream ``seed`` with all their labels.

    Args:
        n: number of scenes, >= 1.
        seed: non-negative integer naming the stream; scene ``i`` of a seed is always the same.
        config: what to draw (``SceneConfig()`` by default).
        start: index of the first scene, so a data set can be rendered in pieces.
        chunk_size: scenes rendered at once (bounds memory; the result does not depend on it);
            default: as many as make 2**18 pixels (64 at 64 x 64, 16 at 128 x 128).
        device: torch device to render on (default CPU; only the CPU path is tested). On a busy
            machine with few cores, ``torch.set_num_threads(1)`` is often the fastest setting.
    """
    cfg = config if config is not None else SceneConfig()
    if not isinstance(cfg, SceneConfig):
        raise ValueError(f"config must be a SceneConfig; got {type(cfg).__name__}")
    for name, value, low in (("n", n, 1), ("seed", seed, 0), ("start", start, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")
    if seed >= 2**63 or start + n >= 2**63:
        raise ValueError("seed and start + n must be below 2**63")
    log_data("scenes", cfg.image_size, n)  # the work log (KAE_WORK_LOG, kae_utils.core.scale): nothing otherwise
    pixels = cfg.image_size**2
    if chunk_size is None:
        chunk_size = max(1, 2**18 // pixels)
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer; got {chunk_size!r}")
    dev = torch.device(device) if device is not None else torch.device("cpu")

    parts: list[dict[str, torch.Tensor]] = []
    for first in range(start, start + n, chunk_size):
        indices = torch.arange(first, min(first + chunk_size, start + n), device=dev)
        parts.append(_render_chunk(seed, indices, cfg))
    out = {key: torch.cat([part[key] for part in parts]) for key in parts[0]}
    return SceneBatch(
        rgb=out["rgb"],
        segmentation=out["segmentation"],
        instances=out["instances"],
        depth=out["depth"],
        normals=out["normals"],
        edges2d=out["edges2d"],
        occlusion_edges=out["occlusion_edges"],
        shading=out["shading"],
        albedo=out["albedo"],
        object_count=out["object_count"],
        largest_class=out["largest_class"],
        camera={"position": out["position"], "look_at": out["look_at"], "fov": out["fov"]},
        light=out["light"],
        indices=torch.arange(start, start + n, device=dev),
        seed=seed,
        config=cfg,
    )
