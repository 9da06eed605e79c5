"""Small frozen value types that cross boundaries (optimizer <-> driver <-> backends <-> store).

A genotype is a plain mapping from gene names to values (``int``, ``float``, ``str``, ``bool``, a list of ints
for a layers gene), in the space's order; :mod:`workflow.space` knows the types.

They are plain data: JSON round-trips through ``to_dict``/``from_dict`` so the journal, the Slurm
pickles and the MPI messages all carry the same shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["ok", "failed"]

#: Fitness given to a failed evaluation: the worst possible for a minimised objective.
WORST_FITNESS = math.inf


@dataclass(frozen=True)
class Candidate:
    """An evaluation the optimizer asked for.

    ``name`` is unique within a run (``fitness-<generation>-<index>`` for the GA, ``BO-Iteration-<n>`` for BO)
    and is the identity of the evaluation everywhere: result rows, Slurm job names, W&B run ids.
    """

    name: str
    #: The genotype: gene name -> value, in the space's order (a mapping; treat it as read-only).
    hparams: dict[str, Any]
    generation: int
    index: int
    optimizer: str
    island: int = 0
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        # Spelled out, not dataclasses.asdict: this runs for every journal event (asdict deep-copies).
        return {"name": self.name,
                "hparams": {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in self.hparams.items()},
                "generation": self.generation, "index": self.index, "optimizer": self.optimizer,
                "island": self.island, "seed": self.seed}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Candidate:
        return cls(
            name=str(data["name"]),
            hparams=dict(data["hparams"]),
            generation=int(data["generation"]),
            index=int(data["index"]),
            optimizer=str(data["optimizer"]),
            island=int(data.get("island", 0)),
            seed=int(data.get("seed", 0)),
        )


@dataclass(frozen=True)
class Result:
    """The outcome of one evaluation, successful or not.

    A failure is a value, not an exception: ``status == "failed"``, ``fitness`` is the worst possible and
    ``reason`` says why (exception text, NaN loss, timeout, Slurm state and stderr tail, ...).
    """

    name: str
    status: Status
    fitness: float
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    reason: str = ""
    job_id: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def failure(cls, name: str, reason: str, seconds: float = 0.0, job_id: str = "") -> Result:
        return cls(name=name, status="failed", fitness=WORST_FITNESS, seconds=seconds, reason=reason,
                   job_id=job_id)

    def to_dict(self) -> dict[str, Any]:
        # JSON has no infinity: the journal stores the worst fitness as null.
        return {"name": self.name, "status": self.status,
                "fitness": None if not math.isfinite(self.fitness) else self.fitness,
                "metrics": dict(self.metrics), "seconds": self.seconds, "reason": self.reason,
                "job_id": self.job_id}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        fitness = data.get("fitness")
        status: Status = "ok" if data["status"] == "ok" else "failed"
        return cls(
            name=str(data["name"]),
            status=status,
            fitness=WORST_FITNESS if fitness is None else float(fitness),
            metrics={str(k): float(v) for k, v in (data.get("metrics") or {}).items()},
            seconds=float(data.get("seconds", 0.0)),
            reason=str(data.get("reason", "")),
            job_id=str(data.get("job_id", "")),
        )


@dataclass(frozen=True)
class Evaluated:
    """A candidate together with its result: what an optimizer is told."""

    candidate: Candidate
    result: Result

    @property
    def fitness(self) -> float:
        return self.result.fitness
