"""Random search: the simplest baseline, batches of uniform draws with the same budget as the GA."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from workflow.config import OptimizerConfig
from workflow.core.base import ProtocolError, best_of, check_told
from workflow.records import Candidate, Evaluated
from workflow.space import SearchSpace


class RandomSearch:
    name = "random"

    def __init__(self, config: OptimizerConfig, space: SearchSpace, rng: np.random.Generator,
                 island: int = 0) -> None:
        self.config, self.space, self.rng, self.island = config, space, rng, island
        self.history: list[Evaluated] = []
        self.pending: list[Candidate] = []
        self.batch = 0

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
        self.batch += 1
        start = len(self.history)
        self.pending = [
            Candidate(name=f"Random-Iteration-{start + i + 1}", hparams=self.space.sample(self.rng),
                      generation=self.batch, index=i + 1, optimizer=self.name, island=self.island,
                      seed=int(self.rng.integers(2**31 - 1)))
            for i in range(self.config.population_size)
        ]
        return list(self.pending)

    def tell(self, evaluated: Sequence[Evaluated]) -> None:
        self.history.extend(check_told(self.pending, evaluated))
        self.pending = []

    def best(self) -> Evaluated | None:
        return best_of(self.history)
