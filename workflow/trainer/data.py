"""Datasets as in-memory tensors: the seed's sinewave toy task, MNIST, Fashion-MNIST, digits and the user's files.

Everything a task needs fits in memory (Fashion-MNIST is 220 MB as float32), so an evaluation never touches
the disk after :func:`load_task` ran once in its process; the result is cached per process, keyed by the
task's configuration, because a worker process evaluates many individuals of the same task.
"""

from __future__ import annotations

import functools
import gzip
import shutil
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlparse

import numpy as np
import torch

from workflow.config import TaskConfig
from workflow.store.atomic import atomic_write
from workflow.tasks import (
    DEBIAN_FASHION_MNIST,
    IDX_FILES,
    IMAGE_DATASETS,
    TASK_NAMES,
    Kind,
    missing_image_files,
    missing_images_message,
    task_kind,
)

__all__ = ["DEBIAN_FASHION_MNIST", "IDX_FILES", "TaskData", "download_images", "load_task",
           "prepare_fashion_mnist_from_debian"]


@dataclass(frozen=True, eq=False)
class TaskData:
    """A task's tensors, all on the CPU.

    ``train_x``/``val_x`` are float32 ``(N, n_inputs)``. Targets are float32 ``(N, n_outputs)`` for
    ``regression`` (MSE) and int64 class indices ``(N,)`` for ``classification`` (cross-entropy).
    Treat the tensors as read-only: they are shared by every evaluation in the process.
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    n_inputs: int
    n_outputs: int
    kind: Kind

    @property
    def n_train(self) -> int:
        return int(self.train_x.shape[0])

    @property
    def n_val(self) -> int:
        return int(self.val_x.shape[0])


_CACHE: dict[tuple[TaskConfig, str], TaskData] = {}
_LOCK = threading.Lock()


def load_task(task: TaskConfig) -> TaskData:
    """The task's train/validation tensors; loaded once per process and configuration."""
    key = (task, str(Path(task.data_dir).expanduser().resolve()))
    with _LOCK:
        data = _CACHE.get(key)
        if data is None:
            data = _load_uncached(task)
            _CACHE[key] = data
        return data


def clear_cache() -> None:
    """Forget every loaded task (tests; or to free memory in a long-lived process)."""
    with _LOCK:
        _CACHE.clear()


def _load_uncached(task: TaskConfig) -> TaskData:
    if task.name == "sinewave":
        return make_sinewave(task.n_samples, task.n_waves, task.val_fraction, task.data_seed)
    if task.name in IMAGE_DATASETS:
        return _load_images(task)
    if task.name in ("digits", "csv", "npz"):
        return _load_tabular(task)
    raise ValueError(f"unknown task {task.name!r}; allowed: {', '.join(TASK_NAMES)}")


def _load_tabular(task: TaskConfig) -> TaskData:
    """scikit-learn's digits, or the user's CSV/NPZ file (read and standardised by :mod:`workflow.datasets`)."""
    from workflow.datasets import tabular

    kind = task_kind(task.name, task.target, task.kind)
    if task.name == "digits":
        table = tabular.load_digits(kind=kind, val_fraction=task.val_fraction, seed=task.data_seed)
    elif task.name == "csv":
        table = tabular.load_csv(task.path or "", target=task.target or "", kind=kind, features=task.features,
                                 val_fraction=task.val_fraction, seed=task.data_seed)
    else:
        table = tabular.load_npz(task.path or "", kind=kind, x_key=task.x_key, y_key=task.y_key,
                                 val_fraction=task.val_fraction, seed=task.data_seed)
    return TaskData(train_x=torch.from_numpy(table.train_x), train_y=torch.from_numpy(table.train_y),
                    val_x=torch.from_numpy(table.val_x), val_y=torch.from_numpy(table.val_y),
                    n_inputs=table.n_features, n_outputs=table.n_outputs, kind=table.kind)


# ----------------------------------------------------------------------------------------------- sinewave


def make_sinewave(n_samples: int, n_waves: int, val_fraction: float, data_seed: int) -> TaskData:
    """The seed's toy task: ``n_waves`` sine covariates, a random linear combination of them as target.

    A latent time ``t ~ U(0, 8*pi)`` drives every covariate ``x_i = sin(omega_i * t + phi_i)``
    (``omega_i ~ U(0.5, 3)``, ``phi_i ~ U(0, 2*pi)``) and the target is ``y = sum_i w_i * x_i`` with
    ``w_i ~ N(0, 1)``, standardised with the training split's mean and standard deviation, so a constant
    predictor scores a validation MSE of about 1 whatever the seed. The wave parameters are drawn before the
    samples: changing ``n_samples`` keeps the same function. The first ``1 - val_fraction`` of the samples
    train, the rest validate.
    """
    rng = np.random.default_rng(data_seed)
    omega = rng.uniform(0.5, 3.0, n_waves)
    phase = rng.uniform(0.0, 2.0 * np.pi, n_waves)
    weights = rng.normal(0.0, 1.0, n_waves)
    t = rng.uniform(0.0, 8.0 * np.pi, n_samples)
    x = np.sin(t[:, None] * omega[None, :] + phase[None, :])
    y = x @ weights
    n_val = min(max(1, round(n_samples * val_fraction)), n_samples - 1)
    n_train = n_samples - n_val
    mean, std = y[:n_train].mean(), y[:n_train].std()
    y = (y - mean) / (std if std > 0 else 1.0)
    xt = torch.from_numpy(x.astype(np.float32))
    yt = torch.from_numpy(y.astype(np.float32)).unsqueeze(1)
    return TaskData(train_x=xt[:n_train].clone(), train_y=yt[:n_train].clone(),
                    val_x=xt[n_train:].clone(), val_y=yt[n_train:].clone(),
                    n_inputs=n_waves, n_outputs=1, kind="regression")


