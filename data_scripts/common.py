"""Shared machinery of the fetch scripts: paths, downloads, checksums, safe unpacking, index files.

Downloads stream to ``<file>.part`` and are renamed when complete (no resuming: an interrupted
download starts again). Every archive is checked before use:

* with the published checksum where one is known (:attr:`RemoteFile.md5` / :attr:`RemoteFile.sha256`);
* otherwise by **trust on first use**: the SHA-256 of the first copy seen (downloaded or given with
  ``--archive``) is recorded in ``<root>/raw/<name>/SHA256SUMS`` and every later run verifies
  against it. This detects a changed or corrupted file, not a file that was wrong from the start.

A mismatch raises :class:`ChecksumError` naming the file and both digests. When a server cannot be
reached, :class:`OfflineError` says which address failed and how to go on offline (download the
file elsewhere, then ``--archive PATH`` or put it in ``<root>/raw/<name>/``).

Library code here prints nothing; the ``fetch`` CLI reports progress through the ``log`` callbacks.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import socket
import tarfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO

from kae_utils.data.real import data_root
from kae_utils.data.subsets import split_classes

__all__ = [
    "ChecksumError",
    "DataScriptError",
    "OfflineError",
    "RemoteFile",
    "UnsafeArchiveError",
    "class_splits",
    "copy_stream",
    "data_root",
    "download",
    "ensure_files",
    "file_digest",
    "iter_archive_files",
    "open_url",
    "raw_dir",
    "read_member_bytes",
    "read_sums",
    "resize_copies",
    "safe_extract",
    "safe_join",
    "verify_file",
    "verify_or_record",
    "write_class_splits",
    "write_classes",
    "write_index",
]

Log = Callable[[str], None]
SUMS_FILE = "SHA256SUMS"
_CHUNK = 1 << 20
_USER_AGENT = "kae-tutorial-data-scripts/0.1 (+python urllib)"


class DataScriptError(RuntimeError):
    """Base class of the errors the fetch scripts report to the user (exit status 1)."""


class OfflineError(DataScriptError):
    """A server could not be reached; the message says how to proceed offline."""


class ChecksumError(DataScriptError):
    """A file's digest differs from the published or recorded one."""


class UnsafeArchiveError(DataScriptError):
    """An archive member would be written outside the target folder (or is a device, fifo, ...)."""


@dataclass(frozen=True)
class RemoteFile:
    """One file a data set needs: its name, official URL, published checksum (if any) and home page."""

    filename: str
    url: str
    page: str
    md5: str | None = None
    sha256: str | None = None

    @property
    def checksum(self) -> tuple[str, str] | None:
        """``(algorithm, hex digest)`` of the published checksum, or ``None`` (trust on first use)."""
        if self.sha256:
            return "sha256", self.sha256
        if self.md5:
            return "md5", self.md5
        return None


def raw_dir(name: str, root: str | os.PathLike[str] | None = None) -> Path:
    """``<root>/raw/<name>``: where downloaded archives and ``SHA256SUMS`` live."""
    return data_root(root) / "raw" / name


# --------------------------------------------------------------------------------------- checksums


def file_digest(path: str | os.PathLike[str], algorithm: str = "sha256") -> str:
    """Hex digest of a file (``sha256`` or ``md5``), read in 1 MiB chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_file(path: str | os.PathLike[str], algorithm: str, expected: str) -> str:
    """Check ``path``'s digest; return it, or raise :class:`ChecksumError` naming file and both digests."""
    actual = file_digest(path, algorithm)
    if actual.lower() != expected.lower():
        raise ChecksumError(
            f"checksum mismatch for {path}: expected {algorithm} {expected.lower()}, got {actual}. "
            "The file is corrupted, incomplete or not the official one: delete it and fetch it again."
        )
    return actual


