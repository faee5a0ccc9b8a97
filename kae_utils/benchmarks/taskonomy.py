"""A mini-Taskonomy on the offline ``scenes``: tasks, data, probe sets, brute-force transfers, attribution maps.

Notebooks 08 (attribution maps, Song et al. 2019) and 09 (DEPARA, Song et al. 2020) rank trained models by how
well they transfer to each other's tasks. They share what is defined here:

* **the tasks** (:data:`TASKONOMY_TASKS`): one model per task over the same rendered rooms: the label maps of
  ``scenes`` (segmentation, depth, normals, 2D and occlusion edges, reshading, albedo, ...), image-level labels,
  autoencoding and the tasks that corrupt their input (denoising; colorization and inpainting, which are
  *source-only*, as in the paper), plus three labels derived here (:func:`scene_target`: curvature, 2D
  keypoints, layout); each task's loss, metric and colouring is in ``kae_utils.benchmarks.tasks.TRANSFER_TASKS``;
* **the profiles** (:data:`PROFILE_SETTINGS`): quick = 10 models at 32 x 32, full = 18 models at 64 x 64;
  the trained models are zoo entries (:func:`zoo_name`; ``kae_utils.zoo``), trained on a stream of scenes of
  their own (seed :data:`ZOO_SEED`);
* **the data of the notebooks** (seed 0, never seen by the zoo): a small labelled target set for the transfers
  (:func:`transfer_split`) and three probe sets (:func:`probe_images`): held-out scenes of the training domain
  (``in-domain``), the same scenes in the ``textured`` domain (``shifted``, the paper's "indoor" analogue) and
  ``shapes`` images (``out-of-domain``, the paper's "COCO" analogue);
* **the ground truth** (:func:`transfer_losses`): every frozen source encoder transferred to every target task
  by training a small head on the target set, sources ranked per target by the held-out loss (the accepted
  Taskonomy protocol), timed;
* **attribution maps** (:func:`attribution_maps`): saliency, gradient x input and epsilon-LRP of the sum of the
  encoder's output, averaged over the colour channels; defined in
  :mod:`kae_utils.methods.transferability.attribution` and importable from here;
* **samples for the label-based estimators** (:func:`estimator_samples`): pixels of the representation for
  dense targets, the flattened representation for image-level ones; defined in
  :mod:`kae_utils.benchmarks.samples` with the labels at a representation's resolution (:func:`labels_at`) and
  importable from here.
"""

from __future__ import annotations

import contextlib
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kae_utils.benchmarks.samples import categorical, estimator_samples, labels_at
from kae_utils.benchmarks.tasks import transfer_task
from kae_utils.core import scale
from kae_utils.core.params import check_choice
from kae_utils.data.scene_spec import SCENE_TASKS, SceneBatch, SceneConfig
from kae_utils.data.scenes import render_scenes
from kae_utils.display.progress import progress
from kae_utils.methods.transferability.attribution import (
    ATTRIBUTION_METHODS,
    attribution_maps,
    epsilon_lrp_relus,
)
from kae_utils.methods.transferability.ranking import per_target_spearman
from kae_utils.models.encdec import dense_output
from kae_utils.training.numerics import current
from kae_utils.training.predict import predict_maps

__all__ = [
    "ATTRIBUTION_METHODS",
    "CORRUPTIONS",
    "PROBE_SETS",
    "PROFILE_SETTINGS",
    "TASKONOMY_TASKS",
    "ZOO_SEED",
    "TaskonomyTask",
    "TransferCeiling",
    "TransferResult",
    "TransferSetting",
    "TransferSplit",
    "attribution_maps",
    "corrupt",
    "encoder_features",
    "epsilon_lrp_relus",
    "estimator_samples",
    "ground_truth",
    "labels_at",
    "loss_scores",
    "notebook_ranges",
    "input_seed",
    "categorical",
    "probe_images",
    "relevant_count",
    "scene_target",
    "second_run",
    "settings",
    "target_sets",
    "transfer_ceiling",
    "transfer_head",
    "transfer_losses",
    "transfer_split",
    "zoo_name",
]

