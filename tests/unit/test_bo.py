"""The BO core (scikit-optimize behind one adapter): names, batches, types, failures, replay. Fake fitness."""

import json
import math

import numpy as np
import pytest

from tests.objectives.landscape import landscape
from workflow.config import from_mapping
from workflow.core import make_optimizer
from workflow.core.bo import BayesianOptimization, failure_penalty
from workflow.records import Evaluated, Result


def _config(seed=7, **optimizer):
    # Small: every GP-chosen batch of n costs n + 1 GP fits with skopt's default acquisition search.
    opt = {"name": "bo", "population_size": 4, "generations": 2, "bo_initial_points": 4, "tournament_size": 2,
           **optimizer}
    return from_mapping({"seed": seed, "optimizer": opt})


def _evaluate(batch, fail=(), fitness=landscape):
    return [Evaluated(c, Result.failure(c.name, "boom") if c.name in fail
                      else Result(c.name, "ok", fitness(c.hparams))) for c in batch]


def _run(config, fail=(), fitness=landscape):
    opt = make_optimizer(config)
    batches = []
    while not opt.finished:
        batch = opt.ask()
        batches.append(batch)
        opt.tell(_evaluate(batch, fail, fitness))
    return opt, batches


def test_names_batches_budget_and_types():
    config = _config()
    opt, batches = _run(config)
    assert isinstance(opt, BayesianOptimization) and opt.name == "bo"
    assert [len(b) for b in batches] == [4, 4]
    names = [c.name for b in batches for c in b]
    assert names == [f"BO-Iteration-{n}" for n in range(1, 9)]
    assert [(c.generation, c.index) for c in batches[1]] == [(2, 1), (2, 2), (2, 3), (2, 4)]
    space = config.search_space()
    for c in (c for b in batches for c in b):
        hp = c.hparams
        assert c.optimizer == "bo" and space.contains(hp)
        # Plain Python types (skopt hands out numpy scalars): the journal must round-trip them exactly.
        assert (type(hp["n_layers"]), type(hp["hidden_size"]), type(hp["activation"]), type(hp["dropout"])) == (
            int, int, str, float)
        assert json.loads(json.dumps(c.to_dict())) == c.to_dict()
    assert opt.ask() == [] and opt.finished
    assert opt.best().fitness == min(landscape(c.hparams) for b in batches for c in b)


def test_activation_is_categorical_over_the_tree_leaves():
    config = from_mapping({"seed": 3, "optimizer": {"name": "bo", "population_size": 8, "generations": 1},
                           "space": {"activation_tree": ["relu", {"sat": ["tanh", "sigmoid"]}]}})
    batch = make_optimizer(config).ask()
    assert {c.hparams["activation"] for c in batch} <= {"relu", "tanh", "sigmoid"}
    assert len({c.hparams["activation"] for c in batch}) > 1


def test_fixed_dimensions_are_not_searched():
    config = from_mapping({"seed": 1, "optimizer": {"name": "bo", "population_size": 3, "generations": 3,
                                                    "bo_initial_points": 3},
                           "space": {"n_layers": [2, 2], "dropout": [0.1, 0.1], "activation_tree": ["gelu"]}})
    _, batches = _run(config)
    hps = [c.hparams for b in batches for c in b]
    assert {(hp["n_layers"], hp["activation"], hp["dropout"]) for hp in hps} == {(2, "gelu", 0.1)}
    assert len({hp["hidden_size"] for hp in hps}) > 1


def test_failure_penalty_is_finite_and_worse_than_everything_seen():
    assert failure_penalty([1.0, 3.0]) == 5.0  # worst + (worst - best)
    assert failure_penalty([2.0]) == 4.0  # no range yet: worst + |worst|
    assert failure_penalty([-2.0, -2.0]) == 0.0
    assert failure_penalty([0.0]) == 1.0


