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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from kae_utils.data.scenes import SCENE_CLASSES
from kae_utils.dense import angular_loss, pixel_kl_loss, scale_invariant_loss
from kae_utils.env import check_choice
from kae_utils.metrics import depth_metrics, mean_iou, normal_metrics, pixel_accuracy
from kae_utils.viz import colorize_depth, colorize_normals, colorize_segmentation

Nets = torch.nn.Module | Mapping[str, torch.nn.Module]

__all__ = ["DENSE_TASKS", "DenseTask", "dense_task", "predict_maps", "task_channels"]

#: Lambda of the scale-invariant depth loss used everywhere unless a notebook overrides it.
SI_LAMBDA: float = 0.5

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class DenseTask:
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

    def headline_value(self, pred: torch.Tensor, target: torch.Tensor) -> float:
        """The headline metric of ``pred`` against ``target``."""
        return self.metrics(pred, target)[self.headline]

    def better(self, a: float, b: float) -> bool:
        """Whether headline value ``a`` is strictly better than ``b``."""
        return a > b if self.higher_is_better else a < b


def _segmentation_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    return {"mIoU": mean_iou(pred, target, len(SCENE_CLASSES)), "pixel acc": pixel_accuracy(pred, target)}


def _depth_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    m = depth_metrics(pred, target)
    return {"RMSE": m["rmse"], "abs rel": m["abs_rel"], "delta<1.25": m["delta1"]}


def _normal_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    m = normal_metrics(pred, target)
    return {"mean angle": m["mean_angle"], "within 11.25": m["within_11.25"]}


def _depth_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return scale_invariant_loss(pred, target, lam=SI_LAMBDA)


def _colorize_segmentation(pred: torch.Tensor) -> np.ndarray:
    labels = pred.argmax(dim=1) if pred.is_floating_point() else pred
    return colorize_segmentation(labels, len(SCENE_CLASSES))


DENSE_TASKS: dict[str, DenseTask] = {
    "segmentation": DenseTask(
        "segmentation", len(SCENE_CLASSES), "cross-entropy", F.cross_entropy, pixel_kl_loss, _segmentation_metrics,
        _colorize_segmentation, headline="mIoU", higher_is_better=True),
    "depth": DenseTask(
        "depth", 1, f"scale-invariant log-depth, lambda {SI_LAMBDA}", _depth_loss, _depth_loss, _depth_metrics, colorize_depth,
        headline="RMSE", higher_is_better=False),
    "normals": DenseTask(
        "normals", 3, "angle between unit normals", angular_loss, angular_loss, _normal_metrics, colorize_normals,
        headline="mean angle", higher_is_better=False),
}


def dense_task(name: str) -> DenseTask:
    """``DENSE_TASKS[name]``, with an error naming the tasks when ``name`` is not one of them."""
    return DENSE_TASKS[str(check_choice("dense task", name, DENSE_TASKS))]


def task_channels(name: str) -> int:
    """Output channels of a dense task's head (classes for segmentation, 1 for depth, 3 for normals)."""
    return dense_task(name).channels


@torch.no_grad()
def predict_maps(model: Nets, x: torch.Tensor, batch_size: int = 64, name: str = "output") -> dict[str, torch.Tensor]:
    """Every task's output on ``x``, in eval mode, batched, on the CPU: ``{task: (N, C, H, W)}``.

    ``model`` is a net that returns one map (filed under ``name``) or ``{task: map}``, or a dict
    ``{task: net}`` of single-task nets (the teachers). Each net runs on the device of its parameters and
    is put back in the training mode it had.
    """
    nets = dict(model) if isinstance(model, Mapping) else {name: model}
    modes = {key: net.training for key, net in nets.items()}
    outputs: dict[str, list[torch.Tensor]] = {}
    try:
        for net in nets.values():
            net.eval()
        for start in range(0, len(x), batch_size):
            xb = x[start:start + batch_size]
            for key, net in nets.items():
                out = net(xb.to(next(net.parameters()).device))
                for task, value in (out.items() if isinstance(out, dict) else [(key, out)]):
                    outputs.setdefault(task, []).append(value.float().cpu())
    finally:
        for key, net in nets.items():
            net.train(modes[key])
    return {task: torch.cat(values) for task, values in outputs.items()}
