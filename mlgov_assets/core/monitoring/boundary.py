"""The landing folder is a trust boundary: only regular files of bounded size are ever read.

A symlink, FIFO, socket, device, directory or hard-linked file is refused by name from ``lstat``
alone: its target is never opened. A file is read through one descriptor opened with
``O_NOFOLLOW | O_NONBLOCK`` and checked again with ``fstat`` (a file swapped for a link or a FIFO
after the scan is refused, not followed or blocked on), and never more than the policy's
``ingestion.max_file_bytes`` are read.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from mlgov_assets.core.errors import InputError

if TYPE_CHECKING:
    from mlgov_assets.core.governance.policy import Ingestion

_KINDS = (
    (stat.S_ISLNK, "a symbolic link (never followed)"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


class LandingRefusal(InputError):
    """A landing entry refused at the boundary; ``rule`` names the rule, the message says why."""

    def __init__(self, name: str, rule: str, why: str) -> None:
        self.name, self.rule, self.why = name, rule, why
        super().__init__(f"{name!r}: {why}")


def refusal(name: str, st: os.stat_result, limits: Ingestion) -> LandingRefusal | None:
    """Why the entry with this ``lstat`` result may not be read, or None for a regular file within caps."""
    for test, kind in _KINDS:
        if test(st.st_mode):
            return LandingRefusal(name, "regular file", f"is {kind}, not a regular file: refused unread")
    if not stat.S_ISREG(st.st_mode):
        return LandingRefusal(name, "regular file", "is not a regular file: refused unread")
    if st.st_nlink > 1:
        return LandingRefusal(
            name, "single link", f"has {st.st_nlink} hard links (it may be another file's content): refused unread"
        )
    if st.st_size > limits.max_file_bytes:
        return LandingRefusal(
            name,
            "ingestion.max_file_bytes",
            f"is {st.st_size} bytes, over ingestion.max_file_bytes ({limits.max_file_bytes}): refused unread",
        )
    return None


def entry_identity(st: os.stat_result) -> str:
    """An md5-shaped identity of an entry that is never read (kind, size, mtime, inode)."""
    blob = f"unread:{stat.S_IFMT(st.st_mode)}:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"
    return hashlib.md5(blob.encode(), usedforsecurity=False).hexdigest()


def check_entry(path: Path, limits: Ingestion) -> LandingRefusal | None:
    """:func:`refusal` for ``path`` (its own ``lstat``; links are not followed)."""
    return refusal(path.name, os.lstat(path), limits)


def _chunks(path: Path, limits: Ingestion) -> Iterator[bytes]:
    """The bytes of a regular landing file in chunks, read without following a link and never over
    the cap; :class:`LandingRefusal` naming the rule for anything else."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as exc:  # ELOOP: a symlink; ENXIO: a FIFO without writer; EACCES ...
        found = check_entry(path, limits) if os.path.lexists(path) else None
        raise found or LandingRefusal(path.name, "readable", f"cannot be opened ({type(exc).__name__})") from exc
    try:
        found = refusal(path.name, os.fstat(fd), limits)
        if found is not None:
            raise found
        total = 0
        while chunk := os.read(fd, 1 << 20):
            total += len(chunk)
            if total > limits.max_file_bytes:  # grew after the fstat
                why = f"grew over ingestion.max_file_bytes ({limits.max_file_bytes})"
                raise LandingRefusal(path.name, "ingestion.max_file_bytes", why)
            yield chunk
    finally:
        os.close(fd)


def read_landing_file(path: Path, limits: Ingestion) -> bytes:
    """The bytes of a regular landing file (see :func:`_chunks`)."""
    return b"".join(_chunks(path, limits))


def landing_md5(path: Path, limits: Ingestion) -> str:
    """md5 of a landing entry: of its bytes (streamed) when it may be read, else of its ``lstat``
    identity."""
    if check_entry(path, limits) is not None:
        return entry_identity(os.lstat(path))
    digest = hashlib.md5(usedforsecurity=False)
    try:
        for chunk in _chunks(path, limits):
            digest.update(chunk)
    except LandingRefusal:
        return entry_identity(os.lstat(path))
    return digest.hexdigest()