def test_failed_and_nan_results_reach_the_surrogate_as_the_penalty():
    opt = make_optimizer(_config(population_size=3, generations=3, bo_initial_points=3))
    first = opt.ask()
    # Every evaluation of the first batch failed: nothing to scale a penalty by, so nothing is told yet.
    opt.tell(_evaluate(first, fail={c.name for c in first}))
    assert opt._skopt.yi == []
    second = opt.ask()
    told = [Evaluated(second[0], Result(second[0].name, "ok", math.nan)),
            Evaluated(second[1], Result(second[1].name, "ok", math.inf)),
            *_evaluate(second[2:])]
    opt.tell(told)
    finite = [landscape(second[2].hparams)]
    penalty = failure_penalty(finite)
    assert sorted(opt._skopt.yi) == sorted(finite + [penalty] * 5)
    assert all(math.isfinite(y) for y in opt._skopt.yi)
    opt.tell(_evaluate(opt.ask()))  # the GP is fitted now and proposes normally
    assert len(opt._skopt.yi) == 9 and all(math.isfinite(y) for y in opt._skopt.yi)
    assert opt.finished and math.isfinite(opt.best().fitness)


def test_resumed_bo_proposes_what_the_uninterrupted_one_did():
    # The driver's resume: a fresh optimizer, asked and told the journal's batches, must go on identically,
    # failures and GP-chosen batches included.
    config = _config(population_size=3, generations=3, bo_initial_points=3)
    fail = {"BO-Iteration-2", "BO-Iteration-5"}
    _, uninterrupted = _run(config, fail)
    replayed = make_optimizer(config)
    for recorded in uninterrupted[:2]:
        assert [c.to_dict() for c in replayed.ask()] == [c.to_dict() for c in recorded]
        replayed.tell(_evaluate(recorded, fail))
    assert [c.to_dict() for c in replayed.ask()] == [c.to_dict() for c in uninterrupted[2]]
    other = make_optimizer(_config(seed=8, population_size=3, generations=3, bo_initial_points=3)).ask()
    assert [c.to_dict() for c in other] != [c.to_dict() for c in uninterrupted[0]]


def test_the_pinned_scikit_optimize_release_is_installed():
    # skopt is unmaintained: pyproject.toml pins its last release, which works with numpy 2.x for GP, RF and ET;
    # bo.py's QuantileGBRT repairs GBRT for that release only. Another version must be re-checked first.
    import skopt

    assert skopt.__version__ == "0.10.2"


@pytest.mark.parametrize("estimator", ["RF", "ET", "GBRT"])
def test_every_configurable_surrogate_runs(estimator):
    # GBRT needs this project's repair of skopt 0.10.2 for scikit-learn >= 1.6 and numpy >= 2.4.
    opt, batches = _run(_config(population_size=2, bo_initial_points=2, bo_base_estimator=estimator))
    assert sum(map(len, batches)) == 4 and opt.finished and len(opt._skopt.Xi) == 4
    assert len(opt._skopt.copy(random_state=0).models) == 1  # what every ask after the first batch fits


@pytest.mark.parametrize("acq", ["EI", "PI", "LCB"])
def test_every_acquisition_function_runs(acq):
    opt, batches = _run(_config(population_size=2, bo_initial_points=2, bo_acq_func=acq))
    assert sum(map(len, batches)) == 4 and opt.finished and len(opt._skopt.Xi) == 4
    assert len(opt._skopt.copy(random_state=0).models) == 1


def test_bo_finds_the_good_region_of_a_known_landscape():
    # Deterministic (fixed seeds), with wide margins. After 8 random points the GP-chosen batches move towards
    # the optimum: in every seed they are better on average than the random start, and the last batch is far
    # better than random search's last batch (the best single point, at this tiny budget, is luck either way).
    # The landscape's optimum is at 96 units here, and 16 units of width cost 1 (gentler than seed_landscape's
    # 10): on seed_landscape itself, seed 3's GP-chosen batches average worse than its random start.
    def fitness(hp):
        return landscape(hp, width=96, scale=16)

    bo_last, random_last = [], []
    for seed in (1, 2, 3):
        common = {"population_size": 4, "generations": 4}
        _, batches = _run(_config(seed=seed, bo_initial_points=8, **common), fitness=fitness)
        _, rnd_batches = _run(from_mapping({"seed": seed, "optimizer": {"name": "random", **common}}))

        def mean(bs):
            return np.mean([fitness(c.hparams) for b in bs for c in b])

        assert mean(batches[2:]) < mean(batches[:2])
        bo_last.append(mean(batches[-1:]))
        random_last.append(mean(rnd_batches[-1:]))
    assert np.mean(bo_last) < 0.6 * np.mean(random_last)