def read_sums(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read a ``sha256sum``-style file (``<hex>  <filename>`` a line) into ``{filename: hex}``."""
    sums: dict[str, str] = {}
    p = Path(path)
    if not p.is_file():
        return sums
    for line in p.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        digest, _, name = line.partition(" ")
        sums[name.strip().lstrip("*")] = digest.lower()
    return sums


def _write_sums(path: Path, sums: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# SHA-256 of the archives as first seen (trust on first use); later runs verify against them.",
        *(f"{digest}  {name}" for name, digest in sorted(sums.items())),
    ]
    path.write_text("\n".join(lines) + "\n")


def verify_or_record(path: Path, remote: RemoteFile, raw: Path) -> str:
    """Verify ``path`` as ``remote``: against its published checksum, else trust on first use.

    Trust on first use: the first time a file name is seen its SHA-256 is recorded in
    ``raw/SHA256SUMS``; later calls verify against that record. Returns a one-line description of
    what was done; raises :class:`ChecksumError` on a mismatch.
    """
    known = remote.checksum
    if known is not None:
        verify_file(path, *known)
        return f"{remote.filename}: {known[0]} verified (published checksum)"
    sums_path = raw / SUMS_FILE
    sums = read_sums(sums_path)
    if remote.filename in sums:
        verify_file(path, "sha256", sums[remote.filename])
        return f"{remote.filename}: sha256 verified against {sums_path} (recorded on first use)"
    sums[remote.filename] = file_digest(path, "sha256")
    _write_sums(sums_path, sums)
    return (
        f"{remote.filename}: no published checksum; sha256 {sums[remote.filename]} recorded in "
        f"{sums_path} (trust on first use)"
    )


# --------------------------------------------------------------------------------------- downloads


def _resolve(host: str, port: int, timeout: float) -> None:
    """Resolve ``host`` within ``timeout`` seconds (``getaddrinfo`` itself has no timeout)."""
    result: list[BaseException | None] = []

    def target() -> None:
        try:
            socket.getaddrinfo(host, port)
            result.append(None)
        except OSError as exc:
            result.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if not result:
        raise urllib.error.URLError(f"name resolution of {host} timed out after {timeout:g} s")
    if result[0] is not None:
        raise urllib.error.URLError(result[0])


def open_url(url: str, timeout: float) -> BinaryIO:
    """Open ``url`` for streaming, failing within about ``timeout`` seconds when offline.

    The single place that touches the network (tests replace it). Raises ``urllib.error.URLError``
    (or ``OSError``/``TimeoutError``) when the server cannot be reached.
    """
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme in ("http", "https") and parsed.hostname:
        _resolve(parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80), timeout)
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - official dataset URLs


def offline_message(name: str, remote: RemoteFile, raw: Path, reason: object) -> str:
    """The message of :class:`OfflineError`: what failed and the two ways to proceed offline."""
    return (
        f"cannot download {remote.filename} for {name!r}: {remote.url} could not be reached ({reason}).\n"
        "This machine seems to be offline, or the address has moved. To proceed offline:\n"
        f"  1. download {remote.filename} on a machine with internet from {remote.url}\n"
        f"     (if this address has moved, download it manually from {remote.page});\n"
        f"  2. then either pass it:  python -m data_scripts.fetch {name} --archive /path/to/{remote.filename}\n"
        f"     or put it in {raw}/ and run  python -m data_scripts.fetch {name}  again."
    )


def download(
    name: str,
    remote: RemoteFile,
    dest: Path,
    timeout: float = 5.0,
    log: Log | None = None,
) -> Path:
    """Stream ``remote.url`` to ``dest`` through ``dest.part`` (renamed when complete).

    Raises :class:`OfflineError` (fast: the connection and name look-up use ``timeout``) when the
    server cannot be reached or answers with an HTTP error.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        response = open_url(remote.url, timeout)
    except (urllib.error.URLError, OSError, TimeoutError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise OfflineError(offline_message(name, remote, dest.parent, reason)) from exc
    try:
        total = int(response.headers.get("Content-Length") or 0) if hasattr(response, "headers") else 0
        done, next_report = 0, 0.0
        with open(part, "wb") as out:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                out.write(chunk)
                done += len(chunk)
                if log is not None and total and done / total >= next_report:
                    log(f"  {remote.filename}: {done / 2**20:.1f} / {total / 2**20:.1f} MiB")
                    next_report += 0.1
        if total and done != total:
            raise OfflineError(
                offline_message(name, remote, dest.parent, f"connection closed after {done} of {total} bytes")
            )
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        part.unlink(missing_ok=True)
        raise OfflineError(offline_message(name, remote, dest.parent, exc)) from exc
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    finally:
        close = getattr(response, "close", None)
        if close is not None:
            close()
    part.replace(dest)
    return dest


def _match_archives(name: str, remotes: Sequence[RemoteFile], archives: Iterable[Path]) -> dict[str, Path]:
    wanted = {r.filename for r in remotes}
    found: dict[str, Path] = {}
    for archive in archives:
        path = Path(archive).expanduser()
        if path.is_dir():
            for fname in wanted:
                if (path / fname).is_file():
                    found.setdefault(fname, path / fname)
            continue
        if not path.is_file():
            raise DataScriptError(f"--archive {path}: no such file")
        if path.name not in wanted:
            raise DataScriptError(
                f"--archive {path}: {name!r} needs files named {', '.join(sorted(wanted))} "
                f"(got {path.name!r}; rename it or pass the folder holding it)"
            )
        found[path.name] = path
    return found


def ensure_files(
    name: str,
    remotes: Sequence[RemoteFile],
    root: str | os.PathLike[str] | None = None,
    archives: Iterable[Path] = (),
    timeout: float = 5.0,
    log: Log | None = None,
) -> dict[str, Path]:
    """Local, verified copies of every file in ``remotes``: ``{filename: path}``.

    Each file is taken from ``archives`` (files matched by name, or folders holding them), else from
    ``<root>/raw/<name>/``, else downloaded there; then verified (:func:`verify_or_record`).
    """
    raw = raw_dir(name, root)
    given = _match_archives(name, remotes, archives)
    paths: dict[str, Path] = {}
    for remote in remotes:
        path = given.get(remote.filename)
        if path is None:
            path = raw / remote.filename
            if not path.is_file():
                if log is not None:
                    log(f"downloading {remote.url}")
                download(name, remote, path, timeout=timeout, log=log)
        elif log is not None:
            log(f"using {path}")
        message = verify_or_record(path, remote, raw)
        if log is not None:
            log(message)
        paths[remote.filename] = path
    return paths


# ---------------------------------------------------------------------------------------- archives


def _check_member_name(name: str, archive: Path) -> PurePosixPath:
    """The member's path, normalised; :class:`UnsafeArchiveError` if it is absolute or climbs out."""
    norm = name.replace("\\", "/")
    pure = PurePosixPath(norm)
    if norm.startswith("/") or pure.is_absolute() or (pure.parts and ":" in pure.parts[0]) or ".." in pure.parts:
        raise UnsafeArchiveError(f"unsafe member {name!r} in {archive}: it would be written outside the target folder")
    return PurePosixPath(*[p for p in pure.parts if p not in ("", ".")])


def _inside(dest: Path, rel: PurePosixPath) -> Path:
    target = (dest / Path(*rel.parts)).resolve() if rel.parts else dest.resolve()
    base = dest.resolve()
    if target != base and base not in target.parents:
        raise UnsafeArchiveError(f"unsafe member {str(rel)!r}: it resolves outside {dest}")
    return target


def safe_join(dest: Path, member: str, archive: str | os.PathLike[str] = "archive") -> Path:
    """``dest / member`` for an archive member name, or :class:`UnsafeArchiveError` if it would leave ``dest``."""
    return _inside(dest, _check_member_name(member, Path(archive)))


def _is_zip(path: Path) -> bool:
    return path.suffix.lower() == ".zip" or zipfile.is_zipfile(path)


def iter_archive_files(archive: str | os.PathLike[str]) -> Iterator[tuple[str, IO[bytes]]]:
    """Stream the regular files of a tar (any compression) or zip archive as ``(name, file object)``.

    One sequential pass (cheap for ``.tar.gz``). Every member name is checked first by
    :func:`_check_member_name`, so an unsafe archive raises :class:`UnsafeArchiveError` even when the
    caller only reads. Links and special members are skipped here (nothing is written).
    """
    path = Path(archive)
    if _is_zip(path):
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                rel = _check_member_name(info.filename, path)
                if info.is_dir():
                    continue
                with zf.open(info) as f:
                    yield str(rel), f
        return
    with tarfile.open(path, "r:*") as tf:
        for member in tf:
            rel = _check_member_name(member.name, path)
            if not member.isfile():
                continue
            f = tf.extractfile(member)
            if f is not None:
                with f:
                    yield str(rel), f


def safe_extract(archive: str | os.PathLike[str], dest: str | os.PathLike[str]) -> list[Path]:
    """Extract a tar/tgz/zip archive into ``dest``, refusing anything that would land outside it.

    All members are checked before anything is written: absolute names, ``..`` components, links
    whose target leaves ``dest``, and device or fifo members raise :class:`UnsafeArchiveError`.
    Returns the paths of the extracted regular files.
    """
    path, out = Path(archive), Path(dest)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if _is_zip(path):
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            targets = [_inside(out, _check_member_name(i.filename, path)) for i in infos]
            for info, target in zip(infos, targets, strict=True):
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
                written.append(target)
        return written
    with tarfile.open(path, "r:*") as tf:
        members = tf.getmembers()
        for m in members:
            rel = _check_member_name(m.name, path)
            _inside(out, rel)
            if m.issym() or m.islnk():
                link = PurePosixPath(m.linkname.replace("\\", "/"))
                link_rel = link if m.islnk() else PurePosixPath(*rel.parts[:-1]) / link
                if link.is_absolute():
                    raise UnsafeArchiveError(f"unsafe link {m.name!r} -> {m.linkname!r} in {path}")
                try:
                    _inside(out, link_rel)
                except UnsafeArchiveError:
                    raise UnsafeArchiveError(
                        f"unsafe link {m.name!r} -> {m.linkname!r} in {path}: it points outside the target folder"
                    ) from None
            elif not (m.isfile() or m.isdir()):
                raise UnsafeArchiveError(f"unsafe member {m.name!r} in {path}: devices and fifos are not extracted")
        for m in members:
            target = _inside(out, _check_member_name(m.name, path))
            if m.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif m.isfile():
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tf.extractfile(m)
                assert src is not None
                with src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
                written.append(target)
            else:  # a link checked above to stay inside dest
                target.parent.mkdir(parents=True, exist_ok=True)
                if m.issym():
                    target.unlink(missing_ok=True)
                    os.symlink(m.linkname, target)
                else:
                    source = _inside(out, _check_member_name(m.linkname, path))
                    shutil.copyfile(source, target)
                    written.append(target)
    return written


def read_member_bytes(archive: str | os.PathLike[str], names: Iterable[str]) -> dict[str, bytes]:
    """The contents of the members ``names`` (exact, normalised paths); :class:`DataScriptError` if one is absent."""
    wanted = set(names)
    found: dict[str, bytes] = {}
    for rel, f in iter_archive_files(archive):
        if rel in wanted:
            found[rel] = f.read()
    missing = sorted(wanted - set(found))
    if missing:
        raise DataScriptError(f"{archive} lacks {', '.join(missing)}: is it the right (complete) archive?")
    return found


def copy_stream(src: IO[bytes], dest: Path) -> None:
    """Write a member's stream to ``dest`` (parents created)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as out:
        shutil.copyfileobj(src, out, _CHUNK)


# ------------------------------------------------------------------------------- prepared outputs


def write_index(path: Path, rows: Iterable[tuple[str, int]]) -> int:
    """Write an index CSV (header ``path,label``); return the number of rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label"])
        for rel, label in rows:
            writer.writerow([rel, int(label)])
            n += 1
    return n


def write_classes(path: Path, names: Sequence[str]) -> None:
    """Write ``classes.txt``: one class name a line, line i = label i."""
    for n in names:
        if "\n" in n or not n.strip():
            raise DataScriptError(f"invalid class name {n!r}")
    path.write_text("".join(f"{n}\n" for n in names), encoding="utf-8")


def class_splits(num_classes: int, parts: Sequence[int] = (2, 4)) -> dict[str, list[list[int]]]:
    """Class-disjoint parts for multi-teacher experiments: ``{"2_parts": [[0..], [..]], "4_parts": ...}``.

    Rule (as the class-disjoint teachers of Shen et al., AAAI 2019): the class ids ``0..C-1`` are cut
    into ``k`` contiguous blocks of near-equal size, block ``i`` = ``[round(i*C/k), round((i+1)*C/k))``
    (:func:`kae_utils.data.subsets.split_classes`). The parts are disjoint and cover every class.
    """
    return {f"{k}_parts": [list(p) for p in split_classes(num_classes, k)] for k in parts if k <= num_classes}


def write_class_splits(out_dir: Path, num_classes: int, parts: Sequence[int] = (2, 4)) -> Path:
    """Write :func:`class_splits` to ``out_dir/splits.json``."""
    path = out_dir / "splits.json"
    payload = {
        "rule": "class ids 0..C-1 cut into k contiguous blocks [round(i*C/k), round((i+1)*C/k))",
        "num_classes": num_classes,
        **class_splits(num_classes, parts),
    }
    path.write_text(json.dumps(payload, indent=1) + "\n")
    return path


def resize_copies(
    images_dir: Path, out_dir: Path, size: int, rel_paths: Iterable[str], log: Log | None = None
) -> int:
    """Save copies of ``rel_paths`` with their shorter side resized to ``size`` (JPEG, quality 95).

    The aspect ratio is kept (no crop), so later random crops still see the whole image; the
    loader centre-crops. Returns the number of images written.
    """
    from PIL import Image

    if size < 1:
        raise DataScriptError(f"--size must be positive; got {size}")
    n = 0
    for rel in rel_paths:
        target = out_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(images_dir / rel) as img:
            img = img.convert("RGB")
            w, h = img.size
            scale = size / min(w, h)
            img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BICUBIC)
            img.save(target, format="JPEG", quality=95)
        n += 1
        if log is not None and n % 2000 == 0:
            log(f"  resized {n} images")
    return n