#: Seed of the scenes the zoo's task models train on (the notebooks' own scenes are seed 0).
ZOO_SEED: int = 8
#: Input corruptions: none, Gaussian noise (denoising), grey image (colorization), grey centre (inpainting).
CORRUPTIONS: tuple[str, ...] = ("clean", "noisy", "grey", "masked")
NOISE_STD: float = 0.1
#: The probe sets of the paper, and what stands in for them here.
PROBE_SETS: tuple[str, ...] = ("in-domain", "shifted", "out-of-domain")


@dataclass(frozen=True)
class TaskonomyTask:
    """One task of the mini-Taskonomy: the corruption of its input, its cluster (2D, 3D, semantic, as in
    Taskonomy's task tree) and whether it is only a source (``target=False``: colorization, inpainting)."""

    name: str
    corruption: str
    cluster: str
    target: bool = True
    description: str = ""


TASKONOMY_TASKS: dict[str, TaskonomyTask] = {t.name: t for t in (
    TaskonomyTask("autoencoding", "clean", "2D", description="the image itself"),
    TaskonomyTask("denoising", "noisy", "2D", description="the clean image from a noisy one"),
    TaskonomyTask("colorization", "grey", "2D", target=False, description="the colour image from a grey one"),
    TaskonomyTask("inpainting", "masked", "2D", target=False, description="the image from one with a grey centre"),
    TaskonomyTask("edges2d", "clean", "2D", description="Sobel magnitude of the image"),
    TaskonomyTask("keypoints2d", "clean", "2D", description="Harris corner response of the image"),
    TaskonomyTask("albedo", "clean", "2D", description="surface colour without light"),
    TaskonomyTask("occlusion_edges", "clean", "3D", description="depth discontinuities (binary)"),
    TaskonomyTask("depth", "clean", "3D", description="z-buffer depth"),
    TaskonomyTask("depth_euclidean", "clean", "3D", description="distance to the camera centre"),
    TaskonomyTask("normals", "clean", "3D", description="surface normals, camera frame"),
    TaskonomyTask("reshading", "clean", "3D", description="ambient + Lambertian shading"),
    TaskonomyTask("curvature", "clean", "3D", description="change of the normal between neighbouring pixels"),
    TaskonomyTask("layout", "clean", "3D", description="camera position and field of view (per image)"),
    TaskonomyTask("segmentation", "clean", "semantic", description="semantic class per pixel"),
    TaskonomyTask("foreground", "clean", "semantic", description="object vs room per pixel"),
    TaskonomyTask("largest_class", "clean", "semantic", description="class of the largest object (per image)"),
    TaskonomyTask("object_count", "clean", "semantic", description="number of objects (per image)"),
)}


def _check_task(name: str) -> TaskonomyTask:
    return TASKONOMY_TASKS[str(check_choice("task", name, TASKONOMY_TASKS))]


#: The two profiles: image size, the tasks (targets first, then source-only), data sizes, encoder, transfers.
PROFILE_SETTINGS: dict[str, dict[str, Any]] = {
    "quick": dict(
        image_size=32,
        tasks=("autoencoding", "denoising", "edges2d", "occlusion_edges", "depth", "normals", "reshading",
               "segmentation", "largest_class", "colorization"),
        zoo_train=4096, zoo_held_out=256, target_train=128, target_val=128, probes=64,
        widths=(16, 32), code_channels=8, blocks=1,
        transfer=dict(hidden=16, steps=150, lr=3e-3, label_size=8),
    ),
    "full": dict(
        image_size=64,
        tasks=("autoencoding", "denoising", "edges2d", "keypoints2d", "albedo", "occlusion_edges", "depth",
               "depth_euclidean", "normals", "reshading", "curvature", "layout", "segmentation", "foreground",
               "largest_class", "object_count", "colorization", "inpainting"),
        zoo_train=4000, zoo_held_out=500, target_train=1000, target_val=500, probes=500,
        widths=(32, 64, 128), code_channels=8, blocks=1,
        transfer=dict(hidden=64, steps=400, lr=3e-3, label_size=32),
    ),
}


