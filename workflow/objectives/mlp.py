"""The built-in objective: an MLP on a task, trained by :mod:`workflow.trainer` (the seed's experiment)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from workflow.config import ObjectiveConfig, TaskConfig, TrainConfig
from workflow.objectives.scoring import rescored
from workflow.records import Candidate, Result
from workflow.tasks import task_kind
from workflow.tracking.spec import TrackingSpec


def evaluate_pack(candidates: Sequence[Candidate], task: TaskConfig, train: TrainConfig,
                  objective: ObjectiveConfig, workdir: Path | None, tracking: TrackingSpec | None) -> list[Result]:
    """Train ``candidates`` (one alone with the Lightning engine, else together with the packed engine)."""
    from workflow.trainer import evaluate, evaluate_pack
    from workflow.trainer.common import fitness_metric

    if len(candidates) == 1 and train.engine != "packed":
        results = [evaluate(candidates[0], task, train, workdir=workdir, tracking=tracking)]
    else:
        results = evaluate_pack(list(candidates), task, train, workdir=workdir, tracking=tracking)
    default = fitness_metric(task_kind(task.name, task.target))
    return [rescored(result, objective, default) for result in results]
