"""Config version 2's space: ``step`` is a grid, ``mutation_step`` the GA's width, ``when`` conditional genes,
``fixed`` values; configs written before (no ``version``) keep ``step`` as the mutation width."""

from __future__ import annotations

import numpy as np
import pytest

from workflow.config import from_mapping
from workflow.core.encoding import Encoding
from workflow.core.operators import mutate
from workflow.errors import ConfigError, WorkflowError
from workflow.space import IntGene, LayersGene

PY = {"objective": {"kind": "python", "function": "m:f"}}


def _space(genes, version=2):
    return from_mapping({**PY, **({"version": version} if version else {}), "space": genes}).search_space()


def test_a_grid_step_gives_only_grid_values_sampled_mutated_and_from_bo():
    space = _space({"units": {"type": "int", "low": 16, "high": 130, "step": 16},
                    "layers": {"type": "layers", "max_layers": 3, "low": 8, "high": 64, "step": 8}})
    units, layers = space.gene("units"), space.gene("layers")
    assert units == IntGene("units", 16, 130, step=16, grid=16)  # mutation width defaults to the grid step
    assert isinstance(layers, LayersGene) and layers.grid == 8
    grid = set(range(16, 131, 16))
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(300):
        hp = space.sample(rng)
        child, _ = mutate(hp, space, rng, gene_prob=1.0, bound_handling="reflect", bases={})
        for genotype in (hp, child):
            assert genotype["units"] in grid and all((w - 8) % 8 == 0 and 8 <= w <= 64 for w in genotype["layers"])
            assert space.contains(genotype)
            seen.add(genotype["units"])
    assert seen == grid  # every grid value is reachable, 144 (above high) never
    encoding = Encoding(space)
    for dim in encoding.free[:1]:
        assert (dim.low, dim.high) == (0, 7)  # BO searches the grid's index
    point = encoding.to_point({"units": 48, "layers": [16, 64]})
    assert encoding.to_hparams(point) == {"units": 48, "layers": [16, 64]}
    assert not space.contains({"units": 20, "layers": [16]})


def test_mutation_step_is_its_own_key_and_snaps_to_the_grid():
    space = _space({"units": {"type": "int", "low": 0, "high": 100, "step": 10, "mutation_step": 30}})
    assert space.gene("units") == IntGene("units", 0, 100, step=30, grid=10)
    rng = np.random.default_rng(1)
    moves = {mutate({"units": 50}, space, rng, gene_prob=1.0, bound_handling="clip", bases={})[0]["units"] - 50
             for _ in range(400)}
    assert moves == {-30, -20, -10, 0, 10, 20, 30}


def test_configs_before_version_2_keep_step_as_the_mutation_width():
    genes = {"n": {"type": "int", "low": 1, "high": 5, "step": 2},
             "l": {"type": "layers", "max_layers": 2, "low": 16, "high": 128, "step": 16}}
    for version in (None, 1):
        old = _space(genes, version)
        assert old.gene("n") == IntGene("n", 1, 5, step=2)  # grid 1: exactly the gene of before
        assert old.gene("l") == LayersGene("l", 1, 2, 16, 128, step=16)
    assert _space(genes).gene("n") == IntGene("n", 1, 5, step=2, grid=2)
    config = from_mapping({**PY, "space": genes})
    assert config.version == 2 and config.to_plain()["space"]["n"]["mutation_step"] == 2
    assert from_mapping(config.to_plain()) == config  # what a run directory's config.yaml holds reads back
    with pytest.raises(ConfigError, match=r"^config error: version=3: must be 1 or 2"):
        from_mapping({**PY, "version": 3})


def test_the_seed_config_is_the_seed_space():
    from workflow.config import load_config

    space = load_config("configs/sinewave.yaml").search_space()
    assert space.gene("n_layers") == IntGene("n_layers", 1, 5, step=2)
    assert space.gene("hidden_size") == IntGene("hidden_size", 16, 128, step=16)
    assert from_mapping({}).search_space() == space


def test_a_grid_with_log_is_refused():
    with pytest.raises(ConfigError, match=r"^config error: space.b.step=8: a grid step needs log: false"):
        _space({"b": {"type": "int", "low": 8, "high": 256, "step": 8, "log": True}})


CONDITIONAL = {"optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
               "momentum": {"type": "float", "low": 0.0, "high": 0.99, "when": {"optimizer": ["sgd"]}},
               "nesterov": {"type": "categorical", "choices": [True, False], "when": {"momentum": [0.5]}}}


