"""Atomic file writes: a reader sees the old file or the complete new one, never a half-written one.

Torch-free on purpose, so that the batch runner (which never imports torch) can use it too;
:func:`kae_utils.training.cache.atomic_save` is :func:`atomic_write` with ``torch.save``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write", "atomic_write_text", "tmp_prefix"]


def tmp_prefix(path: Path) -> str:
    """Prefix of the temporary files :func:`atomic_write` makes beside ``path`` (they end in ``.tmp``)."""
    return f".{path.name}."


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(f)`` on a temporary file beside ``path``, fsync it, then ``os.replace`` it onto ``path``.

    Parent folders are created. On any error (``KeyboardInterrupt`` included) the temporary file is removed
    and ``path`` is left as it was. Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=tmp_prefix(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
    with suppress(OSError, AttributeError):  # make the rename itself durable (POSIX)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`); return ``path``."""
    data = text.encode(encoding)
    return atomic_write(path, lambda f: f.write(data))
