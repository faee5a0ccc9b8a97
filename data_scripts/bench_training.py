"""Training throughput per notebook family under each numerics setting: ``python -m data_scripts.bench_training``.

Run by ``make bench``. For every family's typical network (at its quick-profile image size and batch size) it
times Adam steps (forward, loss, backward, step) through :class:`kae_utils.training.trainer.Trainer`, the path the
notebooks and the zoo use, under float32 and bfloat16 autocast, each with the contiguous (NCHW) and the
channels-last memory format. Each row is the best of ``--repeats`` timed epochs after a warm-up epoch (the
machine may be shared: best-of is the stable number). Writes ``results/training_throughput.tsv``.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from kae_utils.core.paths import repo_root
from kae_utils.training.numerics import cpu_has_native_bf16, resolve_numerics
from kae_utils.training.trainer import Callback, Trainer

SETTINGS: tuple[tuple[str, bool], ...] = (("fp32", False), ("fp32", True), ("bf16", False), ("bf16", True))


@dataclass(frozen=True)
class Case:
    """One family's network: ``build()`` a fresh model, inputs of ``shape``, a loss on its output."""

    family: str
    notebooks: str
    network: str
    shape: tuple[int, int, int]
    batch_size: int
    build: Callable[[], nn.Module]
    loss: Callable[[object], torch.Tensor]


def cases() -> list[Case]:
    from kae_utils.models import build_model, build_multihead
    from kae_utils.models.encdec import build_multitask_encdec
    from kae_utils.models.tasknet import build_tasknet

    def mean_output(out: object) -> torch.Tensor:
        values = out.values() if isinstance(out, dict) else [out]
        return sum(v.float().pow(2).mean() for v in values)

    return [
        Case("digits classifiers", "01-03, 09", "ConvNet (16, 32, 64)", (1, 8, 8), 128,
             lambda: build_model("convnet", 10, in_channels=1, widths=(16, 32, 64)), mean_output),
        Case("shapes classifiers", "02-03 full, 05-06", "ConvNet (16, 32, 64, 128)", (3, 32, 32), 128,
             lambda: build_model("convnet", 48, in_channels=3, widths=(16, 32, 64, 128)), mean_output),
        Case("attribute multi-head", "05-06", "MultiHead ConvNet (32, 64, 128)", (3, 32, 32), 128,
             lambda: build_multihead("convnet", {"shape": 8, "colour": 6, "fill": 3}, widths=(32, 64, 128)),
             mean_output),
        Case("dense encoder-decoder", "04, 07", "multi-task enc-dec (16, 32, 64)", (3, 64, 64), 32,
             lambda: build_multitask_encdec({"segmentation": 8, "depth": 1}, widths=(16, 32, 64)), mean_output),
        Case("mini-Taskonomy", "08-09", "TaskNet (16, 32)", (3, 32, 32), 64,
             lambda: build_tasknet("depth", 1, widths=(16, 32)), mean_output),
    ]


class _EpochTimes(Callback):
    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        self.start = time.perf_counter()

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        self.seconds.append(time.perf_counter() - self.start)

    def __init__(self) -> None:
        self.seconds: list[float] = []


def images_per_second(case: Case, precision: str, channels_last: bool, steps: int, repeats: int) -> float:
    """Best-of-``repeats`` training throughput of ``case`` under one setting (a warm-up epoch first)."""
    torch.manual_seed(0)
    x = torch.rand(steps * case.batch_size, *case.shape)
    timer = _EpochTimes()
    numerics = resolve_numerics(precision, "cpu", channels_last=channels_last)
    Trainer(case.build(), epochs=repeats + 1, batch_size=case.batch_size, progress=False, schedule="none",
            step_fn=lambda model, batch: case.loss(model(batch[0])), precision=numerics, callbacks=[timer]).fit((x,))
    return len(x) / min(timer.seconds[1:])  # the first epoch warms up (allocator, oneDNN's kernel choice)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_scripts.bench_training", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="optimiser steps per timed epoch (default: 20)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=repo_root() / "results" / "training_throughput.tsv")
    args = parser.parse_args(argv)
    flag = cpu_has_native_bf16() or "none"
    header = ["family", "notebooks", "network", "input", "batch", *(f"{p}{'_cl' if cl else ''}_img_s" for p, cl in SETTINGS),
              "bf16_cl_vs_fp32", "threads", "machine", "bf16_flag"]
    rows = ["\t".join(header)]
    for case in cases():
        rates = [images_per_second(case, p, cl, args.steps, args.repeats) for p, cl in SETTINGS]
        ratio = rates[-1] / rates[0]
        shape = "x".join(str(s) for s in case.shape)
        rows.append("\t".join([case.family, case.notebooks, case.network, shape, str(case.batch_size),
                               *(f"{r:.0f}" for r in rates), f"{ratio:.2f}", str(torch.get_num_threads()),
                               platform.machine(), flag]))
        print(f"{case.family:>22} {shape:>8} b{case.batch_size:<4} " + "  ".join(
            f"{p}{'+cl' if cl else '   '} {r:7.0f}" for (p, cl), r in zip(SETTINGS, rates, strict=True))
            + f"   x{ratio:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(rows) + "\n")
    print(f"img/s, written to {args.out} ({platform.machine()}, {torch.get_num_threads()} threads, bf16 flag: {flag})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
