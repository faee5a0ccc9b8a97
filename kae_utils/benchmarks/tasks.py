"""Dense tasks behind one small interface: a task name gives its losses, its metrics and its picture.

Notebooks 04 and 07 (and the zoo, which trains their teachers) need, for each pixel task, the same four
things: the loss against ground truth, the loss of a student against a teacher's output, the metrics of
a prediction, and how to draw a map. ``DENSE_TASKS[name]`` holds them::

    task = DENSE_TASKS["depth"]
    loss = task.supervised_loss(pred, target)        # scale-invariant log-depth loss, lambda = 0.5
    loss = task.distill_loss(student_out, teacher_out)
    scores = task.metrics(pred, target)              # {"RMSE": ..., "abs rel": ..., "delta<1.25": ...}
    image = task.colorize(pred)                      # (N, H, W, 3) colours for plt.imshow

+------------------+------------------------+-----------------------------+--------------------------+
| task             | against ground truth   | against a teacher           | headline metric          |
+==================+========================+=============================+==========================+
| ``segmentation`` | cross-entropy          | per-pixel KL to its softmax | mIoU (higher is better)  |
| ``depth``        | scale-invariant (0.5)  | scale-invariant (0.5)       | RMSE (lower is better)   |
| ``normals``      | angle                  | angle                       | mean angle in degrees    |
+------------------+------------------------+-----------------------------+--------------------------+

``DENSE_TASKS`` holds the three tasks of the amalgamation teachers (notebooks 04 and 07). The mini-Taskonomy
of notebooks 08 and 09 needs many more, dense and image-level: ``TRANSFER_TASKS`` holds them all (the three
above included), each with the same parts (an image-level task has no ``colorize``), and ``output`` names the
kind of head that produces it (see ``OUTPUT_KINDS``)::

    task = transfer_task("occlusion_edges")   # binary map: BCE on logits, F1 at probability 0.5
    task.output                                # "binary"

+---------------------------------------------+-------------------------------------+-------------------+
| tasks                                       | against ground truth                | headline          |
+=============================================+=====================================+===================+
| autoencoding, denoising, colorization,      | L1 to the clean image               | L1 (lower)        |
| inpainting, albedo                          |                                     |                   |
| edges2d, reshading, curvature, keypoints2d  | L1                                  | L1 (lower)        |
| occlusion_edges                             | binary cross-entropy on logits      | F1 (higher)       |
| foreground                                  | cross-entropy (2 classes)           | mIoU (higher)     |
| depth_euclidean                             | scale-invariant log-depth (0.5)     | RMSE (lower)      |
| largest_class (one label per image)         | cross-entropy (label -1 ignored)    | accuracy (higher) |
| object_count, layout (numbers per image)    | mean squared error                  | MAE / RMSE        |
+---------------------------------------------+-------------------------------------+-------------------+
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from kae_utils.core.params import check_choice
from kae_utils.data.scene_spec import SCENE_CLASSES
from kae_utils.display.viz import colorize_depth, colorize_normals, colorize_segmentation
from kae_utils.evaluation.metrics import accuracy, depth_metrics, mean_iou, normal_metrics, pixel_accuracy
from kae_utils.evaluation.results import Effect
from kae_utils.methods.amalgamation import ceiling_reaches
from kae_utils.methods.dense import angular_loss, pixel_kl_loss, scale_invariant_loss
from kae_utils.training.numerics import float32_loss

__all__ = ["DENSE_TASKS", "OUTPUT_KINDS", "TRANSFER_TASKS", "DenseTask", "ImageTask", "ceiling_within_tolerance",
           "dense_task", "task_channels", "tolerance_effect", "transfer_task", "within_tolerance"]

#: Kinds of output head: class logits per pixel, one logit per pixel, a free map, a positive depth map, unit
#: normals; class logits per image, numbers per image.
OUTPUT_KINDS: tuple[str, ...] = ("classes", "binary", "regression", "depth", "normals", "image-classes",
                                 "image-regression")

#: Lambda of the scale-invariant depth loss used everywhere unless a notebook overrides it.
SI_LAMBDA: float = 0.5

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class _Headline:
    """The headline metric and its direction, shared by :class:`DenseTask` and :class:`ImageTask`."""

    metrics: Callable[[torch.Tensor, torch.Tensor], dict[str, float]]
    headline: str
    higher_is_better: bool

    def headline_value(self, pred: torch.Tensor, target: torch.Tensor) -> float:
        """The headline metric of ``pred`` against ``target``."""
        return self.metrics(pred, target)[self.headline]

    def better(self, a: float, b: float) -> bool:
        """Whether headline value ``a`` is strictly better than ``b``."""
        return a > b if self.higher_is_better else a < b


@dataclass(frozen=True)
class DenseTask(_Headline):
    """One pixel task: output channels, losses, metrics and colouring (see the module docstring).

    ``headline`` names the metric a table shows first and ``higher_is_better`` its direction;
    ``loss_words`` says in words what ``supervised_loss`` is (it enters the zoo's recipes and their hashes).
    """

    name: str
    channels: int
    loss_words: str
    supervised_loss: Loss
    distill_loss: Loss
    metrics: Callable[[torch.Tensor, torch.Tensor], dict[str, float]]
    colorize: Callable[[torch.Tensor], np.ndarray]
    headline: str
    higher_is_better: bool
    output: str = "regression"

    #: a dense task predicts a map per image
    dense = True


def _segmentation_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    return {"mIoU": mean_iou(pred, target, len(SCENE_CLASSES)), "pixel acc": pixel_accuracy(pred, target)}


def _depth_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    m = depth_metrics(pred, target)
    return {"RMSE": m["rmse"], "abs rel": m["abs_rel"], "delta<1.25": m["delta1"]}


def _normal_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    m = normal_metrics(pred, target)
    return {"mean angle": m["mean_angle"], "within 11.25": m["within_11.25"]}


_cross_entropy = float32_loss(F.cross_entropy)


@float32_loss
def _depth_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return scale_invariant_loss(pred, target, lam=SI_LAMBDA)


def _colorize_segmentation(pred: torch.Tensor) -> np.ndarray:
    labels = pred.argmax(dim=1) if pred.is_floating_point() else pred
    return colorize_segmentation(labels, len(SCENE_CLASSES))


DENSE_TASKS: dict[str, DenseTask] = {
    "segmentation": DenseTask(
        "segmentation", len(SCENE_CLASSES), "cross-entropy", _cross_entropy, pixel_kl_loss, _segmentation_metrics,
        _colorize_segmentation, headline="mIoU", higher_is_better=True, output="classes"),
    "depth": DenseTask(
        "depth", 1, f"scale-invariant log-depth, lambda {SI_LAMBDA}", _depth_loss, _depth_loss, _depth_metrics, colorize_depth,
        headline="RMSE", higher_is_better=False, output="depth"),
    "normals": DenseTask(
        "normals", 3, "angle between unit normals", angular_loss, angular_loss, _normal_metrics, colorize_normals,
        headline="mean angle", higher_is_better=False, output="normals"),
}


# ------------------------------------------------------------------- the tasks of the mini-Taskonomy



def within_tolerance(task: str, value: float, reference: float, tolerances: Mapping[str, float]) -> bool:
    """Whether ``value`` matches or beats ``reference`` on a dense task's headline metric, within its tolerance.

    The test of the claims "matches the teacher" of notebooks 04 and 07, with ``tolerances[task]``: segmentation
    (mIoU, higher is better) ``value >= reference - t``; depth (RMSE) ``value <= reference * (1 + t)``, a fraction of
    the reference; normals (mean angle) ``value <= reference + t``. It is the test
    :func:`kae_utils.methods.amalgamation.ceiling_reaches` applies to the supervised ceiling (see
    :func:`ceiling_within_tolerance`); only the rounding of the relative margin differs (``reference * (1 + t)`` here,
    ``reference + t * |reference|`` there), so each keeps its own operations.
    """
    check_choice("dense task", task, DENSE_TASKS)
    tolerance = tolerances[task]
    if task == "depth":
        return value <= reference * (1 + tolerance)
    if DENSE_TASKS[task].higher_is_better:
        return value >= reference - tolerance
    return value <= reference + tolerance


def tolerance_effect(task: str, name: str, value: float, reference: float, tolerances: Mapping[str, float]) -> Effect:
    """The effect that :func:`within_tolerance` checks, for the reproduction envelope: segmentation
    ``value - reference`` (mIoU, at least ``-t``); depth ``value / reference - 1`` (relative RMSE, at most ``t``);
    normals ``value - reference`` (degrees, at most ``t``). ``name`` says what is compared, e.g. ``"student - teacher"``.
    """
    check_choice("dense task", task, DENSE_TASKS)
    tolerance = tolerances[task]
    metric = DENSE_TASKS[task].headline
    if task == "depth":
        return Effect(f"{name}, {task} {metric} relative to the reference - 1", value / reference - 1, tolerance, "at most")
    if DENSE_TASKS[task].higher_is_better:
        return Effect(f"{name}, {task} {metric}", value - reference, -tolerance, "at least")
    return Effect(f"{name}, {task} {metric}", value - reference, tolerance, "at most")


def ceiling_within_tolerance(task: str, ceiling: float, reference: float, tolerances: Mapping[str, float]) -> bool:
    """Whether the supervised ceiling reaches ``reference`` within the task's tolerance (the claim's own test).

    :func:`kae_utils.methods.amalgamation.ceiling_reaches` with ``tolerances[task]``, relative for depth and in the
    direction of the task's headline metric; where it is ``False`` the claim "matches ``reference``" is untestable.
    """
    check_choice("dense task", task, DENSE_TASKS)
    return ceiling_reaches(ceiling, reference, tolerance=tolerances[task], relative=task == "depth",
                           higher_is_better=DENSE_TASKS[task].higher_is_better)


def _check_same(name: str, pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"{name}: predictions {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")


@float32_loss
def _l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    _check_same("L1 loss", pred, target)
    return (pred - target).abs().mean()


def _l1_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    _check_same("L1 metrics", pred, target)
    diff = (pred.detach().cpu().double() - target.detach().cpu().double())
    return {"L1": diff.abs().mean().item(), "RMSE": diff.pow(2).mean().sqrt().item()}


def _image_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """L1 and the PSNR (dB) of an image in [0, 1] (the prediction clipped to [0, 1] for the PSNR)."""
    out = _l1_metrics(pred, target)
    mse = (pred.detach().cpu().double().clamp(0, 1) - target.detach().cpu().double()).pow(2).mean().item()
    out["PSNR"] = float(10 * np.log10(1.0 / max(mse, 1e-12)))
    return out


@float32_loss
def _binary_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    _check_same("binary loss", logits, target)
    return F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype))


@float32_loss
def _binary_distill(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Per-pixel KL divergence from the teacher's Bernoulli to the student's (cross-entropy minus the entropy)."""
    teacher_logits = teacher_logits.detach()
    p_t = torch.sigmoid(teacher_logits)
    return _binary_loss(student_logits, p_t) - F.binary_cross_entropy_with_logits(teacher_logits, p_t)


