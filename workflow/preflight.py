"""Pre-flight checks that need the file system (not just the config), run before a run directory exists."""

from __future__ import annotations

from pathlib import Path

from workflow.config import Config
from workflow.errors import ConfigError

#: torchvision reads these uncompressed files from ``<data_dir>/<folder>/raw/``.
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte")
DATASET_FOLDERS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}


def check_data(config: Config) -> None:
    """Refuse an image task whose files are missing when downloading is switched off."""
    task = config.task
    folder = DATASET_FOLDERS.get(task.name)
    if folder is None or task.download:
        return
    raw = Path(task.data_dir) / folder / "raw"
    missing = [name for name in IDX_FILES if not (raw / name).is_file()]
    if missing:
        raise ConfigError("task.data_dir", task.data_dir,
                          f"no {folder} files in {raw} (missing {missing[0]}) and task.download=false; "
                          "set task.download=true where internet exists or put the files there"
                          + (" (`make data` prepares Debian's Fashion-MNIST)" if task.name == "fashion_mnist"
                             else ""))


def check_cluster(config: Config) -> None:
    """For the Slurm backend: safe strings, and a request the cluster can satisfy (asked with sinfo)."""
    if config.backend.name != "slurm":
        return
    from workflow.backends.cluster import check_request, query_partitions, slurm_available, validate_slurm_strings

    validate_slurm_strings(config)
    if not slurm_available():
        raise ConfigError("backend.name", "slurm", "no sbatch/sinfo on PATH: run on a Slurm login node, "
                          "or use backend.name=local")
    check_request(config, query_partitions())


def preflight(config: Config) -> None:
    """Everything that must hold before anything is created or submitted."""
    check_data(config)
    check_cluster(config)
