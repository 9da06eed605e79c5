"""The contract every optimizer keeps with the driver (GA, GA with a surrogate, BO, random search), in both modes
(``generational``, ``steady_state``) and with one or two objectives: one suite, fake fitness, small budgets.

Every optimizer accepts every mode and either number of objectives (the config refuses none of these
combinations; see ``test_every_combination_is_accepted``).
"""

import math
import random
from dataclasses import replace

import pytest

from tests.objectives.landscape import landscape
from workflow.config import from_mapping
from workflow.core import make_optimizer
from workflow.core.base import ProtocolError
from workflow.records import Evaluated, Result

#: The optimizer sections of each optimizer under test (the GA's surrogate is the GP: cheap at these budgets).
OPTIMIZERS = {"ga": {"name": "ga"}, "ga+surrogate": {"name": "ga", "ga": {"tournament_size": 2, "surrogate": "gp"}},
              "bo": {"name": "bo"}, "random": {"name": "random"}}
MODES = ["generational", "steady_state"]
OBJECTIVES = {1: [], 2: [{"metric": "loss"}, {"metric": "size"}]}
PREFIX = {"ga": "fitness-", "bo": "BO-Iteration-", "random": "Random-Iteration-"}
#: Steady state keeps at most this many out (fewer than the population, so the two modes differ).
IN_FLIGHT = 2

VARIANTS = [pytest.param(optimizer, mode, objectives, id=f"{optimizer}-{mode}-{objectives}obj")
            for optimizer in OPTIMIZERS for mode in MODES for objectives in OBJECTIVES]
#: The same, each as one value (for the module's fixture).
VARIANT_TUPLES = [pytest.param(tuple(v.values), id=v.id) for v in VARIANTS]


def _config(optimizer, mode="generational", objectives=1, seed=5, population_size=3, generations=3):
    # BO: 3 random points, then GP-chosen ones (small: each GP-chosen ask costs a few GP fits).
    return from_mapping({"seed": seed, "objective": {"kind": "python", "function": "m:f"}, "optimizer": {
        "population_size": population_size, "generations": generations, "mode": mode, "max_in_flight": IN_FLIGHT,
        "objectives": OBJECTIVES[objectives], "ga": {"tournament_size": 2}, "bo": {"initial_points": 3},
        **OPTIMIZERS[optimizer]}})


def _evaluate(candidates):
    # Every fourth evaluation fails: failures are part of the contract. Two metrics, that pull apart: the
    # landscape's loss (the fitness) and a size.
    def result(c):
        if sum(map(ord, c.name)) % 4 == 0:
            return Result.failure(c.name, "boom")
        loss = landscape(c.hparams)
        return Result(c.name, "ok", loss, metrics={"loss": loss, "size": float(c.hparams["hidden_size"])})

    return [Evaluated(c, result(c)) for c in candidates]


def _drive(opt, config, order_seed=0, stop_at_births=None):
    """Drive ``opt`` as the driver does, to the end or until ``stop_at_births`` were asked: generational, ask a
    generation and tell all of it; steady state, fill every free slot and tell a random non-empty part of
    what is out. Either way the results are told in a random order. Returns the log, ("ask", candidates) and
    ("tell", candidates) in the order they happened (what the journal records), and the most ever out."""
    chooser = random.Random(order_seed)
    steady = config.optimizer.mode == "steady_state"
    log, most = [], 0
    while not opt.finished and (stop_at_births is None or opt.births < stop_at_births):
        if opt.capacity():
            before = opt.batches_asked
            asked = opt.ask(opt.capacity())
            assert asked and opt.batches_asked == before + 1
            log.append(("ask", asked))
        out = opt.pending
        most = max(most, len(out))
        told = chooser.sample(out, chooser.randint(1, len(out))) if steady else chooser.sample(out, len(out))
        opt.tell(_evaluate(told))
        log.append(("tell", told))
    return log, most


def _state(opt):
    """What two optimizers in the same state agree on."""
    return {"history": [(e.candidate.name, e.fitness) for e in opt.history],
            "population": [(e.candidate.name, e.fitness) for e in getattr(opt, "population", [])],
            "pending": [c.to_dict() for c in opt.pending], "rng": opt.rng.bit_generator.state,
            "births": opt.births, "asks": opt.batches_asked, "finished": opt.finished}


def _next_ask(opt):
    """The candidates ``opt`` asks next (making room first, by telling the oldest pending, when it is full)."""
    if not opt.capacity() and opt.pending:
        opt.tell(_evaluate(opt.pending[:1]))
    return [c.to_dict() for c in opt.ask(opt.capacity())]


@pytest.fixture(scope="module", params=VARIANT_TUPLES)
def finished_run(request):
    optimizer, mode, objectives = request.param
    config = _config(optimizer, mode, objectives)
    opt = make_optimizer(config)
    log, most = _drive(opt, config)
    return OPTIMIZERS[optimizer]["name"], config, opt, log, most


def test_every_combination_is_accepted():
    for optimizer in OPTIMIZERS:
        for mode in MODES:
            for objectives in OBJECTIVES:
                config = _config(optimizer, mode, objectives)
                assert (config.optimizer.mode, len(config.optimizer.objectives)) == (mode, 0 if objectives == 1 else 2)
                assert config.multi_objective == (objectives == 2)
                assert make_optimizer(config).steady == (mode == "steady_state")


