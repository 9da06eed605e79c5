"""The configuration's sections: typed, frozen pydantic models, one per YAML section.

Pydantic checks types, ranges and unknown keys per field; rules that relate fields are in
:mod:`workflow.config.checks`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from workflow.config.space import GeneConfig, build_space, seed_space
from workflow.space import SearchSpace


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskConfig(_Section):
    """What the built-in MLP learns: the seed's toy ``sinewave``; ``mnist`` and ``fashion_mnist`` through
    torchvision; scikit-learn's bundled 8x8 ``digits``; your own ``csv`` or ``npz`` file."""

    name: Literal["sinewave", "mnist", "fashion_mnist", "digits", "csv", "npz"] = "sinewave"
    #: Where image datasets live (``<data_dir>/MNIST/raw`` etc.). Compute nodes read it offline.
    data_dir: str = "data"
    #: Download image datasets when missing (on the driver, before anything is submitted).
    download: bool = True
    #: Images and digits: ``classification`` (cross-entropy, val_acc logged) or the seed's ``regression`` on the
    #: label (val_mse). csv: the target column.
    target: str | None = None
    #: csv, npz: the file.
    path: str | None = None
    #: csv, npz: ``regression`` (a number; MSE) or ``classification`` (a class label; cross-entropy).
    kind: Literal["regression", "classification"] = "regression"
    #: csv: the feature columns (default: every other numeric column).
    features: tuple[str, ...] | None = None
    #: npz: the arrays' names.
    x_key: str = "X"
    y_key: str = "y"
    #: Sinewave: total samples (train + validation) and number of sine covariates.
    n_samples: int = Field(10_000, ge=20)
    n_waves: int = Field(5, ge=1)
    val_fraction: float = Field(0.2, gt=0, lt=1)
    #: Images: use only the first N training images (None: all). Validation uses the test split.
    train_subset: int | None = Field(None, ge=1)
    val_subset: int | None = Field(None, ge=1)
    #: Seed of the data itself (the sinewave draw), independent of the search's seed.
    data_seed: int = 0


class GAConfig(_Section):
    """The genetic algorithm's own settings (``optimizer.ga``); they bind only when ``optimizer.name: ga``."""

    tournament_size: int = Field(3, ge=1)
    crossover_prob: float = Field(0.9, ge=0, le=1)
    #: Probability that each gene of a child is perturbed.
    mutation_prob: float = Field(0.5, ge=0, le=1)
    #: Best individuals of the previous population that survive unchanged (replacing the worst children).
    elitism: int = Field(1, ge=0)
    bound_handling: Literal["clip", "reflect"] = "clip"
    #: Steady-state survival: ``worst`` (a child replaces the worst member when better) or ``oldest``
    #: (regularized / aging evolution, Real et al. 2019: every child joins, the oldest member leaves).
    replacement: Literal["worst", "oldest"] = "worst"
    #: Adaptive exploration (the seed's future work): each tree gene's base b follows the success of its
    #: mutations (a 1/5 rule): b shrinks (exploit) when more than ``target_success`` of them beat their parents,
    #: grows (explore) when fewer do, by ``base_factor`` per generation, within [base_min, base_max].
    adapt_base: bool = False
    target_success: float = Field(0.2, gt=0, lt=1)
    base_factor: float = Field(1.5, gt=1)
    base_min: float = Field(1.1, gt=1)
    base_max: float = Field(100.0, gt=1)
    #: Surrogate-assisted breeding: ``none`` (the seed's GA), ``gp`` or ``et`` (scikit-optimize's Gaussian
    #: process or extra trees). Each generation ``oversample`` x population children are bred and the model,
    #: fitted on every evaluation so far, picks those with the highest expected improvement, except a
    #: ``random_share`` of them, drawn uniformly from the rest.
    surrogate: Literal["none", "gp", "et"] = "none"
    oversample: int = Field(10, ge=1)
    random_share: float = Field(0.2, ge=0, le=1)


class BOConfig(_Section):
    """Bayesian optimization's settings (``optimizer.bo``, scikit-optimize)."""

    #: Uniform random points before the surrogate chooses.
    initial_points: int = Field(10, ge=1)
    acq_func: Literal["gp_hedge", "EI", "PI", "LCB"] = "gp_hedge"
    base_estimator: Literal["GP", "RF", "ET", "GBRT"] = "GP"


class ObjectiveSpec(_Section):
    """One objective of a multi-objective search: a metric the evaluation reports, and which way is better."""

    metric: str = Field(min_length=1, max_length=64)
    direction: Literal["minimize", "maximize"] = "minimize"


