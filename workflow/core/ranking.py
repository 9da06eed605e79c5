"""How evaluations compare: by fitness (one objective) or by NSGA-II's rank and crowding (several).

Every selection of the GA and the island model (tournaments, survival, emigrants, who an immigrant replaces)
asks a :class:`Ranking` for sort keys, lower is better: ``(fitness, 0)`` with one objective, exactly the
seed's order; ``(front, -crowding)`` with several (Deb et al. 2002), computed over the set being compared.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from workflow.config import ObjectiveSpec
from workflow.core.pareto import rank_and_crowding, select_survivors
from workflow.records import Evaluated

Key = tuple[float, float]


class Ranking:
    """The order of evaluations under ``objectives`` (none or one: fitness)."""

    def __init__(self, objectives: Sequence[ObjectiveSpec] = ()) -> None:
        self.objectives = tuple(objectives)

    @property
    def multi(self) -> bool:
        return len(self.objectives) > 1

    def vector(self, evaluated: Evaluated) -> list[float]:
        """The objective values to minimise (maximised ones negated); every one ``inf`` for a failed evaluation
        or one missing a metric: dominated by every evaluation that ran."""
        if not self.multi:
            return [evaluated.fitness]
        if not evaluated.result.ok:
            return [math.inf] * len(self.objectives)
        values = []
        for spec in self.objectives:
            value = evaluated.result.metrics.get(spec.metric, math.nan)
            if not math.isfinite(value):
                return [math.inf] * len(self.objectives)
            values.append(-value if spec.direction == "maximize" else value)
        return values

    def points(self, members: Sequence[Evaluated]) -> np.ndarray:
        return np.array([self.vector(e) for e in members], dtype=float).reshape(len(members), -1)

    def keys(self, members: Sequence[Evaluated]) -> list[Key]:
        """One sort key per member, lower is better (NSGA-II's crowded comparison with several objectives)."""
        if not self.multi:
            return [(e.fitness, 0.0) for e in members]
        if not members:
            return []
        rank, crowding = rank_and_crowding(self.points(members))
        return [(float(r), -float(c)) for r, c in zip(rank, crowding)]

    def best_first(self, members: Sequence[Evaluated]) -> list[Evaluated]:
        """``members`` sorted best first (stable: equals keep their order)."""
        keys = self.keys(members)
        order = sorted(range(len(members)), key=lambda i: keys[i])
        return [members[i] for i in order]

    def survivors(self, members: Sequence[Evaluated], k: int) -> list[Evaluated]:
        """The ``k`` best, best first (several objectives: NSGA-II's environmental selection)."""
        if not self.multi:
            return self.best_first(members)[:k]
        return [members[int(i)] for i in select_survivors(self.points(members), k)]
