"""The recipes at work: an entry's data (:func:`entry_data`), its loss and scores, its training
(:func:`train_entry`) and the linear probe of a backbone.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from kae_utils.benchmarks import taskonomy
from kae_utils.benchmarks.tasks import dense_task, transfer_task
from kae_utils.core.params import check_choice
from kae_utils.data.digits import augment_shifts, load_digits
from kae_utils.data.scene_spec import SceneConfig
from kae_utils.data.scenes import render_scenes
from kae_utils.data.shapes import composite_labels, generate_shapes
from kae_utils.data.shapes_config import ShapesConfig
from kae_utils.data.subsets import class_subset
from kae_utils.evaluation.metrics import accuracy
from kae_utils.training.predict import Batches, predict_logits, predict_maps
from kae_utils.training.trainer import Checkpoint, Trainer
from kae_utils.zoo.entries import ZooEntry
from kae_utils.zoo.registry.common import silhouettes

__all__ = [
    "copy_backbone", "entry_data", "entry_scores", "headline", "linear_probe", "start_depth_head",
    "train_entry",
]

# ------------------------------------------------------------------------------------------- data


# The entries of one build share their images (the three scenes teachers and the reference render the same
# scenes; several backbones see the same shapes): the last few generated sets are kept, read-only.
@functools.lru_cache(maxsize=2)
def _shapes(n: int, seed: int, start: int, image_size: int, masks: bool) -> Any:
    return generate_shapes(n, seed=seed, config=ShapesConfig(image_size=image_size), start=start, return_masks=masks)


@functools.lru_cache(maxsize=2)
def _scenes_batch(n: int, seed: int, start: int, image_size: int) -> Any:
    return render_scenes(n, seed=seed, config=SceneConfig(image_size=image_size), start=start)


def _where(x: torch.Tensor, labels: dict[str, torch.Tensor], where: dict[str, list[int]] | None):
    """Keep the ``shapes`` images whose attributes take the listed values, e.g. ``{"fill": [0, 1]}``."""
    if not where:
        return x, labels
    keep = torch.ones(len(x), dtype=torch.bool)
    for attribute, values in where.items():
        keep &= torch.isin(labels[attribute], torch.as_tensor(values))
    return x[keep], {a: v[keep] for a, v in labels.items()}


def entry_data(spec: dict[str, Any]) -> tuple[torch.Tensor, Any]:
    """Images and targets of a data spec (an entry's ``data``, ``held_out`` or ``probe`` parts).

    Sources: ``digits`` (the notebooks' fixed split), ``shapes-split`` (``load_dataset("shapes", ...)``),
    ``shapes`` (the zoo's own image stream), ``scenes`` (rendered scenes with one task's labels, or a dict of
    several). ``shapes`` labels are one composite label of ``labels``, or with ``per_attribute`` a dict of
    them; ``where`` keeps images by attribute values (``{"fill": [0, 1]}``). A ``classes`` list keeps those
    classes, relabelled ``0..k-1``.
    """
    source = check_choice("data source", spec["source"], ("digits", "shapes-split", "shapes", "scenes"))
    if source == "digits":
        d = load_digits(size=8, test_fraction=0.5, seed=0)
        x, y = (d.x_train, d.y_train) if spec["split"] == "train" else (d.x_test, d.y_test)
    elif source in ("shapes-split", "shapes"):
        if source == "shapes-split":
            from kae_utils.data.registry import load_dataset

            split = load_dataset("shapes", spec["split"], spec["profile"])
            x, labels = split.x, split.targets
        else:
            silhouette = spec["view"] == "silhouette"
            batch = _shapes(spec["n"], spec["seed"], spec["start"], spec["image_size"], silhouette)
            x, labels = (silhouettes(batch.masks, batch.labels["position"]) if silhouette else batch.images), batch.labels
        x, labels = _where(x, labels, spec.get("where"))
        y = ({a: labels[a].long() for a in spec["labels"]} if spec.get("per_attribute")
             else composite_labels(labels, spec["labels"])[0])
    else:
        batch = _scenes_batch(spec["n"], spec["seed"], spec["start"], spec["image_size"])
        tasks = spec["task"]
        x = batch.rgb
        if spec.get("input", "clean") != "clean":  # the corrupted input of a mini-Taskonomy task (denoising ...)
            x = taskonomy.corrupt(x, spec["input"], taskonomy.input_seed(spec["seed"], spec["start"]))
        y = _scene_label(batch, tasks) if isinstance(tasks, str) else {t: _scene_label(batch, t).contiguous()
                                                                       for t in tasks}
    if spec.get("classes") is not None:
        sub = class_subset(x, y, spec["classes"])
        x, y = sub.x, sub.y
    return x.contiguous(), (y if isinstance(y, dict) else y.contiguous())


def _scene_label(batch: Any, task: str) -> torch.Tensor:
    """A ``scenes`` task's target, or a label the mini-Taskonomy derives from the rendered maps."""
    from kae_utils.data.scene_spec import SCENE_TASKS

    return batch.target(task) if task in SCENE_TASKS else taskonomy.scene_target(batch, task)


# ------------------------------------------------------------------------------------ training


def _as_dict(e: ZooEntry, out: torch.Tensor | dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A dense or multi-task model's output as ``{task: map}``."""
    return out if isinstance(out, dict) else {e.tasks[0]: out}


def _loss_fn(e: ZooEntry) -> Callable[[nn.Module, Sequence[torch.Tensor]], torch.Tensor]:
    """The training loss: cross-entropy for classifiers, the sum of each pixel task's ground-truth loss."""
    if e.kind == "classifier":
        return lambda model, batch: F.cross_entropy(model(batch[0]), batch[1])

    def loss(model: nn.Module, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        out = _as_dict(e, model(batch[0]))
        if e.kind == "multihead":
            return sum(F.cross_entropy(out[t], y) for t, y in zip(e.tasks, batch[1:], strict=True))
        if e.kind == "transfer":
            return sum(transfer_task(t).supervised_loss(out[t], y) for t, y in zip(e.tasks, batch[1:], strict=True))
        return sum(dense_task(t).supervised_loss(out[t], y) for t, y in zip(e.tasks, batch[1:], strict=True))

    return loss


def entry_scores(e: ZooEntry, model: nn.Module, x: torch.Tensor, y: Any) -> dict[str, float]:
    """Held-out metrics: accuracy, one task's metrics, or every task's (``"<task> <metric>"``)."""
    if e.kind == "classifier":
        return {"accuracy": accuracy(predict_logits(model, x), y)}
    maps = predict_maps(model, x, batch_size=256, name=e.tasks[0])
    if e.kind == "multihead":
        return {f"{t} accuracy": accuracy(maps[t], y[t]) for t in e.tasks}
    if e.kind == "dense":
        return dense_task(e.tasks[0]).metrics(maps[e.tasks[0]], y)
    if e.kind == "transfer":
        return transfer_task(e.tasks[0]).metrics(maps[e.tasks[0]], y)
    return {f"{t} {k}": v for t in e.tasks for k, v in dense_task(t).metrics(maps[t], y[t]).items()}


def headline(e: ZooEntry) -> tuple[str, bool]:
    """The metric a table shows for ``e`` (a multi-task entry: its first task's) and whether higher is better."""
    if e.kind == "classifier":
        return "accuracy", True
    if e.kind == "multihead":
        return f"{e.tasks[0]} accuracy", True
    if e.kind == "transfer":
        task = transfer_task(e.tasks[0])
        return task.headline, task.higher_is_better
    task = dense_task(e.tasks[0])
    return (task.headline if e.kind == "dense" else f"{task.name} {task.headline}"), task.higher_is_better


def copy_backbone(model: nn.Module, base_model: nn.Module) -> nn.Module:
    """Copy ``base_model``'s weights into ``model``, all but the classifier (its classes differ); returns ``model``.

    How a teacher or student starts from a pretrained backbone, as the papers' networks start from ImageNet
    weights. Every other tensor must exist in the backbone with the same shape (``ValueError`` otherwise).
    """
    base, own = base_model.state_dict(), model.state_dict()
    copied = {k: v for k, v in base.items() if k in own and own[k].shape == v.shape and not k.startswith("classifier.")}
    missing = [k for k in own if k not in copied and not k.startswith("classifier.")]
    if missing:
        raise ValueError(f"the backbone has no weights of the same shape for {missing[:4]}"
                         f"{' ...' if len(missing) > 4 else ''}: is it the same architecture and width?")
    model.load_state_dict(copied, strict=False)
    return model


def start_depth_head(e: ZooEntry, model: nn.Module, targets: Sequence[torch.Tensor]) -> None:
    """A depth head starts with its bias at the mean log-depth of the training labels (as in notebook 04),
    so training does not spend its first steps moving the output to the right scale."""
    if e.kind == "transfer":
        if transfer_task(e.tasks[0]).output == "depth":
            nn.init.constant_(model.decoder.proj.bias, targets[0].clamp_min(1e-6).log().mean().item())
        return
    if "depth" not in e.tasks:
        return
    head = model.heads["depth"] if e.kind == "multitask" else model.head
    nn.init.constant_(head.proj.bias, targets[e.tasks.index("depth")].clamp_min(1e-6).log().mean().item())


def train_entry(e: ZooEntry, device: torch.device | str = "cpu", *, init_model: nn.Module | None = None,
                checkpoint: Path | None = None, progress: bool = True,
                callbacks: Sequence[Any] = ()) -> tuple[nn.Module, dict[str, Any]]:
    """Train ``e`` from its recipe; returns the model (eval mode) and ``{"history", "train_seconds"}``.

    ``init_model``: the trained ``e.init`` entry, whose weights (all but the classifier) are the start.
    ``checkpoint``: a file to save the training state to after every epoch and to resume from (what
    makes an interrupted ``build`` continue). The history holds the training loss and the held-out
    metrics after every epoch (the learning curve).
    """
    device = torch.device(device)
    model = e.build_model()
    if (e.init is None) != (init_model is None):
        raise ValueError(f"zoo entry {e.name!r} starts from {e.init or 'random weights'}; pass init_model accordingly")
    if init_model is not None:
        copy_backbone(model, init_model)
    x, y = entry_data(e.data)
    targets = [y[t] for t in e.tasks] if isinstance(y, dict) else [y]
    start_depth_head(e, model, targets)
    if e.recipe.shift_copies:
        x, targets[0] = augment_shifts(x, targets[0], copies=e.recipe.shift_copies, max_shift=1, seed=e.seed)
    x_val, y_val = entry_data(e.held_out)
    extra = [Checkpoint(checkpoint)] if checkpoint is not None else []
    trainer = Trainer(model, epochs=e.recipe.epochs, lr=e.recipe.lr, batch_size=e.recipe.batch_size,
                      optimizer=e.recipe.optimizer, schedule=e.recipe.schedule, weight_decay=e.recipe.weight_decay,
                      step_fn=_loss_fn(e), eval_fn=lambda m, _: entry_scores(e, m, x_val, y_val), device=device,
                      seed=e.seed, callbacks=[*extra, *callbacks], progress=progress, desc=f"zoo: {e.name}")
    start = time.perf_counter()
    history = trainer.fit((x, *targets), val_data=True)
    return model.eval(), {"history": history.to_dict(), "train_seconds": time.perf_counter() - start}


@torch.no_grad()
def _pooled(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    device = next(model.parameters()).device
    model.eval()
    return torch.cat([model(xb.to(device), return_features=True)[1]["pool"].cpu()
                      for (xb,) in Batches([x], batch_size=512)])


def linear_probe(model: nn.Module | None, probe: dict[str, Any]) -> float:
    """Test accuracy of a logistic regression on the model's pooled features (raw pixels if ``model`` is None).

    Fitted on ``probe["train"]``, scored on ``probe["test"]``: if a pretrained backbone's features already
    solved the target task, this would be close to a fine-tuned teacher.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    (x_tr, y_tr), (x_te, y_te) = entry_data(probe["train"]), entry_data(probe["test"])
    feats = (lambda x: x.flatten(1)) if model is None else (lambda x: _pooled(model, x))
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    clf.fit(feats(x_tr).numpy(), y_tr.numpy())
    return float(clf.score(feats(x_te).numpy(), y_te.numpy()))
