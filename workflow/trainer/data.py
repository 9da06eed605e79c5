"""Datasets as in-memory tensors: the seed's sinewave toy task, MNIST and Fashion-MNIST.

Everything a task needs fits in memory (Fashion-MNIST is 220 MB as float32), so an evaluation never touches
the disk after :func:`load_task` ran once in its process; the result is cached per process, keyed by the
task's configuration, because a worker process evaluates many individuals of the same task.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from workflow.config import TaskConfig

Kind = Literal["regression", "classification"]

#: torchvision class name per task name; also the folder under ``data_dir`` (``<data_dir>/<class>/raw``).
IMAGE_DATASETS: dict[str, str] = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}

#: The four IDX files torchvision expects (gunzipped) in ``<data_dir>/<class>/raw``.
IDX_FILES: tuple[str, ...] = (
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
)

#: Where Debian's ``dataset-fashion-mnist`` package installs the gzipped IDX files.
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


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
    raise ValueError(f"unknown task {task.name!r}; allowed: sinewave, {', '.join(IMAGE_DATASETS)}")


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
    from torchvision import datasets  # torchvision is slow to import; sinewave runs never need it

    class_name = IMAGE_DATASETS[task.name]
    dataset_class = getattr(datasets, class_name)
    root = Path(task.data_dir).expanduser().resolve()
    raw = root / class_name / "raw"
    if not task.download and not _files_present(root / class_name):
        raise FileNotFoundError(_missing_message(task, raw, class_name))
    try:
        train = dataset_class(str(root), train=True, download=task.download)
        val = dataset_class(str(root), train=False, download=task.download)
    except (RuntimeError, OSError) as exc:  # no network, a failed checksum, a half-written file
        detail = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise FileNotFoundError(f"{_missing_message(task, raw, class_name)} (download failed: {detail})") from exc
    train_x, train_labels = _flatten(train.data, train.targets, task.train_subset)
    val_x, val_labels = _flatten(val.data, val.targets, task.val_subset)
    if task.target == "classification":
        return TaskData(train_x=train_x, train_y=train_labels, val_x=val_x, val_y=val_labels,
                        n_inputs=int(train_x.shape[1]), n_outputs=10, kind="classification")
    # The seed's "MSE on the label": one output regressing the digit/class index itself.
    return TaskData(train_x=train_x, train_y=train_labels.float().unsqueeze(1), val_x=val_x,
                    val_y=val_labels.float().unsqueeze(1), n_inputs=int(train_x.shape[1]), n_outputs=1,
                    kind="regression")


def _flatten(images: torch.Tensor, labels: torch.Tensor, subset: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    if subset is not None:
        images, labels = images[:subset], labels[:subset]
    x = images.reshape(images.shape[0], -1).to(torch.float32).div_(255.0)
    return x.contiguous(), labels.to(torch.int64).clone()


def _files_present(folder: Path) -> bool:
    raw = folder / "raw"
    legacy = folder / "processed"
    return all((raw / name).is_file() for name in IDX_FILES) or all(
        (legacy / name).is_file() for name in ("training.pt", "test.pt"))


def _missing_message(task: TaskConfig, raw: Path, class_name: str) -> str:
    hint = ("set task.download=true where internet exists, or put the four IDX files "
            f"({', '.join(IDX_FILES)}) there")
    if task.name == "fashion_mnist":
        hint += (f"; on Debian: apt-get install dataset-fashion-mnist, then call "
                 f"workflow.trainer.data.prepare_fashion_mnist_from_debian({task.data_dir!r})")
    return (f"{class_name} data not found: task.data_dir={task.data_dir!r}, looked in {raw} "
            f"(download={str(task.download).lower()}); {hint}")


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
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=raw)
        try:
            with gzip.open(source / f"{name}.gz", "rb") as src, os.fdopen(fd, "wb") as dst:
                shutil.copyfileobj(src, dst, length=1 << 20)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return raw