def settings(profile: str, *, at_scale: bool = True) -> dict[str, Any]:
    """A copy of ``PROFILE_SETTINGS[profile]`` with the derived lists ``targets`` and ``sources`` (at smoke scale
    when ``KAE_SCALE=smoke`` and ``profile`` is ``full``: :mod:`kae_utils.core.scale`; ``at_scale=False``: as written,
    whatever the scale, as the zoo's registry needs them)."""
    written = PROFILE_SETTINGS[str(check_choice("PROFILE", profile, PROFILE_SETTINGS))]
    cfg = scale.scaled(written, profile, where="taskonomy.PROFILE_SETTINGS") if at_scale else dict(written)
    cfg["sources"] = tuple(cfg["tasks"])
    cfg["targets"] = tuple(t for t in cfg["tasks"] if TASKONOMY_TASKS[t].target)
    return cfg


def zoo_name(task: str, profile: str) -> str:
    """The zoo entry of ``task``'s model in ``profile``, e.g. ``taskonomy32-occlusion-edges``."""
    _check_task(task)
    return f"taskonomy{settings(profile, at_scale=False)['image_size']}-{task.replace('_', '-')}"


def relevant_count(n_sources: int) -> int:
    """The size of the relevant set: the paper's 5 of 19 candidates scaled, ``round(0.26 (N))``, at least 1."""
    return max(1, round(5 / 19 * n_sources))


# ------------------------------------------------------------------------------------------- data


def corrupt(x: torch.Tensor, corruption: str, seed: int = 0) -> torch.Tensor:
    """The input of a task: ``clean`` (unchanged), ``noisy`` (Gaussian noise of std 0.1 drawn from ``seed``,
    clipped to [0, 1]), ``grey`` (luminance in all three channels) or ``masked`` (the centre square of half
    the side set to grey 0.5)."""
    check_choice("corruption", corruption, CORRUPTIONS)
    if corruption == "clean":
        return x
    if corruption == "noisy":
        gen = torch.Generator().manual_seed(int(seed))
        return (x + NOISE_STD * torch.randn(x.shape, generator=gen, dtype=x.dtype)).clamp(0, 1)
    if corruption == "grey":
        weights = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype)
        return (x * weights[:, None, None]).sum(dim=1, keepdim=True).expand_as(x).contiguous()
    out = x.clone()
    h, w = x.shape[-2:]
    out[..., h // 4:h // 4 + h // 2, w // 4:w // 4 + w // 2] = 0.5
    return out


def _curvature(batch: SceneBatch) -> torch.Tensor:
    """Mean norm of the change of the unit normal towards the right and the lower neighbour, on the same surface
    (neighbours of another instance or class count 0), clipped to [0, 1]; ``(n, 1, H, W)``."""
    n, inst, seg = batch.normals, batch.instances, batch.segmentation
    out = torch.zeros_like(n[:, :1])
    for dim in (-1, -2):
        m = n.shape[dim] - 1
        change = (n.narrow(dim, 1, m) - n.narrow(dim, 0, m)).norm(dim=1, keepdim=True)
        same = ((inst.narrow(dim, 1, m) == inst.narrow(dim, 0, m))
                & (seg.narrow(dim, 1, m) == seg.narrow(dim, 0, m)))[:, None]
        out.narrow(dim, 0, m).add_(torch.where(same, change, 0.0) / 2)
    return out.clamp(0, 1)


def _keypoints2d(batch: SceneBatch) -> torch.Tensor:
    """Harris corner response ``det(M) - 0.05 tr(M)^2`` of the grey image (Sobel gradients, 3 x 3 box window),
    as ``clip(4 sqrt(max(R, 0)), 0, 1)``; ``(n, 1, H, W)``."""
    grey = corrupt(batch.rgb, "grey")[:, :1]
    sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 4
    padded = F.pad(grey, (1, 1, 1, 1), mode="replicate")
    gx = F.conv2d(padded, sobel[None, None])
    gy = F.conv2d(padded, sobel.T.contiguous()[None, None])
    window = [F.avg_pool2d(F.pad(v, (1, 1, 1, 1), mode="replicate"), 3, stride=1) for v in (gx * gx, gy * gy, gx * gy)]
    xx, yy, xy = window
    response = xx * yy - xy * xy - 0.05 * (xx + yy) ** 2
    return (4 * response.clamp_min(0).sqrt()).clamp(0, 1)


def _layout(batch: SceneBatch) -> torch.Tensor:
    """The camera: its position / 5 (three numbers, scene units) and its field of view / 50 - 1; ``(n, 4)``."""
    fov = batch.camera["fov"].float()[:, None]
    return torch.cat([batch.camera["position"].float() / 5, fov / 50 - 1], dim=1)


_DERIVED: dict[str, Callable[[SceneBatch], torch.Tensor]] = {
    "denoising": lambda b: b.rgb, "colorization": lambda b: b.rgb, "inpainting": lambda b: b.rgb,
    "curvature": _curvature, "keypoints2d": _keypoints2d, "layout": _layout,
}


def scene_target(batch: SceneBatch, task: str) -> torch.Tensor:
    """The label of ``task`` for rendered scenes: a ``scenes`` task's target, or one derived here (the clean
    image for denoising, colorization and inpainting; curvature, 2D keypoints, layout)."""
    _check_task(task)
    if task in _DERIVED:
        return _DERIVED[task](batch)
    if task not in SCENE_TASKS:  # pragma: no cover - every task is one or the other
        raise ValueError(f"no label for task {task!r}")
    return batch.target(task)


def input_seed(seed: int, start: int) -> int:
    """The seed of the noise of a ``noisy`` input, from the stream's seed and first index (deterministic)."""
    return 1_000_003 * int(seed) + int(start) + 17


@dataclass(frozen=True)
class TransferSplit:
    """Labelled images for the transfers and the label-based estimators: the images under each corruption the
    tasks need (``inputs[corruption]``) and each task's labels (``labels[task]``)."""

    inputs: dict[str, torch.Tensor]
    labels: dict[str, torch.Tensor]
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.inputs["clean"])

    def x(self, task: str) -> torch.Tensor:
        """The images as ``task``'s model sees them."""
        return self.inputs[TASKONOMY_TASKS[task].corruption]


