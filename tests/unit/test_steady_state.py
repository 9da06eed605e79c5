"""Steady state (``optimizer.mode: steady_state``): no generation barrier, results told in any order.

The optimizers are driven here the way the driver drives them, with a fake fitness: up to ``max_in_flight``
candidates out, a random subset of them told at a time, a freed slot asked again at once. What must hold:
the budget and the names, the in-flight bound, each survival rule, and a replay in the journal's order of tells
that brings a fresh optimizer to the same state.
"""

from __future__ import annotations

import random

import pytest

from tests.objectives.landscape import landscape
from workflow.config import from_mapping
from workflow.core import make_optimizer
from workflow.core.base import ProtocolError
from workflow.records import Evaluated, Result

OPTIMIZERS = ["ga", "bo", "random"]


def _config(name="ga", population_size=4, generations=3, seed=3, **extra):
    optimizer = {"name": name, "population_size": population_size, "generations": generations,
                 "mode": "steady_state", "ga": {"tournament_size": 2}, "bo": {"initial_points": 3}}
    optimizer.update(extra)
    return from_mapping({"seed": seed, "optimizer": optimizer})


def _evaluate(candidate):
    if sum(map(ord, candidate.name)) % 5 == 0:  # some fail: failures are told like any result
        return Evaluated(candidate, Result.failure(candidate.name, "boom"))
    return Evaluated(candidate, Result(candidate.name, "ok", landscape(candidate.hparams)))


def _drive(optimizer, order_seed=0, log=None):
    """Run ``optimizer`` to the end, telling a random non-empty subset of what is out each time; ``log`` gets
    ("ask", candidates) and ("tell", names) in the order they happened (what the journal records)."""
    chooser = random.Random(order_seed)
    out = []
    most = 0
    while not optimizer.finished:
        if optimizer.capacity():
            asked = optimizer.ask(optimizer.capacity())
            out.extend(asked)
            if log is not None:
                log.append(("ask", asked))
        most = max(most, len(optimizer.pending))
        told = chooser.sample(out, chooser.randint(1, len(out)))
        out = [c for c in out if c not in told]
        optimizer.tell([_evaluate(c) for c in told])
        if log is not None:
            log.append(("tell", [c.name for c in told]))
    return most


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_budget_names_and_in_flight_bound(name):
    config = _config(name, max_in_flight=3)
    optimizer = make_optimizer(config)
    log = []
    most = _drive(optimizer, log=log)
    assert most == 3
    asked = [c for kind, batch in log if kind == "ask" for c in batch]
    assert len(asked) == config.evaluations_planned == 12
    assert len({c.name for c in asked}) == 12
    # Births numbered in blocks of population_size, like the seed's generations.
    assert [(c.generation, c.index) for c in asked] == [(g, i) for g in (1, 2, 3) for i in (1, 2, 3, 4)]
    if name == "ga":
        assert [c.name for c in asked][:5] == ["fitness-1-1", "fitness-1-2", "fitness-1-3", "fitness-1-4",
                                                "fitness-2-1"]
    assert optimizer.finished and optimizer.capacity() == 0 and optimizer.ask(5) == []
    assert len(optimizer.history) == 12


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_max_in_flight_defaults_to_the_population_size(name):
    optimizer = make_optimizer(_config(name, population_size=5, generations=2))
    assert len(optimizer.ask()) == 5 and optimizer.capacity() == 0
    first = optimizer.pending[0]
    optimizer.tell([_evaluate(first)])
    assert optimizer.capacity() == 1
    assert len(optimizer.ask(3)) == 1 and optimizer.capacity() == 0


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_telling_what_is_not_pending_is_refused(name):
    optimizer = make_optimizer(_config(name))
    batch = optimizer.ask(2)
    optimizer.tell([_evaluate(batch[0])])
    with pytest.raises(ProtocolError):
        optimizer.tell([_evaluate(batch[0])])  # told twice


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("order_seed", [0, 1, 2])
def test_replaying_the_journal_order_reaches_the_same_state(name, order_seed):
    config = _config(name, generations=4, max_in_flight=3)
    original = make_optimizer(config)
    log = []
    chooser = random.Random(order_seed)
    out = []
    # Stop half-way, as a killed driver would, and remember what the original proposes next.
    while original.births < 9:
        if original.capacity():
            asked = original.ask(original.capacity())
            out.extend(asked)
            log.append(("ask", asked))
        told = chooser.sample(out, chooser.randint(1, len(out)))
        out = [c for c in out if c not in told]
        original.tell([_evaluate(c) for c in told])
        log.append(("tell", [c.name for c in told]))
    fresh = make_optimizer(config)
    for kind, item in log:
        if kind == "ask":
            fresh.restore(item, verify=True)
        else:
            pending = {c.name: c for c in fresh.pending}
            fresh.tell([_evaluate(pending[n]) for n in item])
    assert [c.to_dict() for c in fresh.pending] == [c.to_dict() for c in original.pending]
    assert fresh.births == original.births and fresh.batches_asked == original.batches_asked
    n = original.capacity() or 1
    if not original.capacity():
        victim = original.pending[0]
        original.tell([_evaluate(victim)])
        fresh.tell([_evaluate(victim)])
    assert [c.to_dict() for c in fresh.ask(n)] == [c.to_dict() for c in original.ask(n)]


