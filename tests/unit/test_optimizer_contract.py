"""The contract every optimizer keeps with the driver (GA, BO, random search): one suite, fake fitness."""

import math
from dataclasses import replace

import pytest

from tests.objectives.landscape import landscape
from workflow.config import from_mapping
from workflow.core import make_optimizer
from workflow.core.base import ProtocolError
from workflow.records import Evaluated, Result

OPTIMIZERS = ["ga", "bo", "random"]
PREFIX = {"ga": "fitness-", "bo": "BO-Iteration-", "random": "Random-Iteration-"}


def _config(name, seed=5, population_size=3, generations=3):
    # BO: 3 random points, then two GP-chosen batches (small: each costs a few GP fits).
    return from_mapping({"seed": seed, "optimizer": {
        "name": name, "population_size": population_size, "generations": generations, "tournament_size": 2,
        "bo_initial_points": 3}})


def _evaluate(batch):
    # Every fourth evaluation fails: failures are part of the contract.
    return [Evaluated(c, Result.failure(c.name, "boom") if sum(map(ord, c.name)) % 4 == 0
                      else Result(c.name, "ok", landscape(c.hparams))) for c in batch]


def _run(config):
    opt = make_optimizer(config)
    batches = []
    while not opt.finished:
        batch = opt.ask()
        assert opt.batches_asked == len(batches) + 1
        batches.append(batch)
        opt.tell(_evaluate(batch))
    return opt, batches


@pytest.fixture(scope="module", params=OPTIMIZERS)
def finished_run(request):
    config = _config(request.param)
    opt, batches = _run(config)
    return request.param, config, opt, batches


def test_budget_batches_and_names(finished_run):
    name, config, opt, batches = finished_run
    assert opt.name == name
    assert [len(b) for b in batches] == [3, 3, 3]
    assert sum(map(len, batches)) == config.evaluations_planned
    names = [c.name for b in batches for c in b]
    assert len(set(names)) == len(names)
    assert all(n.startswith(PREFIX[name]) for n in names)
    for number, batch in enumerate(batches, start=1):
        assert [(c.generation, c.index, c.optimizer) for c in batch] == [(number, i, name) for i in (1, 2, 3)]
    space = config.search_space()
    assert all(space.contains(c.hparams) for b in batches for c in b)
    assert opt.finished and opt.ask() == [] and opt.batches_asked == 3


def test_best_is_the_lowest_successful_fitness(finished_run):
    _, _, opt, batches = finished_run
    ok = [e for b in batches for e in _evaluate(b) if e.result.ok]
    assert ok and math.isfinite(opt.best().fitness)
    assert opt.best().fitness == min(e.fitness for e in ok)


def test_replay_reproduces_the_run(finished_run):
    # What the driver does on resume: a fresh optimizer, same config, asked and told the recorded batches.
    name, config, _, batches = finished_run
    fresh = make_optimizer(config)
    for recorded in batches:
        assert [c.to_dict() for c in fresh.ask()] == [c.to_dict() for c in recorded]
        fresh.tell(_evaluate(recorded))
    assert fresh.finished


def test_a_different_seed_searches_differently(finished_run):
    name, _, _, batches = finished_run
    other = make_optimizer(_config(name, seed=6)).ask()
    assert [c.to_dict() for c in other] != [c.to_dict() for c in batches[0]]


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_protocol_errors(name):
    opt = make_optimizer(_config(name, generations=2))
    batch = opt.ask()
    strangers = [replace(c, name=f"{c.name}-x") for c in batch]
    with pytest.raises(ProtocolError):
        opt.ask()  # asked twice without a tell
    with pytest.raises(ProtocolError):
        opt.tell(_evaluate(batch[:-1]))  # not all of the batch
    with pytest.raises(ProtocolError):
        opt.tell(_evaluate(strangers))  # evaluations that were not asked
    opt.tell(_evaluate(batch))  # the right tell still works after the refused ones
    with pytest.raises(ProtocolError):
        opt.tell(_evaluate(batch))  # told twice
    assert opt.batches_asked == 1 and not opt.finished


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_a_batch_of_failures_does_not_stop_the_search(name):
    opt = make_optimizer(_config(name, generations=2))
    first = opt.ask()
    opt.tell([Evaluated(c, Result.failure(c.name, "boom")) for c in first])
    second = opt.ask()
    assert len(second) == 3 and {c.name for c in second}.isdisjoint({c.name for c in first})
