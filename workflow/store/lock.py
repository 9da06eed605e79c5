"""One driver per run directory: a ``flock`` on ``RUN_DIR/driver.lock`` plus a lease, ``RUN_DIR/driver.lease``.

Why both. ``flock`` is exact where it works: the kernel drops it when its holder dies, so it never goes stale.
On shared filesystems it does not always work: Lustre mounted without ``flock`` answers ENOSYS (or EOPNOTSUPP,
ENOLCK), and on GPFS a flock is node-local, so a driver on the login node and a driver-as-a-job on a compute node
could both hold it. The lease holds across nodes: a small JSON file naming the holder (host, pid, Slurm job id)
and a heartbeat time that a daemon thread of the holder refreshes every ``timeout / 4`` seconds.

Rules for taking the lease (see :meth:`DriverLock.acquire`):

- no lease, or the lease is ours: take it;
- a lease from this host whose pid is dead: its driver died, take it over at once (one warning line);
- a lease whose heartbeat is older than the timeout: its driver died or lost the filesystem, take it over with
  one warning line naming whose lease it was;
- otherwise (fresh, and from another host or a live pid): refuse with one line naming the holder.

The lease is created with ``link`` (atomic, also on NFS) and refreshed with write-to-temp + ``rename``, so a
reader never sees a half-written lease. The heartbeat is wall-clock time: hosts sharing a run directory are
assumed to keep their clocks within a small fraction of the timeout of each other (NTP does).

The timeout is :data:`LEASE_TIMEOUT_S` (120 s), or ``GASLURM_LEASE_TIMEOUT_S`` from the environment.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

from workflow.errors import RunDirError
from workflow.store.atomic import write_all
from workflow.store.layout import LEASE, LOCK

log = logging.getLogger(__name__)

#: Seconds without a heartbeat after which another driver may take the lease over.
LEASE_TIMEOUT_S = 120.0
#: Environment variable that overrides :data:`LEASE_TIMEOUT_S` (tests make it short).
LEASE_TIMEOUT_ENV = "GASLURM_LEASE_TIMEOUT_S"
#: What ``flock`` answers on a filesystem that does not support it (Lustre without ``-o flock``, some NFS).
FLOCK_UNSUPPORTED = frozenset({errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK})

# Logged once per process: a driver re-takes the lock several times and one line says it all.
_flock_unsupported_logged = False


def lease_timeout_s() -> float:
    """The lease timeout: ``GASLURM_LEASE_TIMEOUT_S`` if set to a positive number, else :data:`LEASE_TIMEOUT_S`."""
    raw = os.environ.get(LEASE_TIMEOUT_ENV, "").strip()
    if not raw:
        return LEASE_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise RunDirError(f"{LEASE_TIMEOUT_ENV}={raw!r}: must be a positive number of seconds")
    return value


def read_lease(run_dir: Path) -> dict[str, Any]:
    """The lease of ``run_dir`` as written by its holder (empty when there is none or it cannot be read).

    Pure reading: never takes or disturbs the lock (``status`` uses it).
    """
    return _read_json(Path(run_dir) / LEASE)


def heartbeat_age_s(lease: dict[str, Any], now: float | None = None) -> float | None:
    """Seconds since the lease's last heartbeat (never negative: clocks may differ a little); None without one."""
    beat = lease.get("heartbeat")
    if not isinstance(beat, (int, float)):
        return None
    return max(0.0, (time.time() if now is None else now) - float(beat))


def lease_holder(run_dir: Path) -> dict[str, Any]:
    """Whether a driver holds ``run_dir``, read from its lease alone (never takes or disturbs the lock).

    ``{"held": bool, "host", "pid", "slurm_job", "heartbeat_age_s"}``: ``held`` when the lease's heartbeat is
    within its timeout and, for a lease from this host, its pid is alive; the other keys name the (last) holder,
    None without a lease.
    """
    lease = read_lease(run_dir)
    age = heartbeat_age_s(lease)
    timeout = lease.get("timeout_s")
    timeout = float(timeout) if isinstance(timeout, (int, float)) else lease_timeout_s()
    dead_here = lease.get("host") == socket.gethostname() and not _pid_alive(lease.get("pid"))
    return {"held": bool(lease) and age is not None and age <= timeout and not dead_here,
            "host": lease.get("host"), "pid": lease.get("pid"), "slurm_job": lease.get("slurm_job"),
            "heartbeat_age_s": None if age is None else round(age, 1)}


