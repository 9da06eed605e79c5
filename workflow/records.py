"""Small frozen value types that cross boundaries (optimizer <-> driver <-> backends <-> store).

They are plain data: JSON round-trips through ``to_dict``/``from_dict`` so the journal, the Slurm
pickles and the MPI messages all carry the same shapes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

Status = Literal["ok", "failed"]

#: Fitness given to a failed evaluation: the worst possible for a minimised objective.
WORST_FITNESS = math.inf


@dataclass(frozen=True)
class Hparams:
    """One genotype: the four hyperparameters of the seed's MLP."""

    n_layers: int
    hidden_size: int
    activation: str
    dropout: float

    @classmethod
    def gene_names(cls) -> tuple[str, ...]:
        """The genes in the chromosome's order (crossover, tables, BO dimensions)."""
        return tuple(f.name for f in fields(cls))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_row(self) -> dict[str, Any]:
        """The genes as table cells (dropout rounded to 6 digits)."""
        return {**self.to_dict(), "dropout": round(self.dropout, 6)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Hparams:
        return cls(
            n_layers=int(data["n_layers"]),
            hidden_size=int(data["hidden_size"]),
            activation=str(data["activation"]),
            dropout=float(data["dropout"]),
        )


@dataclass(frozen=True)
class Candidate:
    """An evaluation the optimizer asked for.

    ``name`` is unique within a run (``fitness-<generation>-<index>`` for the GA, ``BO-Iteration-<n>`` for BO)
    and is the identity of the evaluation everywhere: result rows, Slurm job names, W&B run ids.
    """

    name: str
    hparams: Hparams
    generation: int
    index: int
    optimizer: str
    island: int = 0
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["hparams"] = self.hparams.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Candidate:
        return cls(
            name=str(data["name"]),
            hparams=Hparams.from_dict(data["hparams"]),
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
        data = asdict(self)
        # JSON has no infinity: the journal stores the worst fitness as null.
        data["fitness"] = None if not math.isfinite(self.fitness) else self.fitness
        return data

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
