"""The seed's genetic algorithm as an ask/tell optimizer.

Each generation: ``population_size`` children are bred from the current population (tournament selection,
two-point crossover with ``crossover_prob``, per-gene mutation with ``mutation_prob``) and all are evaluated.
The next population is the best ``population_size`` of the children plus the ``elitism`` best of the previous
population: the best individual found so far is never lost. Generation 1 is a uniform random sample.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from workflow.config import OptimizerConfig
from workflow.core.base import BatchOptimizer
from workflow.core.migration import replace_worst
from workflow.core.operators import mutate, tournament, two_point_crossover
from workflow.records import Evaluated, Hparams
from workflow.space import SearchSpace


class GeneticAlgorithm(BatchOptimizer):
    name = "ga"

    def __init__(self, config: OptimizerConfig, space: SearchSpace, rng: np.random.Generator,
                 island: int = 0) -> None:
        super().__init__(config, space, rng, island)
        self.population: list[Evaluated] = []

    def _propose(self, size: int) -> list[Hparams]:
        if not self.population:
            return [self.space.sample(self.rng) for _ in range(size)]
        return self._breed(size)

    def _candidate_name(self, generation: int, index: int, number: int) -> str:
        return f"fitness-{generation}-{index}"

    def _learn(self, told: list[Evaluated]) -> None:
        elites = sorted(self.population, key=lambda e: e.fitness)[: self.config.ga.elitism]
        # Stable sort: children first, so on equal fitness the new individual is preferred.
        merged = sorted(told + elites, key=lambda e: e.fitness)
        self.population = merged[: self.config.population_size]

    def immigrate(self, migrants: Sequence[Evaluated]) -> list[Evaluated]:
        """Replace the worst members by ``migrants`` (island model); returns who was replaced."""
        if not migrants:
            return []
        self.population, replaced = replace_worst(self.population, migrants)
        return replaced

    def _breed(self, size: int) -> list[Hparams]:
        cfg, mcfg = self.config.ga, self.config.ga.mutation
        parents = [tournament(self.population, cfg.tournament_size, self.rng).candidate.hparams
                   for _ in range(size + size % 2)]
        children: list[Hparams] = []
        for a, b in zip(parents[::2], parents[1::2]):
            # Draw unconditionally so the stream does not depend on the outcome.
            do_cross = self.rng.random() < cfg.crossover_prob
            c1, c2 = two_point_crossover(a, b, self.rng)
            children.extend((c1, c2) if do_cross else (a, b))
        return [
            mutate(hp, self.space, self.rng, gene_prob=cfg.mutation_prob, n_layers_step=mcfg.n_layers_step,
                   hidden_size_step=mcfg.hidden_size_step, dropout_sigma=mcfg.dropout_sigma,
                   activation_base=cfg.activation_base, bound_handling=cfg.bound_handling)
            for hp in children[:size]
        ]
