"""The one atomic write of the project: a temp file in the same directory, fsync, rename, fsync the directory.

A reader (or a process resumed after a crash) sees either the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO


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
