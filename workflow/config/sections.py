"""Typed, frozen configuration: YAML + dotted overrides, validated before anything runs.

Validation happens in two layers: pydantic checks types, ranges and unknown keys per field; then
:func:`_check_cross_fields` checks rules that relate fields (tournament size vs population, bounds order,
activation names). Every failure becomes one :class:`ConfigError` line: key, value, what is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from workflow.errors import ConfigError
from workflow.space import DEFAULT_ACTIVATION_TREE, KNOWN_ACTIVATIONS, ActivationTree, SearchSpace

#: Names that end up in paths, Slurm job names and W&B: a conservative safe set.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskConfig(_Section):
    """What to learn. ``sinewave`` is the seed's toy task; images come through torchvision."""

    name: Literal["sinewave", "mnist", "fashion_mnist"] = "sinewave"
    #: Where image datasets live (``<data_dir>/MNIST/raw`` etc.). Compute nodes read it offline.
    data_dir: str = "data"
    #: Download image datasets when missing (needs internet; off on compute nodes).
    download: bool = True
    #: ``classification`` (cross-entropy, val_acc logged) or the seed's ``regression`` on the label (val_mse).
    target: Literal["classification", "regression"] = "classification"
    #: Sinewave: total samples (train + validation) and number of sine covariates.
    n_samples: int = Field(10_000, ge=20)
    n_waves: int = Field(5, ge=1)
    val_fraction: float = Field(0.2, gt=0, lt=1)
    #: Images: use only the first N training images (None: all). Validation uses the test split.
    train_subset: int | None = Field(None, ge=1)
    val_subset: int | None = Field(None, ge=1)
    #: Seed of the data itself (the sinewave draw), independent of the search's seed.
    data_seed: int = 0


class SpaceConfig(_Section):
    """The seed's search space; bounds inclusive."""

    n_layers: tuple[int, int] = (1, 5)
    hidden_size: tuple[int, int] = (16, 128)
    dropout: tuple[float, float] = (0.0, 0.5)
    activation_tree: Any = Field(default_factory=lambda: DEFAULT_ACTIVATION_TREE)


class MutationConfig(_Section):
    """Per-gene perturbations (the seed's): U{-k..k} for integers, N(0, sigma) for dropout."""

    n_layers_step: int = Field(2, ge=0)
    hidden_size_step: int = Field(16, ge=0)
    dropout_sigma: float = Field(0.15, ge=0)


class OptimizerConfig(_Section):
    name: Literal["ga", "bo", "random"] = "ga"
    population_size: int = Field(5, ge=1)
    generations: int = Field(20, ge=1)
    tournament_size: int = Field(3, ge=1)
    crossover_prob: float = Field(0.9, ge=0, le=1)
    #: Probability that each gene of a child is perturbed.
    mutation_prob: float = Field(0.5, ge=0, le=1)
    #: Best individuals of the previous population that survive unchanged (replacing the worst children).
    elitism: int = Field(1, ge=0)
    #: The base b of the activation distance d_b = log_b(hops); > 1, larger explores more.
    activation_base: float = 2.0
    bound_handling: Literal["clip", "reflect"] = "clip"
    mutation: MutationConfig = Field(default_factory=MutationConfig)
    # --- BO (scikit-optimize) ---
    bo_initial_points: int = Field(10, ge=1)
    bo_acq_func: Literal["gp_hedge", "EI", "PI", "LCB"] = "gp_hedge"
    bo_base_estimator: Literal["GP", "RF", "ET", "GBRT"] = "GP"


class TrainConfig(_Section):
    engine: Literal["lightning", "packed"] = "lightning"
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    #: Stop after this many epochs without validation improvement (0: off).
    early_stopping_patience: int = Field(0, ge=0)
    accelerator: Literal["auto", "cpu", "gpu"] = "auto"
    #: Devices per evaluation (individual-level parallelism: > 1 uses DDP).
    devices: int = Field(1, ge=1)
    strategy: Literal["auto", "ddp", "ddp_spawn"] = "auto"
    #: torch intra-op threads per evaluation process.
    num_threads: int = Field(1, ge=1)
    #: Individuals trained together by the packed engine (0: a default per device).
    pack_size: int = Field(0, ge=0)
    cuda_graphs: bool = False


class BackendConfig(_Section):
    name: Literal["local", "slurm"] = "local"
    #: Local backend: parallel worker processes.
    workers: int = Field(2, ge=1)
    #: Wall-clock limit of one evaluation on the local backend (seconds).
    timeout_s: float = Field(900.0, gt=0)


class SlurmConfig(_Section):
    partition: str = "gpu"
    gpus_per_task: int = Field(0, ge=0)
    cpus_per_task: int = Field(1, ge=1)
    mem_gb: float = Field(4.0, gt=0)
    time_min: int = Field(60, ge=1)
    array_parallelism: int = Field(256, ge=1)
    account: str | None = None
    qos: str | None = None
    #: Extra sbatch options (``--key=value``); keys and values are validated.
    additional_parameters: dict[str, str | int] = Field(default_factory=dict)
    #: Shell lines run before the task (module loads, venv activation); validated against a safe set.
    setup: tuple[str, ...] = ()
    #: submitit's folder, relative to the run directory.
    folder: str = "slurm"
    #: Seconds between polls of job states.
    poll_s: float = Field(1.0, gt=0)
    #: Seconds a task may stay unknown to sacct/squeue before it is declared lost.
    lost_grace_s: float = Field(120.0, gt=0)
    signal_delay_s: int = Field(90, ge=1)
    max_requeues: int = Field(3, ge=0)


