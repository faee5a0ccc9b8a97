"""Measure the offline generators' speed: ``python -m data_scripts.bench_generators`` (run by ``make bench``).

Targets from the data issue: ``shapes`` at least 10,000 32x32 images in under 5 s, ``scenes`` at least
200 scenes/s at 64x64, both on a 2-core CPU. Writes ``results/generation_speed.tsv``; each row is the best
of ``--repeats`` timed runs after one warm-up (the machine may be shared: best-of is the stable number).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from kae_utils.core.paths import repo_root


def best_time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up (imports, allocator, first-call overheads)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def cases() -> list[tuple[str, int, int, float, Callable[[], object]]]:
    """(generator, image size, items, target items/s, callable) for every benchmark case."""
    from kae_utils.data.scene_spec import SceneConfig
    from kae_utils.data.scenes import render_scenes
    from kae_utils.data.shapes import generate_shapes
    from kae_utils.data.shapes_config import ShapesConfig

    return [
        ("shapes", 32, 10000, 2000.0, lambda: generate_shapes(10000, seed=0, config=ShapesConfig(image_size=32))),
        ("scenes", 64, 512, 200.0, lambda: render_scenes(512, seed=0, config=SceneConfig(image_size=64))),
        ("scenes-textured", 64, 512, 200.0,
         lambda: render_scenes(512, seed=0, config=SceneConfig(image_size=64, domain="textured"))),
        ("scenes", 128, 128, float("nan"), lambda: render_scenes(128, seed=0, config=SceneConfig(image_size=128))),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_scripts.bench_generators", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=repo_root() / "results" / "generation_speed.tsv")
    args = parser.parse_args(argv)
    rows = ["generator\timage_size\titems\tbest_s\titems_per_s\ttarget_items_per_s\tmeets_target\tthreads\tmachine"]
    machine = f"{platform.machine()} {torch.get_num_threads()} threads"
    for name, size, items, target, fn in cases():
        seconds = best_time(fn, args.repeats)
        rate = items / seconds
        meets = "-" if target != target else ("yes" if rate >= target else "no")
        target_text = "-" if target != target else f"{target:.0f}"
        rows.append(f"{name}\t{size}\t{items}\t{seconds:.3f}\t{rate:.0f}\t{target_text}\t{meets}\t"
                    f"{torch.get_num_threads()}\t{platform.machine()}")
        print(f"{name:>16} {size:>4}px  {items:>6} items  {seconds:6.2f} s  {rate:8.0f} items/s  target {target_text}: {meets}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(rows) + "\n")
    print(f"written to {args.out} ({machine})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
