"""One trainer for teachers and students alike, with callbacks and a pluggable training step.

The loop is always the same (batches -> loss -> backward -> step, then evaluation); what a paper
changes is the loss, so a notebook passes its own ``step_fn``::

    def distill_step(model, batch):
        x, y = batch
        with torch.no_grad():
            z_t = teacher(x)
        loss = kd_loss(model(x), z_t, y, temperature=4, alpha=0.9)
        return loss                       # or (loss, {"kl": ..., "ce": ...}) to log more

    history = Trainer(student, epochs=30, step_fn=distill_step, device=device).fit((x_train, y_train))

Callbacks (progress bar, LR schedule, checkpoint/resume, anything else) see the trainer at the
start and end of fitting, of every epoch and after every batch.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from kae_utils.core import scale
from kae_utils.core.params import check_choice
from kae_utils.display.progress import progress
from kae_utils.evaluation.metrics import accuracy
from kae_utils.training.cache import atomic_save
from kae_utils.training.numerics import Numerics, for_call
from kae_utils.training.predict import Batches, predict_logits, to_device

__all__ = [
    "Callback",
    "Checkpoint",
    "History",
    "LRSchedule",
    "ProgressBar",
    "Trainer",
    "evaluate_accuracy",
]

StepOutput = torch.Tensor | tuple[torch.Tensor, dict[str, float | torch.Tensor]]
StepFn = Callable[[nn.Module, Sequence[torch.Tensor]], StepOutput]
EvalFn = Callable[[nn.Module, Any], dict[str, float]]

OPTIMIZERS: tuple[str, ...] = ("adam", "adamw", "sgd")
SCHEDULES: tuple[str, ...] = ("cosine", "step", "none")


def _as_batches(data: Any, batch_size: int, shuffle: bool, seed: int) -> Iterable[Sequence[torch.Tensor]]:
    if isinstance(data, TensorDataset):
        data = data.tensors
    if isinstance(data, (tuple, list)) and data and all(isinstance(t, torch.Tensor) for t in data):
        return Batches(data, batch_size=batch_size, shuffle=shuffle, seed=seed)
    if isinstance(data, Iterable):
        return data  # a DataLoader or any iterable of batches, used as it is
    raise TypeError("data must be a tuple of tensors, a TensorDataset or an iterable of batches")


def evaluate_accuracy(model: nn.Module, data: Sequence[torch.Tensor], batch_size: int = 512) -> dict[str, float]:
    """``{"acc": accuracy}`` of ``model`` on ``(x, y)``: the trainer's default evaluation."""
    x, y = data[0], data[1]
    return {"acc": accuracy(predict_logits(model, x, batch_size), y)}


# ---------------------------------------------------------------------------------------- history
@dataclass
class History:
    """Per-epoch metrics: ``history["train_loss"]`` is a list with one value per epoch."""

    metrics: dict[str, list[float]] = field(default_factory=dict)

    def __len__(self) -> int:
        return max((len(column) for column in self.metrics.values()), default=0)

    def log(self, values: dict[str, float]) -> None:
        """Append one epoch; a metric missing this epoch (or new since) is padded with ``nan``."""
        rows = len(self)
        for key in list(self.metrics) + [k for k in values if k not in self.metrics]:
            column = self.metrics.setdefault(key, [math.nan] * rows)
            column.append(float(values.get(key, math.nan)))

    def __getitem__(self, key: str) -> list[float]:
        return self.metrics[key]

    def __contains__(self, key: str) -> bool:
        return key in self.metrics

    def last(self, key: str) -> float:
        return self.metrics[key][-1]

    def to_dict(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in self.metrics.items()}

    @classmethod
    def from_dict(cls, data: dict[str, list[float]]) -> History:
        return cls({k: [float(x) for x in v] for k, v in data.items()})


# -------------------------------------------------------------------------------------- callbacks
class Callback:
    """Base class: override any hook. ``trainer`` gives access to model, optimizer, history, state."""

    def on_fit_start(self, trainer: Trainer) -> None: ...
    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None: ...
    def on_batch_end(self, trainer: Trainer, step: int, logs: dict[str, float]) -> None: ...
    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None: ...
    def on_fit_end(self, trainer: Trainer) -> None: ...


class ProgressBar(Callback):
    """One bar over epochs, showing the latest metrics (widget in Jupyter, plain text elsewhere)."""

    def __init__(self, desc: str = "train") -> None:
        self.desc = desc
        self.bar = None

    def on_fit_start(self, trainer: Trainer) -> None:
        self.bar = progress(total=trainer.epochs, desc=self.desc, initial=trainer.start_epoch)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        shown = {k: f"{v:.4g}" for k, v in logs.items() if k not in ("epoch", "lr")}
        self.bar.set_postfix(shown, refresh=False)
        self.bar.update(1)

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.bar is not None:
            self.bar.close()


