"""The optimizer interface shared by GA, BO and random search, and the factory that picks one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from workflow.records import Candidate, Evaluated

if TYPE_CHECKING:
    from workflow.config import Config


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


def make_optimizer(config: Config, island: int = 0, seed: int | None = None) -> Optimizer:
    """Build the optimizer named by ``config.optimizer.name`` with a generator seeded from the run seed."""
    rng = np.random.default_rng([config.seed if seed is None else seed, island])
    name = config.optimizer.name
    if name == "ga":
        from workflow.core.ga import GeneticAlgorithm

        return GeneticAlgorithm(config.optimizer, config.search_space(), rng, island=island)
    if name == "random":
        from workflow.core.random_search import RandomSearch

        return RandomSearch(config.optimizer, config.search_space(), rng, island=island)
    if name == "bo":
        from workflow.core.bo import BayesianOptimization

        return BayesianOptimization(config.optimizer, config.search_space(), rng, island=island)
    raise ValueError(f"unknown optimizer {name!r}")


def best_of(evaluated: Sequence[Evaluated]) -> Evaluated | None:
    """Lowest fitness; ties broken by first occurrence."""
    return min(evaluated, key=lambda e: e.fitness, default=None)