# ----------------------------------------------------------------------------------------------- images


def _load_images(task: TaskConfig) -> TaskData:
    """An image task's tensors from ``task.data_dir`` (the driver put the files there: :func:`download_images`)."""
    from torchvision import datasets  # torchvision is slow to import; sinewave runs never need it

    missing = missing_image_files(task.name, task.data_dir)
    if missing:
        text = missing_images_message(task.name, task.data_dir, missing, download=False)
        raise FileNotFoundError(f"task.data_dir={task.data_dir!r}: "
                                + text.replace("task.download=false", "compute nodes do not download"))
    dataset_class = getattr(datasets, IMAGE_DATASETS[task.name])
    root = str(Path(task.data_dir).expanduser().resolve())
    train = dataset_class(root, train=True, download=False)
    val = dataset_class(root, train=False, download=False)
    train_x, train_labels = _flatten(train.data, train.targets, task.train_subset)
    val_x, val_labels = _flatten(val.data, val.targets, task.val_subset)
    if task_kind(task.name, task.target) == "classification":
        return TaskData(train_x=train_x, train_y=train_labels, val_x=val_x, val_y=val_labels,
                        n_inputs=int(train_x.shape[1]), n_outputs=10, kind="classification")
    # The seed's "MSE on the label": one output regressing the digit/class index itself.
    return TaskData(train_x=train_x, train_y=train_labels.float().unsqueeze(1), val_x=val_x,
                    val_y=val_labels.float().unsqueeze(1), n_inputs=int(train_x.shape[1]), n_outputs=1,
                    kind="regression")


def download_images(task: TaskConfig, timeout_s: float = 5.0) -> None:
    """Download an image task's files into ``task.data_dir`` (on the driver, before anything is submitted).

    Raises ``FileNotFoundError`` with one line when the download servers do not answer within ``timeout_s``
    (nothing is created then) or the download fails.
    """
    from torchvision import datasets

    missing = missing_image_files(task.name, task.data_dir)
    dataset_class = getattr(datasets, IMAGE_DATASETS[task.name])
    mirrors = [str(m) for m in getattr(dataset_class, "mirrors", [])] or [str(dataset_class.resources[0][0])]
    why = _unreachable(mirrors[0], timeout_s)
    if why is None:
        try:
            for train in (True, False):
                dataset_class(str(Path(task.data_dir).expanduser().resolve()), train=train, download=True)
            return
        except (RuntimeError, OSError) as exc:  # a failed checksum, a connection reset, a full disk
            why = " ".join(str(exc).split())[:300] or type(exc).__name__
    raise FileNotFoundError(missing_images_message(task.name, task.data_dir, missing, download=True, failure=why))


def _unreachable(url: str, timeout_s: float) -> str | None:
    """None when a TCP connection to ``url``'s host opens within ``timeout_s``, else why not."""
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "", parsed.port or (443 if parsed.scheme == "https"
                                                                                 else 80)), timeout=timeout_s):
            return None
    except OSError as exc:
        return f"cannot reach {parsed.hostname}: {exc.strerror or exc}"


def _flatten(images: torch.Tensor, labels: torch.Tensor, subset: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    if subset is not None:
        images, labels = images[:subset], labels[:subset]
    x = images.reshape(images.shape[0], -1).to(torch.float32).div_(255.0)
    return x.contiguous(), labels.to(torch.int64).clone()


def _gunzip(source: Path, out: BinaryIO) -> None:
    with gzip.open(source, "rb") as src:
        shutil.copyfileobj(src, out, length=1 << 20)


def prepare_fashion_mnist_from_debian(data_dir: str | Path, source: str | Path = DEBIAN_FASHION_MNIST) -> Path:
    """Put Debian's Fashion-MNIST files where torchvision reads them offline; return that folder.

    Debian's ``dataset-fashion-mnist`` ships the four IDX files gzipped in ``source``. torchvision's
    ``FashionMNIST(root=data_dir, download=False)`` reads them from ``<data_dir>/FashionMNIST/raw/`` once
    gunzipped (with the files present, ``download=True`` no longer goes to the network either: Debian
    recompressed the archives, so their checksums would not match torchvision's anyway). Idempotent; each
    file is written under a temporary name and renamed, so concurrent callers never see half a file.
    """
    source = Path(source)
    raw = Path(data_dir).expanduser() / IMAGE_DATASETS["fashion_mnist"] / "raw"
    missing = [name for name in IDX_FILES if not (source / f"{name}.gz").is_file()]
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST source files missing in {source}: {', '.join(n + '.gz' for n in missing)}; "
            "install them with apt-get install dataset-fashion-mnist")
    raw.mkdir(parents=True, exist_ok=True)
    for name in IDX_FILES:
        target = raw / name
        if target.is_file() and target.stat().st_size > 0:
            continue
        atomic_write(target, functools.partial(_gunzip, source / f"{name}.gz"), mode=0o644)
    return raw
