"""Config validation: one line naming the key, the value and what is allowed (messages pinned)."""

from pathlib import Path

import pytest

from workflow.config import Config, apply_override, from_mapping, load_config
from workflow.errors import ConfigError

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
    assert config.space.n_layers == (1, 5) and config.space.hidden_size == (16, 128)
    assert config.space.dropout == (0.0, 0.5)
    assert len(config.search_space().activations) == 6
    assert config.train.epochs == 10 and config.train.batch_size == 64


def test_overrides_are_parsed_as_yaml():
    config = load_config(CONFIGS / "smoke.yaml", ["optimizer.generations=3", "space.hidden_size=[20, 40]",
                                                  "train.learning_rate=0.01", "name=other"])
    assert config.optimizer.generations == 3
    assert config.space.hidden_size == (20, 40)
    assert config.train.learning_rate == 0.01 and config.name == "other"


@pytest.mark.parametrize(("overrides", "expected"), [
    (["optimizer.population_size=5", "optimizer.ga.tournament_size=9"],
     "config error: optimizer.ga.tournament_size=9: must be <= optimizer.population_size (5)"),
    # Today's old key still works; the message names where it lives now.
    (["optimizer.population_size=5", "optimizer.tournament_size=9"],
     "config error: optimizer.ga.tournament_size=9: must be <= optimizer.population_size (5)"),

    (["space.hidden_size=[128,16]"],
     "config error: space.hidden_size=[128, 16]: low must be <= high (a [low, high] pair within [1, 65536])"),
    (["space.dropout=[0.2,1.5]"], "config error: space.dropout=[0.2, 1.5]: bounds must lie within [0.0, 0.99]"),
    (["space.activation_tree=[relu, swish]"],
     "config error: space.activation_tree='swish': unknown activation; allowed: relu, leaky_relu, elu, gelu, "
     "silu, selu, mish, softplus, sigmoid, tanh, hardtanh, identity"),
    (["optimizer.ga.activation_base=1"],
     "config error: optimizer.ga.activation_base=1.0: must be > 1 (larger explores more)"),
    (["train.epochs=0"], "config error: train.epochs=0: input should be greater than or equal to 1"),
    (["optimizer.generations=-1"],
     "config error: optimizer.generations=-1: input should be greater than or equal to 1"),
    (["optimizer.colour=red"], "config error: optimizer.colour='red': unknown key; allowed: name, "
     "population_size, generations, max_failure_rate, ga, bo"),
    (["optimizer.ga.colour=red"], "config error: optimizer.ga.colour='red': unknown key; allowed: "
     "tournament_size, crossover_prob, mutation_prob, elitism, activation_base, bound_handling, mutation"),
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
    config = load_config(CONFIGS / "smoke.yaml", ["optimizer.bo_initial_points=4", "optimizer.elitism=2",
                                                  "optimizer.mutation={n_layers_step: 1}"])
    assert config.optimizer.bo.initial_points == 4 and config.optimizer.ga.elitism == 2
    assert config.optimizer.ga.mutation.n_layers_step == 1


def test_unknown_top_level_section():
    with pytest.raises(ConfigError, match=r"^config error: sections=1: unknown key; allowed: name, seed, task"):
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
