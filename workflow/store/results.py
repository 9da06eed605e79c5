"""``results.csv``: one row per finished evaluation, the run's table for people and spreadsheets.

Columns: identity (name, search: the optimizer that asked for it, island, generation, index, seed), the genes in the
space's order (a layers gene as ``64-32-16``), the outcome (status, fitness, seconds, job_id, reason), then one
column per metric any evaluation reported (sorted).
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from workflow.records import Candidate, Evaluated, Result
from workflow.space import SearchSpace
from workflow.store.atomic import append_whole, atomic_write_text, reporting_full_disk

#: ``search`` is the optimizer that asked for the evaluation (ga, bo, random): "optimizer" may be a gene.
#: ``seed``: the evaluation's own seed (``context.seed``, ``{seed}``): re-running it with its hparams and this seed
#: reproduces it.
IDENTITY_COLUMNS = ("name", "search", "island", "generation", "index", "seed")
OUTCOME_COLUMNS = ("status", "fitness", "seconds", "job_id", "reason")
#: A failure's reason is cut to this many characters in the table (the journal keeps it whole).
REASON_CHARS = 500


def results_row(candidate: Candidate, result: Result, space: SearchSpace) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": candidate.name, "search": candidate.optimizer, "island": candidate.island,
        "generation": candidate.generation, "index": candidate.index, "seed": candidate.seed,
        **space.cells(candidate.hparams),
        "status": result.status, "fitness": result.fitness if math.isfinite(result.fitness) else "inf",
        "seconds": round(result.seconds, 3), "job_id": result.job_id,
        "reason": result.reason.replace("\n", " | ")[:REASON_CHARS],
    }
    row.update(result.metrics)
    return row


def columns(space: SearchSpace, evaluated: Sequence[Evaluated]) -> list[str]:
    """The table's columns: identity, the genes in order, the outcome, then every metric name, sorted."""
    metrics = sorted({m for e in evaluated for m in e.result.metrics} - set(space.names))
    return [*IDENTITY_COLUMNS, *space.names, *OUTCOME_COLUMNS, *metrics]


def results_text(space: SearchSpace, evaluated: Sequence[Evaluated]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns(space, evaluated), lineterminator="\n",
                            extrasaction="ignore")
    writer.writeheader()
    writer.writerows(results_row(e.candidate, e.result, space) for e in evaluated)
    return buffer.getvalue()


def write_results_file(path: Path, space: SearchSpace, evaluated: Sequence[Evaluated]) -> Path:
    """Write the table atomically."""
    atomic_write_text(path, results_text(space, evaluated))
    return path


class ResultsFile:
    """``results.csv`` kept current at a flat cost: one appended row per result.

    A row is appended whole or not at all, and a rebuild is atomic: on a full disk the file stays its old
    complete self (and :class:`~workflow.errors.DiskFullError` says so). The rows are written, not fsync'ed:
    the file is derived from the journal, and a driver that starts checks it against the journal and rebuilds
    it when a machine crash left it behind.

    The whole table is written again (atomically) only when it must be: when it is missing, behind the journal
    or has other columns after a crash (:meth:`sync`, when a driver starts), when a result brings a metric the
    header lacks, and once at the end of a run (:meth:`sync` with ``rewrite``, which also puts the rows in the
    order the candidates were asked instead of the order their results arrived).
    """

    def __init__(self, path: Path, space: SearchSpace, run_dir: Path | None = None) -> None:
        self.path, self.space = Path(path), space
        #: The run directory a full disk's message names the resume command of.
        self.run_dir = run_dir
        self._columns: list[str] | None = None

    def sync(self, evaluated: Sequence[Evaluated], rewrite: bool = False) -> None:
        """Make the file hold exactly ``evaluated`` (a rebuild unless it already does and ``rewrite`` is off)."""
        wanted = columns(self.space, evaluated)
        if not rewrite and self._holds(wanted, len(evaluated)):
            self._columns = wanted
            return
        with reporting_full_disk(self.path, self.run_dir):
            write_results_file(self.path, self.space, evaluated)
        self._columns = wanted

    def append(self, candidate: Candidate, result: Result, evaluated: Callable[[], Sequence[Evaluated]]) -> None:
        """Add ``result``'s row (``evaluated`` gives every evaluation so far, for the rare rebuild)."""
        if self._columns is None or not set(result.metrics) <= set(self._columns):
            self.sync(evaluated(), rewrite=True)
            return
        buffer = io.StringIO()
        csv.DictWriter(buffer, fieldnames=self._columns, lineterminator="\n", extrasaction="ignore").writerow(
            results_row(candidate, result, self.space))
        with reporting_full_disk(self.path, self.run_dir):
            append_whole(self.path, buffer.getvalue().encode())

    def _holds(self, wanted: list[str], rows: int) -> bool:
        """Whether the file has the ``wanted`` header and ``rows`` complete rows (one pass over the file)."""
        try:
            with open(self.path, newline="", encoding="utf-8") as handle:
                reader = csv.reader(handle)
                header = next(reader, None)
                count = sum(1 for _ in reader)
                handle.seek(0, os.SEEK_END)
                complete = handle.tell() == 0 or self._ends_with_newline()
        except OSError:
            return False
        return header == wanted and count == rows and complete

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) == b"\n"


def read_results_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))