def transfer_split(tasks: Sequence[str], start: int, n: int, image_size: int, seed: int = 0,
                   domain: str = "flat") -> TransferSplit:
    """Scenes ``start .. start + n - 1`` of stream ``seed`` with the labels of ``tasks`` and the inputs they need."""
    for t in tasks:
        _check_task(t)
    batch = render_scenes(n, seed=seed, config=SceneConfig(image_size=image_size, domain=domain), start=start)
    needed = {"clean", *(TASKONOMY_TASKS[t].corruption for t in tasks)}
    inputs = {c: corrupt(batch.rgb, c, input_seed(seed, start)) for c in CORRUPTIONS if c in needed}
    labels = {t: scene_target(batch, t).contiguous() for t in tasks}
    return TransferSplit(inputs, labels, {"seed": seed, "start": start, "n": n, "image_size": image_size,
                                          "domain": domain})


def notebook_ranges(profile: str) -> dict[str, tuple[int, int]]:
    """``(start, n)`` in the notebooks' scenes stream (seed 0) of the target training set, the target validation
    set and the scene probes (in-domain and shifted use the same scenes)."""
    cfg = settings(profile)
    train, val = cfg["target_train"], cfg["target_val"]
    return {"target-train": (0, train), "target-val": (train, val), "probes": (train + val, cfg["probes"])}


def target_sets(profile: str) -> tuple[TransferSplit, TransferSplit]:
    """The labelled target scenes of ``profile`` (seed 0, flat domain): the set the transfers and the label-based
    estimators train on, and the set the transfers are scored on; every target task's labels and inputs."""
    cfg, ranges = settings(profile), notebook_ranges(profile)
    return tuple(transfer_split(cfg["targets"], *ranges[part], image_size=cfg["image_size"])
                 for part in ("target-train", "target-val"))


