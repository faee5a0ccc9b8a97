"""The command line: ``python -m kae_utils.zoo list | build [NAMES] [--device] [--profile] | verify``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from kae_utils.training.numerics import PRECISIONS
from kae_utils.zoo.entries import ENTRY_PROFILES
from kae_utils.zoo.store import Zoo


def main(argv: Sequence[str] | None = None, zoo: Zoo | None = None) -> int:
    """``python -m kae_utils.zoo list | build [NAMES] [--device] [--profile] | verify``."""
    parser = argparse.ArgumentParser(prog="python -m kae_utils.zoo",
                                     description="The repository's trained teachers and pretrained backbones.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="a table of the entries: name, task, architecture, params, held-out metric, used by")
    b = sub.add_parser("build", help="train the entries that are missing or stale")
    b.add_argument("names", nargs="*", help="entries to build (default: every entry of --profile)")
    b.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    b.add_argument("--profile", default="auto", choices=("auto", "all", *ENTRY_PROFILES),
                   help="which entries when no names are given (auto: all on a GPU, quick on a CPU)")
    b.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="numerics of the training (auto: bf16 where the hardware runs it natively; KAE_PRECISION)")
    sub.add_parser("verify", help="rehash every weights file against the manifest; exit 1 on any problem")
    args = parser.parse_args(argv)
    zoo = zoo or Zoo()
    if args.command == "list":
        print(_format_table(zoo.list_rows(), ("name", "profile", "task", "architecture", "params", "held-out",
                                              "used by", "status")))
        return 0
    if args.command == "build":
        try:
            for name in args.names:
                zoo.entry(name)
        except KeyError as exc:
            print(exc.args[0], file=sys.stderr)
            return 2
        zoo.build(args.names, device=args.device, profile=args.profile, precision=args.precision)
        return 0
    problems = zoo.verify()
    for p in problems:
        print(p)
    print(f"zoo: {len(zoo.manifest()['entries'])} entries checked, {len(problems)} problem(s)")
    return 1 if problems else 0


def _format_table(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    cells = [list(columns)] + [["" if r.get(c) is None else str(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
