"""What both training engines share: the fitness metric, metrics to a result, Adam's set-up, batch sizes.

Both engines must define an evaluation's outcome identically (the packed engine is checked against the
Lightning engine member by member), so the definitions live here once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch

from workflow.records import Result
from workflow.tasks import Kind

#: Validation runs once per epoch in large batches (the MLPs are small); an upper bound for packed validation.
EVAL_BATCH_SIZE = 8192


def fitness_metric(kind: Kind | str) -> str:
    """The metric minimised as fitness: validation MSE (regression) or cross-entropy (classification)."""
    return "val_mse" if kind == "regression" else "val_loss"


def kept_metrics(kind: Kind | str) -> tuple[str, ...]:
    """The metrics a result carries, in this order."""
    validation = ("val_mse",) if kind == "regression" else ("val_loss", "val_acc")
    return (*validation, "train_loss", "epochs")


def metrics_result(name: str, kind: Kind | str, metrics: Mapping[str, float], seconds: float) -> Result:
    """The result of an evaluation whose final epoch logged ``metrics``: failed when the fitness is not finite."""
    metric = fitness_metric(kind)
    fitness = float(metrics[metric])
    if not math.isfinite(fitness):
        return Result.failure(name, f"non-finite validation loss ({metric}={fitness})", seconds=seconds)
    kept = {key: float(metrics[key]) for key in kept_metrics(kind) if key in metrics}
    return Result(name=name, status="ok", fitness=fitness, metrics=kept, seconds=seconds)


def make_adam(params: Iterable[torch.Tensor], learning_rate: float, *, capturable: bool = False) -> torch.optim.Adam:
    """Adam with its defaults and the fused kernel where the device has one (cpu, cuda).

    The fused kernel is one call per step instead of a loop of small ops, which is most of a tiny MLP's step.
    """
    params = list(params)
    fused = all(p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.Adam(params, lr=learning_rate, fused=fused, capturable=capturable)
