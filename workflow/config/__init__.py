"""Typed, frozen configuration: YAML + dotted overrides, validated before anything runs.

Validation happens in two layers: pydantic checks types, ranges and unknown keys per field
(:mod:`~workflow.config.sections`); then :func:`~workflow.config.checks.check_config` checks rules that relate
fields (tournament size vs population, bounds order, activation names). Every failure becomes one
:class:`~workflow.errors.ConfigError` line: key, value, what is allowed. Keys of earlier versions are
translated (:mod:`~workflow.config.legacy`).
"""

from workflow.config.loading import apply_override, from_mapping, load_config, read_mapping, with_space
from workflow.config.sections import (
    BackendConfig,
    BOConfig,
    Config,
    GAConfig,
    IslandsConfig,
    ObjectiveConfig,
    ObjectiveSpec,
    OptimizerConfig,
    SlurmConfig,
    TaskConfig,
    TrackingConfig,
    TrainConfig,
    island_config,
)

__all__ = ["BOConfig", "BackendConfig", "Config", "GAConfig", "IslandsConfig", "ObjectiveConfig",
           "ObjectiveSpec", "OptimizerConfig", "SlurmConfig", "TaskConfig", "TrackingConfig", "TrainConfig",
           "apply_override", "from_mapping", "island_config", "load_config", "read_mapping", "with_space"]
