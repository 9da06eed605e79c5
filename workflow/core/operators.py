"""GA operators on genotypes of any space: tournament, two-point crossover, per-gene mutation. Pure functions.

Every random draw comes from the generator passed in, so a run is reproducible from its seed and a resumed run
replays exactly the same draws. On the seed's four genes the draws are the seed's GA's, in the same order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from workflow.records import Evaluated
from workflow.space import SearchSpace

Genotype = dict[str, Any]


def tournament(population: Sequence[Evaluated], size: int, rng: np.random.Generator,
               keys: Sequence[tuple[float, float]] | None = None) -> Evaluated:
    """Draw ``size`` distinct individuals uniformly; the one with the lowest fitness wins (``keys``: the one with
    the lowest key, e.g. NSGA-II's (rank, -crowding), one per member of ``population``).

    Ties go to the earlier-drawn contender, so the choice depends only on the generator.
    """
    picks = [int(i) for i in rng.choice(len(population), size=min(size, len(population)), replace=False)]
    if keys is not None:
        return population[min(picks, key=lambda i: keys[i])]
    return min((population[i] for i in picks), key=lambda e: e.fitness)


def two_point_crossover(a: Mapping[str, Any], b: Mapping[str, Any], space: SearchSpace,
                        rng: np.random.Generator) -> tuple[Genotype, Genotype]:
    """Swap the genes between two cut points (DEAP's cxTwoPoint on the gene sequence), then cross each
    variable-length gene inside itself (a layers gene: cut and splice, :meth:`LayersGene.splice`).

    As in DEAP, the segment never starts at gene 0: swapping genes [0, k) is the same pair of children as
    swapping [k, n), so every split of the chromosome is still reachable, and one gene is always kept. A space
    of one gene has no cut points: its children are its parents (crossed inside the gene).
    """
    names = space.names
    child_a, child_b = dict(a), dict(b)
    size = len(names)
    if size >= 2:
        p1 = int(rng.integers(1, size + 1))
        p2 = int(rng.integers(1, size))
        if p2 >= p1:
            p2 += 1
        else:
            p1, p2 = p2, p1
        for name in names[p1:p2]:
            child_a[name], child_b[name] = b[name], a[name]
    for gene in space.genes:
        child_a[gene.name], child_b[gene.name] = gene.splice(child_a[gene.name], child_b[gene.name], rng)
    return {n: child_a[n] for n in names}, {n: child_b[n] for n in names}


def mutate(hparams: Mapping[str, Any], space: SearchSpace, rng: np.random.Generator, *, gene_prob: float,
           bound_handling: str, bases: Mapping[str, float] | None = None) -> tuple[Genotype, list[str]]:
    """Perturb each gene with probability ``gene_prob`` (each type's own distribution), kept in bounds.

    Returns the child and the names of the genes that mutated. ``bases``: the current base of each tree gene
    (the GA adapts them; default: each gene's own). Every gene makes its unconditional draw first, whether it
    mutates or not, so the generator's stream does not depend on earlier outcomes.
    """
    genes = space.genes
    flips = rng.random(len(genes)) < gene_prob
    drawn = [gene.draw(rng) for gene in genes]
    child: Genotype = {}
    mutated: list[str] = []
    for gene, flip, draw in zip(genes, flips, drawn):
        value = hparams[gene.name]
        if flip:
            value = gene.mutate(value, draw, rng, base=(bases or {}).get(gene.name), bound_handling=bound_handling)
            mutated.append(gene.name)
        child[gene.name] = gene.canonical(value)
    return child, mutated
