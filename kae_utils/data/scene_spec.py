"""What a ``scenes`` data set is: its classes and domains, the label maps it renders (:data:`SCENE_TASKS`), its
configuration (:class:`SceneConfig`) and a rendered batch (:class:`SceneBatch`). The renderer is
:mod:`kae_utils.data.scenes`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from kae_utils.core.params import check_choice

__all__ = ["DOMAINS", "MAX_OBJECTS", "OBJECT_CLASSES", "SCENE_CLASSES", "STRUCTURE_CLASSES", "SCENE_TASKS", "TASK_KINDS", "SceneBatch", "SceneConfig", "TaskSpec", "pixel_grid"]


#: Semantic classes of the room itself (ids 0 and 1).
STRUCTURE_CLASSES: tuple[str, ...] = ("floor", "wall")
#: Semantic classes of the objects, in the order of their ids (2, 3, ...); one entry per shape in
#: ``scene_geometry.SHAPES``.
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
            a new label map derived from the rendered ones is one ``SCENE_TASKS`` entry with ``derive`` set.
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


def pixel_grid(h: int, w: int, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    """Image-plane coordinates ``(H*W,)`` at unit ``tan(fov/2)``: x to the right, y up."""
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w * 2 - 1
    ys = 1 - (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h * 2
    return xs[None, :].expand(h, w).reshape(-1), ys[:, None].expand(h, w).reshape(-1)


def _euclidean_depth(batch: SceneBatch) -> torch.Tensor:
    """Distance from the camera centre along each pixel's ray, ``(n, 1, H, W)``."""
    h, w = batch.depth.shape[-2:]
    sx, sy = pixel_grid(h, w, batch.depth.device)
    tan = torch.tan(torch.deg2rad(batch.camera["fov"].double()) / 2).float()
    stretch = torch.sqrt(1 + (sx[None] * tan[:, None]) ** 2 + (sy[None] * tan[:, None]) ** 2)
    return batch.depth * stretch.reshape(-1, 1, h, w)


def _foreground(batch: SceneBatch) -> torch.Tensor:
    """1 where a pixel shows an object, 0 on the floor and walls, ``(n, H, W)`` int64."""
    return (batch.segmentation >= len(STRUCTURE_CLASSES)).long()


#: Targets a notebook may train or probe on: task name -> ``TaskSpec``. Add an entry to add a task.
SCENE_TASKS: dict[str, TaskSpec] = {
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
        """The target of ``task`` (a key of ``SCENE_TASKS``): the field it names, or its derived map."""
        check_choice("task", task, SCENE_TASKS)
        spec = SCENE_TASKS[task]
        return spec.derive(self) if spec.derive is not None else getattr(self, spec.field)

    def to(self, device: str | torch.device) -> SceneBatch:
        """A copy with every tensor on ``device``."""
        moved = {
            name: (value.to(device) if isinstance(value, torch.Tensor) else value)
            for name, value in vars(self).items()
        }
        moved["camera"] = {k: v.to(device) for k, v in self.camera.items()}
        return SceneBatch(**moved)