class OptimizerConfig(_Section):
    """What every optimizer shares (the budget, when to give up), and one section per optimizer."""

    name: Literal["ga", "bo", "random"] = "ga"
    population_size: int = Field(5, ge=1)
    #: The budget is population_size * generations evaluations (in steady_state mode: that many births).
    generations: int = Field(20, ge=1)
    #: ``generational`` (the seed's: a generation is asked, evaluated and told as a whole) or ``steady_state``
    #: (no barrier: each result is told as it arrives and a new candidate takes its slot at once).
    mode: Literal["generational", "steady_state"] = "generational"
    #: steady_state: evaluations out at once (0: population_size).
    max_in_flight: int = Field(0, ge=0)
    #: Stop the search (resumably) when this fraction of a generation's evaluations failed (1.0: all of them).
    max_failure_rate: float = Field(1.0, gt=0, le=1)
    #: Two or more: a multi-objective search for the Pareto front (GA: NSGA-II; BO: ParEGO). The first is the
    #: fitness (``best``). Empty or one: the single objective of ``objective.metric`` / ``direction``.
    objectives: tuple[ObjectiveSpec, ...] = ()
    #: Hypervolume reference point, one value per objective in the metrics' own units (default: per objective,
    #: the worst value seen plus 10% of the range).
    reference_point: tuple[float, ...] | None = None
    #: Known configurations evaluated first, in order (gene -> value; inactive conditional genes may be left out).
    enqueue: tuple[dict[str, Any], ...] = ()
    #: A run directory whose best evaluations (up to ``population_size``, best first) are enqueued when this run
    #: is created: the first generation starts from them.
    warm_start: str | None = None
    ga: GAConfig = Field(default_factory=GAConfig)
    bo: BOConfig = Field(default_factory=BOConfig)


class ObjectiveConfig(_Section):
    """What one evaluation computes: the built-in MLP (``mlp``), a Python function, or a command; from Python
    also a ``callable`` (pickled into the run directory) or ``external`` (evaluated by the user: ask/tell)."""

    kind: Literal["mlp", "python", "command", "callable", "external"] = "mlp"
    #: ``python``: ``module:function``, imported where the evaluation runs (and once on the driver, to check).
    #: ``callable``: where the function was defined (``module:qualname``), for people; the function itself is
    #: ``objective.pkl`` in the run directory (cloudpickle).
    function: str | None = None
    #: ``python``, ``callable``: a directory put on ``sys.path`` of the driver and of every evaluation.
    path: str | None = None
    #: ``command``: the argument list, with ``{gene}``, ``{name}``, ``{seed}``, ``{workdir}``, ``{attempt}``,
    #: ``{python}`` (the driver's interpreter).
    argv: tuple[str, ...] = ()
    #: ``command``: the working directory of the command.
    cwd: str | None = None
    #: The metric optimised (default: ``mlp``: the task's validation loss; otherwise the single value returned).
    metric: str | None = None
    direction: Literal["minimize", "maximize"] = "minimize"
    #: ``command``: seconds between SIGTERM and SIGKILL when the command must stop.
    grace_s: float = Field(10.0, gt=0)
    #: Metrics every result must report (finite) besides the one optimised, else it failed; the other
    #: ``optimizer.objectives`` are added to these.
    required: tuple[str, ...] = ()


class TrainConfig(_Section):
    engine: Literal["lightning", "packed"] = "lightning"
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    #: L2 penalty (decoupled for adamw); 0 keeps the seed's training.
    weight_decay: float = Field(0.0, ge=0)
    #: adam (the seed's), adamw, sgd (momentum 0.9) or rmsprop. Genes of the same names override these four.
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
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
    #: The config format (:data:`workflow.config.legacy.CONFIG_VERSION`); files without it are version 1.
    version: Literal[2] = 2
    task: TaskConfig = Field(default_factory=TaskConfig)
    #: The genes, in the chromosome's order (see :mod:`workflow.config.space`).
    space: dict[str, GeneConfig] = Field(default_factory=seed_space)
    #: Values every evaluation's hyperparameters carry without being searched (``fixed: {epochs: 20}``).
    fixed: dict[str, Any] = Field(default_factory=dict)
    objective: ObjectiveConfig = Field(default_factory=ObjectiveConfig)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    backend: BackendConfig = Field(default_factory=BackendConfig)
    slurm: SlurmConfig = Field(default_factory=SlurmConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    islands: IslandsConfig = Field(default_factory=IslandsConfig)

    def search_space(self) -> SearchSpace:
        return build_space(self.space)

    @property
    def multi_objective(self) -> bool:
        return len(self.optimizer.objectives) > 1

    def scoring(self) -> ObjectiveConfig:
        """How an evaluation's metrics become its result: ``objective``, with the first of
        ``optimizer.objectives`` as the metric optimised and the others required."""
        objectives = self.optimizer.objectives
        if not objectives:
            return self.objective
        first, rest = objectives[0], objectives[1:]
        required = tuple(dict.fromkeys((*self.objective.required, *(o.metric for o in rest))))
        return self.objective.model_copy(update={"metric": first.metric, "direction": first.direction,
                                                 "required": required})

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
