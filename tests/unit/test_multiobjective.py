"""Multi-objective search (``optimizer.objectives``): the ranking, NSGA-II in the GA, ParEGO in BO, scoring,
the config's rules, the MLP's cost metrics and the front's tables. Fake fitness; no training except where the
cost metrics are measured."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from tests.objectives.landscape import landscape
from workflow.config import ObjectiveConfig, ObjectiveSpec, from_mapping
from workflow.core import make_optimizer
from workflow.core.pareto import chebyshev, chebyshev_weights, nondominated_sort, rank_and_crowding, select_survivors
from workflow.core.ranking import Ranking
from workflow.core.surrogate import penalised
from workflow.errors import ConfigError
from workflow.front import front_hypervolume, front_markdown, pareto_front, reference_point
from workflow.records import Candidate, Evaluated, Result
from workflow.scoring import scored

TWO = [{"metric": "loss"}, {"metric": "size"}]


def _config(name="ga", objectives=TWO, mode="generational", population_size=6, generations=4, seed=1, **opt):
    return from_mapping({"seed": seed, "objective": {"kind": "python", "function": "m:f"}, "optimizer": {
        "name": name, "population_size": population_size, "generations": generations, "mode": mode,
        "objectives": objectives, "ga": {"tournament_size": 2}, "bo": {"initial_points": 4}, **opt}})


def _metrics(hp):
    """Two conflicting objectives of the seed's genes: the test landscape's loss, which wants width 90, and a size
    that wants it small."""
    loss = landscape(hp)
    return {"loss": loss, "size": float(hp["n_layers"] * hp["hidden_size"])}


def _evaluate(c, fail_every=7):
    if sum(map(ord, c.name)) % fail_every == 0:
        return Evaluated(c, Result.failure(c.name, "boom"))
    metrics = _metrics(c.hparams)
    return Evaluated(c, Result(c.name, "ok", metrics["loss"], metrics=metrics))


def _ev(name, loss, size, ok=True):
    c = Candidate(name, {"x": 0}, 1, 1, "ga")
    if not ok:
        return Evaluated(c, Result.failure(name, "boom"))
    return Evaluated(c, Result(name, "ok", loss, metrics={"loss": loss, "size": size}))


# -- ranking -----------------------------------------------------------------------------------------


def test_one_objective_ranks_by_fitness_like_the_seed():
    members = [_ev("a", 3.0, 1), _ev("b", 1.0, 9), _ev("c", 1.0, 5), _ev("d", 0.0, 0, ok=False)]
    ranking = Ranking([ObjectiveSpec(metric="loss")])
    assert not ranking.multi
    assert [e.candidate.name for e in ranking.best_first(members)] == ["b", "c", "a", "d"]  # stable on ties
    assert ranking.keys(members) == [(3.0, 0.0), (1.0, 0.0), (1.0, 0.0), (math.inf, 0.0)]


def test_several_objectives_rank_by_front_and_crowding():
    ranking = Ranking([ObjectiveSpec(metric="loss"), ObjectiveSpec(metric="size", direction="maximize")])
    members = [_ev("a", 1.0, 5.0), _ev("b", 2.0, 9.0), _ev("c", 2.0, 4.0), _ev("d", 0.0, 0.0, ok=False),
               _ev("e", 3.0, 10.0)]
    # size is maximised: it enters negated; a failed evaluation is dominated by everything.
    assert ranking.vector(members[0]) == [1.0, -5.0] and ranking.vector(members[3]) == [math.inf, math.inf]
    rank, crowding = rank_and_crowding(ranking.points(members))
    assert rank.tolist() == [0, 0, 1, 2, 0]  # c is dominated by a, d by all
    assert ranking.keys(members) == [(float(r), -float(c)) for r, c in zip(rank, crowding)]
    assert ranking.best_first(members)[-1].candidate.name == "d"


def test_a_missing_objective_metric_ranks_as_failed():
    ranking = Ranking([ObjectiveSpec(metric="loss"), ObjectiveSpec(metric="latency")])
    assert ranking.vector(_ev("a", 1.0, 2.0)) == [math.inf, math.inf]


# -- the GA: NSGA-II ----------------------------------------------------------------------------------


def _run(config, order_seed=None):
    opt = make_optimizer(config)
    told = []
    chooser = random.Random(order_seed)
    while not opt.finished:
        if opt.capacity():
            opt.ask(opt.capacity())
        batch = opt.pending if order_seed is None else chooser.sample(opt.pending, 1)
        evaluated = [_evaluate(c) for c in batch]
        told.extend(evaluated)
        opt.tell(evaluated)
        yield opt, told


def test_nsga2_survival_is_the_environmental_selection_of_parents_and_children():
    config = _config()
    ranking = Ranking(config.optimizer.objectives)
    previous = []
    for opt, told in _run(config):
        children = told[-6:]
        expected = [e.candidate.name for e in ranking.survivors(children + previous, 6)]
        assert [e.candidate.name for e in opt.population] == expected
        previous = list(opt.population)


def test_nsga2_never_loses_a_non_dominated_evaluation_while_the_front_fits():
    config = _config(generations=6)
    ranking = Ranking(config.optimizer.objectives)
    for opt, told in _run(config):
        front = nondominated_sort(ranking.points(told))[0]
        if len(front) <= 6:
            names = {e.candidate.name for e in opt.population}
            assert {told[int(i)].candidate.name for i in front} <= names


def test_nsga2_tournaments_compare_front_and_crowding():
    # With tournament_size = population_size every tournament is won by the best (front, crowding) member.
    config = _config(population_size=4, generations=3, ga={"tournament_size": 4, "crossover_prob": 0.0,
                                                           "mutation_prob": 0.0})
    ranking = Ranking(config.optimizer.objectives)
    runs = _run(config)
    opt, _ = next(runs)
    keys = ranking.keys(opt.population)
    champions = [e.candidate.hparams for e, key in zip(opt.population, keys) if key == min(keys)]
    losers = [e.candidate.hparams for e, key in zip(opt.population, keys) if key != min(keys)]
    assert losers, "a population where every member ties proves nothing"
    children = opt.ask()
    assert all(c.hparams in champions for c in children)


def test_one_objective_keeps_todays_search_exactly():
    plain = make_optimizer(_config(objectives=[]))
    single = make_optimizer(_config(objectives=[{"metric": "loss"}]))
    for _ in range(4):
        a, b = plain.ask(), single.ask()
        assert [c.to_dict() for c in a] == [c.to_dict() for c in b]
        plain.tell([_evaluate(c) for c in a])
        single.tell([_evaluate(c) for c in b])


def test_steady_state_nsga2_drops_the_worst_by_front_and_crowding():
    config = _config(mode="steady_state", generations=8)
    ranking = Ranking(config.optimizer.objectives)
    before = []
    for opt, told in _run(config, order_seed=3):
        child = told[-1]
        if len(before) == 6:
            pool = [*before, child]
            keys = ranking.keys(pool)
            worst = max(range(7), key=lambda i: (keys[i], i))
            expected = {e.candidate.name for i, e in enumerate(pool) if i != worst}
            assert {e.candidate.name for e in opt.population} == expected
        before = list(opt.population)


def test_replay_reproduces_a_multi_objective_run():
    for name in ("ga", "bo"):
        config = _config(name, generations=3)
        original, fresh = make_optimizer(config), make_optimizer(config)
        while not original.finished:
            batch = original.ask()
            fresh.restore(batch)
            told = [_evaluate(c) for c in batch]
            original.tell(told)
            fresh.tell(told)
        assert [e.candidate.name for e in getattr(fresh, "population", [])] == \
            [e.candidate.name for e in getattr(original, "population", [])]


# -- BO: ParEGO -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["generational", "steady_state"])
def test_parego_scalarises_each_ask_with_its_own_weights_from_the_seed_and_the_ask_number(mode):
    config = _config("bo", population_size=3, generations=4, mode=mode, max_in_flight=2)
    opt = make_optimizer(config)
    space = config.search_space()
    while not opt.finished:
        batch = opt.ask()
        assert all(space.contains(c.hparams) for c in batch)
        opt.tell([_evaluate(c) for c in batch])
    used = opt.parego_weights  # what the optimizer scalarised with, not a recomputation
    # The first ask has nothing told to scalarise; every later ask drew weights of its own.
    assert sorted(used) == list(range(1, opt.batches_asked))
    assert len({tuple(w) for w in used.values()}) == len(used), f"asks reused weights: {used}"
    for number, weights in used.items():  # uniform on the simplex, from the seed and the ask's number alone
        assert weights == chebyshev_weights(np.random.default_rng([opt._seed, 3, number]), 2).tolist()
        assert min(weights) >= 0 and sum(weights) == pytest.approx(1.0)
    assert opt.journal_state() == {}  # nothing beyond the asks to check on replay
    # The model an ask fits is told every point scalarised under the weights that ask records.
    model = opt._parego()
    points = np.array([opt.ranking.vector(e) for e in opt.history], dtype=float)
    assert model.yi == pytest.approx(penalised(list(chebyshev(points, np.array(used[opt.batches_asked])))))
    assert len(model.yi) == config.evaluations_planned and all(math.isfinite(y) for y in model.yi)


# -- scoring and config -------------------------------------------------------------------------------


def test_a_result_without_an_objective_metric_fails_naming_what_it_got():
    scoring = ObjectiveConfig(metric="loss", required=("latency",))
    result = scored("e", {"loss": 1.0, "size": 2.0}, scoring, 0.1)
    assert not result.ok
    assert result.reason == "no metric 'latency' (an objective) in what the objective returned (got: loss, size)"
    assert not scored("e", {"loss": 1.0, "latency": math.nan}, scoring, 0.1).ok
    assert scored("e", {"loss": 1.0, "latency": 3.0}, scoring, 0.1).fitness == 1.0


def test_scoring_takes_the_first_objective_and_requires_the_others():
    config = from_mapping({"objective": {"kind": "python", "function": "m:f"},
                           "optimizer": {"objectives": [{"metric": "acc", "direction": "maximize"},
                                                        {"metric": "size"}]}})
    scoring = config.scoring()
    assert (scoring.metric, scoring.direction, scoring.required) == ("acc", "maximize", ("size",))
    assert scored("e", {"acc": 0.9, "size": 3.0}, scoring, 0).fitness == -0.9


@pytest.mark.parametrize("optimizer, message", [
    ({"objectives": [{"metric": "a"}, {"metric": "a"}]},
     "optimizer.objectives[1].metric='a': each metric at most once"),
    ({"objectives": [{"metric": "a"}, {"metric": "b"}], "reference_point": [1.0]},
     "optimizer.reference_point=[1.0]: needs one value per objective (2)"),
])
def test_bad_objectives_give_one_clear_line(optimizer, message):
    with pytest.raises(ConfigError) as info:
        from_mapping({"objective": {"kind": "python", "function": "m:f"}, "optimizer": optimizer})
    assert str(info.value) == f"config error: {message}"


def test_the_mlp_objectives_must_be_metrics_it_reports():
    with pytest.raises(ConfigError, match=r"optimizer.objectives\[1\].metric='size': the built-in MLP on task "
                                          r"sinewave reports val_mse, train_loss, epochs, n_params, flops"):
        from_mapping({"optimizer": {"objectives": [{"metric": "val_mse"}, {"metric": "size"}]}})
    with pytest.raises(ConfigError, match="objective.metric='val_loss': differs from optimizer.objectives"):
        from_mapping({"objective": {"metric": "val_loss"},
                      "optimizer": {"objectives": [{"metric": "val_mse"}, {"metric": "n_params"}]}})
    config = from_mapping({"optimizer": {"objectives": [{"metric": "val_mse"}, {"metric": "n_params"}]}})
    assert config.multi_objective and config.scoring().required == ("n_params",)


# -- the MLP's cost ----------------------------------------------------------------------------------------


def test_architecture_cost_by_hand_and_latency_is_measured():
    import torch

    from workflow.trainer.cost import architecture_cost, latency_ms, mlp_cost
    from workflow.trainer.model import Architecture, build_mlp

    arch = Architecture(widths=(8, 4), activation="relu")
    # 5 -> 8 -> 4 -> 1: weights 40 + 32 + 4 = 76, biases 8 + 4 + 1 = 13.
    assert architecture_cost(arch, 5, 1) == {"n_params": 89.0, "flops": 152.0}
    net = build_mlp(arch, 5, 1)
    assert architecture_cost(arch, 5, 1)["n_params"] == sum(p.numel() for p in net.parameters())
    net.train()
    assert latency_ms(net, 5) > 0 and net.training  # the mode is restored
    cost = mlp_cost(arch, 5, 1, torch.device("cpu"), train_seconds=1.5)
    assert set(cost) == {"n_params", "flops", "latency_ms", "train_seconds"} and cost["train_seconds"] == 1.5


# -- the front's tables ---------------------------------------------------------------------------------


def test_front_reference_and_hypervolume():
    objectives = [ObjectiveSpec(metric="loss"), ObjectiveSpec(metric="size")]
    members = [_ev("a", 1.0, 3.0), _ev("b", 2.0, 1.0), _ev("c", 2.0, 3.0), _ev("d", 0, 0, ok=False),
               _ev("e", 1.0, 3.0)]
    front = pareto_front(members, objectives)
    assert [e.candidate.name for e in front] == ["a", "e", "b"]  # duplicates both on it, by first objective
    reference = reference_point(members, objectives)
    assert reference.tolist() == pytest.approx([2.1, 3.2])
    # Dominated area up to (2.1, 3.2): [1, 2.1] x [3, 3.2] and [2, 2.1] x [1, 3].
    assert front_hypervolume(members, objectives, reference) == pytest.approx(1.1 * 0.2 + 0.1 * 2.0)
    configured = reference_point(members, [objectives[0], ObjectiveSpec(metric="size", direction="maximize")],
                                 configured=[3.0, 0.5])
    assert configured.tolist() == [3.0, -0.5]
    text = front_markdown(front, objectives, ["x"], 0.42, {"loss": 2.1, "size": 3.2})
    assert "| a | 1 | 3 | 0 |" in text and "Hypervolume: 0.42" in text


def test_survivors_agree_with_select_survivors():
    rng = np.random.default_rng(0)
    members = [_ev(f"e{i}", float(a), float(b)) for i, (a, b) in enumerate(rng.integers(0, 5, (20, 2)))]
    ranking = Ranking([ObjectiveSpec(metric="loss"), ObjectiveSpec(metric="size")])
    chosen = select_survivors(ranking.points(members), 8)
    assert [e.candidate.name for e in ranking.survivors(members, 8)] == [members[int(i)].candidate.name
                                                                         for i in chosen]
