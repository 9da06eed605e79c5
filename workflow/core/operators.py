"""GA operators on the 4-gene chromosome (n_layers, hidden_size, activation, dropout). Pure functions.

Every random draw comes from the generator passed in, so a run is reproducible from its seed and a
resumed run replays exactly the same draws.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from workflow.records import Evaluated, Hparams
from workflow.space import SearchSpace, bound

GENES = Hparams.gene_names()


def tournament(population: Sequence[Evaluated], size: int, rng: np.random.Generator) -> Evaluated:
    """Draw ``size`` distinct individuals uniformly; the one with the lowest fitness wins.

    Ties go to the earlier-drawn contender, so the choice depends only on the generator.
    """
    picks = rng.choice(len(population), size=min(size, len(population)), replace=False)
    return min((population[int(i)] for i in picks), key=lambda e: e.fitness)


def two_point_crossover(a: Hparams, b: Hparams, rng: np.random.Generator) -> tuple[Hparams, Hparams]:
    """Swap the genes between two cut points (DEAP's cxTwoPoint on a 4-gene list).

    As in DEAP, the segment never starts at gene 0: swapping genes [0, k) is the same pair of children as
    swapping [k, 4), so every split of the chromosome is still reachable, and one gene is always kept.
    """
    genes_a, genes_b = _as_list(a), _as_list(b)
    size = len(GENES)
    p1 = int(rng.integers(1, size + 1))
    p2 = int(rng.integers(1, size))
    if p2 >= p1:
        p2 += 1
    else:
        p1, p2 = p2, p1
    genes_a[p1:p2], genes_b[p1:p2] = genes_b[p1:p2], genes_a[p1:p2]
    return _from_list(genes_a), _from_list(genes_b)


def mutate(
    hp: Hparams,
    space: SearchSpace,
    rng: np.random.Generator,
    *,
    gene_prob: float,
    n_layers_step: int,
    hidden_size_step: int,
    dropout_sigma: float,
    activation_base: float,
    bound_handling: str,
) -> Hparams:
    """Perturb each gene with probability ``gene_prob`` (the seed's distributions), kept in bounds.

    n_layers += U{-n_layers_step..n_layers_step}, hidden_size += U{-hidden_size_step..hidden_size_step},
    dropout += N(0, dropout_sigma), activation drawn through the tree distance (never unchanged).
    A draw is made for every gene whether or not it mutates, so the generator's stream does not depend on
    earlier outcomes (which keeps replays aligned even if the decision logic changes).
    """
    flips = rng.random(4) < gene_prob
    d_layers = int(rng.integers(-n_layers_step, n_layers_step + 1))
    d_hidden = int(rng.integers(-hidden_size_step, hidden_size_step + 1))
    d_dropout = float(rng.normal(0.0, dropout_sigma)) if dropout_sigma > 0 else 0.0
    activation = hp.activation
    if flips[2]:
        activation = space.tree.mutate(hp.activation, activation_base, rng)
    n_layers = hp.n_layers + d_layers if flips[0] else hp.n_layers
    hidden = hp.hidden_size + d_hidden if flips[1] else hp.hidden_size
    dropout = hp.dropout + d_dropout if flips[3] else hp.dropout
    return Hparams(
        n_layers=int(round(bound(n_layers, *space.n_layers, bound_handling))),
        hidden_size=int(round(bound(hidden, *space.hidden_size, bound_handling))),
        activation=activation,
        dropout=float(bound(dropout, *space.dropout, bound_handling)),
    )


def _as_list(hp: Hparams) -> list[object]:
    return [hp.n_layers, hp.hidden_size, hp.activation, hp.dropout]


def _from_list(genes: list[object]) -> Hparams:
    n_layers, hidden, activation, dropout = genes
    return Hparams(n_layers=int(n_layers), hidden_size=int(hidden),  # type: ignore[call-overload]
                   activation=str(activation), dropout=float(dropout))  # type: ignore[arg-type]
