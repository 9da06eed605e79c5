"""Rules that relate several fields of a configuration (pydantic checks each field alone)."""

from __future__ import annotations

import re

from workflow.config.sections import Config
from workflow.errors import ConfigError
from workflow.space import KNOWN_ACTIVATIONS, ActivationTree

#: Names that end up in paths, Slurm job names and W&B: a conservative safe set.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: ``objective.function``: a dotted module path, a colon, a function name.
FUNCTION_SPEC = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")


def check_config(config: Config) -> None:
    """Rules that relate fields; raises the first broken one as a :class:`ConfigError`."""
    if not SAFE_NAME.match(config.name):
        raise ConfigError("name", config.name, "use 1-64 letters, digits, '_', '.', '-' (starting alphanumeric)")
    space = config.space
    for key, (low, high), floor, ceiling in (
        ("space.n_layers", space.n_layers, 1, 64),
        ("space.hidden_size", space.hidden_size, 1, 65536),
        ("space.dropout", space.dropout, 0.0, 0.99),
    ):
        if low > high:
            raise ConfigError(key, [low, high], f"low must be <= high (a [low, high] pair within [{floor}, {ceiling}])")
        if low < floor or high > ceiling:
            raise ConfigError(key, [low, high], f"bounds must lie within [{floor}, {ceiling}]")
    try:
        tree = ActivationTree(space.activation_tree)
    except ValueError as exc:
        raise ConfigError("space.activation_tree", space.activation_tree, str(exc)) from None
    for leaf in tree.leaves:
        if leaf not in KNOWN_ACTIVATIONS:
            raise ConfigError("space.activation_tree", leaf,
                              f"unknown activation; allowed: {', '.join(KNOWN_ACTIVATIONS)}")
    _check_optimizer(config)
    _check_objective(config)
    train = config.train
    gpus = config.slurm.gpus_per_task
    if gpus and train.accelerator == "gpu" and gpus != train.devices:
        raise ConfigError("slurm.gpus_per_task", gpus,
                          f"must equal train.devices ({train.devices}) or be 0 to derive it from train.devices")
    _check_islands(config)
    if train.devices > 1 and train.engine == "packed":
        raise ConfigError("train.devices", train.devices, "the packed engine trains on one device; use 1")


def _check_islands(config: Config) -> None:
    islands = config.islands
    if islands.count == 1:
        return
    if config.optimizer.name != "ga":
        raise ConfigError("optimizer.name", config.optimizer.name, "islands (islands.count > 1) need 'ga'")
    if islands.migrants >= config.optimizer.population_size:
        raise ConfigError("islands.migrants", islands.migrants,
                          f"must be < optimizer.population_size ({config.optimizer.population_size})")
    if islands.topology == "matrix":
        matrix = islands.matrix
        k = islands.count
        if matrix is None or len(matrix) != k or any(len(row) != k for row in matrix):
            raise ConfigError("islands.matrix", matrix, f"a {k}x{k} matrix of 0/1 is required for topology matrix")
        if any(value not in (0, 1) for row in matrix for value in row):
            raise ConfigError("islands.matrix", matrix, "entries must be 0 or 1")
    for name in islands.partitions:
        if not SAFE_NAME.match(name):
            raise ConfigError("islands.partitions", name, "use letters, digits, '_', '.', '-' only")




def _check_optimizer(config: Config) -> None:
    opt = config.optimizer
    if opt.name != "ga":
        return  # the GA's rules bind only the GA
    ga = opt.ga
    if ga.tournament_size > opt.population_size:
        raise ConfigError("optimizer.ga.tournament_size", ga.tournament_size,
                          f"must be <= optimizer.population_size ({opt.population_size})")
    if ga.elitism >= opt.population_size:
        raise ConfigError("optimizer.ga.elitism", ga.elitism,
                          f"must be < optimizer.population_size ({opt.population_size})")
    if ga.activation_base <= 1:
        raise ConfigError("optimizer.ga.activation_base", ga.activation_base, "must be > 1 (larger explores more)")


def _check_objective(config: Config) -> None:
    objective = config.objective
    kind = objective.kind
    if kind == "python":
        if not objective.function or not FUNCTION_SPEC.match(objective.function):
            raise ConfigError("objective.function", objective.function,
                              "objective.kind=python needs module:function, e.g. my_project.train:evaluate")
    elif objective.function is not None:
        raise ConfigError("objective.function", objective.function, f"only for objective.kind=python (not {kind})")
    if kind != "python" and objective.path is not None:
        raise ConfigError("objective.path", objective.path, f"only for objective.kind=python (not {kind})")
    if kind == "command" and not objective.argv:
        raise ConfigError("objective.argv", list(objective.argv),
                          "objective.kind=command needs the command as a list, e.g. [python, train.py, --lr, "
                          "'{learning_rate}']")
    if kind != "command" and (objective.argv or objective.cwd is not None):
        raise ConfigError("objective.argv" if objective.argv else "objective.cwd",
                          list(objective.argv) if objective.argv else objective.cwd,
                          f"only for objective.kind=command (not {kind})")
    if kind != "mlp" and config.train.engine == "packed":
        raise ConfigError("train.engine", "packed", f"the packed engine trains the built-in MLP "
                          f"(objective.kind=mlp), not objective.kind={kind}")
