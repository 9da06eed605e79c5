"""``results.csv``: one row per finished evaluation, the run's table for people and spreadsheets.

Columns: identity (name, optimizer, island, generation, index), the genes in the space's order, the outcome
(status, fitness, seconds, job_id, reason), then one column per metric any evaluation reported (sorted).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from workflow.records import Candidate, Evaluated, Hparams, Result
from workflow.store.atomic import atomic_write_text

IDENTITY_COLUMNS = ("name", "optimizer", "island", "generation", "index")
OUTCOME_COLUMNS = ("status", "fitness", "seconds", "job_id", "reason")
BASE_COLUMNS = (*IDENTITY_COLUMNS, *Hparams.gene_names(), *OUTCOME_COLUMNS)
#: A failure's reason is cut to this many characters in the table (the journal keeps it whole).
REASON_CHARS = 500


def results_row(candidate: Candidate, result: Result) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": candidate.name, "optimizer": candidate.optimizer, "island": candidate.island,
        "generation": candidate.generation, "index": candidate.index,
        **candidate.hparams.to_row(),
        "status": result.status, "fitness": result.fitness if math.isfinite(result.fitness) else "inf",
        "seconds": round(result.seconds, 3), "job_id": result.job_id,
        "reason": result.reason.replace("\n", " | ")[:REASON_CHARS],
    }
    row.update(result.metrics)
    return row


def columns(evaluated: Sequence[Evaluated]) -> list[str]:
    """The table's columns for these evaluations: the base ones, then every metric name, sorted."""
    return [*BASE_COLUMNS, *sorted({m for e in evaluated for m in e.result.metrics})]


def results_text(evaluated: Sequence[Evaluated]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns(evaluated), lineterminator="\n")
    writer.writeheader()
    writer.writerows(results_row(e.candidate, e.result) for e in evaluated)
    return buffer.getvalue()


def write_results_file(path: Path, evaluated: Sequence[Evaluated]) -> Path:
    """Write the table atomically."""
    atomic_write_text(path, results_text(evaluated))
    return path


def read_results_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))
