"""Surrogate-assisted breeding (``optimizer.ga.surrogate``): what the model chooses, that its draws are the
injected generator's, and that it helps on a cheap landscape of the seed's genes."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from tests.objectives.landscape import seed_landscape
from tests.objectives.zdt import zdt1
from tests.support import ROOT
from workflow.config import ObjectiveSpec, from_mapping
from workflow.config.loading import apply_override
from workflow.core import make_optimizer
from workflow.core.ranking import Ranking
from workflow.core.surrogate import SurrogateChooser
from workflow.errors import ConfigError
from workflow.records import Candidate, Evaluated, Result
from workflow.space import SearchSpace

LINE = {"x": {"type": "float", "low": 0.0, "high": 1.0}}


def _space(genes=LINE) -> SearchSpace:
    own = {"kind": "python", "function": "tests.objectives.zdt:zdt1", "path": str(ROOT)}  # any genes
    return from_mapping({"space": genes, "objective": own}).search_space()


def _told(xs, values) -> list[Evaluated]:
    return [Evaluated(Candidate(f"c{i}", {"x": x}, 1, i + 1, "ga", 0, 0), Result(f"c{i}", "ok", v))
            for i, (x, v) in enumerate(zip(xs, values))]


def _overridden(overrides):
    data: dict = {}
    for item in overrides:
        apply_override(data, item)
    return from_mapping(data)


def _run(seed: int, surrogate: str, mode: str = "generational", **ga) -> tuple[float, list[Candidate]]:
    config = from_mapping({"seed": seed, "optimizer": {"population_size": 5, "generations": 12, "mode": mode,
                                                       "ga": {"surrogate": surrogate, **ga}}})
    optimizer = make_optimizer(config)
    asked: list[Candidate] = []
    while not optimizer.finished:
        batch = optimizer.ask()
        asked.extend(batch)
        optimizer.tell([Evaluated(c, Result(c.name, "ok", seed_landscape(c.hparams, None))) for c in batch])
    best = optimizer.best()
    assert best is not None
    return best.fitness, asked


@pytest.mark.parametrize("kind", ["gp", "et"])
def test_the_model_picks_the_children_nearest_the_best_told(kind):
    # f(x) = x: the best told is at 0.1; the children at low x have the highest expected improvement.
    chooser = SurrogateChooser(kind, _space(), Ranking(), random_share=0.0)
    xs = [0.1, 0.3, 0.5, 0.7, 0.9, 0.2, 0.8, 0.6]
    children = [{"x": x} for x in (0.95, 0.05, 0.85, 0.12, 0.75, 0.65)]
    chosen = chooser.choose(children, _told(xs, xs), 2, np.random.default_rng(0))
    assert chosen == [1, 3]


def test_a_random_share_is_drawn_from_the_children_the_model_passed_over():
    chooser = SurrogateChooser("gp", _space(), Ranking(), random_share=0.5)
    xs = [0.1, 0.3, 0.5, 0.7, 0.9]
    children = [{"x": x} for x in np.linspace(0.0, 1.0, 12)]
    picks = [tuple(chooser.choose(children, _told(xs, xs), 4, np.random.default_rng(seed))) for seed in range(8)]
    assert all(len(p) == 4 and len(set(p)) == 4 for p in picks)
    assert all({0, 1} <= set(p) for p in picks)  # the model's two: the lowest x
    assert len({p for p in picks}) > 1  # the other two vary with the generator


def test_too_little_data_keeps_the_children_as_bred_and_draws_the_same():
    chooser = SurrogateChooser("gp", _space(), Ranking(), random_share=0.0)
    children = [{"x": x} for x in (0.9, 0.1, 0.5)]
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    assert chooser.choose(children, _told([0.2, 0.4], [0.2, 0.4]), 2, rng_a) == [0, 1]
    chooser.choose(children, _told([0.2, 0.4, 0.6, 0.8], [0.2, 0.4, 0.6, 0.8]), 2, rng_b)
    assert rng_a.integers(1 << 30) == rng_b.integers(1 << 30)  # same draws whatever the model said


def test_failed_evaluations_enter_at_the_penalty_and_are_avoided():
    chooser = SurrogateChooser("gp", _space(), Ranking(), random_share=0.0)
    told = _told([0.1, 0.2, 0.3, 0.8, 0.9], [0.5, 0.4, 0.3, 0.0, 0.0])
    for e in told[3:]:  # the region around 0.85 failed
        object.__setattr__(e, "result", Result(e.candidate.name, "failed", float("inf"), reason="boom"))
    children = [{"x": x} for x in (0.85, 0.35, 0.88, 0.32)]
    assert chooser.choose(children, told, 2, np.random.default_rng(0)) == [1, 3]


def test_several_objectives_scalarise_and_choose():
    space = _space({f"x{i}": {"type": "float", "low": 0.0, "high": 1.0} for i in range(3)})
    ranking = Ranking([ObjectiveSpec(metric="f1"), ObjectiveSpec(metric="f2")])
    chooser = SurrogateChooser("gp", space, ranking, random_share=0.0)
    rng = np.random.default_rng(1)
    told = []
    for i in range(10):
        hp = {f"x{j}": float(v) for j, v in enumerate(rng.random(3))}
        told.append(Evaluated(Candidate(f"c{i}", hp, 1, i + 1, "ga", 0, 0),
                              Result(f"c{i}", "ok", 0.0, metrics=zdt1(hp, None))))
    children = [{f"x{j}": float(v) for j, v in enumerate(rng.random(3))} for _ in range(8)]
    chosen = chooser.choose(children, told, 3, np.random.default_rng(2))
    assert len(chosen) == 3 and chosen == sorted(set(chosen))


def test_same_seed_same_candidates_with_a_surrogate():
    _, a = _run(4, "gp")
    _, b = _run(4, "gp")
    _, plain = _run(4, "none")
    assert [c.to_dict() for c in a] == [c.to_dict() for c in b]
    assert [c.hparams for c in a[:5]] == [c.hparams for c in plain[:5]]  # generation 1: the same sample
    assert [c.hparams for c in a] != [c.hparams for c in plain]


def test_the_surrogate_finds_better_models_on_a_cheap_landscape():
    # The seed's genes at a small budget (60 evaluations), 9 seeds: the model's choice beats blind breeding.
    plain = [_run(seed, "none")[0] for seed in range(9)]
    assisted = [_run(seed, "gp")[0] for seed in range(9)]
    assert statistics.median(assisted) < statistics.median(plain), (assisted, plain)


def test_steady_state_breeds_each_child_with_the_model():
    fitness, asked = _run(0, "et", mode="steady_state")
    assert len(asked) == 60 and len({c.name for c in asked}) == 60 and fitness < 2


def test_the_surrogate_keys_at_the_top_of_the_optimizer_section_land_in_the_ga_section():
    config = _overridden(["optimizer.surrogate=et", "optimizer.oversample=6"])
    assert (config.optimizer.ga.surrogate, config.optimizer.ga.oversample) == ("et", 6)
    assert from_mapping({}).optimizer.ga.surrogate == "none"  # the seed's GA stays the default
    with pytest.raises(ConfigError, match=r"optimizer.ga.surrogate='rf'"):
        _overridden(["optimizer.ga.surrogate=rf"])
