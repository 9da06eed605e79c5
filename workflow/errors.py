"""Errors the user can act on. Each renders as one line naming the key, the value and what is allowed."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

#: The write errors that mean "the filesystem is full": no space left, or the user's quota is spent.
DISK_FULL = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded on the filesystem"}


class WorkflowError(Exception):
    """Base class: the CLI prints ``str(error)`` as one line and exits non-zero (``exit_code``)."""

    exit_code = 2


class ConfigError(WorkflowError):
    """A configuration value is not acceptable."""

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"config error: {key}={format_value(value)}: {allowed}")


class RunDirError(WorkflowError):
    """The run directory cannot be used as asked (different config, locked, corrupt)."""


class ClusterError(WorkflowError):
    """The cluster rejected the request or answered something we cannot use."""


class SearchStopped(WorkflowError):
    """The search stopped early on purpose (e.g. every evaluation of a generation failed); it can be resumed."""

    exit_code = 4


class DiskFullError(WorkflowError):
    """A write failed because its filesystem is full (ENOSPC) or the user's quota there is spent (EDQUOT).

    Raised after the write was undone (the journal ends with its last complete event, ``results.csv`` is its
    old complete self), so freeing space and resuming finishes the run with nothing lost.
    """

    exit_code = 5

    def __init__(self, path: Path | str, code: int, resume: str | None = None) -> None:
        self.path, self.code, self.resume = Path(path), code, resume
        name = errno.errorcode.get(code, str(code))
        free = "free space" if code == errno.ENOSPC else "free space or raise the quota"
        then = f"{free}, then `{resume}`" if resume else f"{free}, then run the command again"
        super().__init__(f"{DISK_FULL.get(code, os.strerror(code))} mounted at {mount_point(self.path)} ({name}) "
                         f"while writing {self.path}; nothing half-written was kept: {then}")

    def with_resume(self, resume: str) -> DiskFullError:
        """The same error naming ``resume`` (the command that continues the run) if it named none."""
        return self if self.resume else DiskFullError(self.path, self.code, resume)


def mount_point(path: Path) -> Path:
    """The mount point of the filesystem that holds ``path`` (which need not exist): the disk that is full."""
    current = Path(os.path.abspath(path))
    while not current.exists() and current != current.parent:
        current = current.parent
    while not os.path.ismount(current):
        current = current.parent
    return current


def format_value(value: Any) -> str:
    """A value as config errors show it: strings quoted, lists bracketed."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, str):
        return repr(value)
    return str(value)