def probe_images(probe_set: str, profile: str, n: int | None = None, seed: int = 0) -> torch.Tensor:
    """``n`` unlabeled probe images (default: the profile's count) of ``probe_set``.

    ``in-domain``: held-out scenes of the domain the zoo trained on (``flat``); ``shifted``: the same scenes in
    the ``textured`` domain (other light, colours and surface textures, the same geometry); ``out-of-domain``:
    ``shapes`` images (2D shapes on textured grounds: no room at all), resized to the profile's image size.
    """
    check_choice("probe set", probe_set, PROBE_SETS)
    cfg = settings(profile)
    start, default = notebook_ranges(profile)["probes"]
    n = default if n is None else int(n)
    if n < 1:
        raise ValueError(f"the number of probe images must be positive; got {n}")
    size = cfg["image_size"]
    if probe_set == "out-of-domain":
        from kae_utils.data.shapes import generate_shapes
        from kae_utils.data.shapes_config import ShapesConfig

        images = generate_shapes(n, seed=seed, config=ShapesConfig(image_size=32), start=start).images
        return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False) if size != 32 else images
    domain = "flat" if probe_set == "in-domain" else "textured"
    return render_scenes(n, seed=seed, config=SceneConfig(image_size=size, domain=domain), start=start).rgb


# ---------------------------------------------------------------------------------------- features


def encoder_features(encoder: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """The encoder's representation of ``x``: batched eval-mode inference with the process's numerics, on the CPU in
    float32, the encoder's mode restored (:func:`kae_utils.training.predict.predict_maps`)."""
    return predict_maps(encoder, x, batch_size=batch_size)["output"]


# ------------------------------------------------------------------------------------- transfers


@dataclass(frozen=True)
class TransferSetting:
    """The transfer function trained per (source, target): its hidden width, full-batch Adam steps, learning
    rate, the side of the label maps it predicts, and the seed of its initial weights."""

    hidden: int = 16
    steps: int = 150
    lr: float = 3e-3
    label_size: int = 8
    seed: int = 0


class _DenseTransfer(nn.Module):
    """conv3x3 - ReLU - conv1x1 on the frozen representation, bilinearly resized to the label size (if it differs)."""

    def __init__(self, c_in: int, hidden: int, out: int, output: str, size: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c_in, hidden, 3, padding=1), nn.ReLU(), nn.Conv2d(hidden, out, 1))
        self.output, self.size = output, size

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        y = self.body(z)
        if y.shape[-1] != self.size:
            y = F.interpolate(y, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return dense_output(y, self.output)


class _ImageTransfer(nn.Module):
    """conv3x3 - ReLU on the frozen representation, global average pooling, then a linear layer."""

    def __init__(self, c_in: int, hidden: int, out: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c_in, hidden, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                  nn.Flatten(), nn.Linear(hidden, out))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z)


def _stable_seed(*parts: object) -> int:
    return zlib.crc32("|".join(map(str, parts)).encode()) & 0x7FFFFFFF


def transfer_head(task: str, code_shape: Sequence[int], setting: TransferSetting,
                  depth_bias: float | None = None) -> nn.Module:
    """The small transfer function for target ``task`` on a representation of shape ``(C, h, w)``; its initial
    weights depend only on ``setting.seed`` and the task, so every source starts from the same head."""
    spec = transfer_task(task)
    c = int(code_shape[0])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_stable_seed(setting.seed, task))
        if spec.dense:
            head: nn.Module = _DenseTransfer(c, setting.hidden, spec.channels, spec.output, setting.label_size)
            if depth_bias is not None and spec.output == "depth":
                nn.init.constant_(head.body[-1].bias, depth_bias)
        else:
            head = _ImageTransfer(c, setting.hidden, spec.channels)
    return head


