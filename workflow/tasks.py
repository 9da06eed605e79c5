"""The built-in tasks and their datasets, as plain facts (no torch): what the driver checks and the trainer loads.

The driver uses this table to check a task's files before anything is submitted; the trainer
(:mod:`workflow.trainer.data`) uses it to find and load them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

Kind = Literal["regression", "classification"]

#: Every task name ``task.name`` accepts.
TASK_NAMES = ("sinewave", "mnist", "fashion_mnist")

#: Image tasks: the torchvision class, also the folder under ``task.data_dir`` (``<data_dir>/<class>/raw``).
IMAGE_DATASETS: dict[str, str] = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}

#: The four IDX files torchvision reads (gunzipped) from ``<data_dir>/<class>/raw``.
IDX_FILES: tuple[str, ...] = (
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
)

#: Where Debian's ``dataset-fashion-mnist`` package installs the gzipped IDX files.
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


def task_kind(name: str, target: str) -> Kind:
    """``regression`` (MSE) or ``classification`` (cross-entropy) for a task and its ``task.target``."""
    if name == "sinewave" or target == "regression":
        return "regression"
    return "classification"


def image_raw_dir(name: str, data_dir: str) -> Path:
    """Where torchvision reads an image task's IDX files: ``<data_dir>/<class>/raw``."""
    return Path(data_dir).expanduser() / IMAGE_DATASETS[name] / "raw"


def missing_image_files(name: str, data_dir: str) -> list[str]:
    """The IDX files an image task still lacks in ``data_dir`` ([] when it can be read offline)."""
    raw = image_raw_dir(name, data_dir)
    legacy = raw.parent / "processed"  # what older torchvision versions wrote
    if all((legacy / f).is_file() for f in ("training.pt", "test.pt")):
        return []
    return [f for f in IDX_FILES if not (raw / f).is_file()]


def missing_images_message(name: str, data_dir: str, missing: list[str], *, download: bool,
                           failure: str | None = None) -> str:
    """One line saying which files are missing where, and how to provide them."""
    raw = image_raw_dir(name, data_dir)
    where = f"no {IMAGE_DATASETS[name]} files in {raw} (missing {', '.join(missing)})"
    debian = ("; on Debian: apt-get install dataset-fashion-mnist, then `make data` (or set task.data_dir to the "
              "folder it prepares)" if name == "fashion_mnist" else "")
    if download:
        return (f"{where} and downloading them failed ({failure}); put the four IDX files there, or run where "
                f"the driver has internet (it downloads them once, before submitting){debian}")
    return (f"{where} and task.download=false; put the four IDX files there, or set task.download=true where "
            f"the driver has internet{debian}")
