"""The trainer with real data files, real processes and real DDP: Fashion-MNIST from Debian's package,
determinism across interpreters, a work directory that resumes, two CPU ranks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import genes, reproducible
from workflow.config import TaskConfig, TrainConfig
from workflow.records import Candidate
from workflow.tasks import mlp_metrics
from workflow.trainer import evaluate
from workflow.trainer.data import DEBIAN_FASHION_MNIST, IDX_FILES, load_task, prepare_fashion_mnist_from_debian

HP = genes(1, 64, "relu", 0.0)


def cand(seed: int = 0, hp: dict = HP) -> Candidate:
    return Candidate(name="fitness-1-2", hparams=hp, generation=1, index=2, optimizer="ga", seed=seed)


# ----------------------------------------------------------------------------------------------- Fashion-MNIST


@pytest.fixture(scope="module")
def fashion_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data_dir holding Fashion-MNIST, made from Debian's ``dataset-fashion-mnist`` package."""
    if not all(Path(DEBIAN_FASHION_MNIST, f"{name}.gz").is_file() for name in IDX_FILES):
        reason = (f"Debian's Fashion-MNIST files are not in {DEBIAN_FASHION_MNIST} "
                  "(apt-get install dataset-fashion-mnist)")
        if os.environ.get("GASLURM_REQUIRE_DATASETS") == "1":
            pytest.fail(f"{reason} (GASLURM_REQUIRE_DATASETS=1: this must not be skipped here)")
        pytest.skip(reason)
    data_dir = tmp_path_factory.mktemp("data")
    raw = prepare_fashion_mnist_from_debian(data_dir)
    assert raw == data_dir / "FashionMNIST" / "raw"
    return data_dir


def fashion(data_dir: Path, **kwargs: object) -> TaskConfig:
    base: dict[str, object] = {"name": "fashion_mnist", "data_dir": str(data_dir), "download": False,
                               "train_subset": 2000, "val_subset": 500}
    return TaskConfig.model_validate({**base, **kwargs})


def test_prepare_gunzips_the_four_files_and_is_idempotent(fashion_dir):
    raw = fashion_dir / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(IDX_FILES)
    sizes = {p.name: p.stat().st_size for p in raw.iterdir()}
    assert sizes["train-images-idx3-ubyte"] == 16 + 60_000 * 28 * 28
    assert prepare_fashion_mnist_from_debian(fashion_dir) == raw
    assert {p.name: p.stat().st_size for p in raw.iterdir()} == sizes


def test_prepare_without_the_debian_files_says_what_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"apt-get install dataset-fashion-mnist"):
        prepare_fashion_mnist_from_debian(tmp_path / "data", source=tmp_path / "empty")


def test_fashion_mnist_tensors(fashion_dir):
    data = load_task(fashion(fashion_dir))
    assert (data.n_train, data.n_val, data.n_inputs, data.n_outputs, data.kind) == (2000, 500, 784, 10,
                                                                                      "classification")
    assert data.train_x.dtype.is_floating_point and 0.0 <= float(data.train_x.min()) < float(data.train_x.max()) <= 1
    assert data.train_y.shape == (2000,) and set(data.train_y.unique().tolist()) == set(range(10))
    reg = load_task(fashion(fashion_dir, target="regression"))
    assert reg.n_outputs == 1 and reg.kind == "regression" and reg.val_y.shape == (500, 1)


def test_prepared_files_need_no_network_even_with_download_true(fashion_dir):
    # Debian's recompressed archives would fail torchvision's checksums; the gunzipped files are used as-is.
    assert load_task(fashion(fashion_dir, download=True, val_subset=100)).n_val == 100


def test_fashion_mnist_classification_one_epoch(fashion_dir):
    result = evaluate(cand(), fashion(fashion_dir), TrainConfig(epochs=1, num_threads=1))
    assert result.ok, result.reason
    assert set(result.metrics) == set(mlp_metrics("classification"))
    assert result.fitness == result.metrics["val_loss"] < 2.3  # below chance-level cross-entropy, ln 10
    assert result.metrics["val_acc"] > 0.5


def test_fashion_mnist_regression_on_the_label(fashion_dir):
    result = evaluate(cand(), fashion(fashion_dir, target="regression"), TrainConfig(epochs=1, num_threads=1))
    assert result.ok, result.reason
    assert set(result.metrics) == set(mlp_metrics("regression"))
    # Labels 0..9 have variance 8.25: a constant predictor scores at least that.
    assert result.fitness == result.metrics["val_mse"] < 8.25


# ----------------------------------------------------------------------------------------------- sinewave

SINE = TaskConfig(name="sinewave", n_samples=1000, data_seed=5)


def test_same_fitness_in_another_interpreter():
    train = TrainConfig(epochs=2, num_threads=1)
    here = evaluate(cand(seed=9), SINE, train)
    code = (
        "import json\n"
        "from workflow.config import TaskConfig, TrainConfig\n"
        "from workflow.records import Candidate\n"
        "from workflow.trainer import evaluate\n"
        f"task = TaskConfig.model_validate({SINE.model_dump()!r})\n"
        f"train = TrainConfig.model_validate({train.model_dump()!r})\n"
        f"cand = Candidate.from_dict({cand(seed=9).to_dict()!r})\n"
        "print(json.dumps(evaluate(cand, task, train).to_dict()))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    there = json.loads(proc.stdout.strip().splitlines()[-1])
    assert there["fitness"] == here.fitness
    assert reproducible(there["metrics"]) == reproducible(here.metrics)


def test_workdir_keeps_metrics_and_a_checkpoint_and_resumes(tmp_path):
    train = TrainConfig(epochs=2, num_threads=1)
    plain = evaluate(cand(), SINE, train)
    first = evaluate(cand(), SINE, train, workdir=tmp_path)
    assert first.fitness == plain.fitness  # checkpointing and logging do not change the training
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    rows = (tmp_path / "logs" / "version_0" / "metrics.csv").read_text().splitlines()
    assert rows[0].split(",") == ["epoch", "epochs", "step", "train_loss", "val_loss", "val_mse"]
    assert len(rows) == 3  # one row per epoch
    # A requeued evaluation finds the finished checkpoint: it re-validates the same weights.
    again = evaluate(cand(), SINE, train, workdir=tmp_path)
    assert again.ok and again.fitness == first.fitness and again.metrics["epochs"] == 2
    # Asked for more epochs, it continues from epoch 2 instead of starting over.
    longer = evaluate(cand(), SINE, TrainConfig(epochs=3, num_threads=1), workdir=tmp_path)
    assert longer.ok and longer.metrics["epochs"] == 3
    assert (tmp_path / "logs" / "version_2" / "metrics.csv").read_text().count("\n") == 2  # epoch 3 only


@pytest.mark.slow  # 6 s on an idle 2-core machine (two ranks import torch), much longer under load
def test_two_cpu_ranks_with_ddp():
    train = TrainConfig(epochs=2, devices=2, accelerator="cpu", num_threads=1)
    result = evaluate(cand(), SINE, train)
    assert result.ok, result.reason
    assert result.metrics["epochs"] == 2 and result.fitness < 1.5
