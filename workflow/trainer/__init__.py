"""Training one individual: datasets, the MLP, the training engines, :func:`evaluate`.

This package is the only code in the project that imports torch, torchvision or pytorch_lightning, and
the only code compute nodes need. ``workflow.core``, ``workflow.config`` and ``workflow.space`` must never
import it. Importing ``workflow.trainer`` itself is cheap: torch is imported on first use.

- :mod:`workflow.trainer.data`: :func:`load_task` (in-memory tensors, cached per process), Fashion-MNIST
  from Debian's package.
- :mod:`workflow.trainer.model`: :func:`build_mlp`, :data:`ACTIVATIONS`.
- :mod:`workflow.trainer.lightning_engine`: the seed's engine, one Lightning ``Trainer`` per individual.
- :mod:`workflow.trainer.packed`: the packed engine, a whole pack of individuals as one batched model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workflow.config import ObjectiveConfig, TaskConfig, TrainConfig
from workflow.records import Candidate, Result

if TYPE_CHECKING:
    from workflow.tracking.spec import TrackingSpec
    from workflow.trainer.data import TaskData, load_task
    from workflow.trainer.model import ACTIVATIONS, build_mlp

__all__ = ["ACTIVATIONS", "TaskData", "build_mlp", "evaluate", "evaluate_pack", "load_task"]

_LAZY = {"TaskData": "data", "load_task": "data", "ACTIVATIONS": "model", "build_mlp": "model"}


def evaluate(candidate: Candidate, task: TaskConfig, train: TrainConfig, workdir: Path | None = None,
             tracking: TrackingSpec | None = None, objective: ObjectiveConfig | None = None) -> Result:
    """Train and validate one candidate with the configured engine (``train.engine``).

    Returns a failed result for a non-finite loss; other errors propagate (the backend's worker turns them
    into failed results).
    """
    if train.engine == "lightning":
        from workflow.trainer.lightning_engine import train_one

        return train_one(candidate, task, train, workdir=workdir, tracking=tracking, objective=objective)
    if train.engine == "packed":
        return evaluate_pack([candidate], task, train, workdir=workdir, tracking=tracking, objective=objective)[0]
    raise ValueError(f"unknown train.engine {train.engine!r}; allowed: lightning, packed")


def evaluate_pack(candidates: Sequence[Candidate], task: TaskConfig, train: TrainConfig,
                  workdir: Path | None = None, tracking: TrackingSpec | None = None,
                  objective: ObjectiveConfig | None = None) -> list[Result]:
    """Train ``candidates`` together with the packed engine (:mod:`workflow.trainer.packed`), whatever
    ``train.engine`` says; one result per candidate, in order (a non-finite loss fails only its member)."""
    from workflow.trainer.packed import train_pack

    return train_pack(candidates, task, train, workdir=workdir, tracking=tracking, objective=objective)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"workflow.trainer.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'workflow.trainer' has no attribute {name!r}")
