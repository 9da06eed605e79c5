"""The built-in objective: an MLP on a task, trained by :mod:`workflow.trainer` (the seed's experiment)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from workflow.config import ObjectiveConfig, TaskConfig, TrainConfig
from workflow.records import Candidate, Result
from workflow.tracking.spec import TrackingSpec


def evaluate_pack(candidates: Sequence[Candidate], task: TaskConfig, train: TrainConfig,
                  objective: ObjectiveConfig, workdir: Path | None, tracking: TrackingSpec | None) -> list[Result]:
    """Train ``candidates`` (one alone with the Lightning engine, else together with the packed engine), scored
    on ``objective.metric`` (default: the task's validation loss) in ``objective.direction``."""
    from workflow.trainer import evaluate, evaluate_pack

    if len(candidates) == 1 and train.engine != "packed":
        return [evaluate(candidates[0], task, train, workdir=workdir, tracking=tracking, objective=objective)]
    return evaluate_pack(list(candidates), task, train, workdir=workdir, tracking=tracking, objective=objective)
