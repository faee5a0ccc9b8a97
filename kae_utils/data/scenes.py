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

To add an object class, append its name to ``OBJECT_CLASSES`` and a ``_Shape`` to ``SHAPES``; to
add a task derived from the rendered maps, add one ``TaskSpec`` with ``derive`` to ``SCENE_TASKS``.

Randomness is counter based: every parameter of image ``i`` is an integer hash of
``(seed, i, stream, slot)``, so an image depends only on ``seed`` and its own index, never on the
batch it was rendered in (``render_scenes(8)`` equals ``render_scenes(4)`` followed by
``render_scenes(4, start=4)``), and the ``flat`` and ``textured`` domains share every geometric draw
(same rooms, objects and cameras; different light, colours and surface texture).
"""

from __future__ import annotations

import math

import torch

from kae_utils.core.scale import log_data
from kae_utils.data.hashing import hash32
from kae_utils.data.scene_geometry import INF, S_NOISE, SHAPES, Scene, dot, hash_bits, normalize, sample_scene
from kae_utils.data.scene_spec import STRUCTURE_CLASSES, SceneBatch, SceneConfig, pixel_grid

__all__ = ["render_scenes"]

_WALL = 3.0  # walls at x = -_WALL and z = -_WALL
_SHADOW_OFFSET = 5e-3  # shadow rays start this far off the surface
_OCCLUSION_RATIO = 1.05  # neighbour depth ratio that makes an occlusion edge


# ------------------------------------------------------------------------------------------ tracing


def _primary_pairs(
    scene: Scene, forward: torch.Tensor, right: torch.Tensor, up: torch.Tensor, tan: torch.Tensor, size: int
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
    scene: Scene, start: torch.Tensor, light: torch.Tensor, lit: torch.Tensor
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
        coords.append((dot(start, a[:, :, None]), dot(centre, a[:, :, None])))
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
    ray: torch.Tensor, obj: torch.Tensor, origin: torch.Tensor, direction: torch.Tensor, scene: Scene,
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

    t = torch.full((len(ray),), INF, device=device)
    nrm = torch.zeros(3, len(ray), device=device)
    for c, shape in enumerate(SHAPES.values()):
        sel = (cls == c).nonzero().squeeze(1)
        if len(sel):
            t_c, n_c = shape.hit(lo[:, sel], ld[:, sel], dims[:, sel])
            t[sel] = t_c
            nrm[:, sel] = n_c

    best = torch.full((n * p,), INF, device=device)
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
    index into ``scene_geometry._PATTERNS``, ``keys`` a 0..255 offset of the noise lattice.
    """
    q = coords * table[0] + table[1:4]
    checker = torch.remainder(torch.floor(q).sum(0), 2.0)
    along = dot(q, table[4:7])
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
    sc = sample_scene(seed, indices, cfg)
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
    sx, sy = pixel_grid(size, size, device)
    direction = normalize(fw + rt * (sx * tan) + upv * (sy * tan))  # (3, n, P)
    origin = sc.cam_pos.T.to(f32)[:, :, None]  # (3, n, 1)

    # room: floor y = 0 (surface 0), wall x = -W (1), wall z = -W (2); the camera is inside the corner
    t_planes = (
        torch.where(direction[1] < -1e-7, -origin[1] / direction[1], INF),
        torch.where(direction[0] < -1e-7, (-_WALL - origin[0]) / direction[0], INF),
        torch.where(direction[2] < -1e-7, (-_WALL - origin[2]) / direction[2], INF),
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
    ndl = dot(normal, light).clamp_min(0)
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
        half = normalize(light - direction)
        spec = dot(normal, half).clamp_min(0) * (ndl > 0)
        for _ in range(5):  # Blinn-Phong exponent 32
            spec = spec * spec
        rgb = (rgb + sc.specular[:, None] * spec) * sc.cast[:, :, None]
    if cfg.noise > 0:  # a crop of a fixed noise field at a random offset, with a random sign, per image
        bits = hash_bits(sc.keys, S_NOISE, 1)[:, 0]
        side = _PIXEL_NOISE_SIDE
        rows = (torch.arange(size, device=device)[None, :] + (bits & (side - 1))[:, None]) & (side - 1)
        cols = (torch.arange(size, device=device)[None, :] + ((bits >> 9) & (side - 1))[:, None]) & (side - 1)
        offsets = (rows[:, :, None] * side + cols[:, None, :]).reshape(n, p)
        sign = 1.0 - 2.0 * ((bits >> 18) & 1).to(f32)
        rgb = rgb + (cfg.noise * sign[:, None]) * _table("pixels", device)[:, offsets]
    rgb = rgb.clamp(0, 1)

    depth = t * dot(direction, fw)
    cam_normal = torch.stack([dot(normal, rt), -dot(normal, upv), dot(normal, fw)])
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
