"""Pre-flight checks that need more than the config (files, the network, the cluster), run before a run
directory exists and before anything is submitted. Each refusal is one :class:`ConfigError` line."""

from __future__ import annotations

from workflow.config import Config, TaskConfig
from workflow.errors import ConfigError
from workflow.extras import missing
from workflow.tasks import FILE_TASKS, IMAGE_DATASETS, missing_image_files, missing_images_message


def check_data(config: Config) -> None:
    """A task's data can be read on the driver: the user's file is usable; an image task's files are in
    ``task.data_dir``, already there or downloaded now."""
    task = config.task
    if task.name in FILE_TASKS:
        _check_file(task)
    if task.name not in IMAGE_DATASETS:
        return
    missing = missing_image_files(task.name, task.data_dir)
    if not missing:
        return
    if not task.download:
        raise ConfigError("task.data_dir", task.data_dir,
                          missing_images_message(task.name, task.data_dir, missing, download=False))
    from workflow.trainer.data import download_images  # torchvision: only when a download is needed

    try:
        download_images(task)
    except FileNotFoundError as exc:
        raise ConfigError("task.data_dir", task.data_dir, str(exc)) from None


def check_objective(config: Config) -> None:
    """A user's objective can be used: the function imports and takes (hparams, context); every placeholder of
    a command names a gene or a context value, and its program and script exist (relative to its cwd)."""
    objective = config.objective
    if objective.kind == "python":
        from workflow.objectives.python import ObjectiveError, check_function

        try:
            check_function(objective)
        except ObjectiveError as exc:
            raise ConfigError("objective.function", objective.function, str(exc)) from None
    elif objective.kind == "external":
        raise ConfigError("objective.kind", "external", "this search is evaluated outside the driver "
                          "(study.ask() / study.tell() in Python); a driver has nothing to run")
    elif objective.kind == "command":
        from workflow.objectives.command import check_command, check_command_files
        from workflow.objectives.placeholders import placeholders

        space = config.search_space()
        conditional = [name for name, _ in space.conditions if name in placeholders(objective.argv)]
        if conditional:
            raise ConfigError("objective.argv", list(objective.argv), f"{{{conditional[0]}}} names a conditional gene "
                              "(when), absent from an evaluation where it is inactive; a command cannot name it")
        try:
            check_command(objective, [*space.names, *config.fixed])
            check_command_files(objective)
        except ValueError as exc:
            raise ConfigError("objective.argv", list(objective.argv), str(exc)) from None


def _check_file(task: TaskConfig) -> None:
    from workflow.datasets.tabular import DataError, check_csv, check_npz

    try:
        if task.name == "csv":
            check_csv(task.path or "", target=task.target or "", kind=task.kind, features=task.features,
                      val_fraction=task.val_fraction)
        else:
            check_npz(task.path or "", kind=task.kind, x_key=task.x_key, y_key=task.y_key,
                      val_fraction=task.val_fraction)
    except DataError as exc:
        raise ConfigError(exc.key, exc.value, exc.problem) from None


def check_cluster(config: Config) -> None:
    """For the Slurm backend: safe strings, and a request the cluster can satisfy (asked with sinfo)."""
    if config.backend.name != "slurm":
        return
    from workflow.cluster import check_request, query_partitions, slurm_available, validate_slurm_strings

    validate_slurm_strings(config)
    if not slurm_available():
        raise ConfigError("backend.name", "slurm", "no sbatch/sinfo on PATH: run on a Slurm login node, "
                          "or use backend.name=local")
    check_request(config, query_partitions())


def check_extras(config: Config) -> None:
    """What the config uses is installed: the built-in MLP (``objective.kind: mlp``, the default), W&B tracking
    and the island model come with extras of ``pip install gaslurm``; one line names the extra to install."""
    if config.objective.kind == "mlp":
        modules = ("torch", *(("pytorch_lightning",) if config.train.engine == "lightning" else ()),
                   *(("torchvision",) if config.task.name in IMAGE_DATASETS else ()))
        if why := missing("mlp", "the built-in MLP", modules):
            raise ConfigError("objective.kind", "mlp", why)
    if config.tracking.mode != "disabled" and (why := missing("wandb", "W&B tracking")):
        raise ConfigError("tracking.mode", config.tracking.mode, why)
    if config.islands.count > 1 and (why := missing("islands", "the island model")):
        raise ConfigError("islands.count", config.islands.count, why)


def preflight(config: Config) -> None:
    """Everything that must hold before anything is created or submitted."""
    check_extras(config)
    check_objective(config)
    check_data(config)
    check_cluster(config)
