"""Running a user's program once per evaluation and reading its metrics back (a command objective).

Metrics (:func:`parse_metrics`), in this order of precedence
    1. ``<workdir>/metrics.json`` when the program wrote it during this attempt (its size, mtime or inode
       changed; a file left over from an earlier attempt is ignored) and it holds a JSON object with at least
       one numeric value;
    2. otherwise the last line of this attempt's stdout that is a JSON object with at least one numeric value
       (lines are stripped; other lines, and JSON objects without a numeric value, are skipped; only the last
       8 MiB of an attempt's stdout are searched);
    3. otherwise none (``metrics`` is None).
    Only int and float values are kept (not bool, not nested values, not strings); ``NaN``/``Infinity`` are
    kept as floats: the caller decides what a non-finite metric means. The source is ``"metrics.json"``,
    ``"stdout"`` or ``""``; a metrics.json that was written but is unusable is reported in it, e.g.
    ``"stdout; metrics.json (not a JSON object; ignored)"`` or ``"metrics.json (not valid JSON: ...; ignored)"``.

Running (:func:`run_command`)
    The child gets exactly the environment it is given (build it with :func:`command_environment`), stdin from
    /dev/null, and its own session (process group), so that it and everything it starts can be signalled
    together. stdout and stderr are appended to ``<workdir>/stdout.log`` and ``<workdir>/stderr.log`` (one
    ``=== attempt started <iso time> ===`` header per attempt), not held in memory; the outcome carries the
    last 2000 characters of each that this attempt wrote.

    On the timeout, and when the wait is interrupted by any exception (SystemExit from a signal handler,
    KeyboardInterrupt, ...), the whole group gets SIGTERM (and SIGCONT, so a stopped process sees it), then
    SIGKILL after ``grace_s`` if anything in it is still alive; an interruption is re-raised afterwards.
    Processes the program left behind in its group after exiting normally are terminated the same way.
    A process that leaves the group on purpose (``setsid``) is out of reach; Slurm's cgroup catches those in
    an array task.

    ``returncode`` is the child's exit status; negative ``-N`` when a signal N it did not get from us killed it
    (``-9``: e.g. the OOM killer); None when it timed out and our SIGTERM/SIGKILL killed it. A child that traps
    SIGTERM on the timeout and exits by itself within the grace reports its own exit status, with
    ``timed_out=True``: check ``timed_out`` first.

    Only the thread that runs :func:`run_command` can be interrupted: Python delivers signals to the main
    thread. A process that should take its child down when it is sent SIGTERM (a pool worker stopped on a
    per-evaluation timeout) calls :func:`install_termination_handler` first.
"""

from __future__ import annotations

import io
import json
import math
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType

from workflow.objectives.placeholders import check_argv_type

TAIL_CHARS = 2000
METRICS_FILE = "metrics.json"
STDOUT_LOG = "stdout.log"
STDERR_LOG = "stderr.log"
_METRICS_WINDOW_BYTES = 8 * 1024 * 1024
_TAIL_BYTES = 4 * TAIL_CHARS + 16  # enough bytes for TAIL_CHARS characters of UTF-8
_POLL_S = 0.02
_KILL_WAIT_S = 10.0  # after SIGKILL: bounded, a process stuck in the kernel (D state) must not hang us forever

def _numeric(obj: dict[object, object]) -> dict[str, float]:
    kept: dict[str, float] = {}
    for key, value in obj.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        try:
            kept[str(key)] = float(value)
        except OverflowError:  # an int too large for a float
            kept[str(key)] = math.copysign(math.inf, value)
    return kept


