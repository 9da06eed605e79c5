"""The run directory: an append-only journal from which everything else is rebuilt.

Layout of ``runs/<name>/`` (created user-only, 0700)::

    config.yaml     the resolved config the run was created with (a re-run must match it)
    journal.jsonl   one JSON event per line, appended and fsync'ed: the only source of truth
    results.csv     one row per finished evaluation, rewritten atomically from the journal
    driver.log      the driver's log when it runs detached
    report/         figures and tables written by ``report``

Events: ``created``, ``asked`` (a batch the optimizer proposed, recorded before anything is submitted),
``submitting`` (a Slurm job name recorded before sbatch runs), ``submitted`` (backend details such as
Slurm job ids), ``result`` (one per evaluation, first one wins),
``told`` (the batch was given back to the optimizer), ``finished``. A torn last line (a crash mid-write)
is ignored; a corrupt line elsewhere is an error naming the file and line.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from workflow.config import Config, from_mapping
from workflow.errors import RunDirError
from workflow.records import Candidate, Evaluated, Result

JOURNAL = "journal.jsonl"
CONFIG = "config.yaml"
RESULTS = "results.csv"

BASE_COLUMNS = ("name", "optimizer", "island", "generation", "index", "n_layers", "hidden_size", "activation",
                "dropout", "status", "fitness", "seconds", "job_id", "reason")


# ------------------------------------------------------------------------------------------ atomic files


def atomic_write_text(path: Path, text: str, mode: int = 0o600) -> None:
    """Write ``text`` to ``path`` via a temp file in the same directory, fsync, rename, fsync the dir."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with _suppress():
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


# ---------------------------------------------------------------------------------------------- replay


@dataclass
class RunState:
    """Everything the journal says about a run, rebuilt by :meth:`RunStore.replay`."""

    batches: list[list[Candidate]] = field(default_factory=list)
    results: dict[str, Result] = field(default_factory=dict)
    submissions: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> latest submitted info
    told: set[int] = field(default_factory=set)
    #: Island model: immigrant batches applied after each generation, and migration ids already applied.
    immigrations: dict[int, list[list[Evaluated]]] = field(default_factory=dict)
    migrations_applied: set[str] = field(default_factory=set)
    finished: bool = False
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def candidates(self) -> list[Candidate]:
        return [c for batch in self.batches for c in batch]

    def evaluated(self) -> list[Evaluated]:
        return [Evaluated(c, self.results[c.name]) for c in self.candidates if c.name in self.results]

    def pending(self) -> list[Candidate]:
        return [c for c in self.candidates if c.name not in self.results]

    def best(self) -> Evaluated | None:
        done = [e for e in self.evaluated() if e.result.ok]
        return min(done, key=lambda e: e.fitness, default=None)


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
        _fsync_dir(run_dir.parent)
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

    def island_count(self) -> int:
        """How many islands this is the parent directory of; 0 for a single run or one island's directory."""
        count = self.config().islands.count
        return count if count > 1 and "island" not in self.meta() else 0

    # -- journal ------------------------------------------------------------------------------------

    def append(self, event: dict[str, Any]) -> None:
        """Append one event durably: a single ``write`` of one line on an O_APPEND descriptor, then fsync."""
        record = {"t": round(time.time(), 3), **event}
        line = (json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n").encode()
        fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            self._heal_torn_tail(fd)
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

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
        state = RunState()
        for event in self.events():
            state.events.append(event)
            kind = event["event"]
            if kind == "asked":
                state.batches.append([Candidate.from_dict(c) for c in event["candidates"]])
            elif kind == "result":
                result = Result.from_dict(event["result"])
                state.results.setdefault(result.name, result)  # exactly once: the first result wins
            elif kind in ("submitting", "submitted", "abandoned"):
                for name in event.get("names", []):
                    state.submissions[name] = event
            elif kind == "told":
                state.told.add(int(event["batch"]))
            elif kind == "immigrated":
                migrants = [Evaluated(Candidate.from_dict(m["candidate"]), Result.from_dict(m["result"]))
                            for m in event["migrants"]]
                state.immigrations.setdefault(int(event["batch"]), []).append(migrants)
                state.migrations_applied.add(str(event["id"]))
            elif kind == "finished":
                state.finished = True
        return state

    # -- derived files ------------------------------------------------------------------------------

    def write_results_csv(self, state: RunState | None = None) -> Path:
        state = state or self.replay()
        return write_results_file(self.run_dir / RESULTS, state.evaluated())


def write_results_file(path: Path, evaluated: Sequence[Evaluated]) -> Path:
    """``results.csv``: the base columns, then one column per metric any evaluation reported; atomic."""
    rows = [results_row(e.candidate, e.result) for e in evaluated]
    metric_names = sorted({m for e in evaluated for m in e.result.metrics})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*BASE_COLUMNS, *metric_names], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())
    return path


def _is_healed_tear(line: bytes) -> bool:
    """A torn line followed by a newline we added on the next append (see ``_heal_torn_tail``).

    Such a line never parses and is a strict prefix of a JSON object; we accept it only if it does not
    end with '}' (a complete but corrupt record is a real error).
    """
    stripped = line.strip()
    return stripped.startswith(b"{") and not stripped.endswith(b"}")


def results_row(candidate: Candidate, result: Result) -> dict[str, Any]:
    hp = candidate.hparams
    row: dict[str, Any] = {
        "name": candidate.name, "optimizer": candidate.optimizer, "island": candidate.island,
        "generation": candidate.generation, "index": candidate.index, "n_layers": hp.n_layers,
        "hidden_size": hp.hidden_size, "activation": hp.activation, "dropout": round(hp.dropout, 6),
        "status": result.status, "fitness": result.fitness if math.isfinite(result.fitness) else "inf",
        "seconds": round(result.seconds, 3), "job_id": result.job_id,
        "reason": result.reason.replace("\n", " | ")[:500],
    }
    row.update(result.metrics)
    return row


def read_results_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def iter_batches(state: RunState) -> Iterable[tuple[int, list[Candidate]]]:
    return enumerate(state.batches, start=1)
