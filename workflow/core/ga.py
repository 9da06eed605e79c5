"""The seed's genetic algorithm as an ask/tell optimizer.

Each generation: ``population_size`` children are bred from the current population (tournament selection,
two-point crossover with ``crossover_prob``, per-gene mutation with ``mutation_prob``) and all are evaluated.
The next population is the best ``population_size`` of the children plus the ``elitism`` best of the previous
population: the best individual found so far is never lost. Generation 1 is a uniform random sample.

Steady state (``optimizer.mode: steady_state``): each freed slot gets one child, bred from the current population
(tournament, crossover, mutation as above) once the first ``population_size`` births are out; each result is
told as it arrives. Survival (``optimizer.ga.replacement``): ``worst``, the child replaces the worst member when
it is better; ``oldest``, regularized (aging) evolution after Real et al. 2019: every child joins and the oldest
member leaves.

Several objectives (``optimizer.objectives``): NSGA-II (Deb et al. 2002). The operators are the seed's; the
tournament compares (front, crowding) instead of fitness, and survival keeps the best ``population_size`` of
the previous population and its children together by non-dominated sorting, the last front cut by crowding
distance (``elitism`` is then implied: no non-dominated member is lost to a dominated child). In steady state
``worst`` replacement drops the worst by (front, crowding) among the population and the child.

Surrogate-assisted breeding (``optimizer.ga.surrogate: gp | et``, :mod:`workflow.core.surrogate`): each
generation (steady state: each child) ``oversample`` times as many children are bred as above, and a model of
every evaluation told so far chooses the ones to evaluate by expected improvement, except a ``random_share``
drawn uniformly from the rest. Generation 1 is still a uniform sample; ``none`` is exactly the seed's GA.

Adaptive exploration (``optimizer.ga.adapt_base``, the seed's future work): after each generation, each tree
gene's base b follows Rechenberg's 1/5 success rule. A mutation of the gene succeeds when the child beats its
best parent; when more than ``target_success`` of the generation's mutations of that gene succeeded, b is
divided by ``base_factor`` (nearer leaves: exploit), when fewer, multiplied (more uniform: explore), within
``[base_min, base_max]``. The bases are a function of what was told, so replay reproduces them; the journal
also records them with each tell (checked on replay, drawn by the report).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from workflow.config import OptimizerConfig
from workflow.core.base import BatchOptimizer, ProtocolError
from workflow.core.migration import replace_worst
from workflow.core.operators import Genotype, mutate, tournament, two_point_crossover
from workflow.core.ranking import Ranking
from workflow.records import Candidate, Evaluated
from workflow.space import SearchSpace

if TYPE_CHECKING:
    from workflow.core.surrogate import SurrogateChooser


class GeneticAlgorithm(BatchOptimizer):
    name = "ga"
    takes_immigrants = True

    def __init__(self, config: OptimizerConfig, space: SearchSpace, rng: np.random.Generator,
                 island: int = 0, trust_journal: bool = False) -> None:
        super().__init__(config, space, rng, island)
        self.ranking = Ranking(config.objectives)
        #: Each tree gene's current base b (fixed unless ``optimizer.ga.adapt_base``).
        self.bases: dict[str, float] = {gene.name: gene.base for gene in space.tree_genes}
        #: Per child of the pending batch: its best parent's fitness and the genes that mutated.
        self._lineage: list[tuple[float, list[str]]] = []
        ga = config.ga
        self._chooser = _surrogate(ga.surrogate, space, self.ranking, ga.random_share)
        #: Journal format 3: each tell records the generator's state, so replay may take recorded asks as they
        #: are instead of breeding them again (the last asks are still bred and checked).
        self._trust_journal = trust_journal
        #: An ask was taken from the journal since the last replayed tell: the generator is behind until the
        #: next tell's recorded state sets it.
        self._generator_behind = False

    def _propose(self, size: int) -> list[Genotype]:
        if self.steady:
            return [self._steady_child() for _ in range(size)]
        if not self.population:
            self._lineage = []
            return [self.space.sample(self.rng) for _ in range(size)]
        return self._breed(size)

    def _candidate_name(self, generation: int, index: int, number: int) -> str:
        return f"fitness-{generation}-{index}"

    def _took_queued(self, count: int, proposed: bool) -> None:
        # Enqueued children have no parents: nothing for the base adaptation to learn from them.
        self._lineage = [(math.inf, []) for _ in range(count)] + (self._lineage if proposed else [])

    def _learn(self, told: list[Evaluated]) -> None:
        if self.steady:
            for evaluated in told:
                self._survive(evaluated)
            return
        if self.config.ga.adapt_base and self._lineage:
            self._adapt_bases(told)
        if self.ranking.multi:
            self.population = self.ranking.survivors(told + self.population, self.config.population_size)
            return
        elites = sorted(self.population, key=lambda e: e.fitness)[: self.config.ga.elitism]
        # Stable sort: children first, so on equal fitness the new individual is preferred.
        merged = sorted(told + elites, key=lambda e: e.fitness)
        self.population = merged[: self.config.population_size]

    def journal_state(self) -> dict[str, Any]:
        """What the journal records with each tell: the adapted bases and the generator's state (checked on
        replay, or taken over when the asks before were not bred again)."""
        state: dict[str, Any] = {"bases": dict(self.bases)} if self.config.ga.adapt_base and self.bases else {}
        state["rng"] = self.rng.bit_generator.state
        return state

    def restore(self, recorded: Sequence[Candidate], verify: bool = True) -> None:
        """Format 3: the recorded candidates taken as they are (no breeding), except when ``verify``."""
        if verify or not self._trust_journal:
            super().restore(recorded, verify)
            return
        self._take_recorded(recorded)
        self._lineage = []  # what breeding would have noted for the base adaptation: its outcome is recorded
        self._generator_behind = True

    def replayed_state(self, state: dict[str, Any] | None) -> None:
        if self._generator_behind:
            if not state or "rng" not in state:
                raise ProtocolError("records no generator state, but an ask before it was taken from the journal")
            self.rng.bit_generator.state = state["rng"]
            self.bases.update(state.get("bases", {}))
            self._generator_behind = False
            return
        super().replayed_state(state)  # format 2 records no generator state: its bases alone are checked

    def immigrate(self, migrants: Sequence[Evaluated]) -> list[Evaluated]:
        """Replace the worst members by ``migrants`` (island model); returns who was replaced."""
        if not migrants:
            return []
        ranked, replaced = replace_worst(self.population, migrants, self.ranking)
        if self.steady:  # keep the members' ages (their order): the migrants are the newest
            gone = {id(e) for e in replaced}
            self.population = [e for e in self.population if id(e) not in gone] + list(migrants)[: len(replaced)]
        else:
            self.population = ranked
        return replaced

    # -- steady state ---------------------------------------------------------------------------------

    def _steady_child(self) -> Genotype:
        """One child: a uniform sample while the first block of births is being asked (or nothing was told yet),
        then bred from the current population like a generation's children."""
        if self.births < self.config.population_size or not self.population:
            return self.space.sample(self.rng)
        if self._chooser is None:
            return self._bred_child()
        children = [self._bred_child() for _ in range(self.config.ga.oversample)]
        return children[self._chooser.choose(children, self.history, 1, self.rng)[0]]

    def _bred_child(self) -> Genotype:
        """One child of two tournament winners (crossover with ``crossover_prob``, then mutation)."""
        cfg = self.config.ga
        keys = self._tournament_keys()
        a, b = (tournament(self.population, cfg.tournament_size, self.rng, keys) for _ in range(2))
        do_cross = self.rng.random() < cfg.crossover_prob
        c1, _ = two_point_crossover(a.candidate.hparams, b.candidate.hparams, self.space, self.rng)
        child, _ = mutate(c1 if do_cross else a.candidate.hparams, self.space, self.rng,
                          gene_prob=cfg.mutation_prob, bound_handling=cfg.bound_handling, bases=self.bases)
        return child

    def _survive(self, child: Evaluated) -> None:
        """``worst``: the child replaces the worst member when better; ``oldest``: it joins and the oldest goes."""
        size = self.config.population_size
        if self.config.ga.replacement == "oldest":
            self.population.append(child)
            if len(self.population) > size:
                self.population.pop(0)
            return
        if len(self.population) < size:
            self.population.append(child)
            return
        if self.ranking.multi:
            keys = self.ranking.keys([*self.population, child])
            worst = max(range(size + 1), key=lambda i: (keys[i], i))
            if worst < size:  # the child is not the worst: it takes the worst member's place
                del self.population[worst]
                self.population.append(child)
            return
        fitness = [e.fitness for e in self.population]
        worst = len(fitness) - 1 - fitness[::-1].index(max(fitness))  # the last of equally bad members
        if child.fitness < fitness[worst]:
            self.population[worst] = child

    def _breed(self, size: int) -> list[Genotype]:
        """``size`` children; with a surrogate, the ``size`` it chooses of ``oversample`` times as many."""
        if self._chooser is None:
            return self._offspring(size)
        bred = self._offspring(size * self.config.ga.oversample)
        lineage = self._lineage
        chosen = self._chooser.choose(bred, self.history, size, self.rng)
        self._lineage = [lineage[i] for i in chosen]
        return [bred[i] for i in chosen]

    def _offspring(self, size: int) -> list[Genotype]:
        """``size`` children of the population by the seed's operators (their lineage in ``_lineage``)."""
        cfg = self.config.ga
        keys = self._tournament_keys()
        parents = [tournament(self.population, cfg.tournament_size, self.rng, keys)
                   for _ in range(size + size % 2)]
        children: list[tuple[Genotype, float]] = []
        for a, b in zip(parents[::2], parents[1::2]):
            # Draw unconditionally so the stream does not depend on the outcome.
            do_cross = self.rng.random() < cfg.crossover_prob
            c1, c2 = two_point_crossover(a.candidate.hparams, b.candidate.hparams, self.space, self.rng)
            if do_cross:
                best = min(a.fitness, b.fitness)
                children.extend(((c1, best), (c2, best)))
            else:
                children.extend(((dict(a.candidate.hparams), a.fitness), (dict(b.candidate.hparams), b.fitness)))
        out: list[Genotype] = []
        self._lineage = []
        for genotype, parent_fitness in children[:size]:
            child, mutated = mutate(genotype, self.space, self.rng, gene_prob=cfg.mutation_prob,
                                    bound_handling=cfg.bound_handling, bases=self.bases)
            out.append(child)
            self._lineage.append((parent_fitness, mutated))
        return out

    def _tournament_keys(self) -> list[tuple[float, float]] | None:
        """NSGA-II's (front, -crowding) of the population, for tournaments; None with one objective (fitness)."""
        return self.ranking.keys(self.population) if self.ranking.multi else None

    def _adapt_bases(self, told: list[Evaluated]) -> None:
        """The 1/5 rule on each tree gene's base: many successful mutations shrink b, few grow it."""
        cfg = self.config.ga
        for gene in self.bases:
            trials = [(e, parent) for e, (parent, mutated) in zip(told, self._lineage) if gene in mutated]
            if not trials:
                continue
            rate = sum(e.result.ok and e.fitness < parent for e, parent in trials) / len(trials)
            if rate > cfg.target_success:
                self.bases[gene] = max(cfg.base_min, self.bases[gene] / cfg.base_factor)
            elif rate < cfg.target_success:
                self.bases[gene] = min(cfg.base_max, self.bases[gene] * cfg.base_factor)


def _surrogate(kind: str, space: SearchSpace, ranking: Ranking, random_share: float) -> SurrogateChooser | None:
    """The chooser for ``optimizer.ga.surrogate``, or None; skopt (and scikit-learn) load only when one is asked
    for, so a plain GA's driver and its workers start without them."""
    if kind == "none":
        return None
    from workflow.core.surrogate import SurrogateChooser

    return SurrogateChooser(kind, space, ranking, random_share)
