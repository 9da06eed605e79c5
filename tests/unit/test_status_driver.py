"""``status`` says whether a driver holds the run (read from its lease, never taking the lock) and, when none
does, the exact command that continues it."""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import socket
import time

from tests.support import SMOKE
from workflow.cli import main
from workflow.config import load_config
from workflow.store import RunStore
from workflow.store.layout import LEASE
from workflow.store.lock import DriverLock, read_lease


def _run_dir(tmp_path):
    run_dir = tmp_path / "my run"
    RunStore.create(run_dir, load_config(SMOKE, []))
    return run_dir


def _status(run_dir, capsys, *extra: str):
    assert main(["status", str(run_dir), *extra]) == 0
    out = capsys.readouterr().out
    return json.loads(out) if extra else out


def test_no_driver_status_names_the_exact_resume_command(tmp_path, capsys):
    run_dir = _run_dir(tmp_path)
    status = _status(run_dir, capsys, "--json")
    command = f"python -m workflow resume {shlex.quote(str(run_dir))}"
    assert status["driver"] == {"held": False, "host": None, "pid": None, "heartbeat_age_s": None}
    assert status["resume"] == command
    assert f"driver: none; continue with `{command}`" in _status(run_dir, capsys)


def test_a_holding_driver_is_named_and_status_never_touches_the_lock(tmp_path, capsys, monkeypatch):
    run_dir = _run_dir(tmp_path)
    with DriverLock(run_dir, timeout_s=120):
        lease = read_lease(run_dir)
        calls: list[int] = []
        real_flock = fcntl.flock
        monkeypatch.setattr(fcntl, "flock", lambda fd, op: calls.append(op) or real_flock(fd, op))
        status = _status(run_dir, capsys, "--json")
        text = _status(run_dir, capsys)
        assert calls == []  # status took no lock
        assert read_lease(run_dir) == lease  # nor rewrote the lease
    driver = status["driver"]
    assert driver["held"] is True and driver["pid"] == os.getpid() and driver["host"] == socket.gethostname()
    assert 0 <= driver["heartbeat_age_s"] < 120 and status["resume"] is None
    assert f"driver: pid {os.getpid()} on {socket.gethostname()}, last heartbeat" in text
    assert "resume" not in text


def test_a_stale_lease_is_not_a_holder(tmp_path, capsys):
    run_dir = _run_dir(tmp_path)
    (run_dir / LEASE).write_text(json.dumps({"host": "other-node", "pid": 4242, "slurm_job": "9",
                                             "heartbeat": time.time() - 600, "timeout_s": 120}))
    status = _status(run_dir, capsys, "--json")
    assert status["driver"]["held"] is False and status["driver"]["host"] == "other-node"
    assert status["driver"]["heartbeat_age_s"] >= 600 and status["resume"].endswith(shlex.quote(str(run_dir)))
    (run_dir / LEASE).write_text(json.dumps({"host": "other-node", "pid": 4242, "heartbeat": time.time() - 5,
                                             "timeout_s": 120}))
    status = _status(run_dir, capsys, "--json")
    assert status["driver"]["held"] is True and status["resume"] is None
