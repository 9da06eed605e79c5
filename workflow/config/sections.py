"""The configuration's sections: typed, frozen pydantic models, one per YAML section.

Pydantic checks types, ranges and unknown keys per field; rules that relate fields are in
:mod:`workflow.config.checks`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from workflow.space import DEFAULT_ACTIVATION_TREE, ActivationTree, SearchSpace


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskConfig(_Section):
    """What to learn. ``sinewave`` is the seed's toy task; images come through torchvision."""

    name: Literal["sinewave", "mnist", "fashion_mnist"] = "sinewave"  # workflow.tasks.TASK_NAMES
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


class GAConfig(_Section):
    """The genetic algorithm's own settings (``optimizer.ga``); they bind only when ``optimizer.name: ga``."""

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


class BOConfig(_Section):
    """Bayesian optimization's settings (``optimizer.bo``, scikit-optimize)."""

    #: Uniform random points before the surrogate chooses.
    initial_points: int = Field(10, ge=1)
    acq_func: Literal["gp_hedge", "EI", "PI", "LCB"] = "gp_hedge"
    base_estimator: Literal["GP", "RF", "ET", "GBRT"] = "GP"


class OptimizerConfig(_Section):
    """What every optimizer shares (the budget, when to give up), and one section per optimizer."""

    name: Literal["ga", "bo", "random"] = "ga"
    population_size: int = Field(5, ge=1)
    generations: int = Field(20, ge=1)
    #: Stop the search (resumably) when this fraction of a generation's evaluations failed (1.0: all of them).
    max_failure_rate: float = Field(1.0, gt=0, le=1)
    ga: GAConfig = Field(default_factory=GAConfig)
    bo: BOConfig = Field(default_factory=BOConfig)


class ObjectiveConfig(_Section):
    """What one evaluation computes: the built-in MLP (``mlp``), a Python function, or a command."""

    kind: Literal["mlp", "python", "command"] = "mlp"
    #: ``python``: ``module:function``, imported where the evaluation runs (and once on the driver, to check).
    function: str | None = None
    #: ``python``: a directory put on ``sys.path`` of the driver and of every evaluation.
    path: str | None = None
    #: ``command``: the argument list, with ``{gene}``, ``{name}``, ``{seed}``, ``{workdir}``, ``{attempt}``.
    argv: tuple[str, ...] = ()
    #: ``command``: the working directory of the command.
    cwd: str | None = None
    #: The metric optimised (default: ``mlp``: the task's validation loss; otherwise the single value returned).
    metric: str | None = None
    direction: Literal["minimize", "maximize"] = "minimize"
    #: ``command``: seconds between SIGTERM and SIGKILL when the command must stop.
    grace_s: float = Field(10.0, gt=0)


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
    name: Literal["inline", "local", "slurm"] = "local"
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
    #: Times an evaluation is submitted again after its task was preempted or its node failed.
    max_resubmits: int = Field(3, ge=0)


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
    objective: ObjectiveConfig = Field(default_factory=ObjectiveConfig)
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


def island_config(config: Config, island: int) -> Config:
    """The config one island runs: its own partition; everything else shared."""
    partitions = config.islands.partitions
    if not partitions:
        return config
    slurm = config.slurm.model_copy(update={"partition": partitions[island % len(partitions)]})
    return config.model_copy(update={"slurm": slurm})
