"""The GA core: operators, the ask/tell protocol, elitism and reproducibility. No I/O, fake fitness."""

import math

import numpy as np
import pytest

from tests.objectives.landscape import landscape
from tests.support import genes
from workflow.config import from_mapping
from workflow.core import make_optimizer
from workflow.core.base import ProtocolError
from workflow.core.operators import mutate, tournament, two_point_crossover
from workflow.records import Candidate, Evaluated, Result


def _config(**optimizer):
    return from_mapping({"seed": 7, "optimizer": {"population_size": 6, "generations": 5, **optimizer}})


def _evaluate(batch):
    return [Evaluated(c, Result(c.name, "ok", landscape(c.hparams))) for c in batch]


def _run(config):
    opt = make_optimizer(config)
    seen = []
    while not opt.finished:
        batch = opt.ask()
        seen.append(batch)
        opt.tell(_evaluate(batch))
    return opt, seen


def test_names_sizes_and_generations():
    opt, batches = _run(_config())
    assert len(batches) == 5
    assert [c.name for c in batches[0]] == [f"fitness-1-{i}" for i in range(1, 7)]
    assert batches[-1][0].name == "fitness-5-1"
    assert all(c.optimizer == "ga" and c.generation == g for g, b in enumerate(batches, 1) for c in b)
    assert opt.ask() == []


def test_same_seed_same_search_different_seed_different():
    a = [c.to_dict() for b in _run(_config())[1] for c in b]
    b = [c.to_dict() for b in _run(_config())[1] for c in b]
    c = [c.to_dict() for b in _run(from_mapping({"seed": 8, "optimizer": {"population_size": 6,
                                                                            "generations": 5}}))[1] for c in b]
    assert a == b
    assert a != c


def test_elitism_never_loses_the_best():
    opt = make_optimizer(_config(elitism=1))
    best_so_far = math.inf
    while not opt.finished:
        batch = opt.ask()
        opt.tell(_evaluate(batch))
        best_so_far = min(best_so_far, min(landscape(c.hparams) for c in batch))
        assert min(e.fitness for e in opt.population) == best_so_far


def test_without_elitism_population_is_the_children():
    opt = make_optimizer(_config(elitism=0))
    opt.tell(_evaluate(opt.ask()))
    batch = opt.ask()
    opt.tell(_evaluate(batch))
    assert {e.candidate.name for e in opt.population} == {c.name for c in batch}


def test_ga_improves_on_a_known_landscape():
    opt, batches = _run(from_mapping({"seed": 3, "optimizer": {"population_size": 10, "generations": 15}}))
    first = np.mean([landscape(c.hparams) for c in batches[0]])
    last = np.mean([landscape(c.hparams) for c in batches[-1]])
    assert last < first


def test_failed_evaluations_are_worst_and_never_selected_over_ok():
    opt = make_optimizer(_config())
    batch = opt.ask()
    told = [Evaluated(c, Result.failure(c.name, "boom")) if i else Evaluated(c, Result(c.name, "ok", 5.0))
            for i, c in enumerate(batch)]
    opt.tell(told)
    assert opt.population[0].candidate.name == batch[0].name
    rng = np.random.default_rng(0)
    winners = {tournament(opt.population, 6, rng).candidate.name for _ in range(20)}
    assert winners == {batch[0].name}


def test_protocol_errors():
    opt = make_optimizer(_config())
    batch = opt.ask()
    with pytest.raises(ProtocolError):
        opt.ask()
    with pytest.raises(ProtocolError):
        opt.tell(_evaluate(batch[:-1]))


def test_tournament_returns_best_of_the_drawn():
    pop = [Evaluated(Candidate(f"x{i}", genes(1, 16, "relu", 0.0), 1, i, "ga"), Result(f"x{i}", "ok", float(i)))
           for i in range(5)]
    rng = np.random.default_rng(0)
    assert tournament(pop, 5, rng).candidate.name == "x0"
    counts = {e.candidate.name: 0 for e in pop}
    for _ in range(3000):
        counts[tournament(pop, 3, rng).candidate.name] += 1
    # Size 3 of 5: P(x0 wins) = 3/5, P(x3 or x4 wins) = 0 for x4 and 1/10 for x2.
    assert counts["x4"] == 0 and counts["x3"] == 0
    assert counts["x0"] / 3000 == pytest.approx(0.6, abs=0.03)


def test_two_point_crossover_swaps_one_contiguous_segment():
    a, b = genes(1, 16, "relu", 0.0), genes(5, 128, "tanh", 0.5)
    rng = np.random.default_rng(0)
    segments = set()
    space = _config().search_space()
    for _ in range(200):
        c1, c2 = two_point_crossover(a, b, space, rng)
        genes1 = [c1[k] == b[k] for k in space.names]
        genes2 = [c2[k] == a[k] for k in space.names]
        assert genes1 == genes2  # complementary children
        swapped = [i for i, g in enumerate(genes1) if g]
        assert swapped == list(range(swapped[0], swapped[-1] + 1))  # contiguous
        assert 0 < len(swapped) < 4
        segments.add(tuple(swapped))
    assert segments == {(1,), (2,), (3,), (1, 2), (2, 3), (1, 2, 3)}


def test_mutation_keeps_bounds_and_changes_activation_through_tree():
    config = _config()
    space = config.search_space()
    rng = np.random.default_rng(0)
    hp = genes(5, 128, "relu", 0.49)
    kids = [mutate(hp, space, rng, gene_prob=1.0, bound_handling="clip")[0] for _ in range(500)]
    assert all(space.contains(k) for k in kids)
    assert all(k["activation"] != "relu" for k in kids)
    assert {k["n_layers"] for k in kids} == {3, 4, 5}
    assert max(k["hidden_size"] for k in kids) == 128 and min(k["hidden_size"] for k in kids) >= 112
    # Clipping piles mass on the bound; with reflect it does not.
    assert sum(k["dropout"] == 0.5 for k in kids) > 100
    reflected = [mutate(hp, space, rng, gene_prob=1.0, bound_handling="reflect")[0] for _ in range(200)]
    assert all(space.contains(k) for k in reflected)
    assert sum(k["dropout"] == 0.5 for k in reflected) == 0


def test_mutation_probability_zero_is_identity():
    space = _config().search_space()
    rng = np.random.default_rng(0)
    hp = genes(3, 64, "elu", 0.2)
    assert all(mutate(hp, space, rng, gene_prob=0.0, bound_handling="clip") == (hp, []) for _ in range(50))


def test_random_search_names_and_budget():
    config = from_mapping({"seed": 1, "optimizer": {"name": "random", "population_size": 3, "generations": 2}})
    opt, batches = _run(config)
    assert [c.name for b in batches for c in b] == [f"Random-Iteration-{i}" for i in range(1, 7)]