def test_a_different_order_of_tells_is_a_different_search():
    # The journal's order matters (that is why it is the replay order): two orders, two next children.
    config = _config("ga", generations=6)
    children = []
    for order_seed in (0, 1):
        optimizer = make_optimizer(config)
        _drive_until(optimizer, births=16, order_seed=order_seed)
        children.append([c.hparams for c in optimizer.pending])
    assert children[0] != children[1]


def _drive_until(optimizer, births, order_seed):
    chooser = random.Random(order_seed)
    while optimizer.births < births:
        if optimizer.capacity():
            optimizer.ask(optimizer.capacity())
        out = optimizer.pending
        told = chooser.sample(out, chooser.randint(1, len(out)))
        optimizer.tell([_evaluate(c) for c in told])


def test_worst_replacement_never_loses_the_best_and_keeps_the_size():
    config = _config("ga", population_size=4, generations=10, ga={"tournament_size": 2, "replacement": "worst"})
    optimizer = make_optimizer(config)
    chooser = random.Random(4)
    best_so_far = float("inf")
    while not optimizer.finished:
        if optimizer.capacity():
            optimizer.ask(optimizer.capacity())
        told = chooser.sample(optimizer.pending, 1)
        before = sorted(e.fitness for e in optimizer.population)
        optimizer.tell([_evaluate(c) for c in told])
        child = optimizer.history[-1]
        after = sorted(e.fitness for e in optimizer.population)
        best_so_far = min(best_so_far, child.fitness)
        assert len(optimizer.population) == min(4, len(optimizer.history))
        assert min(after) == best_so_far  # the best found is a member
        if len(before) == 4:
            if child.fitness < before[-1]:
                assert after == sorted(before[:-1] + [child.fitness])  # replaced the worst
            else:
                assert after == before  # a child no better than the worst does not get in


def test_oldest_replacement_is_aging_evolution():
    config = _config("ga", population_size=4, generations=10, ga={"tournament_size": 2, "replacement": "oldest"})
    optimizer = make_optimizer(config)
    chooser = random.Random(5)
    while not optimizer.finished:
        if optimizer.capacity():
            optimizer.ask(optimizer.capacity())
        optimizer.tell([_evaluate(c) for c in chooser.sample(optimizer.pending, 1)])
        # The population is the last four told, oldest first, whatever their fitness.
        assert [e.candidate.name for e in optimizer.population] == [e.candidate.name
                                                                   for e in optimizer.history[-4:]]


def test_children_are_bred_from_the_population_after_the_first_block():
    config = _config("ga", population_size=4, generations=5,
                     ga={"tournament_size": 2, "crossover_prob": 0.0, "mutation_prob": 0.0})
    optimizer = make_optimizer(config)
    _drive_until(optimizer, births=12, order_seed=0)
    members = [e.candidate.hparams for e in optimizer.history]
    # Without crossover and mutation a child is a copy of a tournament winner: one of those told before it.
    for child in optimizer.history[4:]:
        assert child.candidate.hparams in members[: optimizer.history.index(child)]


def test_adaptive_bases_need_generations():
    from workflow.errors import ConfigError

    with pytest.raises(ConfigError, match="adapt_base"):
        from_mapping({"optimizer": {"mode": "steady_state", "ga": {"adapt_base": True}}})


def test_bo_lies_about_points_in_flight():
    # A freed slot must not get the point next to one still running: the liar copy knows the pending points.
    config = _config("bo", population_size=6, generations=2, max_in_flight=4)
    optimizer = make_optimizer(config)
    first = optimizer.ask(4)
    optimizer.tell([_evaluate(c) for c in first[:3]])
    liar = optimizer._liar(optimizer._skopt)
    assert len(liar.Xi) == len(optimizer._skopt.Xi) + 1
    assert optimizer._to_point(first[3].hparams) in liar.Xi
