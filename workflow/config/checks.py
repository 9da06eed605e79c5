"""Rules that relate several fields of a configuration (pydantic checks each field alone)."""

from __future__ import annotations

import re

from workflow.config.sections import Config
from workflow.config.space import GENE_NAME, RESERVED_NAMES
from workflow.errors import ConfigError
from workflow.space import CategoricalGene, FloatGene, Gene, IntGene, LayersGene, SearchSpace
from workflow.tasks import (
    FILE_TASKS,
    KNOWN_ACTIVATIONS,
    LABELLED_TASKS,
    MLP_GENES,
    MLP_OPTIMIZERS,
    mlp_metrics,
    task_kind,
)

#: Names that end up in paths, Slurm job names and W&B: a conservative safe set.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: ``objective.function``: a dotted module path, a colon, a function name.
FUNCTION_SPEC = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")


def check_config(config: Config) -> None:
    """Rules that relate fields; raises the first broken one as a :class:`ConfigError`."""
    if not SAFE_NAME.match(config.name):
        raise ConfigError("name", config.name, "use 1-64 letters, digits, '_', '.', '-' (starting alphanumeric)")
    space = config.search_space()  # every gene checked on its own (raises ConfigError)
    _check_fixed(config, space.names)
    for i, hparams in enumerate(config.optimizer.enqueue):
        if (problem := space.problem(hparams)) is not None:
            raise ConfigError(f"optimizer.enqueue[{i}]", hparams, f"outside the space: {problem}")
    if config.objective.kind == "mlp":
        _check_mlp_genes(space)
    _check_task(config)
    _check_optimizer(config)
    _check_objective(config)
    _check_objectives(config)
    train = config.train
    gpus = config.slurm.gpus_per_task
    if gpus and train.accelerator == "gpu" and gpus != train.devices:
        raise ConfigError("slurm.gpus_per_task", gpus,
                          f"must equal train.devices ({train.devices}) or be 0 to derive it from train.devices")
    _check_islands(config)
    if train.devices > 1 and train.engine == "packed":
        raise ConfigError("train.devices", train.devices, "the packed engine trains on one device; use 1")


def _check_fixed(config: Config, genes: tuple[str, ...]) -> None:
    """``fixed`` values reach the objective's hparams beside the genes: names that are neither genes nor taken."""
    for name in config.fixed:
        if name in genes:
            raise ConfigError(f"fixed.{name}", config.fixed[name], f"{name} is a gene of space; fix it there "
                              "(e.g. low = high) or remove it from one of the two")
        if not GENE_NAME.match(name) or name in RESERVED_NAMES:
            raise ConfigError("fixed", name, "names are identifiers (letters, digits, '_', not starting with a "
                              f"digit), other than {', '.join(RESERVED_NAMES)}")


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




def _check_task(config: Config) -> None:
    task = config.task
    if task.name in LABELLED_TASKS + ("sinewave",) and task.target not in (None, "classification", "regression"):
        raise ConfigError("task.target", task.target, f"for task.name={task.name}: classification or regression")
    if task.name in FILE_TASKS and not task.path:
        raise ConfigError("task.path", task.path, f"task.name={task.name} reads your own file: give its path")
    if task.name == "csv" and not task.target:
        raise ConfigError("task.target", task.target, "task.name=csv needs the target column's name")
    if task.name == "npz" and task.target is not None:
        raise ConfigError("task.target", task.target, "task.name=npz reads the target from task.y_key")
    if task.features is not None and task.name != "csv":
        raise ConfigError("task.features", list(task.features), f"only for task.name=csv (not {task.name})")


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
    if ga.adapt_base and opt.mode == "steady_state":
        raise ConfigError("optimizer.ga.adapt_base", True, "adapts per generation: needs optimizer.mode=generational")
    if ga.base_min > ga.base_max:
        raise ConfigError("optimizer.ga.base_min", ga.base_min, f"must be <= optimizer.ga.base_max ({ga.base_max})")