class LRSchedule(Callback):
    """Set the learning rate at the start of each epoch.

    ``cosine``: lr * (1 + cos(pi * epoch / epochs)) / 2; ``step``: lr * gamma ** (epoch // step_size);
    ``none``: constant.
    """

    def __init__(self, kind: str = "cosine", step_size: int = 10, gamma: float = 0.1) -> None:
        self.kind = check_choice("schedule", kind, SCHEDULES)
        self.step_size, self.gamma = step_size, gamma

    def factor(self, epoch: int, epochs: int) -> float:
        if self.kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * epoch / max(epochs, 1)))
        if self.kind == "step":
            return self.gamma ** (epoch // self.step_size)
        return 1.0

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        for group, base in zip(trainer.optimizer.param_groups, trainer.base_lrs, strict=True):
            group["lr"] = base * self.factor(epoch, trainer.epochs)


class Checkpoint(Callback):
    """Save model, optimizer, epoch, history and RNG states every ``every`` epochs; resume from the file if present.

    With ``resume=True`` an interrupted fit continues after the last saved epoch instead of starting
    over. The file is written atomically and read with ``weights_only=True``.
    """

    def __init__(self, path: str | os.PathLike, every: int = 1, resume: bool = True) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1; got {every}")
        self.path, self.every, self.resume = Path(path), every, resume

    def on_fit_start(self, trainer: Trainer) -> None:
        if not (self.resume and self.path.exists()):
            return
        state = torch.load(self.path, map_location=trainer.device, weights_only=True)
        trainer.model.load_state_dict(state["model"])
        trainer.optimizer.load_state_dict(state["optimizer"])
        trainer.history = History.from_dict(state["history"])
        trainer.start_epoch = int(state["epoch"]) + 1
        trainer.global_step = int(state.get("global_step", 0))
        generator = state.get("generator")
        trainer.batches_generator_state = generator.cpu() if generator is not None else None
        # the global RNG (dropout) goes on where it was, not from the seed fit() has just set
        if state.get("rng") is not None:
            torch.set_rng_state(state["rng"].cpu())
        if state.get("cuda_rng") is not None and trainer.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"].cpu(), trainer.device)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        if (epoch + 1) % self.every == 0 or epoch + 1 == trainer.epochs:
            atomic_save(
                {
                    "model": trainer.model.state_dict(),
                    "optimizer": trainer.optimizer.state_dict(),
                    "epoch": epoch,
                    "history": trainer.history.to_dict(),
                    "generator": trainer.generator_state(),
                    "global_step": trainer.global_step,
                    "rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state(trainer.device) if trainer.device.type == "cuda" else None,
                },
                self.path,
            )


# ---------------------------------------------------------------------------------------- trainer
def _default_step(model: nn.Module, batch: Sequence[torch.Tensor]) -> torch.Tensor:
    x, y = batch[0], batch[1]
    return F.cross_entropy(model(x), y)


class Trainer:
    """Train ``model`` for ``epochs`` epochs with ``step_fn`` as the loss.

    Args:
        model: the network to train (moved to ``device``).
        epochs: number of passes over the training data.
        lr, weight_decay, optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"`` (momentum 0.9), or a ready
            ``torch.optim.Optimizer`` over the parameters to train.
        schedule: ``"cosine"``, ``"step"`` or ``"none"`` (adds an :class:`LRSchedule` callback).
        step_fn: ``step_fn(model, batch) -> loss`` or ``(loss, logs)``; default cross-entropy on ``(x, y)``.
        eval_fn: ``eval_fn(model, val_data) -> {name: value}`` run after each epoch when validation
            data is given; default :func:`evaluate_accuracy` (logged as ``val_acc``).
        batch_size: for tensor data; ignored for a DataLoader.
        seed: seeds the global RNG (dropout) and the batch order at the start of :meth:`fit`.
        callbacks: extra callbacks, run after the LR schedule and before the progress bar.
        progress: show a progress bar over epochs (``desc`` is its label).
        precision: ``"fp32"``, ``"bf16"``, ``"auto"`` or a resolved :class:`~kae_utils.training.numerics.Numerics`;
            ``None`` (default) takes the process's setting
            (:func:`kae_utils.training.numerics.current`). The step runs under its autocast, the model and the 4-D
            inputs in its memory format; the loss is checked and logged in float32.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        epochs: int,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        optimizer: str | torch.optim.Optimizer = "adam",
        schedule: str = "cosine",
        step_fn: StepFn | None = None,
        eval_fn: EvalFn | None = None,
        batch_size: int = 64,
        device: torch.device | str = "cpu",
        seed: int = 0,
        callbacks: Sequence[Callback] = (),
        progress: bool = True,
        desc: str = "train",
        precision: str | Numerics | None = None,
    ) -> None:
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1; got {epochs}")
        self.device = torch.device(device)
        self.numerics: Numerics = for_call(precision, self.device)
        self.model = self.numerics.prepare_model(model.to(self.device))
        self.epochs, self.batch_size, self.seed, self.desc = epochs, batch_size, seed, desc
        self.step_fn = step_fn or _default_step
        self.eval_fn = eval_fn or evaluate_accuracy
        if isinstance(optimizer, torch.optim.Optimizer):
            self.optimizer = optimizer
        else:
            check_choice("optimizer", optimizer, OPTIMIZERS)
            params = [p for p in model.parameters() if p.requires_grad]
            if optimizer == "sgd":
                self.optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
            elif optimizer == "adamw":
                self.optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
            else:
                self.optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
        self.base_lrs = [g["lr"] for g in self.optimizer.param_groups]
        # the schedule first, the bar last (so it starts after a Checkpoint has resumed)
        self.callbacks: list[Callback] = [LRSchedule(schedule), *callbacks]
        if progress:
            self.callbacks.append(ProgressBar(desc))
        self.history = History()
        self.start_epoch = 0
        self.global_step = 0
        self.stop_training = False
        self.batches_generator_state: torch.Tensor | None = None
        self._batches: Iterable[Sequence[torch.Tensor]] | None = None
        self._work: dict[str, Any] | None = None  # counts for the work log (KAE_WORK_LOG, kae_utils.core.scale)

    def generator_state(self) -> torch.Tensor | None:
        gen = getattr(self._batches, "generator", None)
        return gen.get_state() if gen is not None else None

    def _call(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        self.model.train()
        sums: dict[str, float] = {}
        count = 0
        for batch in self._batches:
            batch = tuple(self.numerics.prepare_input(t) for t in to_device(batch, self.device))
            measure = self._work is not None and self._work["flops"] is None  # the first step, with a work log
            with scale.count_flops() if measure else contextlib.nullcontext() as flops:
                with self.numerics.autocast():
                    out = self.step_fn(self.model, batch)
                loss, extra = (out if isinstance(out, tuple) else (out, {}))
                loss = loss.float()
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch}; lower the learning rate")
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
            if self._work is not None:
                n = len(batch[0]) if batch and isinstance(batch[0], torch.Tensor) else 1
                self._work["samples"] += n
                self._work["steps"] += 1
                if measure:
                    self._work["flops"] = flops.get_total_flops() / n
            self.global_step += 1
            logs = {"loss": loss.item(), **{k: float(v) for k, v in extra.items()}}
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v
            count += 1
            self._call("on_batch_end", self.global_step, logs)
        return {f"train_{k}": v / max(count, 1) for k, v in sums.items()}

    def fit(self, train_data: Any, val_data: Any = None) -> History:
        """Train and return the :class:`History` (also kept as ``self.history``)."""
        torch.manual_seed(self.seed)
        self._batches = _as_batches(train_data, self.batch_size, shuffle=True, seed=self.seed)
        self.stop_training = False
        self._call("on_fit_start")
        gen = getattr(self._batches, "generator", None)
        if self.batches_generator_state is not None and gen is not None:
            gen.set_state(self.batches_generator_state)
        self._work = ({"epochs": 0, "samples": 0, "steps": 0, "flops": None}
                      if scale.work_log_path() is not None else None)
        start = time.perf_counter()
        for epoch in range(self.start_epoch, self.epochs):
            self._call("on_epoch_start", epoch)
            logs = {"epoch": float(epoch), "lr": self.optimizer.param_groups[0]["lr"]}
            logs.update(self._train_epoch(epoch))
            if self._work is not None:
                self._work["epochs"] += 1
            if val_data is not None:
                logs.update({f"val_{k}": v for k, v in self.eval_fn(self.model, val_data).items()})
            self.history.log(logs)
            self._call("on_epoch_end", epoch, logs)
            if self.stop_training:
                break
        self._call("on_fit_end")
        self.model.eval()
        if self._work is not None and self._work["steps"]:  # KAE_WORK_LOG: this run's counts (kae_utils.core.scale)
            epochs = max(self._work["epochs"], 1)
            scale.log_work("fit", self.desc, epochs=epochs, samples=self._work["samples"] // epochs,
                           steps=self._work["steps"], flops_per_sample=self._work["flops"],
                           seconds=time.perf_counter() - start, device=self.device.type,
                           batch_size=self.batch_size if isinstance(self._batches, Batches) else None)
        return self.history
