"""The run directory's journal: append-only, one JSON event per line, the only source of truth.

Everything else in the run directory is rebuilt from it (see :mod:`workflow.store.state`). A torn last line
(a crash mid-write) is ignored; a corrupt line elsewhere is an error naming the file and line.

Durability (group commit): every event is written with one ``write`` before :meth:`RunStore.append` returns,
so a killed driver (SIGKILL, the end of an allocation) loses nothing: the kernel has the bytes. An fsync,
which only a machine crash needs, costs more than everything else the driver does for an evaluation, so the
driver's frequent events (asked, submitted, result, told) are fsync'ed together: at the latest
:data:`GROUP_COMMIT_S` after the first of them, before the driver waits for results, before anything leaves
the machine (a Slurm submission's intent is durable before sbatch runs) and when the driver stops. After a
machine crash at most that window of events is gone, and none of them can be missed: asks and tells replay
from the seed, a lost result is evaluated again (inline, local) or read back from its Slurm task.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from workflow.config import Config, from_mapping
from workflow.errors import RunDirError
from workflow.store.atomic import atomic_write_text, fsync_dir
from workflow.store.events import Created, Enqueued, Event, decode, encode, stamped
from workflow.store.layout import CONFIG, JOURNAL, RESULTS
from workflow.store.lock import DriverLock
from workflow.store.queue import queued, warm_start, warm_start_dir
from workflow.store.results import ResultsFile
from workflow.store.state import RunState, replay_events

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
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
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
        """Append one event (a single ``write`` of one line on an O_APPEND descriptor); returns it as written
        (with its time ``t``). ``durable``: fsync'ed before returning; otherwise by the group commit (within
        :data:`GROUP_COMMIT_S`, or at the next :meth:`flush`)."""
        event = stamped(event, round(time.time(), 3))
        line = (json.dumps(encode(event), separators=(",", ":"), allow_nan=False) + "\n").encode()
        fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            if not self._tail_checked:  # only a crash before this store's first append can have torn the tail
                self._heal_torn_tail(fd)
                self._tail_checked = True
            os.write(fd, line)
            now = time.monotonic()
            if self._unsynced_since is None:
                self._unsynced_since = now
            if durable or now - self._unsynced_since >= GROUP_COMMIT_S:
                os.fsync(fd)
                self._unsynced_since = None
        finally:
            os.close(fd)
        return event

    def flush(self) -> None:
        """fsync every event appended so far (nothing to do when they all are)."""
        if self._unsynced_since is None:
            return
        fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self._unsynced_since = None

    def _heal_torn_tail(self, fd: int) -> None:
        # After a crash mid-write the file may end without a newline: start a fresh line so the next event
        # is not glued to the torn one (which replay then skips as the torn record it is).
        size = os.fstat(fd).st_size
        if size == 0:
            return
        with open(self.journal_path, "rb") as handle:
            handle.seek(size - 1)
            if handle.read(1) != b"\n":
                os.write(fd, b"\n")

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
            self._results = ResultsFile(self.run_dir / RESULTS, self.config().search_space())
        return self._results


def _is_healed_tear(line: bytes) -> bool:
    """A torn line followed by a newline we added on the next append (see ``_heal_torn_tail``).

    Such a line never parses and is a strict prefix of a JSON object; we accept it only if it does not
    end with '}' (a complete but corrupt record is a real error).
    """
    stripped = line.strip()
    return stripped.startswith(b"{") and not stripped.endswith(b"}")