def _binary_metrics(logits: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """F1 of the pixels with probability > 0.5 (1.0 when neither prediction nor target has a positive pixel)."""
    _check_same("binary metrics", logits, target)
    pred, truth = logits.detach().cpu() > 0, target.detach().cpu() > 0.5
    tp, fp, fn = (pred & truth).sum().item(), (pred & ~truth).sum().item(), (~pred & truth).sum().item()
    f1 = 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)
    return {"F1": f1, "BCE": _binary_loss(logits.detach().cpu().float(), target.detach().cpu().float()).item()}


def _foreground_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    return {"mIoU": mean_iou(pred, target, 2), "pixel acc": pixel_accuracy(pred, target)}


def _colorize_grey(pred: torch.Tensor) -> np.ndarray:
    """A one-channel map ``(N, 1, H, W)`` as grey colours, each image scaled to its own maximum."""
    x = pred.detach().cpu().float()[:, 0]
    top = x.flatten(1).amax(dim=1).clamp_min(1e-6)[:, None, None]
    return (x.clamp_min(0) / top).clamp(0, 1)[..., None].expand(*x.shape, 3).numpy().copy()


def _colorize_rgb(pred: torch.Tensor) -> np.ndarray:
    return pred.detach().cpu().float().clamp(0, 1).permute(0, 2, 3, 1).numpy().copy()


