"""The run directory's journal: append-only, one fsync'ed JSON event per line, the only source of truth.

Everything else in the run directory is rebuilt from it (see :mod:`workflow.store.state`). A torn last line
(a crash mid-write) is ignored; a corrupt line elsewhere is an error naming the file and line.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from workflow.config import Config, from_mapping
from workflow.errors import RunDirError
from workflow.store.atomic import atomic_write_text, fsync_dir
from workflow.store.layout import CONFIG, JOURNAL, RESULTS
from workflow.store.results import write_results_file
from workflow.store.state import RunState, replay_events


class RunStore:
    """Reads and appends the journal of one run directory."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.journal_path = self.run_dir / JOURNAL

    # -- creation -----------------------------------------------------------------------------------

    @classmethod
    def create(cls, run_dir: Path, config: Config, meta: dict[str, Any] | None = None) -> RunStore:
        """Create ``run_dir`` with its config and first journal event, all or nothing.

        The directory is assembled under a temporary name beside the target and renamed into place, so
        an interrupted creation leaves no half-made run directory behind.
        """
        run_dir = Path(run_dir)
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}.creating.", dir=run_dir.parent))
        try:
            os.chmod(tmp, 0o700)
            atomic_write_text(tmp / CONFIG, yaml.safe_dump(config.to_plain(), sort_keys=False))
            store = cls(tmp)
            store.append({"event": "created", "name": config.name, "pid": os.getpid(), **(meta or {})})
            os.rename(tmp, run_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        fsync_dir(run_dir.parent)
        return cls(run_dir)

    @classmethod
    def open(cls, run_dir: Path) -> RunStore:
        run_dir = Path(run_dir)
        if not (run_dir / JOURNAL).is_file() or not (run_dir / CONFIG).is_file():
            raise RunDirError(f"run directory {run_dir}: not a run directory (no {JOURNAL} / {CONFIG})")
        return cls(run_dir)

    def meta(self) -> dict[str, Any]:
        """The ``created`` event (an island's run directory carries its ``island`` index there)."""
        return next((e for e in self.events() if e["event"] == "created"), {})

    def config(self) -> Config:
        data = yaml.safe_load((self.run_dir / CONFIG).read_text())
        return from_mapping(data)

    def write_config(self, config: Config) -> None:
        atomic_write_text(self.run_dir / CONFIG, yaml.safe_dump(config.to_plain(), sort_keys=False))

    def island_count(self) -> int:
        """How many islands this is the parent directory of; 0 for a single run or one island's directory."""
        count = self.config().islands.count
        return count if count > 1 and "island" not in self.meta() else 0

    def parent(self) -> Path | None:
        """The island model's parent directory when this is one island's directory, else None."""
        if "island" in self.meta():
            return self.run_dir.resolve().parent.parent
        return None

    # -- journal ------------------------------------------------------------------------------------

    def append(self, event: dict[str, Any]) -> dict[str, Any]:
        """Append one event durably (a single ``write`` of one line on an O_APPEND descriptor, then fsync);
        returns the record as written (with its time ``t``)."""
        record = {"t": round(time.time(), 3), **event}
        line = (json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n").encode()
        fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            self._heal_torn_tail(fd)
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        return record

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

    def events(self) -> Iterator[dict[str, Any]]:
        """Yield journal events; skip a torn final line, reject corrupt lines elsewhere."""
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
                event = json.loads(line)
                if not isinstance(event, dict) or "event" not in event:
                    raise ValueError("not an event object")
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
        state = state or self.replay()
        return write_results_file(self.run_dir / RESULTS, state.evaluated())


def _is_healed_tear(line: bytes) -> bool:
    """A torn line followed by a newline we added on the next append (see ``_heal_torn_tail``).

    Such a line never parses and is a strict prefix of a JSON object; we accept it only if it does not
    end with '}' (a complete but corrupt record is a real error).
    """
    stripped = line.strip()
    return stripped.startswith(b"{") and not stripped.endswith(b"}")
