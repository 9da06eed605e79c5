"""What both training engines share: the fitness metric, metrics to a result, the training settings and the
optimizer they name, batch sizes.

Both engines must define an evaluation's outcome identically (the packed engine is checked against the
Lightning engine member by member), so the definitions live here once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from workflow.config import ObjectiveConfig, TrainConfig
from workflow.records import Result
from workflow.scoring import scored
from workflow.tasks import MLP_OPTIMIZERS, Kind, mlp_metrics

#: Validation runs once per epoch in large batches (the MLPs are small); an upper bound for packed validation.
EVAL_BATCH_SIZE = 8192


def fitness_metric(kind: Kind | str) -> str:
    """The metric minimised as fitness: validation MSE (regression) or cross-entropy (classification)."""
    return "val_mse" if kind == "regression" else "val_loss"


def kept_metrics(kind: Kind | str) -> tuple[str, ...]:
    """The metrics a result carries, in this order (:func:`workflow.tasks.mlp_metrics`)."""
    return mlp_metrics(kind)


def metrics_result(name: str, kind: Kind | str, metrics: Mapping[str, float], seconds: float,
                   objective: ObjectiveConfig | None = None) -> Result:
    """The result of an evaluation whose final epoch logged ``metrics``, scored on ``objective.metric`` (default:
    the task's validation loss): failed when that metric is missing or not finite."""
    kept = {key: float(metrics[key]) for key in kept_metrics(kind) if key in metrics}
    return scored(name, kept, objective or ObjectiveConfig(), seconds, default=fitness_metric(kind))


#: SGD's momentum (the optimizer gene's ``sgd``).
SGD_MOMENTUM = 0.9


@dataclass(frozen=True)
class Settings:
    """How one candidate trains: ``train``'s values, overridden by genes of the same names (``learning_rate``,
    ``batch_size``, ``weight_decay``, ``optimizer``: adam, adamw, sgd with momentum 0.9, rmsprop)."""

    learning_rate: float
    batch_size: int
    weight_decay: float
    optimizer: str

    @classmethod
    def of(cls, hparams: Mapping[str, Any], train: TrainConfig) -> Settings:
        settings = cls(learning_rate=float(hparams.get("learning_rate", train.learning_rate)),
                       batch_size=int(hparams.get("batch_size", train.batch_size)),
                       weight_decay=float(hparams.get("weight_decay", train.weight_decay)),
                       optimizer=str(hparams.get("optimizer", train.optimizer)))
        if settings.optimizer not in MLP_OPTIMIZERS:
            raise ValueError(f"unknown optimizer {settings.optimizer!r}; allowed: {', '.join(MLP_OPTIMIZERS)}")
        return settings


def make_optimizer(params: Iterable[torch.Tensor], settings: Settings, *,
                   capturable: bool = False) -> torch.optim.Optimizer:
    """The optimizer ``settings`` names: Adam and AdamW with their defaults and the fused kernel where the device
    has one (cpu, cuda: one call per step instead of a loop of small ops, most of a tiny MLP's step), SGD with
    momentum 0.9, RMSprop with its defaults; ``weight_decay`` as each defines it."""
    params = list(params)
    lr, decay = settings.learning_rate, settings.weight_decay
    if settings.optimizer in ("adam", "adamw"):
        fused = all(p.device.type in ("cpu", "cuda") for p in params)
        kind = torch.optim.Adam if settings.optimizer == "adam" else torch.optim.AdamW
        return kind(params, lr=lr, weight_decay=decay, fused=fused, capturable=capturable)
    if settings.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=SGD_MOMENTUM, weight_decay=decay)
    return torch.optim.RMSprop(params, lr=lr, weight_decay=decay, capturable=capturable)