class TrackingConfig(_Section):
    mode: Literal["disabled", "offline", "online"] = "disabled"
    project: str = "gaslurm"
    entity: str | None = None


class IslandsConfig(_Section):
    """The island model: ``count`` GA populations (MPI ranks) exchanging migrants."""

    count: int = Field(1, ge=1)
    topology: Literal["ring", "full", "matrix"] = "ring"
    #: ``matrix[i][j] = 1``: island i sends to island j (topology: matrix).
    matrix: tuple[tuple[int, ...], ...] | None = None
    #: Individuals sent to each neighbour per migration (copies of the sender's best).
    migrants: int = Field(1, ge=1)
    #: Generations between migrations.
    interval: int = Field(2, ge=1)
    #: ``async``: use whatever immigrants have arrived (a slow island never blocks the others);
    #: ``sync``: wait for every neighbour's migrants, at most ``sync_timeout_s``.
    mode: Literal["async", "sync"] = "async"
    sync_timeout_s: float = Field(600.0, gt=0)
    #: Island k submits to ``partitions[k % len(partitions)]``; empty: everyone uses ``slurm.partition``.
    partitions: tuple[str, ...] = ()


class Config(_Section):
    """The whole experiment."""

    name: str = "experiment"
    seed: int = 0
    task: TaskConfig = Field(default_factory=TaskConfig)
    space: SpaceConfig = Field(default_factory=SpaceConfig)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    backend: BackendConfig = Field(default_factory=BackendConfig)
    slurm: SlurmConfig = Field(default_factory=SlurmConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    islands: IslandsConfig = Field(default_factory=IslandsConfig)

    def search_space(self) -> SearchSpace:
        return SearchSpace(
            n_layers=self.space.n_layers,
            hidden_size=self.space.hidden_size,
            dropout=self.space.dropout,
            tree=ActivationTree(self.space.activation_tree),
        )

    def to_plain(self) -> dict[str, Any]:
        """A JSON/YAML-safe dict (tuples as lists) that :func:`from_mapping` accepts back."""
        return _listify(self.model_dump(mode="python"))

    @property
    def evaluations_planned(self) -> int:
        return self.optimizer.population_size * self.optimizer.generations


def _listify(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _listify(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_listify(v) for v in value]
    return value


# ----------------------------------------------------------------------------------------------- loading


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> Config:
    """Read a YAML file, apply ``key.sub=value`` overrides, validate."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError("CONFIG", str(path), f"cannot read the file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError("CONFIG", str(path), f"not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError("CONFIG", str(path), "must be a YAML mapping of sections")
    for item in overrides:
        apply_override(data, item)
    return from_mapping(data)


def apply_override(data: dict[str, Any], item: str) -> None:
    """Apply one ``dotted.key=value`` override in place; the value is parsed as YAML."""
    if "=" not in item:
        raise ConfigError("override", item, "expected key=value, e.g. optimizer.generations=3")
    key, raw = item.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError("override", item, "expected a dotted key such as optimizer.generations")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(".".join(parts[: i + 1]), child, "is a value, not a section")
        node = child
    node[parts[-1]] = value


def from_mapping(data: dict[str, Any]) -> Config:
    """Validate a plain mapping into a :class:`Config` (raises :class:`ConfigError`)."""
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise _to_config_error(exc, data) from None
    _check_cross_fields(config)
    return config


def _to_config_error(exc: ValidationError, data: dict[str, Any]) -> ConfigError:
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    # Bounds are tuples: report the whole pair, not its element.
    if len(loc) >= 3 and loc[0] == "space" and loc[-1].isdigit():
        loc = loc[:-1]
    key = ".".join(loc)
    value = _lookup(data, loc)
    if err["type"] == "extra_forbidden":
        return ConfigError(key, value, f"unknown key; allowed: {', '.join(_allowed_keys(loc[:-1]))}")
    if err["type"] == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return ConfigError(key, value, f"must be one of {expected}")
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    return ConfigError(key, value, msg[0].lower() + msg[1:])


def _lookup(data: Any, loc: list[str]) -> Any:
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, (list, tuple)) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return "<missing>"
    return data


def _allowed_keys(section: list[str]) -> list[str]:
    model: type[BaseModel] = Config
    for part in section:
        field = model.model_fields.get(part)
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def _check_cross_fields(config: Config) -> None:
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
    opt = config.optimizer
    if opt.tournament_size > opt.population_size:
        raise ConfigError("optimizer.tournament_size", opt.tournament_size,
                          f"must be <= optimizer.population_size ({opt.population_size})")
    if opt.elitism >= opt.population_size and opt.name == "ga":
        raise ConfigError("optimizer.elitism", opt.elitism,
                          f"must be < optimizer.population_size ({opt.population_size})")
    if opt.activation_base <= 1:
        raise ConfigError("optimizer.activation_base", opt.activation_base, "must be > 1 (larger explores more)")
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


def island_config(config: Config, island: int) -> Config:
    """The config one island runs: its own partition; everything else shared."""
    partitions = config.islands.partitions
    if not partitions:
        return config
    slurm = config.slurm.model_copy(update={"partition": partitions[island % len(partitions)]})
    return config.model_copy(update={"slurm": slurm})
