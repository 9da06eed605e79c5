"""The one atomic write of the project: a temp file in the same directory, fsync, rename, fsync the directory;
the one whole append (all of it or none of it); and the one way a full disk is reported.

A reader (or a process resumed after a crash) sees either the old file or the new one, never half of one. A
write that meets a full disk (ENOSPC, EDQUOT) leaves the old file as it was: the temp file is removed, a
partial append is cut off again.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from workflow.errors import DISK_FULL, DiskFullError
from workflow.store.layout import resume_command


def atomic_write(path: Path, write: Callable[[BinaryIO], object], mode: int = 0o600, durable: bool = True) -> None:
    """Create or replace ``path`` with what ``write`` writes to the binary handle it is given (``durable``:
    also fsync'ed, file and directory, so that the new content survives a machine crash too)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str, mode: int = 0o600, durable: bool = True) -> None:
    """:func:`atomic_write` of a text (UTF-8)."""
    atomic_write(path, lambda handle: handle.write(text.encode()), mode, durable)


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new entry in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` (``os.write`` may write less, e.g. as a filesystem fills up)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def append_whole(path: Path, data: bytes) -> None:
    """Append ``data`` to ``path`` (created user-only) all or nothing: a write that fails part-way (a full
    disk) is cut off again before the error is raised, so the file never ends with half of ``data``."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        end = os.fstat(fd).st_size
        try:
            write_all(fd, data)
        except OSError:
            truncate_quietly(fd, end)
            raise
    finally:
        os.close(fd)


def truncate_quietly(fd: int, size: int) -> None:
    """Cut the file back to ``size`` after a failed write (shrinking needs no space); a failure is left to the
    reader, which skips a torn last line."""
    with suppress(OSError):
        os.ftruncate(fd, size)


@contextmanager
def reporting_full_disk(path: Path, run_dir: Path | None = None) -> Iterator[None]:
    """Turn a full disk (ENOSPC, EDQUOT) met while writing ``path`` into :class:`DiskFullError`, naming the
    command that continues ``run_dir``'s run once space is freed."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in DISK_FULL:
            raise
        raise DiskFullError(path, exc.errno, resume_command(run_dir) if run_dir else None) from exc
