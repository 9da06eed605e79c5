"""The run directory's journal: append-only, one JSON event per line, the only source of truth.

Everything else in the run directory is rebuilt from it (see :mod:`workflow.store.state`). A torn last line
(a crash mid-write) is ignored by readers and set aside by the next writer (``journal.jsonl.torn-<time>``, one
warning line; the journal is cut back to its last complete line); a corrupt line elsewhere is an error naming
the file and line. A full disk (ENOSPC, EDQUOT) leaves no partial line: the write is cut off again and
:class:`~workflow.errors.DiskFullError` stops the driver.

Durability (group commit): every event is written whole before :meth:`RunStore.append` returns, so a killed
driver (SIGKILL, the end of an allocation) loses nothing: the kernel has the bytes. An fsync, which only a
machine crash needs, costs more than everything else the driver does for an evaluation, so the driver's
frequent events (asked, submitted, result, told) are fsync'ed together: with the first event written
:data:`GROUP_COMMIT_S` or more after the oldest unsynced one, before the driver waits for results, before
anything leaves the machine (a Slurm submission's intent is durable before sbatch runs) and when the driver
stops. After a machine crash at most the events since the last fsync are gone, and none of them can be
missed: asks and tells replay from the seed, a lost result is evaluated again (inline, local) or read back
from its Slurm task.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from workflow.config import Config, from_mapping
from workflow.errors import DISK_FULL, DiskFullError, RunDirError
from workflow.store.atomic import (
    atomic_write,
    atomic_write_text,
    fsync_dir,
    reporting_full_disk,
    truncate_quietly,
    write_all,
)
from workflow.store.events import Created, Enqueued, Event, decode, encode, stamped
from workflow.store.layout import CONFIG, JOURNAL, RESULTS
from workflow.store.lock import DriverLock
from workflow.store.queue import queued, warm_start, warm_start_dir
from workflow.store.results import ResultsFile
from workflow.store.state import RunState, replay_events

log = logging.getLogger(__name__)

#: Longest time an appended, not yet fsync'ed event waits for the next fsync (see the module docstring).
GROUP_COMMIT_S = 0.2

#: The journal format new run directories are created with (recorded in their ``created`` event). 1: version
#: 0.1 (no ``format`` key); 2: BO fits its surrogate once per ask, which lets a resume replay without refitting;
#: 3: the GA records its generator's state with each tell, which lets a resume take its asks without breeding;
#: 4: typed events with one meaning per word (``ask``, ``generation``; earlier formats said ``batch`` for both,
#: :mod:`workflow.store.events` reads them).
JOURNAL_FORMAT = 4


class RunStore:
    """Reads and appends the journal of one run directory."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.journal_path = self.run_dir / JOURNAL
        self._config: Config | None = None
        self._tail_checked = False
        self._results: ResultsFile | None = None
        #: When the oldest event not yet fsync'ed was written (None: everything is durable).
        self._unsynced_since: float | None = None
        #: The journal's size at its last fsync by this store (what a full disk at fsync cuts it back to).
        self._synced_size: int | None = None

    # -- creation -----------------------------------------------------------------------------------

    @classmethod
    def create(cls, run_dir: Path, config: Config, island: int | None = None) -> RunStore:
        """Create ``run_dir`` with its config and first journal event, all or nothing.

        The directory is assembled under a temporary name beside the target and renamed into place, so
        an interrupted creation leaves no half-made run directory behind.
        """
        run_dir = Path(run_dir)
        first = cls._first_queue(config) if island in (None, 0) else []  # checked before anything is created
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}.creating.", dir=run_dir.parent))
        try:
            os.chmod(tmp, 0o700)
            atomic_write_text(tmp / CONFIG, yaml.safe_dump(config.to_plain(), sort_keys=False))
            store = cls(tmp)
            store.append(Created(name=config.name, pid=os.getpid(), format=JOURNAL_FORMAT, island=island))
            for event in first:
                store.append(event)
            os.rename(tmp, run_dir)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            code = exc.code if isinstance(exc, DiskFullError) else exc.errno if isinstance(exc, OSError) else None
            if code in DISK_FULL:  # named as the directory asked for: the temporary one is gone, nothing to resume
                raise DiskFullError(run_dir, code) from exc
            raise
        fsync_dir(run_dir.parent)
        return cls(run_dir)

    def enqueue(self, hparams: Mapping[str, Any], source: str = "enqueue") -> Enqueued:
        """Journal ``hparams`` as a configuration to evaluate before anything the optimizer proposes (checked
        against the run's space; raises :class:`~workflow.errors.ConfigError` naming the gene and why).

        Only while no driver runs (this takes the directory's lock); the driver takes it at its next start, by
        replay. A running driver takes one through :meth:`workflow.driver.observers.SearchRun.enqueue`.
        """
        event = queued(self.config().search_space(), hparams, source, "enqueue")
        with DriverLock(self.run_dir):
            self.append(event)
        return event

    @classmethod
    def _first_queue(cls, config: Config) -> list[Enqueued]:
        """What a new run evaluates first: ``optimizer.enqueue``, then ``optimizer.warm_start``'s best."""
        space = config.search_space()
        events = [queued(space, hparams, "config", f"optimizer.enqueue[{i}]")
                  for i, hparams in enumerate(config.optimizer.enqueue)]
        if config.optimizer.warm_start:
            earlier = warm_start_dir(config.optimizer.warm_start)
            events.extend(warm_start(config, cls.open(earlier).replay(), earlier))
        return events

    @classmethod
    def open(cls, run_dir: Path) -> RunStore:
        run_dir = Path(run_dir)
        if not (run_dir / JOURNAL).is_file() or not (run_dir / CONFIG).is_file():
            raise RunDirError(f"run directory {run_dir}: not a run directory (no {JOURNAL} / {CONFIG})")
        return cls(run_dir)

    def created(self) -> Created | None:
        """The ``created`` event, the journal's first (an island's run directory carries its ``island`` index)."""
        try:
            with open(self.journal_path, "rb") as handle:
                first = decode(json.loads(handle.readline() or b"{}"))
        except (OSError, ValueError):
            return None
        return first if isinstance(first, Created) else None

    def island(self) -> int | None:
        """This directory's island index when it is one island's run directory, else None."""
        created = self.created()
        return created.island if created is not None else None

    def config(self) -> Config:
        """The run's config (read once per store: only :meth:`write_config` changes it)."""
        if self._config is None:
            self._config = from_mapping(yaml.safe_load((self.run_dir / CONFIG).read_text()))
        return self._config

    def write_config(self, config: Config) -> None:
        with reporting_full_disk(self.run_dir / CONFIG, self.run_dir):
            atomic_write_text(self.run_dir / CONFIG, yaml.safe_dump(config.to_plain(), sort_keys=False))
        self._config = config

    def island_count(self) -> int:
        """How many islands this is the parent directory of; 0 for a single run or one island's directory."""
        count = self.config().islands.count
        return count if count > 1 and self.island() is None else 0

    def parent(self) -> Path | None:
        """The island model's parent directory when this is one island's directory, else None."""
        if self.island() is not None:
            return self.run_dir.resolve().parent.parent
        return None

    # -- journal ------------------------------------------------------------------------------------

    def append(self, event: Event, durable: bool = True) -> Event:
        """Append one event (one line, written whole on an O_APPEND descriptor); returns it as written (with its
        time ``t``). ``durable``: fsync'ed before returning; otherwise by the group commit (within
        :data:`GROUP_COMMIT_S`, or at the next :meth:`flush`).

        A full disk (ENOSPC, EDQUOT) raises :class:`~workflow.errors.DiskFullError` after the line is cut off
        again: the journal ends with its last complete event, and a resume redoes what this one said."""
        event = stamped(event, round(time.time(), 3))
        line = (json.dumps(encode(event), separators=(",", ":"), allow_nan=False) + "\n").encode()
        with reporting_full_disk(self.journal_path, self.run_dir):
            fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                if not self._tail_checked:  # only a crash before this store's first append can have torn the tail
                    self._set_aside_torn_tail(fd)
                    self._tail_checked = True
                end = os.fstat(fd).st_size
                if self._synced_size is None:
                    self._synced_size = end
                try:
                    write_all(fd, line)
                except OSError:
                    truncate_quietly(fd, end)
                    raise
                now = time.monotonic()
                if self._unsynced_since is None:
                    self._unsynced_since = now
                if durable or now - self._unsynced_since >= GROUP_COMMIT_S:
                    self._fsync(fd)
            finally:
                os.close(fd)
        return event

    def flush(self) -> None:
        """fsync every event appended so far (nothing to do when they all are)."""
        if self._unsynced_since is None:
            return
        with reporting_full_disk(self.journal_path, self.run_dir):
            fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND)
            try:
                self._fsync(fd)
            finally:
                os.close(fd)

    def _fsync(self, fd: int) -> None:
        try:
            os.fsync(fd)
        except OSError as exc:
            # Some filesystems (NFS, Lustre, quotas) report a full disk only here: what the disk may not hold
            # is not kept either, so the journal is what a machine crash would have left (group commit).
            if exc.errno in DISK_FULL and self._synced_size is not None:
                truncate_quietly(fd, self._synced_size)
                self._unsynced_since = None
            raise
        self._synced_size = os.fstat(fd).st_size
        self._unsynced_since = None

    def _set_aside_torn_tail(self, fd: int) -> None:
        """After a crash mid-write the journal may end without a newline: move the torn bytes to
        ``journal.jsonl.torn-<time>`` (one warning line) and cut the journal back to its last complete line,
        so the next event starts a line of its own. The torn event was never applied (replay skips it), so
        the driver does again what it said. A last line that lacks only its newline is a whole event
        (replay applied it): it gets its newline and stays."""
        size = os.fstat(fd).st_size
        keep = _last_line_end(self.journal_path, size)
        if keep == size:
            return
        with open(self.journal_path, "rb") as handle:
            handle.seek(keep)
            torn = handle.read(size - keep)
        if _is_event(torn):
            write_all(fd, b"\n")
            return
        aside = self.run_dir / f"{JOURNAL}.torn-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        atomic_write(aside, lambda handle: handle.write(torn))
        os.ftruncate(fd, keep)
        os.fsync(fd)
        log.warning("the journal %s ended with a torn line (%d bytes, a crash mid-write): set aside to %s; "
                    "what it would have said is done again", self.journal_path, len(torn), aside.name)

    def events(self) -> Iterator[Event]:
        """Yield the journal's typed events; skip a torn final line, reject corrupt lines elsewhere."""
        try:
            raw = self.journal_path.read_bytes()
        except FileNotFoundError:
            return
        lines = raw.split(b"\n")
        last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                if not isinstance(raw, dict) or "event" not in raw:
                    raise ValueError("not an event object")
                event = decode(raw)
            except ValueError as exc:
                # A torn write: the final line, or one we closed with a newline on the next append.
                if i == last or _is_healed_tear(line):
                    continue
                raise RunDirError(f"{self.journal_path}:{i + 1}: corrupt journal record ({exc})") from None
            yield event

    def replay(self) -> RunState:
        return replay_events(self.events())

    # -- derived files ------------------------------------------------------------------------------

    def write_results_csv(self, state: RunState | None = None) -> Path:
        """``results.csv`` written anew from the journal, rows in the order the candidates were asked."""
        state = state or self.replay()
        self.results().sync(state.evaluated(), rewrite=True)
        return self.run_dir / RESULTS

    def results(self) -> ResultsFile:
        """This run's ``results.csv``, kept current by appending (:class:`ResultsFile`)."""
        if self._results is None:
            self._results = ResultsFile(self.run_dir / RESULTS, self.config().search_space(), self.run_dir)
        return self._results


def _last_line_end(path: Path, size: int, chunk: int = 1 << 16) -> int:
    """The offset just past the last newline in the first ``size`` bytes of ``path`` (0: none), read from the end."""
    with open(path, "rb") as handle:
        end = size
        while end > 0:
            start = max(0, end - chunk)
            handle.seek(start)
            found = handle.read(end - start).rfind(b"\n")
            if found >= 0:
                return start + found + 1
            end = start
    return 0


def _is_event(line: bytes) -> bool:
    """Whether ``line`` is a whole journal event (as :meth:`RunStore.events` reads one)."""
    try:
        raw = json.loads(line)
        if not isinstance(raw, dict) or "event" not in raw:
            return False
        decode(raw)
    except ValueError:
        return False
    return True


def _is_healed_tear(line: bytes) -> bool:
    """A torn line followed by a newline we added on the next append (see ``_heal_torn_tail``).

    Such a line never parses and is a strict prefix of a JSON object; we accept it only if it does not
    end with '}' (a complete but corrupt record is a real error).
    """
    stripped = line.strip()
    return stripped.startswith(b"{") and not stripped.endswith(b"}")