def test_a_conditional_gene_is_active_only_with_its_parent_values():
    space = _space({k: v for k, v in CONDITIONAL.items() if k != "nesterov"})
    assert space.active({"optimizer": "adam", "momentum": 0.3}) == {"optimizer": "adam"}
    assert space.active({"optimizer": "sgd", "momentum": 0.3}) == {"optimizer": "sgd", "momentum": 0.3}
    # BO's model of the point does not see an inactive gene's value: two adam points are one point.
    encoding = Encoding(space)
    assert encoding.to_point({"optimizer": "adam", "momentum": 0.3}) == encoding.to_point(
        {"optimizer": "adam", "momentum": 0.9})
    assert encoding.to_point({"optimizer": "sgd", "momentum": 0.3}) != encoding.to_point(
        {"optimizer": "sgd", "momentum": 0.9})


@pytest.mark.parametrize("when, message", [
    ({"momentum": [0.5]}, "space.nesterov.when='momentum': is a float gene; a condition names a categorical gene"),
    ({"nesterov": [True]}, "space.nesterov.when='nesterov': a gene cannot depend on itself"),
    ({"lr": ["x"]}, "space.nesterov.when='lr': is not a gene; a condition names a categorical gene declared "
                    "before nesterov (optimizer, momentum)"),
    ({"optimizer": ["rmsprop"]}, "space.nesterov.when.optimizer=['rmsprop']: must list values of optimizer "
                                 "(adam, sgd)"),
])
def test_bad_conditions_are_one_line_each(when, message):
    genes = {**CONDITIONAL, "nesterov": {**CONDITIONAL["nesterov"], "when": when}}
    with pytest.raises(WorkflowError) as info:
        _space(genes)
    assert str(info.value) == f"config error: {message}"


def test_fixed_values_are_not_genes():
    config = from_mapping({**PY, "fixed": {"epochs": 20}})
    assert config.fixed == {"epochs": 20} and "epochs" not in config.search_space().names
    with pytest.raises(ConfigError, match=r"^config error: fixed.n_layers=3: n_layers is a gene of space"):
        from_mapping({**PY, "fixed": {"n_layers": 3}})
    with pytest.raises(ConfigError, match=r"^config error: fixed='seed': names are identifiers"):
        from_mapping({**PY, "fixed": {"seed": 3}})


def _recorder_config(**extra):
    from tests.support import ROOT

    return from_mapping({
        "name": "cond", "seed": 3, "version": 2,
        "objective": {"kind": "python", "function": "tests.objectives.recorder:record", "path": str(ROOT),
                      "metric": "loss"},
        "space": {**CONDITIONAL, "nesterov": {"type": "categorical", "choices": [True, False],
                                              "when": {"optimizer": ["sgd"]}},
                  "units": {"type": "int", "low": 4, "high": 12, "step": 4}},
        "optimizer": {"name": "ga", "population_size": 4, "generations": 3},
        "backend": {"name": "inline"}, **extra})


def test_the_objective_gets_only_active_genes_and_the_fixed_values(tmp_path):
    import json

    from workflow.driver import run_search
    from workflow.store import RunStore

    config = _recorder_config(fixed={"epochs": 20})
    run_dir = tmp_path / "run"
    RunStore.create(run_dir, config)
    run_search(config, run_dir)
    state = RunStore.open(run_dir).replay()
    kinds = set()
    for candidate in state.candidates:
        given = json.loads((run_dir / "evals" / candidate.name / "given.json").read_text())["hparams"]
        assert set(candidate.hparams) == {"optimizer", "momentum", "nesterov", "units"}  # the whole chromosome
        assert given["epochs"] == 20 and given["units"] in (4, 8, 12)
        if candidate.hparams["optimizer"] == "adam":
            assert "momentum" not in given and "nesterov" not in given
        else:
            assert given["momentum"] == candidate.hparams["momentum"] and "nesterov" in given
        kinds.add(candidate.hparams["optimizer"])
    assert kinds == {"adam", "sgd"}


def test_a_command_may_name_fixed_values_but_not_conditional_genes():
    from workflow.preflight import preflight

    def config(argv):
        return from_mapping({"version": 2, "objective": {"kind": "command", "argv": argv},
                             "space": {k: v for k, v in CONDITIONAL.items() if k != "nesterov"},
                             "fixed": {"epochs": 5}, "backend": {"name": "inline"}})

    preflight(config(["true", "{optimizer}", "{epochs}"]))
    with pytest.raises(ConfigError, match=r"\{momentum\} names a conditional gene \(when\)"):
        preflight(config(["true", "--momentum={momentum}"]))
