"""The built-in model and tasks as plain facts (no torch): what the driver checks and the trainer builds or loads.

The driver uses this table to check a task's files before anything is submitted; the trainer
(:mod:`workflow.trainer.data`) uses it to find and load them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

Kind = Literal["regression", "classification"]

#: Every task name ``task.name`` accepts.
TASK_NAMES = ("sinewave", "mnist", "fashion_mnist", "digits", "csv", "npz")
#: Tasks whose ``task.target`` says the kind of learning (the seed's "MSE on the label" is ``regression``).
LABELLED_TASKS = ("mnist", "fashion_mnist", "digits")
#: Tasks read from the user's own file (``task.path``).
FILE_TASKS = ("csv", "npz")

#: Image tasks: the torchvision class, also the folder under ``task.data_dir`` (``<data_dir>/<class>/raw``).
IMAGE_DATASETS: dict[str, str] = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}

#: The four IDX files torchvision reads (gunzipped) from ``<data_dir>/<class>/raw``.
IDX_FILES: tuple[str, ...] = (
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
)

#: Where Debian's ``dataset-fashion-mnist`` package installs the gzipped IDX files.
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


def task_kind(name: str, target: str | None, kind: str = "regression") -> Kind:
    """``regression`` (MSE) or ``classification`` (cross-entropy): sinewave regresses; images and digits follow
    ``task.target`` (default classification); a file follows ``task.kind``."""
    if name == "sinewave":
        return "regression"
    if name in FILE_TASKS:
        return "classification" if kind == "classification" else "regression"
    return "regression" if target == "regression" else "classification"


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


# ------------------------------------------------------------------------------------------ the built-in MLP

#: Activation names the built-in MLP can build (``workflow.trainer.model.ACTIVATIONS``; a test keeps both in step).
KNOWN_ACTIVATIONS: tuple[str, ...] = (
    "relu", "leaky_relu", "elu", "gelu", "silu", "selu", "mish", "softplus", "sigmoid", "tanh",
    "hardtanh", "identity",
)

#: Optimizers the built-in MLP trains with (``sgd`` with momentum 0.9).
MLP_OPTIMIZERS: tuple[str, ...] = ("adam", "adamw", "sgd", "rmsprop")

#: The genes the built-in MLP understands, and the gene type each must have. The architecture is either
#: ``n_layers`` + ``hidden_size`` (the seed's uniform width) or ``layers`` (a width per layer); a gene named
#: like a ``train`` setting (learning_rate, batch_size, weight_decay, optimizer) overrides it.
MLP_GENES: dict[str, str] = {
    "n_layers": "int", "hidden_size": "int", "layers": "layers", "activation": "categorical", "dropout": "float",
    "learning_rate": "float", "batch_size": "int", "weight_decay": "float", "optimizer": "categorical",
}

#: What the built-in MLP costs, reported with every result besides its losses: trainable parameters, forward
#: FLOPs per sample (2 per weight of each linear layer: a multiply and an add), the measured latency of a
#: forward pass of 1,000 samples on the training device (ms, median after a warm-up) and the training time.
MLP_COST_METRICS: tuple[str, ...] = ("n_params", "flops", "latency_ms", "train_seconds")

#: The cost metrics that are measured rather than computed: they differ from run to run (and between a
#: resumed training and an uninterrupted one), so exact-replay guarantees are about the other metrics.
MLP_MEASURED_METRICS: tuple[str, ...] = ("latency_ms", "train_seconds")


def mlp_metrics(kind: Kind | str) -> tuple[str, ...]:
    """The metrics a built-in MLP's result carries, in this order (any of them may be an objective)."""
    validation = ("val_mse",) if kind == "regression" else ("val_loss", "val_acc")
    return (*validation, "train_loss", "epochs", *MLP_COST_METRICS)
