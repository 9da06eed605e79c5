"""Random search: the simplest baseline, batches of uniform draws (log-uniform for log genes) with the GA's budget."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from workflow.core.base import BatchOptimizer


class RandomSearch(BatchOptimizer):
    """Uniform draws from the search space, ``population_size`` per batch, named ``Random-Iteration-<n>``."""

    name = "random"

    def _propose(self, size: int) -> Iterator[dict[str, Any]]:
        # Lazy: each draw is followed by its candidate's seed draw, the order every earlier run used.
        return (self.space.sample(self.rng) for _ in range(size))

    def _candidate_name(self, generation: int, index: int, number: int) -> str:
        return f"Random-Iteration-{number}"