def _pid_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def describe_holder(lease: dict[str, Any]) -> str:
    """``pid 123 on host n01 (Slurm job 456)``: who holds a lease, for messages."""
    return (f"pid {lease.get('pid', '?')} on host {lease.get('host', '?')} "
            f"(Slurm job {lease.get('slurm_job', '-')})")


class DriverLock:
    """The run directory's lock: ``with DriverLock(run_dir): ...`` holds it; a second holder is refused.

    ``timeout_s``: seconds without a heartbeat after which the lease may be taken over (default
    :func:`lease_timeout_s`).
    """

    def __init__(self, run_dir: Path, timeout_s: float | None = None) -> None:
        self.path = Path(run_dir) / LOCK
        self.lease_path = Path(run_dir) / LEASE
        self.timeout_s = lease_timeout_s() if timeout_s is None else float(timeout_s)
        self._fd: int | None = None
        self._token: str | None = None
        self._record: dict[str, Any] = {}
        self._took_over = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def holder(self) -> dict[str, object]:
        """The current (or last) holder: the lease while one exists, else what the lock file last recorded."""
        return read_lease(self.path.parent) or self._lock_record()

    # ------------------------------------------------------------------------------------------------ acquire
    def acquire(self) -> None:
        """Take the flock (where the filesystem supports it) and the lease; :class:`RunDirError` if held."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            self._flock(fd)
            previous = self._lock_record()
            self._take_lease()
        except BaseException:
            os.close(fd)
            raise
        if previous.get("pid") and not previous.get("released") and not self._took_over:
            log.warning("the previous driver (%s) ended without releasing the run directory; taking over",
                        describe_holder(previous))
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({**self._record, "released": False}).encode(), 0)
            os.fsync(fd)
        except BaseException:  # a full disk: leave nothing held behind
            self._drop_lease()
            os.close(fd)
            raise
        self._fd = fd
        self._stop.clear()
        self._thread = threading.Thread(target=self._heartbeat, name=f"lease {self.path.parent}", daemon=True)
        self._thread.start()

    def _flock(self, fd: int) -> None:
        global _flock_unsupported_logged
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunDirError(f"run directory {self.path.parent} is in use by another driver "
                              f"({describe_holder(self.holder())}); stop it first or follow it with `status`"
                              ) from None
        except OSError as exc:
            if exc.errno not in FLOCK_UNSUPPORTED:
                raise
            # Lustre without flock and the like: the lease alone keeps a second driver out.
            if not _flock_unsupported_logged:
                _flock_unsupported_logged = True
                log.info("flock is not supported on %s (%s); the lease %s alone guards the run directory",
                         self.path.parent, errno.errorcode.get(exc.errno or 0, exc.errno), self.lease_path.name)

    def _lock_record(self) -> dict[str, Any]:
        return _read_json(self.path)

    def _take_lease(self) -> None:
        self._took_over = False
        self._token = uuid.uuid4().hex
        self._record = {"host": socket.gethostname(), "pid": os.getpid(),
                        "slurm_job": os.environ.get("SLURM_JOB_ID", "-"), "token": self._token,
                        "timeout_s": self.timeout_s, "heartbeat": time.time()}
        for _ in range(3):  # a lease that vanishes between our look and our link is looked at again
            if self._link_lease():
                return
            lease = read_lease(self.path.parent)
            if not lease:
                if self._unreadable_lease_is_stale():
                    self._move_aside(None)
                continue
            self._judge(lease)  # raises when it must be respected
            self._move_aside(lease)
        raise RunDirError(f"run directory {self.path.parent}: could not take the lease {self.lease_path.name} "
                          "(another driver is taking it at the same time); try again")

    def _judge(self, lease: dict[str, Any]) -> None:
        """Return if ``lease`` may be taken over (with a warning); raise :class:`RunDirError` if not."""
        age = heartbeat_age_s(lease)
        same_host = lease.get("host") == socket.gethostname()
        job = os.environ.get("SLURM_JOB_ID", "-")
        if same_host and not _pid_alive(lease.get("pid")):
            log.warning("taking over the lease of a driver that died: %s, last heartbeat %s ago",
                        describe_holder(lease), _seconds(age))
        elif job != "-" and lease.get("slurm_job") == job and not same_host:
            # Our own job's earlier run, requeued onto another node: Slurm runs a job once at a time, so it is gone.
            log.warning("taking over the lease of this job's earlier run: %s, last heartbeat %s ago",
                        describe_holder(lease), _seconds(age))
        elif age is None or age > self.timeout_s:
            log.warning("taking over a stale lease: %s, last heartbeat %s ago (timeout %s s)",
                        describe_holder(lease), _seconds(age), f"{self.timeout_s:g}")
        else:
            raise RunDirError(
                f"run directory {self.path.parent} is in use by another driver ({describe_holder(lease)}, "
                f"last heartbeat {_seconds(age)} ago, lease timeout {self.timeout_s:g} s); "
                "stop it first or follow it with `status`")
        self._took_over = True

    def _unreadable_lease_is_stale(self) -> bool:
        """A lease that exists but cannot be parsed (written by hand, truncated): stale once its mtime is old."""
        try:
            age = time.time() - self.lease_path.stat().st_mtime
        except FileNotFoundError:
            return False
        if age > self.timeout_s:
            log.warning("taking over an unreadable lease %s, last written %s ago", self.lease_path, _seconds(age))
            self._took_over = True
            return True
        raise RunDirError(f"run directory {self.path.parent}: the lease {self.lease_path.name} cannot be read and "
                          f"was written {_seconds(age)} ago (it is taken over after {self.timeout_s:g} s)")

    def _move_aside(self, judged: dict[str, Any] | None) -> None:
        """Rename the judged lease away (atomic: one contender wins), then check it was the one we judged."""
        aside = self.lease_path.with_name(f"{LEASE}.stale.{self._token}")
        try:
            os.rename(self.lease_path, aside)
        except FileNotFoundError:
            return  # another contender moved it first; we look again
        moved = _read_json(aside)
        if judged is not None and moved.get("token") != judged.get("token"):
            # Between our look and our rename a contender took it over: put its fresh lease back, unless yet
            # another lease appeared in between (then both are looked at again).
            try:
                os.link(aside, self.lease_path)
            except FileExistsError:
                pass
        aside.unlink(missing_ok=True)

    def _link_lease(self) -> bool:
        """Create the lease with our record; False if one exists. ``link`` of a finished temp file is atomic."""
        tmp = self._write_temp()
        try:
            os.link(tmp, self.lease_path)
            return True
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS):
                raise
            return self._create_exclusive()  # a filesystem without hard links
        finally:
            tmp.unlink(missing_ok=True)

    def _create_exclusive(self) -> bool:
        try:
            fd = os.open(self.lease_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return False
        try:
            os.write(fd, json.dumps(self._record).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return True

    def _write_temp(self) -> Path:
        tmp = self.lease_path.with_name(f"{LEASE}.tmp.{self._token}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            write_all(fd, json.dumps(self._record).encode())
            os.fsync(fd)
        except BaseException:  # a full disk: no half-written temp file left behind
            tmp.unlink(missing_ok=True)
            raise
        finally:
            os.close(fd)
        return tmp

    # ---------------------------------------------------------------------------------------------- heartbeat
    def _heartbeat(self) -> None:
        interval = max(self.timeout_s / 4, 0.01)
        while not self._stop.wait(interval):
            current = read_lease(self.path.parent)
            if current.get("token") != self._token:
                # Taken over (our heartbeats did not reach the filesystem in time): say so once, stop beating.
                log.error("the lease %s was taken over by %s; this driver no longer holds the run directory",
                          self.lease_path, describe_holder(current) if current else "nobody (it was removed)")
                return
            self._record["heartbeat"] = time.time()
            try:
                os.replace(self._write_temp(), self.lease_path)
            except OSError as exc:  # a filesystem hiccup: the next beat tries again
                log.warning("could not refresh the lease %s: %s", self.lease_path, exc)

    # ------------------------------------------------------------------------------------------------ release
    def release(self) -> None:
        """Stop the heartbeat, remove our lease, record a clean release, drop the flock."""
        if self._fd is None:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._drop_lease()
        try:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, json.dumps({**self._record, "released": True}).encode(), 0)
        except OSError as exc:  # a full disk: the next driver warns that this one did not release; no harm
            log.info("could not record the release in %s: %s", self.path, exc)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        except OSError as exc:
            if exc.errno not in FLOCK_UNSUPPORTED:
                raise
        os.close(self._fd)
        self._fd = None

    def _drop_lease(self) -> None:
        if read_lease(self.path.parent).get("token") == self._token:
            self.lease_path.unlink(missing_ok=True)

    def __enter__(self) -> DriverLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _seconds(age: float | None) -> str:
    return "?" if age is None else f"{age:.0f} s"
