"""Materialise the offline data sets to disk with a manifest: ``python -m data_scripts.make_offline``.

The notebooks generate ``shapes`` and ``scenes`` in memory and do not need this. It is for users who want
the data as files (to inspect them, or to skip re-rendering many scenes in the full profile), and for
comparing machines: the manifest records each file's configuration, size and sha256.

    python -m data_scripts.make_offline                       # shapes + scenes + digits, quick profile
    python -m data_scripts.make_offline --profile full --datasets scenes
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from kae_utils.core.params import PROFILES
from kae_utils.data.registry import (
    OFFLINE_DATASETS,
    SPLITS,
    data_root,
    load_dataset,
    offline_config,
    offline_path,
)
from kae_utils.training.cache import atomic_save, sha256_file


def materialise(datasets: Sequence[str], profile: str, seed: int = 0, root: Path | None = None) -> Path:
    """Write every split of ``datasets`` under ``<root>/offline/`` and return the manifest's path."""
    root = root or data_root()
    manifest_path = root / "offline" / f"manifest-{profile}.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"files": {}}
    for name in datasets:
        for split in SPLITS:
            config = offline_config(name, split, profile, seed)
            path = offline_path(config, root)
            start = time.perf_counter()
            data = load_dataset(name, split, profile, seed=seed, root=root)
            payload = {"config": config, "x": data.x, "targets": data.targets,
                       "classes": {k: list(v) for k, v in data.classes.items()}}
            atomic_save(payload, path)
            entry = {
                "config": config,
                "items": len(data),
                "x_shape": list(data.x.shape),
                "targets": {k: list(v.shape) for k, v in data.targets.items()},
                "bytes": path.stat().st_size,
                "sha256": sha256_file(path),
                "seconds": round(time.perf_counter() - start, 2),
            }
            manifest["files"][str(path.relative_to(root))] = entry
            print(f"{name:>7} {split:<5} {len(data):>6} items -> {path.relative_to(root)} ({entry['bytes'] / 1e6:.1f} MB)")
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest_path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_scripts.make_offline", description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=OFFLINE_DATASETS, default=list(OFFLINE_DATASETS))
    parser.add_argument("--profile", choices=PROFILES, default="quick")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", type=Path, default=None, help="data folder (default: $KAE_DATA_DIR or <repo>/data)")
    args = parser.parse_args(argv)
    manifest = materialise(args.datasets, args.profile, args.seed, args.root)
    print(f"manifest: {manifest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
