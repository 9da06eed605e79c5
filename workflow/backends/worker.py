"""The entry point every backend runs for one evaluation, in whatever process it uses.

It never raises: exceptions and non-finite losses come back as failed results carrying the reason, so one
bad evaluation cannot take the driver (or a Slurm array) down with it.
"""

from __future__ import annotations

import time
import traceback
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
        if type(exc).__name__ == "UncompletedJobError":
            # submitit's handler for Slurm's pre-timeout signal: the time limit is reached and the task
            # could not be requeued (not checkpointable, or out of requeues).
            return Result.failure(candidate.name, f"{TIMEOUT_PREFIX} time limit reached and not requeued ({exc})",
                                  seconds=time.monotonic() - start)
        tail = "".join(traceback.format_exception(exc)[-3:]).strip()
        return Result.failure(candidate.name, f"{type(exc).__name__}: {exc} ({tail[-400:]})",
                              seconds=time.monotonic() - start)