def _colorize_binary(pred: torch.Tensor) -> np.ndarray:
    """Logits (any value outside [0, 1]) or probabilities / 0-1 labels ``(N, 1, H, W)``, as grey."""
    x = pred.detach().cpu().float()
    if x.min() < 0 or x.max() > 1:
        x = torch.sigmoid(x)
    return x[:, 0, ..., None].expand(*x[:, 0].shape, 3).numpy().copy()


def _colorize_foreground(pred: torch.Tensor) -> np.ndarray:
    labels = pred.argmax(dim=1) if pred.is_floating_point() else pred
    return colorize_segmentation(labels, 2)


def _rgb_task(name: str) -> DenseTask:
    return DenseTask(name, 3, "L1 to the clean image", _l1_loss, _l1_loss, _image_metrics, _colorize_rgb,
                     headline="L1", higher_is_better=False, output="regression")


def _map_task(name: str, channels: int = 1) -> DenseTask:
    colour = _colorize_grey if channels == 1 else _colorize_rgb
    return DenseTask(name, channels, "L1", _l1_loss, _l1_loss, _l1_metrics, colour, headline="L1",
                     higher_is_better=False, output="regression")


@dataclass(frozen=True)
class ImageTask(_Headline):
    """One label (or a few numbers) per image: the same parts as :class:`DenseTask`, without a colouring."""

    name: str
    channels: int
    loss_words: str
    supervised_loss: Loss
    distill_loss: Loss
    metrics: Callable[[torch.Tensor, torch.Tensor], dict[str, float]]
    headline: str
    higher_is_better: bool
    output: str = "image-classes"

    #: an image-level task predicts one value (or vector) per image
    dense = False