@dataclass(frozen=True)
class TransferResult:
    """Held-out losses ``losses[target][source]`` (lower = better), the headline metric of each transfer,
    the seconds spent per source (features + training + evaluation) and in all."""

    losses: dict[str, dict[str, float]]
    metrics: dict[str, dict[str, float]]
    seconds: dict[str, float]

    @property
    def total_seconds(self) -> float:
        return float(sum(self.seconds.values()))

    def ranking(self, target: str) -> list[str]:
        """The sources of ``target``, best transfer first."""
        return sorted(self.losses[target], key=self.losses[target].get)


def transfer_losses(encoders: Mapping[str, nn.Module], targets: Sequence[str], train: TransferSplit,
                    val: TransferSplit, setting: TransferSetting = TransferSetting(),
                    device: torch.device | str = "cpu", exclude_self: bool = True,
                    desc: str = "transfers", threads: int | None = None) -> TransferResult:
    """Brute-force ground truth: every frozen encoder of ``encoders`` (named by its task) transferred to every
    task of ``targets``, a transfer function per pair trained on ``train`` and scored on ``val``.

    Per source, the representations of the training and validation images (under each target's input
    corruption) are computed once; the heads of all its targets are trained together, full batch, on the sum of
    their losses with one Adam optimiser: Adam's update of a parameter depends on its own gradient only, so
    this is exactly independent training, in one loop. A source is not transferred to its own task
    (``exclude_self``). Returns the validation losses (each task's supervised loss at ``label_size``), the
    headline metric and the time per source. ``threads``: torch's CPU threads during the transfers (restored
    afterwards); their tensors are small, and on a busy CPU one thread is much faster than two.
    """
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        return _transfer_losses(encoders, targets, train, val, setting, torch.device(device), exclude_self, desc)
    finally:
        torch.set_num_threads(previous)


def ground_truth(encoders: Mapping[str, nn.Module], targets: Sequence[str], train: TransferSplit,
                 val: TransferSplit, transfer: Mapping[str, object], seeds: Sequence[int],
                 device: torch.device | str = "cpu", threads: int | None = None
                 ) -> tuple[dict[str, dict[str, float]], list[TransferResult]]:
    """The brute-force ground truth of notebooks 08 and 09: :func:`transfer_losses` once per seed of the
    transfer functions (``transfer``: the other :class:`TransferSetting` fields), and per target and source the
    held-out loss averaged over the seeds. Returns ``(truth[target][source], the runs)``."""
    if not seeds:
        raise ValueError("ground_truth needs at least one seed")
    runs = [transfer_losses(encoders, targets, train, val, TransferSetting(**transfer, seed=s), device,
                            desc=f"ground truth (seed {s})", threads=threads) for s in seeds]
    truth = {t: {src: float(np.mean([run.losses[t][src] for run in runs])) for src in runs[0].losses[t]}
             for t in targets}
    return truth, runs


def second_run(runs: Sequence[TransferResult], encoders: Mapping[str, nn.Module], targets: Sequence[str],
               train: TransferSplit, val: TransferSplit, transfer: Mapping[str, object], seed: int,
               device: torch.device | str = "cpu", threads: int | None = None) -> TransferResult:
    """A second, independent run of the transfers, for the ceiling of notebooks 08 and 09: no estimator can be
    expected to agree with one run better than another run of the same transfers does.

    The ground truth's second seed when ``runs`` has one (nothing more is trained); otherwise one more
    :func:`transfer_losses` run with ``seed``.
    """
    if not runs:
        raise ValueError("second_run needs the ground truth's runs (at least one)")
    if len(runs) > 1:
        return runs[1]
    return transfer_losses(encoders, targets, train, val, TransferSetting(**transfer, seed=seed), device,
                           desc="second transfer run", threads=threads)


def loss_scores(result: TransferResult, targets: Sequence[str]) -> dict[str, dict[str, float]]:
    """A run's held-out losses as estimator scores (higher is better): ``scores[target][source] = -loss``."""
    return {t: {source: -loss for source, loss in result.losses[t].items()} for t in targets}


