"""The compute side's entry point: what every backend runs for one task, in whatever process it uses.

A task is one evaluation, or a pack trained together by the packed engine. :func:`run_pack` never raises:
exceptions and non-finite losses come back as failed results carrying the reason, so one bad evaluation
cannot take the driver (or a Slurm array) down with it. Which objective computes the evaluation is
``objective.kind`` (:mod:`workflow.objectives`).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from workflow.config import Config, ObjectiveConfig, TaskConfig, TrainConfig
from workflow.records import Candidate, Result
from workflow.space import SearchSpace
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
    #: The space, when it has conditional genes (``when``): the objective is given only the active ones.
    space: SearchSpace | None = None
    #: The config's ``fixed`` values, added to every evaluation's hparams.
    fixed: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def from_config(cls, config: Config, run_dir: Path | str, island: int = 0) -> EvaluationSpec:
        space = config.search_space()
        return cls(task=config.task, train=config.train, objective=config.scoring(),
                   tracking=TrackingSpec.from_config(config, run_dir, island),
                   checkpoint=config.backend.name == "slurm", space=space if space.conditions else None,
                   fixed=tuple(config.fixed.items()))

    def objective_view(self, candidate: Candidate) -> Candidate:
        """``candidate`` as the objective sees it: inactive conditional genes left out, fixed values added
        (the journal keeps the whole chromosome)."""
        if self.space is None and not self.fixed:
            return candidate
        hparams = self.space.active(candidate.hparams) if self.space is not None else dict(candidate.hparams)
        return replace(candidate, hparams={**hparams, **dict(self.fixed)})


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
    candidates = [spec.objective_view(c) for c in candidates]
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
        from workflow.objectives import command

        return command.evaluate(candidate, spec.objective, workdir, spec.tracking)
    except Exception as exc:  # noqa: BLE001 - one evaluation's failure is data
        return Result.failure(candidate.name, failure_reason(exc), seconds=time.monotonic() - start)
