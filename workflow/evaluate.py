"""The compute side's entry point: what every backend runs for one task, in whatever process it uses.

A task is one evaluation, or a pack trained together by the packed engine. :func:`run_pack` never raises:
exceptions and non-finite losses come back as failed results carrying the reason, so one bad evaluation
cannot take the driver (or a Slurm array) down with it. Which objective computes the evaluation is
``objective.kind`` (:mod:`workflow.objectives`).
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from workflow.config import Config, ObjectiveConfig, TaskConfig, TrainConfig
from workflow.objectives.pickled import OBJECTIVE_PICKLE
from workflow.records import Candidate, Result
from workflow.tracking.spec import TrackingSpec

#: Reason prefix of an evaluation ended by its time limit without a requeue left.
TIMEOUT_PREFIX = "TIMEOUT:"


@dataclass(frozen=True)
class EvaluationSpec:
    """What every evaluation of a run needs, wherever it runs (picklable, no secrets)."""

    task: TaskConfig
    train: TrainConfig
    objective: ObjectiveConfig = ObjectiveConfig()
    tracking: TrackingSpec | None = None
    #: Whether the built-in MLP checkpoints every epoch in its work directory (Slurm: a requeued task goes on
    #: from there; elsewhere a restarted evaluation starts over, and checkpoints only cost time).
    checkpoint: bool = False
    #: ``objective.kind: callable``: the absolute path of the run's pickled function.
    callable_file: str | None = None

    @classmethod
    def from_config(cls, config: Config, run_dir: Path | str, island: int = 0) -> EvaluationSpec:
        callable_file = str(Path(run_dir).resolve() / OBJECTIVE_PICKLE) if config.objective.kind == "callable" \
            else None
        return cls(task=config.task, train=config.train, objective=config.scoring(),
                   tracking=TrackingSpec.from_config(config, run_dir, island),
                   checkpoint=config.backend.name == "slurm", callable_file=callable_file)


def failure_reason(exc: BaseException) -> str:
    """One evaluation's exception as a failed result's reason: type, message, the traceback's last frames."""
    if type(exc).__name__ == "UncompletedJobError":
        # submitit's handler for Slurm's pre-timeout signal: the time limit is reached and the task could not
        # be requeued (not checkpointable, or out of requeues).
        return f"{TIMEOUT_PREFIX} time limit reached and not requeued ({exc})"
    tail = "".join(traceback.format_exception(exc)[-3:]).strip()
    return f"{type(exc).__name__}: {exc} ({tail[-400:]})"


def run_pack(candidates: Sequence[Candidate], spec: EvaluationSpec, workdir: str) -> list[Result]:
    """One task's work in ``workdir`` (``evals/<name>``, or ``evals/pack-...`` for a pack): one result per
    candidate, in order. Never raises: if the task fails as a whole, every candidate gets the failure.

    The built-in MLP trains a single candidate alone with the Lightning engine, a pack together with the packed
    engine; a user's objective evaluates each candidate in its own ``evals/<name>``.
    """
    start = time.monotonic()
    try:
        if spec.objective.kind == "mlp":
            from workflow.objectives.mlp import evaluate_pack

            mlp_workdir = Path(workdir) if spec.checkpoint or len(candidates) > 1 else None
            return evaluate_pack(candidates, spec.task, spec.train, spec.objective, mlp_workdir, spec.tracking)
        return [_evaluate_one(c, spec, Path(workdir) if len(candidates) == 1 else Path(workdir).parent / c.name)
                for c in candidates]
    except Exception as exc:  # noqa: BLE001 - any failure of an evaluation is data, not a crash
        reason = failure_reason(exc)
        return [Result.failure(c.name, reason, seconds=time.monotonic() - start) for c in candidates]


def _evaluate_one(candidate: Candidate, spec: EvaluationSpec, workdir: Path) -> Result:
    """A user's objective for one candidate; its exception is its own failed result."""
    start = time.monotonic()
    try:
        if spec.objective.kind == "python":
            from workflow.objectives import python

            return python.evaluate(candidate, spec.objective, workdir, spec.tracking)
        if spec.objective.kind == "callable":
            from workflow.objectives import pickled, python

            if spec.objective.path and spec.objective.path not in sys.path:
                sys.path.insert(0, spec.objective.path)
            function = pickled.load(spec.callable_file or pickled.OBJECTIVE_PICKLE)
            return python.evaluate(candidate, spec.objective, workdir, spec.tracking, function=function)
        if spec.objective.kind != "command":
            raise ValueError(f"objective.kind={spec.objective.kind}: evaluated outside the search (study.tell)")
        from workflow.objectives import command

        return command.evaluate(candidate, spec.objective, workdir, spec.tracking)
    except Exception as exc:  # noqa: BLE001 - one evaluation's failure is data
        return Result.failure(candidate.name, failure_reason(exc), seconds=time.monotonic() - start)