def _from_file(path: Path) -> tuple[dict[str, float] | None, str]:
    """The file's metrics, or None and why not."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"unreadable: {exc}"
    try:
        obj = json.loads(text)
    except ValueError as exc:
        return None, f"not valid JSON: {exc}"
    if not isinstance(obj, dict):
        return None, "not a JSON object"
    metrics = _numeric(obj)
    if not metrics:
        return None, "no numeric value"
    return metrics, ""


def _from_stdout(stdout: str) -> dict[str, float] | None:
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if not (line.startswith("{") and line.endswith("}")):
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            metrics = _numeric(obj)
            if metrics:
                return metrics
    return None


def parse_metrics(stdout: str, metrics_file: Path | None) -> tuple[dict[str, float] | None, str]:
    """The metrics and where they came from: ``"metrics.json"``, ``"stdout"`` or ``""`` (see the module docstring).

    ``metrics_file`` is given only when it was written during this attempt; it wins when it exists and holds a
    JSON object with a numeric value. One that does not is ignored (stdout is used) and reported in the source.
    """
    problem = ""
    if metrics_file is not None and metrics_file.exists():
        metrics, why = _from_file(metrics_file)
        if metrics is not None:
            return metrics, METRICS_FILE
        problem = f"{METRICS_FILE} ({why}; ignored)"
    metrics = _from_stdout(stdout)
    if metrics is not None:
        return metrics, "stdout" + (f"; {problem}" if problem else "")
    return None, problem


# ---------------------------------------------------------------------------------------------------- running


@dataclass(frozen=True)
class CommandOutcome:
    """What one run of the command did. ``returncode`` None: it timed out and we killed it."""

    returncode: int | None
    timed_out: bool
    seconds: float
    stdout_tail: str
    stderr_tail: str
    metrics: dict[str, float] | None
    metrics_source: str


def command_environment(
    base: Mapping[str, str], *, name: str, workdir: Path, seed: int, attempt: int
) -> dict[str, str]:
    """``base`` plus ``GASLURM_EVAL_NAME``, ``GASLURM_WORKDIR`` (absolute), ``GASLURM_SEED``, ``GASLURM_ATTEMPT``."""
    env = dict(base)
    env["GASLURM_EVAL_NAME"] = str(name)
    env["GASLURM_WORKDIR"] = os.path.abspath(workdir)
    env["GASLURM_SEED"] = str(int(seed))
    env["GASLURM_ATTEMPT"] = str(int(attempt))
    return env


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    """Whether a process that is not a zombie is left in process group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True  # no /proc: zombies cannot be told apart, count them as alive
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()  # after "pid (comm) ": state ppid pgrp ...
        if len(fields) >= 3 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


def _all_gone(proc: subprocess.Popen[bytes]) -> bool:
    return proc.poll() is not None and not _group_alive(proc.pid)


