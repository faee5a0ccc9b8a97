"""The ``kae`` command (also ``python -m kae_tools``): one subcommand per tool of the repository.

    kae run [NOTEBOOK ...] [options]        run notebooks with papermill (kae run 02 -p SEED 1)
    kae sweep SWEEP.yaml [NOTEBOOK ...]     run a sweep file's grid (kae sweep sweeps/kd_temperature.yaml)
    kae seeds [NOTEBOOK ...] [options]      the seeds sweep (sweeps/seeds.yaml, resumed), then results/seeds/
    kae readme [--collect RUNS ...]         the generated parts of README.md and docs/*.md from results/
    kae pair [--check] [NOTEBOOK ...]       the notebooks' jupytext text forms
    kae clean [--check] NOTEBOOK ...        the stored notebooks' run-dependent metadata
    kae zoo {list,build,verify} ...         the model zoo (the same as python -m kae_utils.zoo)

``kae COMMAND --help`` shows each command's options.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

from kae_tools import readme
from kae_tools.notebooks import nbclean, pairing
from kae_tools.runner import cli

__all__ = ["COMMANDS", "main", "seeds_main", "zoo_main"]

#: The sweep file of ``kae seeds`` and where its runs go, relative to the repository root.
SEEDS_SWEEP = Path("sweeps") / "seeds.yaml"
SEEDS_OUT = Path("runs") / "seeds"


def seeds_main(argv: Sequence[str] | None = None) -> int:
    """``kae seeds``: ``kae sweep sweeps/seeds.yaml --out runs/seeds --resume`` (more options pass through),
    then ``kae readme --collect-seeds`` of that folder, even when some run failed; the runner's exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if {"-h", "--help"} & set(argv):
        print("usage: kae seeds [NOTEBOOK ...] [kae sweep's options]\n\n" + textwrap.fill(
            f"Every notebook's quick profile at the seeds of {SEEDS_SWEEP} into {SEEDS_OUT}/ (resumed: runs "
            "already ok are skipped), then each notebook's rows copied to results/seeds/ and the README's "
            "index rewritten, also when some run failed. NOTEBOOK and the options are those of `kae sweep` "
            "(kae sweep --help).", 100))
        return 0
    from kae_utils.core.paths import repo_root  # imports torch (seconds): not for `kae seeds --help`

    root = repo_root()
    out_parser = argparse.ArgumentParser(add_help=False)
    out_parser.add_argument("--out", type=Path, default=root / SEEDS_OUT)
    out = out_parser.parse_known_args(argv)[0].out
    status = cli.sweep_main([str(root / SEEDS_SWEEP), "--out", str(out), "--resume", *argv])
    if status == 2:  # a usage error: nothing ran, nothing to collect
        return status
    collected = readme.main(["--collect-seeds", str(out)])
    return status or collected


def zoo_main(argv: Sequence[str] | None = None) -> int:
    """``kae zoo``: the model zoo's own command line (``python -m kae_utils.zoo``, which keeps working)."""
    from kae_utils import zoo  # imports torch and the zoo's registry: only for `kae zoo`

    return zoo.main(list(sys.argv[1:] if argv is None else argv))


#: name -> (entry point taking the remaining arguments, one-line summary)
COMMANDS: dict[str, tuple[Callable[[Sequence[str] | None], int], str]] = {
    "run": (cli.main, "run notebooks with papermill into runs/ and summarise status, time and claims"),
    "sweep": (cli.sweep_main, "run a sweep file's grid of parameters and collect its tables"),
    "seeds": (seeds_main, "every notebook at seeds 0-4 (sweeps/seeds.yaml, resumed), then results/seeds/"),
    "readme": (readme.main, "collect results and rewrite the generated parts of README.md and docs/*.md"),
    "pair": (pairing.main, "write (or --check) the notebooks' jupytext text forms"),
    "clean": (nbclean.main, "clean (or --check) the stored notebooks' run-dependent metadata"),
    "zoo": (zoo_main, "list, build or verify the model zoo"),
}


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: kae COMMAND [ARGS ...]", "", "The repository's tools (kae COMMAND --help for each):", ""]
    lines += [f"  {name.ljust(width)}  {summary}" for name, (_, summary) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch ``kae COMMAND ARGS...`` to the command's own entry point; returns the exit code (2 for an
    unknown command or none)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print(_usage(), file=sys.stderr)
        return 2
    if argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"kae: unknown command {name!r}; choose from {', '.join(COMMANDS)}\n\n{_usage()}", file=sys.stderr)
        return 2
    entry, _ = COMMANDS[name]
    try:
        return entry(rest)
    except SystemExit as exc:  # argparse's --help (0) and usage errors (2): an exit code like any other
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
