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
from workflow.core.base import ProtocolError, best_of, check_told
from workflow.core.operators import mutate, tournament, two_point_crossover
from workflow.records import Candidate, Evaluated, Hparams
from workflow.space import SearchSpace


class GeneticAlgorithm:
    name = "ga"

    def __init__(self, config: OptimizerConfig, space: SearchSpace, rng: np.random.Generator,
                 island: int = 0) -> None:
        self.config, self.space, self.rng, self.island = config, space, rng, island
        self.population: list[Evaluated] = []
        self.history: list[Evaluated] = []
        self.pending: list[Candidate] = []
        self.generation = 0  # generations asked so far; names are 1-based

    @property
    def finished(self) -> bool:
        return self.generation >= self.config.generations and not self.pending

    @property
    def batches_asked(self) -> int:
        return self.generation

    def ask(self) -> list[Candidate]:
        if self.pending:
            raise ProtocolError(f"generation {self.generation} was asked but not told")
        if self.generation >= self.config.generations:
            return []
        size = self.config.population_size
        if not self.population:
            genomes = [self.space.sample(self.rng) for _ in range(size)]
        else:
            genomes = self._breed(size)
        self.generation += 1
        self.pending = [
            Candidate(name=f"fitness-{self.generation}-{i + 1}", hparams=hp, generation=self.generation,
                      index=i + 1, optimizer=self.name, island=self.island,
                      seed=int(self.rng.integers(2**31 - 1)))
            for i, hp in enumerate(genomes)
        ]
        return list(self.pending)

    def tell(self, evaluated: Sequence[Evaluated]) -> None:
        children = check_told(self.pending, evaluated)
        self.pending = []
        self.history.extend(children)
        elites = sorted(self.population, key=lambda e: e.fitness)[: self.config.elitism]
        # Stable sort: children first, so on equal fitness the new individual is preferred.
        merged = sorted(children + elites, key=lambda e: e.fitness)
        self.population = merged[: self.config.population_size]

    def immigrate(self, migrants: Sequence[Evaluated]) -> list[Evaluated]:
        """Replace the worst members by ``migrants`` (island model); returns who was replaced."""
        if not migrants:
            return []
        ranked = sorted(self.population, key=lambda e: e.fitness)
        keep = max(len(ranked) - len(migrants), 0)
        replaced = ranked[keep:]
        self.population = ranked[:keep] + list(migrants)[: len(ranked) or len(migrants)]
        return replaced

    def best(self) -> Evaluated | None:
        return best_of(self.history)

    def _breed(self, size: int) -> list[Hparams]:
        cfg, mcfg = self.config, self.config.mutation
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
