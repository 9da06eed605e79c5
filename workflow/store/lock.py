"""One driver per run directory: an advisory ``flock`` on ``RUN_DIR/driver.lock``.

The kernel drops the lock when its holder dies (SIGKILL, node reboot, end of allocation), so a lock is never
stale in the sense of blocking forever; the file still names the last holder, which lets us report that an
earlier driver died without a clean exit.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
from pathlib import Path
from types import TracebackType

from workflow.errors import RunDirError
from workflow.store.layout import LOCK

log = logging.getLogger(__name__)


class DriverLock:
    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK
        self._fd: int | None = None

    def holder(self) -> dict[str, object]:
        try:
            data = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = self.holder()
            raise RunDirError(
                f"run directory {self.path.parent} is in use by another driver (pid {holder.get('pid', '?')} on "
                f"{holder.get('host', '?')}, Slurm job {holder.get('slurm_job', '-')}); "
                "stop it first or follow it with `status`"
            ) from None
        previous = self.holder()
        if previous.get("pid") and not previous.get("released"):
            log.warning("the previous driver (pid %s on %s) ended without releasing the run directory; "
                        "taking over", previous.get("pid"), previous.get("host"))
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "slurm_job": os.environ.get("SLURM_JOB_ID", "-"), "released": False}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        record = {**self.holder(), "released": True}
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, json.dumps(record).encode(), 0)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> DriverLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
