"""Tests for kae_utils.data.scenes: the ray-cast rooms, their labels, determinism and the task registry."""

from __future__ import annotations

import pytest
import torch

import kae_utils.data.scene_geometry as geometry
import kae_utils.data.scenes as scenes
from kae_utils.data.scene_spec import (
    DOMAINS,
    MAX_OBJECTS,
    OBJECT_CLASSES,
    SCENE_CLASSES,
    SCENE_TASKS,
    STRUCTURE_CLASSES,
    SceneBatch,
    SceneConfig,
    TaskSpec,
)
from kae_utils.data.scenes import render_scenes

SIZE = 48
N = 24
FLAT = SceneConfig(image_size=SIZE)
TEXTURED = SceneConfig(image_size=SIZE, domain="textured")


@pytest.fixture(scope="module")
def flat() -> SceneBatch:
    torch.set_num_threads(1)
    return render_scenes(N, seed=7, config=FLAT)


@pytest.fixture(scope="module")
def textured() -> SceneBatch:
    torch.set_num_threads(1)
    return render_scenes(N, seed=7, config=TEXTURED)


def camera_frame(batch: SceneBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Unit forward, right and up vectors ``(n, 3)`` of each camera (world coordinates)."""
    forward = batch.camera["look_at"].double() - batch.camera["position"].double()
    forward = forward / forward.norm(dim=1, keepdim=True)
    right = torch.linalg.cross(forward, torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64).expand_as(forward))
    right = right / right.norm(dim=1, keepdim=True)
    return forward, right, torch.linalg.cross(right, forward)


def back_project(batch: SceneBatch) -> torch.Tensor:
    """World coordinates ``(n, 3, H, W)`` of every pixel from its depth and the camera parameters."""
    n, _, h, w = batch.depth.shape
    forward, right, up = camera_frame(batch)
    tan = torch.tan(torch.deg2rad(batch.camera["fov"].double()) / 2)
    xs = (torch.arange(w, dtype=torch.float64) + 0.5) / w * 2 - 1
    ys = 1 - (torch.arange(h, dtype=torch.float64) + 0.5) / h * 2
    x = xs[None, None, :] * tan[:, None, None]  # (n, 1, W)
    y = ys[None, :, None] * tan[:, None, None]  # (n, H, 1)
    depth = batch.depth[:, 0].double()  # z-buffer depth: the point is depth * (forward + x right + y up)
    point = (
        batch.camera["position"].double()[:, :, None, None]
        + depth[:, None] * (forward[:, :, None, None] + x[:, None] * right[:, :, None, None]
                            + y[:, None] * up[:, :, None, None])
    )
    return point


# ------------------------------------------------------------------------------------------ config


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image_size": 4}, "image_size"),
        ({"image_size": 64.0}, "image_size"),
        ({"min_objects": 0}, "min_objects"),
        ({"min_objects": 3, "max_objects": 2}, "max_objects"),
        ({"max_objects": MAX_OBJECTS + 1}, "max_objects"),
        ({"domain": "photoreal"}, "'flat', 'textured'"),
        ({"shadows": 1}, "shadows"),
        ({"pixel_noise": -0.1}, "pixel_noise"),
    ],
)
def test_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SceneConfig(**kwargs)


def test_config_defaults_and_noise():
    cfg = SceneConfig()
    assert (cfg.image_size, cfg.min_objects, cfg.max_objects, cfg.domain) == (64, 2, 5, "flat")
    assert DOMAINS == ("flat", "textured")
    assert cfg.noise == 0.0 and SceneConfig(domain="textured").noise > 0
    assert SceneConfig(domain="textured", pixel_noise=0.0).noise == 0.0
    assert cfg.grid == 3 and SceneConfig(max_objects=MAX_OBJECTS).grid == 4
    with pytest.raises(AttributeError):
        cfg.image_size = 32  # frozen


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "n must"),
        ({"n": 2, "seed": -1}, "seed must"),
        ({"n": 2, "start": -3}, "start must"),
        ({"n": 2, "chunk_size": 0}, "chunk_size"),
        ({"n": 2, "config": {"image_size": 32}}, "SceneConfig"),
    ],
)
def test_render_argument_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        render_scenes(**kwargs)


# ------------------------------------------------------------------------------- shapes and ranges


@pytest.mark.parametrize("domain", DOMAINS)
def test_fields_shapes_dtypes_ranges(domain, flat, textured):
    b = flat if domain == "flat" else textured
    n, s = N, SIZE
    assert len(b) == n and b.config.domain == domain and b.seed == 7
    expected = {
        "rgb": ((n, 3, s, s), torch.float32),
        "albedo": ((n, 3, s, s), torch.float32),
        "normals": ((n, 3, s, s), torch.float32),
        "depth": ((n, 1, s, s), torch.float32),
        "edges2d": ((n, 1, s, s), torch.float32),
        "occlusion_edges": ((n, 1, s, s), torch.float32),
        "shading": ((n, 1, s, s), torch.float32),
        "segmentation": ((n, s, s), torch.int64),
        "instances": ((n, s, s), torch.int64),
        "object_count": ((n,), torch.int64),
        "largest_class": ((n,), torch.int64),
        "light": ((n, 3), torch.float32),
        "indices": ((n,), torch.int64),
    }
    for name, (shape, dtype) in expected.items():
        value = getattr(b, name)
        assert value.shape == shape and value.dtype == dtype, name
        assert torch.isfinite(value.float()).all(), name
    assert b.camera["position"].shape == (n, 3) and b.camera["look_at"].shape == (n, 3)
    assert b.camera["fov"].shape == (n,) and ((b.camera["fov"] > 30) & (b.camera["fov"] < 90)).all()
    for name in ("rgb", "albedo", "edges2d"):
        value = getattr(b, name)
        assert value.min() >= 0 and value.max() <= 1, name
    assert set(b.occlusion_edges.unique().tolist()) <= {0.0, 1.0}
    assert b.shading.min() >= 0 and b.depth.min() > 0
    assert b.segmentation.min() >= 0 and b.segmentation.max() < len(SCENE_CLASSES)
    assert b.instances.min() >= 0 and b.instances.max() <= b.config.max_objects
    torch.testing.assert_close(b.light.norm(dim=1), torch.ones(n))
    assert torch.equal(b.indices, torch.arange(n))
    assert b.classes == SCENE_CLASSES and b.num_classes == 7


def test_class_names():
    assert SCENE_CLASSES == ("floor", "wall", "sphere", "box", "cylinder", "cone", "torus")
    assert SCENE_CLASSES == STRUCTURE_CLASSES + OBJECT_CLASSES
    assert tuple(geometry.SHAPES) == OBJECT_CLASSES


def test_full_profile_size_renders():
    b = render_scenes(2, seed=1, config=SceneConfig(image_size=128, domain="textured"))
    assert b.rgb.shape == (2, 3, 128, 128) and b.segmentation.shape == (2, 128, 128)
    assert (b.segmentation >= 2).any()


# ------------------------------------------------------------------------- determinism, chunking


def test_deterministic_and_independent_of_chunking(flat):
    again = render_scenes(8, seed=7, config=FLAT)
    pieces = [render_scenes(4, seed=7, config=FLAT), render_scenes(4, seed=7, config=FLAT, start=4)]
    small_chunks = render_scenes(8, seed=7, config=FLAT, chunk_size=3)
    for name in ("rgb", "segmentation", "instances", "depth", "normals", "edges2d", "occlusion_edges",
                 "shading", "albedo", "object_count", "largest_class", "light"):
        whole = getattr(flat, name)[:8]
        assert torch.equal(getattr(again, name), whole), name
        assert torch.equal(torch.cat([getattr(p, name) for p in pieces]), whole), name
        assert torch.equal(getattr(small_chunks, name), whole), name
    for key in ("position", "look_at", "fov"):
        assert torch.equal(pieces[1].camera[key], flat.camera[key][4:8])
    assert torch.equal(pieces[1].indices, torch.arange(4, 8))


def test_textured_chunking_and_seeds():
    a = render_scenes(6, seed=3, config=TEXTURED, chunk_size=6)
    b = render_scenes(6, seed=3, config=TEXTURED, chunk_size=4)
    assert torch.equal(a.rgb, b.rgb) and torch.equal(a.albedo, b.albedo)
    other = render_scenes(6, seed=4, config=TEXTURED)
    assert not torch.equal(a.rgb, other.rgb)
    assert not torch.equal(a.camera["position"], other.camera["position"])
    big_seed = render_scenes(1, seed=2**40 + 3, config=FLAT)
    assert not torch.equal(big_seed.camera["position"], render_scenes(1, seed=3, config=FLAT).camera["position"])


def test_bounding_volume_culling_is_exact(monkeypatch):
    """The screen-box and light-space culling find every hit that testing all pairs finds."""
    cfg = SceneConfig(image_size=32, min_objects=4, max_objects=9)
    fast = render_scenes(6, seed=11, config=cfg)

    def all_primary(scene, forward, right, up, tan, size):
        n, k = scene.cls.shape
        image, slot, pixel = scene.active[:, :, None].expand(n, k, size * size).nonzero().unbind(1)
        return image * size * size + pixel, image * k + slot

    def all_shadow(scene, start, light, lit):
        n, k = scene.cls.shape
        image, slot, pixel = (scene.active[:, :, None] & lit[:, None, :]).nonzero().unbind(1)
        return image * start.shape[2] + pixel, image * k + slot

    monkeypatch.setattr(scenes, "_primary_pairs", all_primary)
    monkeypatch.setattr(scenes, "_shadow_pairs", all_shadow)
    slow = render_scenes(6, seed=11, config=cfg)
    for name in ("segmentation", "instances", "depth", "normals", "shading", "rgb"):
        assert torch.equal(getattr(fast, name), getattr(slow, name)), name


# ------------------------------------------------------------------------------------- geometry


def test_depth_and_camera_place_every_pixel_on_its_surface(flat):
    point = back_project(flat)
    seg = flat.segmentation
    floor = seg == 0
    assert point[:, 1][floor].abs().max() < 1e-3  # the floor is y = 0
    wall = seg == 1
    to_wall = torch.minimum((point[:, 0] + scenes._WALL).abs(), (point[:, 2] + scenes._WALL).abs())
    assert to_wall[wall].max() < 1e-3  # walls are x = -3 and z = -3
    on_object = seg >= 2
    assert point[:, 1][on_object].min() > -1e-3  # objects stand on the floor
    assert point[:, 0][on_object].abs().max() < geometry._AREA and point[:, 2][on_object].abs().max() < geometry._AREA


def test_floor_gets_farther_towards_the_top_of_the_image(flat):
    floor = flat.segmentation == 0
    depth = flat.depth[:, 0]
    half = SIZE // 2
    for i in range(N):
        upper, lower = floor[i, :half], floor[i, half:]
        assert upper.any() and lower.any()
        assert depth[i, :half][upper].mean() > depth[i, half:][lower].mean()


def test_normals_are_unit_and_face_the_camera(flat):
    torch.testing.assert_close(flat.normals.norm(dim=1), torch.ones(N, SIZE, SIZE), atol=1e-4, rtol=0)
    # camera frame: x right, y down, z forward; the ray of a pixel is (x tan, -y tan, 1)
    tan = torch.tan(torch.deg2rad(flat.camera["fov"]) / 2)
    xs = (torch.arange(SIZE) + 0.5) / SIZE * 2 - 1
    ray = torch.stack(torch.broadcast_tensors(
        xs[None, None, :] * tan[:, None, None], xs[None, :, None] * tan[:, None, None], torch.ones(N, 1, 1)
    ), dim=1)
    facing = (flat.normals * ray).sum(dim=1)
    assert (facing < 1e-4).float().mean() == 1.0
    # the floor's normal is the world's up axis
    forward, right, up = camera_frame(flat)
    world = (flat.normals[:, 0, None].double() * right[:, :, None, None]
             - flat.normals[:, 1, None].double() * up[:, :, None, None]
             + flat.normals[:, 2, None].double() * forward[:, :, None, None])
    floor = (flat.segmentation == 0)[:, None].expand_as(world)
    up_axis = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)[None, :, None, None].expand_as(world)
    torch.testing.assert_close(world[floor], up_axis[floor], atol=1e-4, rtol=0)


def test_objects_never_overlap_on_the_floor():
    for cfg in (SceneConfig(min_objects=9, max_objects=9), SceneConfig(min_objects=16, max_objects=16)):
        sc = geometry.sample_scene(0, torch.arange(32), cfg)
        radius = torch.zeros(sc.cls.shape, dtype=torch.float64)
        dims = sc.dims.movedim(0, -1).double()
        for c, shape in enumerate(geometry.SHAPES.values()):
            radius = torch.where(sc.cls == c, shape.footprint(dims), radius)
        xz = sc.base[[0, 2]].movedim(0, -1).double()
        gap = torch.cdist(xz, xz) - (radius[:, :, None] + radius[:, None, :])
        gap = gap + torch.eye(cfg.max_objects) * 100
        assert gap.min() > -1e-5


# ------------------------------------------------------------------------------- labels, counts


def test_segmentation_has_floor_walls_and_objects(flat, textured):
    for b in (flat, textured):
        for i in range(N):
            present = set(b.segmentation[i].unique().tolist())
            assert {0, 1} <= present
        visible = (b.segmentation >= 2).flatten(1).any(dim=1)
        assert visible.float().mean() >= 0.9


def test_instances_match_segmentation(flat):
    assert torch.equal(flat.instances > 0, flat.segmentation >= len(STRUCTURE_CLASSES))
    for i in range(N):
        ids = flat.instances[i].unique().tolist()
        assert max(ids) <= flat.object_count[i]
        for k in ids:
            if k:
                assert len(flat.segmentation[i][flat.instances[i] == k].unique()) == 1


def test_object_count_and_largest_class(flat):
    cfg = flat.config
    assert ((flat.object_count >= cfg.min_objects) & (flat.object_count <= cfg.max_objects)).all()
    assert len(flat.object_count.unique()) > 1
    all_visible = 0
    for i in range(N):
        ids, counts = flat.instances[i][flat.instances[i] > 0].unique(return_counts=True)
        all_visible += len(ids) == flat.object_count[i]
        if len(ids) == 0:
            assert flat.largest_class[i] == -1
            continue
        biggest = ids[counts.argmax()]
        expected = flat.segmentation[i][flat.instances[i] == biggest][0]
        assert flat.largest_class[i] == expected
        assert flat.largest_class[i] >= len(STRUCTURE_CLASSES)
    assert all_visible >= 0.75 * N  # object_count counts placed objects; few are hidden


def test_every_object_class_appears():
    b = render_scenes(16, seed=2, config=SceneConfig(image_size=32, min_objects=5, max_objects=5))
    assert set(b.segmentation.unique().tolist()) == set(range(len(SCENE_CLASSES)))


def test_occlusion_edges_lie_on_object_boundaries(flat):
    edges = flat.occlusion_edges[:, 0] > 0
    assert edges.any()
    inst = torch.nn.functional.pad(flat.instances[:, None].float(), (1, 1, 1, 1), mode="replicate")[:, 0]
    centre = inst[:, 1:-1, 1:-1]
    boundary = torch.zeros_like(edges)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        boundary |= inst[:, dy: dy + SIZE, dx: dx + SIZE] != centre
    assert not (edges & ~boundary).any()


def test_edges2d_follow_the_image(flat):
    # flat colours under a directional light: the inside of the floor is uniform, so no edges there
    seg = flat.segmentation
    shaded = flat.shading[:, 0]
    interior = seg == 0
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (-1, -1), (1, -1), (-1, 1)):
        interior &= torch.roll(seg, (dy, dx), (1, 2)) == 0
        interior &= torch.roll(shaded, (dy, dx), (1, 2)) == shaded
    interior[:, [0, -1]] = False
    interior[:, :, [0, -1]] = False
    assert interior.any()
    assert flat.edges2d[:, 0][interior].max() < 1e-5
    assert flat.edges2d[:, 0][flat.occlusion_edges[:, 0] > 0].mean() > 0.05


# ------------------------------------------------------------------------------- light, domains


def test_flat_rgb_is_albedo_times_shading(flat):
    torch.testing.assert_close(flat.rgb, (flat.albedo * flat.shading).clamp(0, 1), atol=1e-6, rtol=0)
    assert flat.shading.max() <= 1 + 1e-6


def test_shadows_darken_and_can_be_switched_off(flat):
    plain = render_scenes(8, seed=7, config=SceneConfig(image_size=SIZE, shadows=False))
    assert torch.equal(plain.segmentation, flat.segmentation[:8])
    shadowed = flat.shading[:8] < plain.shading - 1e-6
    assert shadowed.any() and (flat.shading[:8] <= plain.shading + 1e-6).all()
    # a shadow falls where the light meets an object first: the unshadowed light comes with ambient only
    ambient = flat.shading[:8].flatten(1).amin(dim=1)
    assert torch.allclose(flat.shading[:8][shadowed], ambient[:, None, None, None].expand_as(shadowed)[shadowed])


def test_textured_domain_changes_appearance_not_geometry(flat, textured):
    for name in ("segmentation", "instances", "depth", "normals", "occlusion_edges", "object_count",
                 "largest_class"):
        assert torch.equal(getattr(flat, name), getattr(textured, name)), name
    for key in ("position", "look_at", "fov"):
        assert torch.equal(flat.camera[key], textured.camera[key])
    assert (flat.rgb - textured.rgb).abs().mean() > 0.05
    assert not torch.equal(flat.light, textured.light)
    # textured albedo varies inside a surface (flat albedo does not: see the next test)
    spread = [textured.albedo[i, 0][textured.segmentation[i] == 0].std() for i in range(N)]
    assert torch.stack(spread).mean() > 0.02


def test_flat_albedo_is_constant_per_surface(flat):
    for i in range(4):
        for k in flat.instances[i].unique().tolist():
            if k == 0:
                continue
            colours = flat.albedo[i].flatten(1)[:, (flat.instances[i] == k).flatten()]
            assert (colours.max(dim=1).values - colours.min(dim=1).values).max() < 1e-6


def test_pixel_noise_option():
    clean = render_scenes(4, seed=1, config=SceneConfig(image_size=32))
    noisy = render_scenes(4, seed=1, config=SceneConfig(image_size=32, pixel_noise=0.05))
    residual = noisy.rgb - clean.rgb
    inside = (clean.rgb > 0.2) & (clean.rgb < 0.8)
    assert abs(residual[inside].mean().item()) < 0.01
    assert residual[inside].std().item() == pytest.approx(0.05, rel=0.1)
    assert torch.equal(noisy.albedo, clean.albedo)


# ---------------------------------------------------------------------------------------- tasks


def test_task_registry_targets(flat):
    for name, spec in SCENE_TASKS.items():
        assert isinstance(spec, TaskSpec)
        if spec.derive is None:
            assert hasattr(flat, spec.field), name
        target = flat.target(name)
        assert len(target) == N, name
        if spec.dense:
            assert target.shape[-2:] == (SIZE, SIZE), name
            if spec.kind in ("regression", "binary"):
                assert target.shape[1] == spec.channels, name
        if spec.kind in ("segmentation", "classification"):
            assert target.min() >= -1 and target.max() < spec.channels, name
    assert SCENE_TASKS["segmentation"].channels == len(SCENE_CLASSES)
    assert not SCENE_TASKS["largest_class"].dense and SCENE_TASKS["depth"].dense


def test_derived_tasks(flat):
    assert torch.equal(flat.target("foreground"), (flat.segmentation >= 2).long())
    euclidean = flat.target("depth_euclidean")
    assert (euclidean >= flat.depth - 1e-5).all()
    distance = (back_project(flat) - flat.camera["position"].double()[:, :, None, None]).norm(dim=1)
    torch.testing.assert_close(euclidean[:, 0].double(), distance, atol=1e-4, rtol=1e-5)


def test_new_task_is_one_entry(flat, monkeypatch):
    monkeypatch.setitem(SCENE_TASKS, "floor_mask", TaskSpec("binary", 1, "floor_mask",
                                                      derive=lambda b: (b.segmentation == 0).float()[:, None]))
    assert flat.target("floor_mask").shape == (N, 1, SIZE, SIZE)
    with pytest.raises(ValueError, match="task must be one of .*'segmentation'"):
        flat.target("curvature")


def test_task_spec_validation():
    with pytest.raises(ValueError, match="'segmentation'"):
        TaskSpec("ranking", 1, "rgb")
    with pytest.raises(ValueError, match="channels"):
        TaskSpec("regression", 0, "rgb")


def test_batch_to_device(flat):
    moved = flat.to("cpu")
    assert isinstance(moved, SceneBatch) and torch.equal(moved.rgb, flat.rgb)
    assert moved.camera["fov"].device.type == "cpu" and moved.config == flat.config


def test_light_comes_from_inside_the_room(flat, textured):
    for b in (flat, textured):
        assert (b.light[:, 0] > 0).all() and (b.light[:, 1] > 0).all() and (b.light[:, 2] > 0).all()
        elevation = torch.rad2deg(torch.asin(b.light[:, 1]))
        assert (elevation < 75).all()
