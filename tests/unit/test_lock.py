"""The run directory's lock: flock where the filesystem has it, a lease with a heartbeat where it does not
(Lustre without flock answers ENOSYS; GPFS flocks are node-local, so another host is only seen through the
lease). Faked only at the OS boundary: ``fcntl.flock`` and ``socket.gethostname``."""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from workflow.errors import RunDirError
from workflow.store import lock as lock_module
from workflow.store.layout import LEASE, LOCK
from workflow.store.lock import DriverLock, read_lease


def _until(condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout_s`` passes (bounded: never a bare sleep to synchronise)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


@pytest.fixture
def no_flock(monkeypatch):
    """flock as on Lustre mounted without it: every call fails with ENOSYS."""
    def flock(fd: int, operation: int) -> None:
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(fcntl, "flock", flock)
    monkeypatch.setattr(lock_module, "_flock_unsupported_logged", False)


def _write_lease(run_dir: Path, *, host: str, pid: int, age_s: float, job: str = "777") -> dict[str, object]:
    lease = {"host": host, "pid": pid, "slurm_job": job, "token": "theirs", "heartbeat": time.time() - age_s}
    (run_dir / LEASE).write_text(json.dumps(lease))
    return lease


def test_second_driver_is_refused_when_flock_fails_as_on_lustre(tmp_path, no_flock, caplog, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    with caplog.at_level(logging.INFO, logger="workflow.store.lock"), DriverLock(tmp_path) as first:
        with pytest.raises(RunDirError) as refused:
            DriverLock(tmp_path).acquire()
        assert first.holder()["pid"] == os.getpid()
    message = str(refused.value)
    assert "\n" not in message and f"run directory {tmp_path} is in use by another driver (" in message
    assert f"pid {os.getpid()} on host {socket.gethostname()}" in message and "last heartbeat" in message
    unsupported = [r for r in caplog.records if "flock is not supported" in r.getMessage()]
    assert len(unsupported) == 1 and "ENOSYS" in unsupported[0].getMessage()  # logged once for two tries
    assert not (tmp_path / LEASE).exists()
    with DriverLock(tmp_path):  # released: the next driver gets it
        pass


@pytest.mark.parametrize("err", [errno.EOPNOTSUPP, errno.ENOLCK])
def test_other_unsupported_flock_errors_fall_back_to_the_lease(tmp_path, monkeypatch, err):
    def flock(fd: int, operation: int) -> None:
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr(fcntl, "flock", flock)
    with DriverLock(tmp_path):
        assert read_lease(tmp_path)["pid"] == os.getpid()
    assert not (tmp_path / LEASE).exists()


def test_other_flock_errors_are_not_swallowed(tmp_path, monkeypatch):
    def flock(fd: int, operation: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(fcntl, "flock", flock)
    with pytest.raises(OSError):
        DriverLock(tmp_path).acquire()
    assert not (tmp_path / LEASE).exists()


def test_fresh_lease_from_another_host_is_refused_even_with_flock_working(tmp_path):
    # GPFS: the flock here succeeds (it is node-local), the lease from the other node still refuses.
    _write_lease(tmp_path, host="other-node", pid=4242, age_s=3.0)
    with pytest.raises(RunDirError) as refused:
        DriverLock(tmp_path, timeout_s=120).acquire()
    message = str(refused.value)
    assert "\n" not in message
    assert "pid 4242 on host other-node (Slurm job 777)" in message
    assert "last heartbeat 3 s ago" in message and "timeout 120 s" in message
    assert read_lease(tmp_path)["token"] == "theirs"  # untouched
    DriverLock(tmp_path).release()  # releasing a lock never taken does nothing


def test_second_host_sees_our_fresh_lease(tmp_path, no_flock, monkeypatch):
    with DriverLock(tmp_path):
        monkeypatch.setattr(socket, "gethostname", lambda: "login2")
        with pytest.raises(RunDirError, match=f"pid {os.getpid()} on host "):
            DriverLock(tmp_path).acquire()


def test_stale_lease_from_another_host_is_taken_over_with_one_warning(tmp_path, no_flock, caplog):
    _write_lease(tmp_path, host="other-node", pid=4242, age_s=300.0)
    with caplog.at_level(logging.WARNING, logger="workflow.store.lock"), DriverLock(tmp_path, timeout_s=120):
        lease = read_lease(tmp_path)
        assert lease["pid"] == os.getpid() and lease["host"] == socket.gethostname()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "stale lease" in warnings[0] and "pid 4242 on host other-node (Slurm job 777)" in warnings[0]
    assert "300 s ago" in warnings[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK]  # nothing left aside


def test_lease_of_a_dead_pid_on_this_host_is_taken_over_at_once(tmp_path, no_flock, caplog):
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                           check=True)
    dead = int(child.stdout)  # reaped: that pid names no process now (reuse within the test is negligible)
    _write_lease(tmp_path, host=socket.gethostname(), pid=dead, age_s=1.0)
    with caplog.at_level(logging.WARNING, logger="workflow.store.lock"), DriverLock(tmp_path, timeout_s=120):
        assert read_lease(tmp_path)["pid"] == os.getpid()
    assert any(f"pid {dead} on host" in r.getMessage() and "died" in r.getMessage() for r in caplog.records)


def test_requeued_driver_job_takes_over_its_own_earlier_lease(tmp_path, no_flock, monkeypatch):
    _write_lease(tmp_path, host="other-node", pid=4242, age_s=2.0, job="555")
    monkeypatch.setenv("SLURM_JOB_ID", "556")
    with pytest.raises(RunDirError):
        DriverLock(tmp_path, timeout_s=120).acquire()
    monkeypatch.setenv("SLURM_JOB_ID", "555")
    with DriverLock(tmp_path, timeout_s=120):
        assert read_lease(tmp_path)["slurm_job"] == "555" and read_lease(tmp_path)["pid"] == os.getpid()


def test_heartbeat_advances_and_lease_is_removed_on_release(tmp_path, no_flock):
    with DriverLock(tmp_path, timeout_s=0.2) as held:
        first = read_lease(tmp_path)["heartbeat"]
        assert _until(lambda: read_lease(tmp_path).get("heartbeat", first) > first)
        assert held.holder()["pid"] == os.getpid()
    assert not (tmp_path / LEASE).exists()
    assert json.loads((tmp_path / LOCK).read_text())["released"] is True


def test_holder_keeps_refreshing_so_a_short_timeout_does_not_let_a_second_host_in(tmp_path, no_flock, monkeypatch):
    with DriverLock(tmp_path, timeout_s=0.3):
        start = read_lease(tmp_path)["heartbeat"]
        # Wait past the timeout, measured on the lease's own heartbeats: the holder is alive, so it stays fresh.
        assert _until(lambda: read_lease(tmp_path).get("heartbeat", 0) > start + 0.5)
        monkeypatch.setattr(socket, "gethostname", lambda: "login2")
        with pytest.raises(RunDirError, match="in use by another driver"):
            DriverLock(tmp_path, timeout_s=0.3).acquire()


def test_unreadable_lease_is_refused_while_recent(tmp_path, no_flock):
    (tmp_path / LEASE).write_text("{not json")
    with pytest.raises(RunDirError, match="cannot be read"):
        DriverLock(tmp_path, timeout_s=120).acquire()
    old = time.time() - 600
    os.utime(tmp_path / LEASE, (old, old))
    with DriverLock(tmp_path, timeout_s=120):
        assert read_lease(tmp_path)["pid"] == os.getpid()


def test_timeout_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(lock_module.LEASE_TIMEOUT_ENV, "7.5")
    assert DriverLock(tmp_path).timeout_s == 7.5
    monkeypatch.setenv(lock_module.LEASE_TIMEOUT_ENV, "soon")
    with pytest.raises(RunDirError, match="GASLURM_LEASE_TIMEOUT_S='soon': must be a positive number"):
        DriverLock(tmp_path)
    monkeypatch.delenv(lock_module.LEASE_TIMEOUT_ENV)
    assert DriverLock(tmp_path).timeout_s == lock_module.LEASE_TIMEOUT_S