@float32_loss
def _class_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, labels.long(), ignore_index=-1)


@float32_loss
def _class_distill(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    log_p_t = F.log_softmax(teacher_logits.detach(), dim=1)
    return (log_p_t.exp() * (log_p_t - F.log_softmax(student_logits, dim=1))).sum(dim=1).mean()


def _class_metrics(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    keep = labels.detach().cpu() >= 0
    if not keep.any():
        raise ValueError("no image to score: every label is -1")
    return {"accuracy": accuracy(logits.detach().cpu()[keep], labels.detach().cpu()[keep])}


def _as_columns(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Targets ``(N,)`` or ``(N, K)`` as floats shaped like the predictions ``(N, K)``."""
    target = target.to(pred.dtype).reshape(len(target), -1)
    _check_same("image regression", pred, target)
    return target


@float32_loss
def _mse_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(pred, _as_columns(pred, target))


def _number_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    diff = pred.detach().cpu().double() - _as_columns(pred.detach().cpu().double(), target.detach().cpu())
    return {"MAE": diff.abs().mean().item(), "RMSE": diff.pow(2).mean().sqrt().item()}


#: Every task of the mini-Taskonomy (notebooks 08 and 09): the dense tasks above, more maps, image-level labels.
TRANSFER_TASKS: dict[str, DenseTask | ImageTask] = {
    **DENSE_TASKS,
    "autoencoding": _rgb_task("autoencoding"),
    "denoising": _rgb_task("denoising"),
    "colorization": _rgb_task("colorization"),
    "inpainting": _rgb_task("inpainting"),
    "albedo": _map_task("albedo", 3),
    "edges2d": _map_task("edges2d"),
    "reshading": _map_task("reshading"),
    "curvature": _map_task("curvature"),
    "keypoints2d": _map_task("keypoints2d"),
    "occlusion_edges": DenseTask(
        "occlusion_edges", 1, "binary cross-entropy on logits", _binary_loss, _binary_distill, _binary_metrics,
        _colorize_binary, headline="F1", higher_is_better=True, output="binary"),
    "foreground": DenseTask(
        "foreground", 2, "cross-entropy", _cross_entropy, pixel_kl_loss, _foreground_metrics, _colorize_foreground,
        headline="mIoU", higher_is_better=True, output="classes"),
    "depth_euclidean": DenseTask(
        "depth_euclidean", 1, f"scale-invariant log-depth, lambda {SI_LAMBDA}", _depth_loss, _depth_loss,
        _depth_metrics, colorize_depth, headline="RMSE", higher_is_better=False, output="depth"),
    "largest_class": ImageTask(
        "largest_class", len(SCENE_CLASSES), "cross-entropy (label -1 ignored)", _class_loss, _class_distill,
        _class_metrics, headline="accuracy", higher_is_better=True, output="image-classes"),
    "object_count": ImageTask(
        "object_count", 1, "mean squared error", _mse_loss, _mse_loss, _number_metrics, headline="MAE",
        higher_is_better=False, output="image-regression"),
    "layout": ImageTask(
        "layout", 4, "mean squared error", _mse_loss, _mse_loss, _number_metrics, headline="RMSE",
        higher_is_better=False, output="image-regression"),
}


def transfer_task(name: str) -> DenseTask | ImageTask:
    """``TRANSFER_TASKS[name]``, with an error naming the tasks when ``name`` is not one of them."""
    return TRANSFER_TASKS[str(check_choice("transfer task", name, TRANSFER_TASKS))]


def dense_task(name: str) -> DenseTask:
    """``DENSE_TASKS[name]``, with an error naming the tasks when ``name`` is not one of them."""
    return DENSE_TASKS[str(check_choice("dense task", name, DENSE_TASKS))]


def task_channels(name: str) -> int:
    """Output channels of a dense task's head (classes for segmentation, 1 for depth, 3 for normals)."""
    return dense_task(name).channels