def terminate_group(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM the process group of ``proc`` (started with ``start_new_session=True``), wait up to ``grace_s`` for
    all of it to exit, then SIGKILL what is left; ``proc`` is reaped. Does nothing when all of it is gone already.
    An exception while waiting (a second interruption) SIGKILLs the group at once and is re-raised."""
    pgid = proc.pid  # the leader of its own session and group
    if _all_gone(proc):
        return
    _signal_group(pgid, signal.SIGTERM)
    _signal_group(pgid, signal.SIGCONT)
    try:
        deadline = time.monotonic() + max(grace_s, 0.0)
        while not _all_gone(proc) and time.monotonic() < deadline:
            time.sleep(_POLL_S)
    except BaseException:
        _signal_group(pgid, signal.SIGKILL)
        raise
    if _all_gone(proc):
        return
    _signal_group(pgid, signal.SIGKILL)
    try:
        proc.wait(timeout=_KILL_WAIT_S)
    except subprocess.TimeoutExpired:
        pass


def _raise_system_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def install_termination_handler() -> None:
    """Make SIGTERM raise ``SystemExit(143)`` in the main thread, so that ``finally`` blocks run (and
    :func:`run_command` takes its child down). A no-op when called from another thread."""
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGTERM, _raise_system_exit)


def _open_log(path: Path) -> tuple[io.BufferedWriter, int]:
    """``path`` opened for appending, with this attempt's header written; and the offset after the header."""
    needs_newline = False
    if path.exists() and path.stat().st_size > 0:
        with open(path, "rb") as existing:
            existing.seek(-1, os.SEEK_END)
            needs_newline = existing.read(1) != b"\n"
    handle = open(path, "ab")  # noqa: SIM115 - closed by the caller after the child is gone
    stamp = datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")
    handle.write(("\n" if needs_newline else "").encode() + f"=== attempt started {stamp} ===\n".encode())
    handle.flush()
    return handle, handle.tell()


def _read_from(path: Path, offset: int, limit: int) -> tuple[str, bool]:
    """At most the last ``limit`` bytes written to ``path`` after ``offset``, decoded; and whether cut."""
    try:
        with open(path, "rb") as handle:
            end = handle.seek(0, os.SEEK_END)
            start = max(offset, end - limit)
            handle.seek(start)
            data = handle.read(end - start)
    except OSError:
        return "", False
    return data.decode("utf-8", errors="replace"), start > offset


def _file_state(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def run_command(
    argv: Sequence[str],
    *,
    cwd: Path | None,
    env: Mapping[str, str],
    workdir: Path,
    timeout_s: float | None = None,
    grace_s: float = 10.0,
) -> CommandOutcome:
    """Run ``argv`` (already rendered) to its end, the timeout, or an interruption; see the module docstring.

    ``env`` is the child's complete environment. OSError from starting the program (not found, not executable)
    is raised, after a note in stderr.log. Any BaseException while waiting terminates the group, then propagates.
    """
    check_argv_type(argv)
    if len(argv) == 0:
        raise ValueError("the command is empty: argv needs at least the program to run")
    if timeout_s is not None and not timeout_s > 0:
        raise ValueError(f"timeout_s must be positive or None, not {timeout_s!r}")
    workdir.mkdir(parents=True, exist_ok=True)
    stdout_path, stderr_path, metrics_path = workdir / STDOUT_LOG, workdir / STDERR_LOG, workdir / METRICS_FILE
    metrics_before = _file_state(metrics_path)
    out_handle, out_offset = _open_log(stdout_path)
    try:
        err_handle, err_offset = _open_log(stderr_path)
    except BaseException:
        out_handle.close()
        raise
    timed_out = False
    started = time.monotonic()
    try:
        try:
            proc = subprocess.Popen(
                list(argv),
                shell=False,
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=out_handle,
                stderr=err_handle,
                start_new_session=True,
            )
        except OSError as exc:
            err_handle.write(f"=== could not start {argv[0]!r}: {exc} ===\n".encode())
            raise
        finished = False
        try:
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            # on the timeout: the child; after a normal exit: what it left running in its group
            terminate_group(proc, grace_s)
            finished = True
        finally:
            if not finished:  # interrupted: take the group down, then let the exception go on
                terminate_group(proc, grace_s)
        seconds = time.monotonic() - started
    finally:
        out_handle.close()
        err_handle.close()
    returncode = proc.returncode
    if timed_out and (returncode is None or returncode < 0):
        returncode = None  # killed by us (a negative status here is our SIGTERM or SIGKILL)
    stdout, cut = _read_from(stdout_path, out_offset, _METRICS_WINDOW_BYTES)
    if cut:  # the window starts inside a line: drop that part line
        stdout = stdout.partition("\n")[2]
    stderr, _ = _read_from(stderr_path, err_offset, _TAIL_BYTES)
    after = _file_state(metrics_path)
    written = after is not None and after != metrics_before
    metrics, source = parse_metrics(stdout, metrics_path if written else None)
    return CommandOutcome(
        returncode=returncode,
        timed_out=timed_out,
        seconds=seconds,
        stdout_tail=stdout[-TAIL_CHARS:],
        stderr_tail=stderr[-TAIL_CHARS:],
        metrics=metrics,
        metrics_source=source,
    )
