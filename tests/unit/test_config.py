"""Config validation: one line naming the key, the value and what is allowed (messages pinned)."""

from pathlib import Path

import pytest

from workflow.config import Config, apply_override, from_mapping, load_config
from workflow.errors import ConfigError
from workflow.space import FloatGene, IntGene

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _error(overrides, config="smoke.yaml"):
    with pytest.raises(ConfigError) as info:
        load_config(CONFIGS / config, overrides)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("name", ["smoke.yaml", "sinewave.yaml", "mnist.yaml", "fashion_mnist.yaml"])
def test_shipped_configs_are_valid(name):
    assert isinstance(load_config(CONFIGS / name), Config)


def test_sinewave_is_the_seed_experiment():
    config = load_config(CONFIGS / "sinewave.yaml")
    assert (config.optimizer.population_size, config.optimizer.generations) == (5, 20)
    assert config.optimizer.ga.tournament_size == 3
    space = config.search_space()
    assert space.names == ("n_layers", "hidden_size", "activation", "dropout")
    assert space.gene("n_layers") == IntGene("n_layers", 1, 5, step=2)
    assert space.gene("hidden_size") == IntGene("hidden_size", 16, 128, step=16)
    assert space.gene("dropout") == FloatGene("dropout", 0.0, 0.5, sigma=0.15)
    assert len(space.gene("activation").values) == 6 and space.gene("activation").base == 2.0
    assert config.train.epochs == 10 and config.train.batch_size == 64
    # The file of version 0.1 (bounds, optimizer.mutation, optimizer.activation_base) is the same experiment.
    old = {"space": {"n_layers": [1, 5], "hidden_size": [16, 128], "dropout": [0.0, 0.5]},
           "optimizer": {"population_size": 5, "generations": 20, "tournament_size": 3, "activation_base": 2.0,
                         "mutation": {"n_layers_step": 2, "hidden_size_step": 16, "dropout_sigma": 0.15}}}
    assert from_mapping(old).search_space() == space


def test_overrides_are_parsed_as_yaml():
    config = load_config(CONFIGS / "smoke.yaml", ["optimizer.generations=3", "space.hidden_size.high=40",
                                                  "train.learning_rate=0.01", "name=other"])
    assert config.optimizer.generations == 3
    assert config.search_space().gene("hidden_size") == IntGene("hidden_size", 16, 40, step=16)
    # A bounds pair, as version 0.1 wrote it, still sets a seed gene's bounds.
    old_style = load_config(CONFIGS / "smoke.yaml", ["space.hidden_size=[20, 40]"])
    assert old_style.search_space().gene("hidden_size") == IntGene("hidden_size", 20, 40, step=16)
    assert config.train.learning_rate == 0.01 and config.name == "other"


@pytest.mark.parametrize(("overrides", "expected"), [
    (["optimizer.population_size=5", "optimizer.ga.tournament_size=9"],
     "config error: optimizer.ga.tournament_size=9: must be <= optimizer.population_size (5)"),
    # Today's old key still works; the message names where it lives now.
    (["optimizer.population_size=5", "optimizer.tournament_size=9"],
     "config error: optimizer.ga.tournament_size=9: must be <= optimizer.population_size (5)"),

    (["space.hidden_size=[128,16]"], "config error: space.hidden_size=[128, 16]: low must be <= high"),
    (["space.dropout.high=1.5"], "config error: space.dropout=[0.0, 1.5]: bounds must lie within [0, 0.99]"),
    (["space.activation.tree=[relu, swish]"],
     "config error: space.activation='swish': unknown activation; allowed: relu, leaky_relu, elu, gelu, "
     "silu, selu, mish, softplus, sigmoid, tanh, hardtanh, identity"),
    (["space.activation.base=1"], "config error: space.activation.base=1.0: must be > 1 (larger explores more)"),
    (["optimizer.ga.activation_base=3"], "config error: optimizer.ga.activation_base=3: moved into each gene of "
     "space (step, sigma, base); set it there"),
    (["train.epochs=0"], "config error: train.epochs=0: input should be greater than or equal to 1"),
    (["optimizer.generations=-1"],
     "config error: optimizer.generations=-1: input should be greater than or equal to 1"),
    (["optimizer.colour=red"], "config error: optimizer.colour='red': unknown key; allowed: name, "
     "population_size, generations, mode, max_in_flight, max_failure_rate, objectives, reference_point, "
     "enqueue, warm_start, ga, bo"),
    (["optimizer.ga.colour=red"], "config error: optimizer.ga.colour='red': unknown key; allowed: "
     "tournament_size, crossover_prob, mutation_prob, elitism, bound_handling, replacement, adapt_base, "
     "target_success, "
     "base_factor, base_min, base_max, surrogate, oversample, random_share"),
    (["optimizer.name=cmaes"], "config error: optimizer.name='cmaes': must be one of 'ga', 'bo' or 'random'"),
    (["backend.workers=two"], "config error: backend.workers='two': input should be a valid integer, "
     "unable to parse string as an integer"),
    (["name=../etc"], "config error: name='../etc': use 1-64 letters, digits, '_', '.', '-' "
     "(starting alphanumeric)"),
    (["generations"], "config error: override='generations': expected key=value, e.g. optimizer.generations=3"),
])
def test_bad_values_give_one_clear_line(overrides, expected):
    assert _error(overrides) == expected


def test_the_ga_rules_bind_only_the_ga():
    # A tournament larger than the population means nothing to BO or random search.
    for name in ("bo", "random"):
        config = load_config(CONFIGS / "smoke.yaml", [f"optimizer.name={name}", "optimizer.ga.tournament_size=9"])
        assert config.optimizer.ga.tournament_size == 9


def test_an_old_key_beside_its_new_one_in_a_file_is_refused(tmp_path):
    path = tmp_path / "both.yaml"
    path.write_text("optimizer:\n  tournament_size: 2\n  ga: {tournament_size: 3}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == ("config error: optimizer.tournament_size=2: moved to optimizer.ga.tournament_size, "
                               "which is also given; keep only that one")


def test_keys_of_version_0_1_are_moved_to_their_sections():
    config = load_config(CONFIGS / "smoke.yaml", ["optimizer.bo_initial_points=4", "optimizer.elitism=2"])
    assert config.optimizer.bo.initial_points == 4 and config.optimizer.ga.elitism == 2
    old = from_mapping({"optimizer": {"mutation": {"n_layers_step": 1}, "activation_base": 3.0}})
    assert old.search_space().gene("n_layers").step == 1 and old.search_space().gene("activation").base == 3.0


def test_unknown_top_level_section():
    with pytest.raises(ConfigError,
                       match=r"^config error: sections=1: unknown key; allowed: name, seed, version, task"):
        from_mapping({"sections": 1})


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_round_trip_through_plain_dict():
    config = load_config(CONFIGS / "sinewave.yaml")
    assert from_mapping(config.to_plain()) == config


def test_override_into_a_value_is_refused():
    data = {"name": "x"}
    with pytest.raises(ConfigError, match="is a value, not a section"):
        apply_override(data, "name.sub=1")
