"""Fetch a local copy of MathJax 3 for the site: ``python docs/fetch_mathjax.py [DEST]``.

The site renders its equations offline, so MathJax is served from the site itself, not from a CDN.
The copy is not committed: this script fetches the pinned package from the npm registry with
``npm pack`` (or takes the tarball named by ``$KAE_MATHJAX_TGZ``), checks its SHA-256, and unpacks the
parts the site needs (the TeX-input/CHTML-output bundle, its fonts, the TeX extensions it may autoload,
the menu and accessibility modules; 3.6 MB) into ``DEST/mathjax3`` (default ``docs/_build/mathjax``),
which ``docs/conf.py`` adds to the site's static files. Nothing is done when that copy is already there.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VERSION = "3.2.2"
SHA256 = "1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09"
#: parts of the package's es5/ folder that the site serves
PARTS = ("tex-mml-chtml.js", "output/chtml.js", "output/chtml", "input/tex/extensions", "ui", "a11y")
DEFAULT_DEST = Path(__file__).resolve().parent / "_build" / "mathjax"


def _npm_pack(folder: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        sys.exit(
            f"npm is needed to fetch MathJax {VERSION} (apt-get install -y npm), "
            f"or set KAE_MATHJAX_TGZ to a copy of mathjax-{VERSION}.tgz"
        )
    subprocess.run([npm, "pack", f"mathjax@{VERSION}", "--pack-destination", str(folder), "--silent"],
                   check=True, stdout=subprocess.DEVNULL)
    return folder / f"mathjax-{VERSION}.tgz"


def _check_hash(tgz: Path) -> None:
    digest = hashlib.sha256(tgz.read_bytes()).hexdigest()
    if digest != SHA256:
        sys.exit(f"{tgz}: SHA-256 {digest} is not the pinned {SHA256} of mathjax {VERSION}")


def _unpack(tgz: Path, target: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="mathjax_") as tmp, tarfile.open(tgz) as archive:
        archive.extractall(tmp, filter="data")
        es5 = Path(tmp) / "package" / "es5"
        staging = target.with_name(target.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        for part in PARTS:
            source, dest = es5 / part, staging / part
            dest.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, dest)
            else:
                shutil.copyfile(source, dest)
        (staging / "VERSION").write_text(VERSION + "\n")
        shutil.rmtree(target, ignore_errors=True)
        staging.replace(target)


def fetch(dest: Path = DEFAULT_DEST) -> Path:
    """Make sure ``dest/mathjax3`` holds MathJax ``VERSION``; return that folder."""
    target = dest / "mathjax3"
    stamp = target / "VERSION"
    if stamp.exists() and stamp.read_text().strip() == VERSION:
        return target
    with tempfile.TemporaryDirectory(prefix="mathjax_tgz_") as tmp:
        given = os.environ.get("KAE_MATHJAX_TGZ")
        tgz = Path(given) if given else _npm_pack(Path(tmp))
        _check_hash(tgz)
        target.parent.mkdir(parents=True, exist_ok=True)
        _unpack(tgz, target)
    print(f"MathJax {VERSION} unpacked into {target}")
    return target


if __name__ == "__main__":
    fetch(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DEST)
