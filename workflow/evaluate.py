"""The entry point every backend runs for one evaluation, in whatever process it uses.

It never raises: exceptions and non-finite losses come back as failed results carrying the reason, so one
bad evaluation cannot take the driver (or a Slurm array) down with it.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from workflow.config import TaskConfig, TrainConfig
from workflow.records import Candidate, Result

#: Reason prefix of an evaluation ended by its time limit without a requeue left.
TIMEOUT_PREFIX = "TIMEOUT:"

if TYPE_CHECKING:
    from workflow.tracking import TrackingSpec


def run_evaluation(candidate: Candidate, task: TaskConfig, train: TrainConfig,
                   workdir: str | None = None, tracking: TrackingSpec | None = None) -> Result:
    start = time.monotonic()
    try:
        from workflow.trainer import evaluate

        return evaluate(candidate, task, train, workdir=Path(workdir) if workdir else None, tracking=tracking)
    except Exception as exc:  # noqa: BLE001 - any failure of one evaluation is data, not a crash
        return Result.failure(candidate.name, _reason(exc), seconds=time.monotonic() - start)


def _reason(exc: Exception) -> str:
    if type(exc).__name__ == "UncompletedJobError":
        # submitit's handler for Slurm's pre-timeout signal: the time limit is reached and the task could not
        # be requeued (not checkpointable, or out of requeues).
        return f"{TIMEOUT_PREFIX} time limit reached and not requeued ({exc})"
    tail = "".join(traceback.format_exception(exc)[-3:]).strip()
    return f"{type(exc).__name__}: {exc} ({tail[-400:]})"


def run_pack(candidates: Sequence[Candidate], task: TaskConfig, train: TrainConfig, workdir: str | None = None,
             tracking: TrackingSpec | None = None) -> list[Result]:
    """One task's work: a single evaluation, or a pack trained together by the packed engine.

    Never raises either: if the pack as a whole fails, every member gets the failure.
    """
    if len(candidates) == 1 and train.engine != "packed":
        return [run_evaluation(candidates[0], task, train, workdir, tracking)]
    start = time.monotonic()
    try:
        from workflow.trainer import evaluate_pack

        return evaluate_pack(list(candidates), task, train, workdir=Path(workdir) if workdir else None,
                             tracking=tracking)
    except Exception as exc:  # noqa: BLE001 - a failed pack is data for each member
        reason = _reason(exc)
        return [Result.failure(c.name, reason, seconds=time.monotonic() - start) for c in candidates]