def test_budget_batches_and_names(finished_run):
    name, config, opt, log, most = finished_run
    assert opt.name == name
    asks = [batch for kind, batch in log if kind == "ask"]
    asked = [c for batch in asks for c in batch]
    assert len(asked) == config.evaluations_planned == 9
    names = [c.name for c in asked]
    assert len(set(names)) == len(names)
    assert all(n.startswith(PREFIX[name]) for n in names)
    # Births numbered in blocks of population_size, whatever the mode.
    assert [(c.generation, c.index, c.optimizer) for c in asked] == [(g, i, name) for g in (1, 2, 3) for i in (1, 2, 3)]
    space = config.search_space()
    assert all(space.contains(c.hparams) for c in asked)
    if config.optimizer.mode == "generational":
        assert [len(b) for b in asks] == [3, 3, 3] and most == 3
    else:
        assert all(1 <= len(b) <= IN_FLIGHT for b in asks) and most == IN_FLIGHT
    assert opt.batches_asked == len(asks)
    told = [c.name for kind, batch in log if kind == "tell" for c in batch]
    assert sorted(told) == sorted(names) and len(opt.history) == 9
    assert opt.finished and opt.capacity() == 0 and opt.ask() == [] and opt.pending == []


def test_best_is_the_lowest_successful_fitness(finished_run):
    _, _, opt, log, _ = finished_run
    ok = [e for kind, batch in log if kind == "tell" for e in _evaluate(batch) if e.result.ok]
    assert ok and math.isfinite(opt.best().fitness)
    assert opt.best().fitness == min(e.fitness for e in ok)


@pytest.mark.parametrize("optimizer, mode, objectives", VARIANTS)
def test_replay_reproduces_the_run(optimizer, mode, objectives):
    # What the driver does on resume: a fresh optimizer, same config, asked (and checked against) the recorded
    # asks and told the recorded tells in the journal's order; then both go on alike.
    config = _config(optimizer, mode, objectives)
    original = make_optimizer(config)
    log, _ = _drive(original, config, stop_at_births=5)  # a driver killed half-way
    fresh = make_optimizer(config)
    for kind, candidates in log:
        if kind == "ask":
            fresh.restore(candidates, verify=True)  # raises ProtocolError where it proposes otherwise
        else:
            fresh.tell(_evaluate(candidates))
    assert _state(fresh) == _state(original)
    assert _next_ask(fresh) == _next_ask(original)


@pytest.mark.parametrize("optimizer, mode, objectives", VARIANTS)
def test_the_order_of_the_results_in_one_tell_does_not_matter(optimizer, mode, objectives):
    # A backend reports results in whatever order they finish; one tell of the same results is one tell.
    config = _config(optimizer, mode, objectives)
    ordered, reversed_ = make_optimizer(config), make_optimizer(config)
    for _ in range(2):
        batch = ordered.ask(ordered.capacity())
        assert [c.to_dict() for c in reversed_.ask(reversed_.capacity())] == [c.to_dict() for c in batch]
        ordered.tell(_evaluate(batch))
        reversed_.tell(_evaluate(batch[::-1]))
        assert _state(reversed_) == _state(ordered)
    assert _next_ask(reversed_) == _next_ask(ordered)


@pytest.mark.parametrize("optimizer, mode, objectives", VARIANTS)
def test_a_different_seed_searches_differently(optimizer, mode, objectives):
    first = [make_optimizer(_config(optimizer, mode, objectives, seed=seed)) for seed in (5, 6)]
    assert [c.to_dict() for c in first[0].ask()] != [c.to_dict() for c in first[1].ask()]


@pytest.mark.parametrize("optimizer, mode, objectives", VARIANTS)
def test_protocol_errors(optimizer, mode, objectives):
    opt = make_optimizer(_config(optimizer, mode, objectives, generations=2))
    batch = opt.ask()
    strangers = [replace(c, name=f"{c.name}-x") for c in batch]
    if mode == "generational":
        assert len(batch) == 3
        with pytest.raises(ProtocolError):
            opt.ask()  # asked twice without a tell
        with pytest.raises(ProtocolError):
            opt.tell(_evaluate(batch[:-1]))  # not all of the generation
    else:
        assert len(batch) == IN_FLIGHT and opt.capacity() == 0 and opt.ask() == []  # full: nothing more
        with pytest.raises(ProtocolError):
            opt.tell(_evaluate([batch[0], batch[0]]))  # the same evaluation twice in one tell
    with pytest.raises(ProtocolError):
        opt.tell(_evaluate(strangers))  # evaluations that were not asked
    assert opt.pending == batch and opt.history == []  # refused tells change nothing
    opt.tell(_evaluate(batch))  # the right tell still works after the refused ones
    with pytest.raises(ProtocolError):
        opt.tell(_evaluate(batch[:1]))  # told twice
    assert opt.batches_asked == 1 and not opt.finished and len(opt.history) == len(batch)


@pytest.mark.parametrize("optimizer, mode, objectives", VARIANTS)
def test_a_batch_of_failures_does_not_stop_the_search(optimizer, mode, objectives):
    opt = make_optimizer(_config(optimizer, mode, objectives, generations=2))
    first = opt.ask()
    opt.tell([Evaluated(c, Result.failure(c.name, "boom")) for c in first])
    second = opt.ask()
    assert len(second) == len(first) and {c.name for c in second}.isdisjoint({c.name for c in first})
    space = opt.space
    assert all(space.contains(c.hparams) for c in second)