def _check_objective(config: Config) -> None:
    objective = config.objective
    kind = objective.kind
    if kind == "python":
        if not objective.function or not FUNCTION_SPEC.match(objective.function):
            raise ConfigError("objective.function", objective.function,
                              "objective.kind=python needs module:function, e.g. my_project.train:evaluate")
    elif objective.function is not None and kind != "callable":
        raise ConfigError("objective.function", objective.function, f"only for objective.kind=python (not {kind})")
    if kind not in ("python", "callable") and objective.path is not None:
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


def _check_objectives(config: Config) -> None:
    """``optimizer.objectives``: distinct metrics, consistent with ``objective.metric``, known to the MLP."""
    objectives = config.optimizer.objectives
    metrics = [o.metric for o in objectives]
    for i, metric in enumerate(metrics):
        if metric in metrics[:i]:
            raise ConfigError(f"optimizer.objectives[{i}].metric", metric, "each metric at most once")
    single = config.objective.metric
    if objectives and single is not None and (single, config.objective.direction) != (
            objectives[0].metric, objectives[0].direction):
        raise ConfigError("objective.metric", single, f"differs from optimizer.objectives[0] "
                          f"({objectives[0].metric}, {objectives[0].direction}); set the metric in one place")
    reference = config.optimizer.reference_point
    if reference is not None and len(reference) != len(objectives):
        raise ConfigError("optimizer.reference_point", list(reference),
                          f"needs one value per objective ({len(objectives)})")
    if config.objective.kind == "mlp":
        task = config.task
        known = mlp_metrics(task_kind(task.name, task.target, task.kind))
        for i, name in enumerate([*metrics, *config.objective.required]):
            if name not in known:
                key = f"optimizer.objectives[{i}].metric" if i < len(metrics) else "objective.required"
                raise ConfigError(key, name, f"the built-in MLP on task {task.name} reports {', '.join(known)}")


def _check_mlp_genes(space: SearchSpace) -> None:
    """The built-in MLP understands every gene, has an architecture, and can build every value."""
    understood = f"the built-in MLP understands: {', '.join(MLP_GENES)}"
    for gene in space.genes:
        want = MLP_GENES.get(gene.name)
        if want is None:
            raise ConfigError(f"space.{gene.name}", gene.type, f"unknown gene for objective.kind=mlp; {understood} "
                              "(tune anything else with your own objective: objective.kind=python or command)")
        if gene.type != want:
            raise ConfigError(f"space.{gene.name}.type", gene.type, f"must be {want} for the built-in MLP")
    names = set(space.names)
    if "layers" in names and names & {"n_layers", "hidden_size"}:
        raise ConfigError("space.layers", "layers", "give either layers (a width per layer) or n_layers and "
                          "hidden_size (one width), not both")
    for required in (["layers"] if "layers" in names else ["n_layers", "hidden_size"]) + ["activation"]:
        if required not in names:
            raise ConfigError(f"space.{required}", "<missing>", f"the built-in MLP needs it; {understood}")
    for gene in space.genes:
        _check_mlp_values(gene)


def _check_mlp_values(gene: Gene) -> None:
    key = f"space.{gene.name}"
    if isinstance(gene, CategoricalGene):
        known = KNOWN_ACTIVATIONS if gene.name == "activation" else MLP_OPTIMIZERS
        for value in gene.values:
            if value not in known:
                raise ConfigError(key, value, f"unknown {gene.name}; allowed: {', '.join(known)}")
    elif isinstance(gene, (IntGene, LayersGene)) and gene.low < 1:
        raise ConfigError(key, [gene.low, gene.high], "must be >= 1")
    elif isinstance(gene, FloatGene):
        low, high = {"dropout": (0.0, 0.99), "weight_decay": (0.0, 1.0)}.get(gene.name, (1e-12, 10.0))
        if gene.low < low or gene.high > high:
            raise ConfigError(key, [gene.low, gene.high], f"bounds must lie within [{low:g}, {high:g}]")
