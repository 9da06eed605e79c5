"""The optimizer interface shared by GA, BO and random search, and the batch bookkeeping they share."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from workflow.records import Candidate, Evaluated, Hparams

if TYPE_CHECKING:
    from workflow.config import OptimizerConfig
    from workflow.space import SearchSpace


class Optimizer(Protocol):
    """Ask for a batch, evaluate it elsewhere, tell the results back; repeat until ``finished``.

    Implementations hold all their state in memory and rebuild it by replay: a fresh optimizer with the same
    config and seed, asked and told the same batches, is in the same state (the driver relies on this to resume).
    """

    name: str

    @property
    def finished(self) -> bool: ...

    @property
    def batches_asked(self) -> int: ...

    def ask(self) -> list[Candidate]: ...

    def tell(self, evaluated: Sequence[Evaluated]) -> None: ...

    def best(self) -> Evaluated | None: ...


class ProtocolError(RuntimeError):
    """ask/tell called out of order or told results that were not asked."""


def check_told(pending: Sequence[Candidate], evaluated: Sequence[Evaluated]) -> list[Evaluated]:
    """Order ``evaluated`` like ``pending`` and check both name the same evaluations."""
    by_name = {e.candidate.name: e for e in evaluated}
    expected = [c.name for c in pending]
    if sorted(by_name) != sorted(expected) or len(evaluated) != len(pending):
        raise ProtocolError(f"told {sorted(by_name)} but asked {expected}")
    return [by_name[name] for name in expected]


class BatchOptimizer:
    """The ask/tell bookkeeping GA, BO and random search share; subclasses say what to propose and learn.

    A run is ``config.generations`` batches of ``config.population_size`` candidates. :meth:`ask` refuses a
    new batch while one is pending, draws each candidate's training seed from the injected generator right
    after its hyperparameters are taken from :meth:`_propose` (a lazy iterable interleaves the two draws),
    and :meth:`tell` checks the results against the pending batch before :meth:`_learn` sees them.
    """

    name = "base"

    def __init__(self, config: OptimizerConfig, space: SearchSpace, rng: np.random.Generator,
                 island: int = 0) -> None:
        self.config, self.space, self.rng, self.island = config, space, rng, island
        self.history: list[Evaluated] = []
        self.pending: list[Candidate] = []
        self.batch = 0  # batches asked so far; generation numbers and names are 1-based

    @property
    def finished(self) -> bool:
        return self.batch >= self.config.generations and not self.pending

    @property
    def batches_asked(self) -> int:
        return self.batch

    def ask(self) -> list[Candidate]:
        if self.pending:
            raise ProtocolError(f"batch {self.batch} was asked but not told")
        if self.batch >= self.config.generations:
            return []
        proposals = self._propose(self.config.population_size)
        self.batch += 1
        start = len(self.history)
        self.pending = [
            Candidate(name=self._candidate_name(self.batch, i + 1, start + i + 1), hparams=hp,
                      generation=self.batch, index=i + 1, optimizer=self.name, island=self.island,
                      seed=int(self.rng.integers(2**31 - 1)))
            for i, hp in enumerate(proposals)
        ]
        return list(self.pending)

    def tell(self, evaluated: Sequence[Evaluated]) -> None:
        told = check_told(self.pending, evaluated)
        self.pending = []
        self.history.extend(told)
        self._learn(told)

    def best(self) -> Evaluated | None:
        return best_of(self.history)

    def _propose(self, size: int) -> Iterable[Hparams]:
        """The next batch's ``size`` hyperparameter sets (consumed once, in order)."""
        raise NotImplementedError

    def _candidate_name(self, generation: int, index: int, number: int) -> str:
        """A candidate's name from its generation, its 1-based index in it and its 1-based overall number."""
        raise NotImplementedError

    def _learn(self, told: list[Evaluated]) -> None:
        """Update the optimizer's model from a told batch (already in ``history``)."""


def best_of(evaluated: Sequence[Evaluated]) -> Evaluated | None:
    """Lowest fitness; ties broken by first occurrence."""
    return min(evaluated, key=lambda e: e.fitness, default=None)
