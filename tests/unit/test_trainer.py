"""The trainer on the sinewave task: MLP layout, data, a short real training, determinism, divergence."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings

import pytest
import torch
from torch import nn

from tests.support import genes, reproducible
from workflow.config import TaskConfig, TrainConfig
from workflow.records import Candidate
from workflow.tasks import KNOWN_ACTIVATIONS, mlp_metrics
from workflow.trainer import evaluate
from workflow.trainer.data import load_task, make_sinewave
from workflow.trainer.lightning_engine import IndexBatches, train_one
from workflow.trainer.model import ACTIVATIONS, Architecture, build_mlp

SMALL_TASK = TaskConfig(name="sinewave", n_samples=1000, val_fraction=0.2, data_seed=3)
SHORT = TrainConfig(epochs=3, batch_size=64, num_threads=1)
HP = genes(2, 32, "relu", 0.1)


def arch(*args) -> Architecture:
    return Architecture.of(genes(*args))


def cand(hp: dict = HP, seed: int = 0, name: str = "fitness-0-0") -> Candidate:
    return Candidate(name=name, hparams=hp, generation=0, index=0, optimizer="ga", seed=seed)


# ----------------------------------------------------------------------------------------------- model


def test_activations_are_exactly_the_known_ones():
    assert sorted(ACTIVATIONS) == sorted(KNOWN_ACTIVATIONS)


@pytest.mark.parametrize("activation", KNOWN_ACTIVATIONS)
def test_every_activation_builds_and_runs(activation):
    net = build_mlp(arch(2, 8, activation, 0.2), 5, 3)
    out = net(torch.randn(7, 5))
    assert out.shape == (7, 3)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(("n_layers", "hidden", "dropout"), [(1, 16, 0.0), (3, 40, 0.25), (5, 128, 0.5)])
def test_mlp_layout_follows_the_genotype(n_layers, hidden, dropout):
    net = build_mlp(arch(n_layers, hidden, "tanh", dropout), 784, 10)
    linears = [m for m in net if isinstance(m, nn.Linear)]
    assert len(linears) == n_layers + 1
    assert [(m.in_features, m.out_features) for m in linears] == (
        [(784, hidden)] + [(hidden, hidden)] * (n_layers - 1) + [(hidden, 10)])
    assert [type(m) for m in net[:3]] == [nn.Linear, nn.Tanh, nn.Dropout]
    assert [m.p for m in net if isinstance(m, nn.Dropout)] == [dropout] * n_layers
    assert net(torch.zeros(2, 784)).shape == (2, 10)


def test_unknown_activation_names_the_allowed_ones():
    with pytest.raises(ValueError, match=r"unknown activation 'swish'; allowed: relu, leaky_relu"):
        build_mlp(arch(1, 8, "swish", 0.0), 5, 1)


# ----------------------------------------------------------------------------------------------- data


def test_sinewave_is_deterministic_per_data_seed():
    a = make_sinewave(500, 5, 0.2, data_seed=7)
    b = make_sinewave(500, 5, 0.2, data_seed=7)
    c = make_sinewave(500, 5, 0.2, data_seed=8)
    for name in ("train_x", "train_y", "val_x", "val_y"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert not torch.equal(a.train_x, c.train_x)


def test_sinewave_shapes_split_and_standardised_target():
    data = make_sinewave(10_000, 5, 0.2, data_seed=0)
    assert (data.n_train, data.n_val, data.n_inputs, data.n_outputs, data.kind) == (8000, 2000, 5, 1, "regression")
    assert data.train_x.shape == (8000, 5) and data.train_y.shape == (8000, 1) and data.val_y.shape == (2000, 1)
    assert data.train_x.dtype == data.train_y.dtype == torch.float32
    assert data.train_x.abs().max() <= 1.0
    assert abs(float(data.train_y.mean())) < 1e-5
    assert abs(float(data.train_y.std()) - 1.0) < 1e-3
    # A constant predictor (the training mean, 0) scores a validation MSE of about 1.
    assert 0.8 < float((data.val_y ** 2).mean()) < 1.2


def test_load_task_is_cached_per_configuration():
    first = load_task(TaskConfig(name="sinewave", n_samples=300, data_seed=11))
    assert load_task(TaskConfig(name="sinewave", n_samples=300, data_seed=11)) is first
    assert load_task(TaskConfig(name="sinewave", n_samples=300, data_seed=12)) is not first


def test_index_batches_cover_the_data_once_per_epoch_and_reshuffle():
    sampler = IndexBatches(10, 4, shuffle=True, seed=0)
    first, second = [torch.cat(list(sampler)) for _ in range(2)]
    assert len(sampler) == 3 and [len(b) for b in sampler] == [4, 4, 2]
    assert sorted(first.tolist()) == sorted(second.tolist()) == list(range(10))
    assert first.tolist() != second.tolist()
    ranks = [torch.cat(list(IndexBatches(10, 2, shuffle=True, seed=5, rank=r, world_size=3))) for r in range(3)]
    assert [len(r) for r in ranks] == [3, 3, 3]  # equal steps per rank, no index twice
    assert len(set(torch.cat(ranks).tolist())) == 9


def test_missing_image_data_names_the_directory(tmp_path):
    missing = tmp_path / "no-data-here"
    task = TaskConfig(name="mnist", data_dir=str(missing), download=False)
    with pytest.raises(FileNotFoundError) as info:
        load_task(task)
    message = str(info.value)
    assert "\n" not in message
    assert f"task.data_dir={str(missing)!r}" in message
    assert str(missing / "MNIST" / "raw") in message
    assert "task.download=true" in message


# ----------------------------------------------------------------------------------------------- training


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd", "rmsprop"])
def test_genes_override_training_settings_for_every_optimizer(optimizer):
    hp = {"layers": [24, 12], "activation": "tanh", "dropout": 0.1, "optimizer": optimizer,
          "learning_rate": 0.01 if optimizer == "sgd" else 3e-3, "batch_size": 32, "weight_decay": 1e-4}
    result = evaluate(cand(hp), SMALL_TASK, SHORT)
    assert result.ok and result.fitness < 0.95, (optimizer, result)
    other = evaluate(cand({**hp, "batch_size": 128}), SMALL_TASK, SHORT)
    assert other.ok and other.fitness != result.fitness  # the gene, not train.batch_size, decided


def test_short_training_beats_the_constant_predictor():
    result = evaluate(cand(), SMALL_TASK, SHORT)
    assert result.ok, result.reason
    assert math.isfinite(result.fitness) and result.fitness < 0.9
    assert result.fitness == result.metrics["val_mse"]
    assert set(result.metrics) == set(mlp_metrics("regression"))
    assert result.metrics["epochs"] == 3
    assert result.seconds > 0


def test_same_seed_same_fitness_other_seed_other_fitness():
    a = train_one(cand(seed=1), SMALL_TASK, SHORT)
    b = train_one(cand(seed=1), SMALL_TASK, SHORT)
    c = train_one(cand(seed=2), SMALL_TASK, SHORT)
    assert a.fitness == b.fitness and reproducible(a.metrics) == reproducible(b.metrics)
    assert c.fitness != a.fitness


def test_divergence_is_a_failed_result_not_an_exception():
    # Adam moves every weight by about lr per step: 1e10 overflows float32 in the squared error, then NaN.
    huge = TrainConfig(epochs=3, learning_rate=1e10, num_threads=1)
    result = evaluate(cand(genes(2, 32, "relu", 0.0)), SMALL_TASK, huge)
    assert result.status == "failed"
    assert result.fitness == math.inf
    assert result.reason.startswith("non-finite val_mse=")


def test_early_stopping_still_reports_the_last_epoch():
    train = TrainConfig(epochs=4, early_stopping_patience=1, num_threads=1)
    result = evaluate(cand(), SMALL_TASK, train)
    assert result.ok and 2 <= result.metrics["epochs"] <= 4


def test_run_is_quiet_and_writes_nothing_without_workdir(tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = evaluate(cand(), TaskConfig(name="sinewave", n_samples=200), TrainConfig(epochs=1))
    assert result.ok
    out, err = capfd.readouterr()
    assert out == "" and err == "", (out, err)
    assert [str(w.message) for w in caught] == []
    assert list(tmp_path.iterdir()) == []


def test_importing_the_trainer_does_not_import_torch():
    code = "import sys, json, workflow.trainer; print(json.dumps('torch' in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) is False