@dataclass(frozen=True)
class TransferCeiling:
    """The ground truth's own noise (notebooks 08 and 09): a second run of every transfer, scored against the first
    as if it were an estimator: ``first_run[target][source]`` held-out losses, ``scores`` the second run's
    (:func:`loss_scores`), ``spearman[target]`` the rank correlation of the two runs."""

    second_run: TransferResult
    first_run: dict[str, dict[str, float]]
    scores: dict[str, dict[str, float]]
    spearman: dict[str, float]


def transfer_ceiling(runs: Sequence[TransferResult], encoders: Mapping[str, nn.Module], targets: Sequence[str],
                     train: TransferSplit, val: TransferSplit, transfer: Mapping[str, object], seed: int,
                     device: torch.device | str = "cpu", threads: int | None = None) -> TransferCeiling:
    """:func:`second_run` scored against the ground truth's first run, per target."""
    second = second_run(runs, encoders, targets, train, val, transfer, seed, device, threads)
    first, scores = {t: runs[0].losses[t] for t in targets}, loss_scores(second, targets)
    return TransferCeiling(second, first, scores, per_target_spearman(scores, first))


def _transfer_losses(encoders: Mapping[str, nn.Module], targets: Sequence[str], train: TransferSplit,
                     val: TransferSplit, setting: TransferSetting, device: torch.device, exclude_self: bool,
                     desc: str) -> TransferResult:
    y_train = {t: labels_at(train.labels[t], t, setting.label_size).to(device) for t in targets}
    y_val = {t: labels_at(val.labels[t], t, setting.label_size) for t in targets}
    depth_bias = {t: float(y_train[t].clamp_min(1e-6).log().mean()) for t in targets
                  if transfer_task(t).output == "depth"}
    losses: dict[str, dict[str, float]] = {t: {} for t in targets}
    metrics: dict[str, dict[str, float]] = {t: {} for t in targets}
    seconds: dict[str, float] = {}
    work = {"steps": 0, "flops": None}  # for the work log (KAE_WORK_LOG, kae_utils.core.scale)
    for source, encoder in progress(list(encoders.items()), desc=desc):
        start = time.perf_counter()
        mine = [t for t in targets if not (exclude_self and t == source)]
        corruptions = sorted({TASKONOMY_TASKS[t].corruption for t in mine})
        encoder = encoder.to(device)
        z_train = {c: encoder_features(encoder, train.inputs[c]).to(device) for c in corruptions}
        z_val = {c: encoder_features(encoder, val.inputs[c]) for c in corruptions}
        shape = next(iter(z_train.values())).shape[1:]
        heads = nn.ModuleDict({t: transfer_head(t, shape, setting, depth_bias.get(t)) for t in mine}).to(device)
        numerics = current(device)
        numerics.prepare_model(heads)
        z_train = {c: numerics.prepare_input(z) for c, z in z_train.items()}
        optimiser = torch.optim.Adam(heads.parameters(), lr=setting.lr)
        for _ in range(setting.steps):
            measure = work["flops"] is None
            with scale.count_flops() if measure else contextlib.nullcontext() as flops:
                optimiser.zero_grad(set_to_none=True)
                with numerics.autocast():
                    total = sum(transfer_task(t).supervised_loss(heads[t](z_train[TASKONOMY_TASKS[t].corruption]),
                                                                 y_train[t]).float() for t in mine)
                total.backward()
                optimiser.step()
            if measure and flops is not None:
                work["flops"] = flops.get_total_flops() / len(train)
            work["steps"] += 1
        heads.eval().cpu()
        with torch.no_grad():
            for t in mine:
                spec = transfer_task(t)
                pred = heads[t](z_val[TASKONOMY_TASKS[t].corruption])
                losses[t][source] = float(spec.supervised_loss(pred, y_val[t]))
                metrics[t][source] = float(spec.headline_value(pred, y_val[t]))
        seconds[source] = time.perf_counter() - start
    scale.log_work("steps", desc, epochs=setting.steps, samples=len(train), steps=work["steps"],
                   flops_per_sample=work["flops"], seconds=sum(seconds.values()), device=device.type)
    return TransferResult(losses, metrics, seconds)
