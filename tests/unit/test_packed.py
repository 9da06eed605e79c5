"""The packed engine: each member trains exactly as alone, no cross-talk, per-member results and failures."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812 - the usual torch alias

from tests.support import genes, reproducible
from workflow.config import TaskConfig, TrainConfig
from workflow.packing import device_pack_size
from workflow.records import Candidate
from workflow.tasks import mlp_metrics
from workflow.trainer import evaluate, evaluate_pack
from workflow.trainer.common import Settings
from workflow.trainer.data import TaskData, load_task
from workflow.trainer.lightning_engine import IndexBatches, train_one
from workflow.trainer.model import Architecture, build_mlp
from workflow.trainer.packed import (
    PackedMLP,
    adam_step,
    make_optimizer,
    select_members,
    train_pack,
    train_step,
)
from workflow.trainer.packed.loop import Pack

SMALL_TASK = TaskConfig(name="sinewave", n_samples=1000, val_fraction=0.2, data_seed=3)
SIX = ("relu", "leaky_relu", "elu", "gelu", "sigmoid", "tanh")
#: Depths 1..5, widths 16..128, all six default activations, each activation at two depths.
#: Adam at the seed's learning rate, as train_one uses it by default.
ADAM = Settings(learning_rate=1e-3, batch_size=64, weight_decay=0.0, optimizer="adam")
MIXED = [genes(1 + i % 5, 16 + 10 * i if i != 7 else 128, SIX[i % 6], 0.0) for i in range(12)]


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def archs(hparams: list[dict]) -> list[Architecture]:
    return [Architecture.of(hp) for hp in hparams]


def cand(hp: dict, seed: int = 0, name: str | None = None, index: int = 0) -> Candidate:
    return Candidate(name=name or f"fitness-0-{index}", hparams=hp, generation=0, index=index, optimizer="ga",
                     seed=seed)


def nets_for(hparams: list[dict], n_inputs: int, n_outputs: int, seed0: int = 0) -> list[nn.Sequential]:
    nets = []
    for k, hp in enumerate(hparams):
        torch.manual_seed(seed0 + k)
        nets.append(build_mlp(Architecture.of(hp), n_inputs, n_outputs))
    return nets


def classification_data(n: int = 300, n_inputs: int = 7, classes: int = 4) -> TaskData:
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(n, n_inputs, generator=gen)
    y = (x[:, :classes] + 0.3 * torch.randn(n, classes, generator=gen)).argmax(dim=1)
    cut = n * 4 // 5
    return TaskData(train_x=x[:cut], train_y=y[:cut], val_x=x[cut:], val_y=y[cut:], n_inputs=n_inputs,
                    n_outputs=classes, kind="classification")


def batches(n: int, batch_size: int, epochs: int, seed: int = 1) -> list[torch.Tensor]:
    sampler = IndexBatches(n, batch_size, shuffle=True, seed=seed)
    return [idx for _ in range(epochs) for idx in sampler]


def train_packed(hparams, nets, data: TaskData, order, dropout=False, seed=0):
    model = PackedMLP.from_modules(nets, archs(hparams), data.n_inputs, data.n_outputs)
    optimizer = make_optimizer(model, ADAM)
    generator = torch.Generator().manual_seed(seed)
    losses = [model.to_caller(train_step(model, optimizer, data.train_x[idx], data.train_y[idx], data.kind,
                                         generator, dropout=dropout)) for idx in order]
    return model, torch.stack(losses)


def train_alone(net: nn.Sequential, data: TaskData, order) -> list[float]:
    """The reference: a plain loop with the Lightning engine's loss and optimizer (fused Adam, lr 1e-3)."""
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)
    losses = []
    for idx in order:
        out = net(data.train_x[idx])
        y = data.train_y[idx]
        loss = F.mse_loss(out, y) if data.kind == "regression" else F.cross_entropy(out, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def padding_of(model: PackedMLP) -> list[torch.Tensor]:
    """Every packed parameter with the members' real blocks zeroed: what is left is padding."""
    params = {name: p.detach().clone() for name, p in model.named_parameters()}
    for i, arch in enumerate(model.archs):
        fan_in = model.n_inputs
        for layer, h in enumerate(arch.widths):
            params[f"weights.{layer}"][i, :fan_in, :h] = 0
            params[f"biases.{layer}"][i, 0, :h] = 0
            fan_in = h
        params["out_weight"][i, :fan_in, :] = 0
        params["out_bias"][i] = 0
    return list(params.values())


# ----------------------------------------------------------------------------------------------- exactness


@pytest.mark.parametrize("kind", ["regression", "classification"])
def test_a_pack_trains_each_member_exactly_as_alone(kind):
    # Same initial weights, same batches (two epochs, a short last batch), dropout 0: the packed members' per-step
    # losses and final weights are the lone members' to float rounding, for all depths and activations.
    data = load_task(SMALL_TASK) if kind == "regression" else classification_data()
    order = batches(data.n_train, 64, epochs=2)
    assert data.n_train % 64 != 0
    model, packed_losses = train_packed(MIXED, nets_for(MIXED, data.n_inputs, data.n_outputs), data, order)
    for k, (hp, net) in enumerate(zip(MIXED, nets_for(MIXED, data.n_inputs, data.n_outputs))):
        alone = train_alone(net, data, order)
        np.testing.assert_allclose(packed_losses[:, k].numpy(), alone, rtol=2e-5, atol=1e-6, err_msg=str(hp))
        for mine, theirs in zip(model.member(k).parameters(), net.parameters()):
            torch.testing.assert_close(mine, theirs.detach(), rtol=1e-4, atol=2e-6, msg=str(hp))
    # Padding never moved: exactly zero after training, with any activation (sigmoid(0) = 0.5 included).
    assert all(torch.count_nonzero(p) == 0 for p in padding_of(model))


def test_members_with_a_width_per_layer_train_exactly_as_alone():
    # A layers gene: every member has its own width at every layer; padding differs layer by layer.
    layered = [{"layers": w, "activation": a, "dropout": 0.0}
               for w, a in [([16, 48, 8], "relu"), ([64, 8], "sigmoid"), ([8, 8, 8, 8], "tanh"), ([40], "gelu"),
                            ([24, 64], "relu"), ([5, 60, 5], "elu")]]
    data = load_task(SMALL_TASK)
    order = batches(data.n_train, 64, epochs=2)
    model, packed_losses = train_packed(layered, nets_for(layered, data.n_inputs, data.n_outputs), data, order)
    for k, (hp, net) in enumerate(zip(layered, nets_for(layered, data.n_inputs, data.n_outputs))):
        np.testing.assert_allclose(packed_losses[:, k].numpy(), train_alone(net, data, order), rtol=2e-5,
                                   atol=1e-6, err_msg=str(hp))
        for mine, theirs in zip(model.member(k).parameters(), net.parameters()):
            torch.testing.assert_close(mine, theirs.detach(), rtol=1e-4, atol=2e-6, msg=str(hp))
    assert all(torch.count_nonzero(p) == 0 for p in padding_of(model))


def test_members_that_train_differently_go_to_separate_packs(tmp_path):
    # Optimizer, batch size, learning rate, weight decay: one pack per distinct setting, each member's result
    # the one it gets alone.
    base = genes(2, 24, "tanh", 0.0)
    variants = [{}, {"optimizer": "sgd"}, {"batch_size": 32}, {"optimizer": "rmsprop", "learning_rate": 3e-3},
                {"optimizer": "adamw", "weight_decay": 0.01}, {}]
    cands = [cand({**base, **v}, seed=4, index=i) for i, v in enumerate(variants)]
    train = TrainConfig(epochs=2, num_threads=1)
    together = train_pack(cands, SMALL_TASK, train, workdir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"packed-{i}.ckpt" for i in range(5)]
    assert [r.name for r in together] == [c.name for c in cands] and all(r.ok for r in together)
    for c, r in zip(cands, together):
        alone = train_pack([c], SMALL_TASK, train)[0]
        assert r.fitness == pytest.approx(alone.fitness, rel=1e-4), c.hparams
    assert together[0].fitness == pytest.approx(together[5].fitness, rel=1e-6)  # same settings, same pack


def test_padding_stays_exactly_zero_with_dropout():
    data = load_task(SMALL_TASK)
    hps = [genes(n, w, a, p) for n, w, a, p in
           [(3, 20, "sigmoid", 0.3), (2, 64, "tanh", 0.5), (4, 33, "gelu", 0.1), (1, 50, "sigmoid", 0.0)]]
    model, losses = train_packed(hps, nets_for(hps, 5, 1), data, batches(data.n_train, 64, 1), dropout=True)
    assert torch.isfinite(losses).all()
    assert all(torch.count_nonzero(p) == 0 for p in padding_of(model))


def test_layout_order_and_unpacking():
    hps = [genes(1, 16, "tanh", 0.0), genes(3, 40, "relu", 0.2), genes(3, 24, "elu", 0.0),
           genes(5, 8, "relu", 0.1)]
    nets = nets_for(hps, 5, 2)
    model = PackedMLP.from_modules(nets, archs(hps), 5, 2)
    assert model.order == [3, 2, 1, 0]  # deepest first, then by activation name
    assert (model.width, model.depth) == (40, 5)
    assert [tuple(w.shape) for w in model.weights] == [(4, 5, 40), (3, 40, 40), (3, 40, 40), (1, 40, 40),
                                                        (1, 40, 40)]
    x = torch.randn(9, 5)
    out = model.to_caller(model(x))
    for k, net in enumerate(nets):
        torch.testing.assert_close(out[k], net.eval()(x), rtol=1e-5, atol=1e-6)
        member = model.member(k)
        assert [tuple(p.shape) for p in member.parameters()] == [tuple(p.shape) for p in net.parameters()]
        assert all(torch.equal(a, b) for a, b in zip(member.parameters(), net.parameters()))


def test_initial_weights_are_the_lightning_engines():
    # train_one seeds torch's global generator with the candidate's seed, then builds the MLP.
    cands = [cand(hp, seed=s) for hp, s in zip(MIXED[:4], (3, 7, 2**33 + 1, 0))]
    model = PackedMLP.initial(cands, 5, 1)
    for k, c in enumerate(cands):
        torch.manual_seed(c.seed % 2**32)
        net = build_mlp(Architecture.of(c.hparams), 5, 1)
        assert all(torch.equal(a, b) for a, b in zip(model.member(k).parameters(), net.parameters()))


def test_adam_step_is_adam_bit_for_bit():
    data = load_task(SMALL_TASK)
    order = batches(data.n_train, 64, 1)[:6]
    results = []
    for use_fast in (True, False):
        model = PackedMLP.from_modules(nets_for(MIXED[:5], 5, 1), archs(MIXED[:5]), 5, 1)
        optimizer = make_optimizer(model, ADAM)
        for idx in order:
            model.losses(model(data.train_x[idx]), data.train_y[idx], "regression").sum().backward()
            adam_step(optimizer) if use_fast else optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        results.append([p.detach().clone() for p in model.parameters()])
        results.append([t.clone() for s in optimizer.state.values() for t in s.values()])
    assert all(torch.equal(a, b) for a, b in zip(results[0], results[2]))
    assert all(torch.equal(a, b) for a, b in zip(results[1], results[3]))


# ----------------------------------------------------------------------------------------------- isolation


def _run(hparams, seeds, dropout=True):
    data = load_task(SMALL_TASK)
    nets = []
    for hp, seed in zip(hparams, seeds):
        torch.manual_seed(seed)
        nets.append(build_mlp(Architecture.of(hp), 5, 1))
    model, losses = train_packed(hparams, nets, data, batches(data.n_train, 64, 2), dropout=dropout)
    return losses, [list(model.member(k).parameters()) for k in range(len(hparams))]


BASE = [genes(1 + i % 5, 20 + 9 * i, SIX[i], 0.1 * (i % 3))
        for i in range(6)]


@pytest.mark.parametrize(("change", "dropout"), [
    ("seed", True), ("width", True), ("activation", True), ("dropout", True), ("depth", False)])
def test_changing_one_member_leaves_the_others_bit_identical(change, dropout):
    hps = BASE if dropout else [genes(h["n_layers"], h["hidden_size"], h["activation"], 0.0) for h in BASE]
    seeds = list(range(6))
    other_hps, other_seeds = list(hps), list(seeds)
    hp = hps[2]
    if change == "seed":
        other_seeds[2] = 99
    elif change == "width":
        other_hps[2] = genes(hp["n_layers"], 33, hp["activation"], hp["dropout"])
    elif change == "activation":
        other_hps[2] = genes(hp["n_layers"], hp["hidden_size"], "tanh", hp["dropout"])
    elif change == "dropout":
        other_hps[2] = genes(hp["n_layers"], hp["hidden_size"], hp["activation"], 0.45)
    else:  # depth: moves the member in the pack (with dropout, the others' draws would move too)
        other_hps[2] = genes(5, hp["hidden_size"], hp["activation"], hp["dropout"])
    losses, params = _run(hps, seeds, dropout)
    other_losses, other_params = _run(other_hps, other_seeds, dropout)
    assert not torch.equal(losses[:, 2], other_losses[:, 2])
    for k in (0, 1, 3, 4, 5):
        assert torch.equal(losses[:, k], other_losses[:, k]), k
        assert all(torch.equal(a, b) for a, b in zip(params[k], other_params[k])), k


def test_a_diverging_member_fails_alone(monkeypatch):
    hps = [genes(2, 30, "relu", 0.0), genes(3, 40, "tanh", 0.0), genes(1, 20, "gelu", 0.0)]
    cands = [cand(hp, seed=k, index=k) for k, hp in enumerate(hps)]
    train = TrainConfig(epochs=3, num_threads=1)
    clean = train_pack(cands, SMALL_TASK, train)

    original = PackedMLP.initial.__func__

    def poisoned(cls, candidates, n_inputs, n_outputs):
        model = original(cls, candidates, n_inputs, n_outputs)
        with torch.no_grad():
            model.out_weight[model.position[1]] = math.nan
        return model

    monkeypatch.setattr(PackedMLP, "initial", classmethod(poisoned))
    results = train_pack(cands, SMALL_TASK, train)
    assert [r.name for r in results] == [c.name for c in cands]
    assert results[1].status == "failed" and results[1].fitness == math.inf
    assert results[1].reason == "non-finite val_mse=nan"
    for k in (0, 2):
        # Epoch 1 is bit-identical; then the failed member leaves the pack (a smaller batched product).
        assert results[k].ok
        assert results[k].metrics["epochs"] == 3
        assert results[k].fitness == pytest.approx(clean[k].fitness, rel=1e-4)


def test_removing_finished_members_is_exact():
    data = load_task(SMALL_TASK)
    order = batches(data.n_train, 64, 2)
    model = PackedMLP.from_modules(nets_for(MIXED, 5, 1), archs(MIXED), 5, 1)
    optimizer = make_optimizer(model, ADAM)
    for idx in order[:13]:
        train_step(model, optimizer, data.train_x[idx], data.train_y[idx], "regression")
    keep = [0, 2, 3, 5]  # drops the widest (128) and the deepest members: the small pack is narrower and shallower
    small, small_optimizer = select_members(model, optimizer, keep, ADAM)
    assert (small.width, small.depth) == (66, 4) and (model.width, model.depth) == (128, 5)
    for idx in order[13:]:
        train_step(model, optimizer, data.train_x[idx], data.train_y[idx], "regression")
        train_step(small, small_optimizer, data.train_x[idx], data.train_y[idx], "regression")
    for j, k in enumerate(keep):
        for a, b in zip(small.member(j).parameters(), model.member(k).parameters()):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


# ----------------------------------------------------------------------------------------------- results


def test_a_pack_of_one_is_the_lightning_engine():
    # Same initial weights, same batch order (the pack's shuffle is seeded like IndexBatches), no dropout.
    c = cand(genes(3, 48, "elu", 0.0), seed=11)
    train = TrainConfig(epochs=2, num_threads=1)
    mine, lightning = evaluate(c, SMALL_TASK, train.model_copy(update={"engine": "packed"})), train_one(
        c, SMALL_TASK, train)
    assert mine.ok and lightning.ok
    assert set(mine.metrics) == set(lightning.metrics) == set(mlp_metrics("regression"))
    for key in reproducible(lightning.metrics):
        assert mine.metrics[key] == pytest.approx(lightning.metrics[key], rel=1e-4), key
    assert mine.fitness == mine.metrics["val_mse"]


def test_packed_and_lightning_fitness_agree_statistically():
    hps = [genes(n, w, a, p) for n, w, a, p in [(1, 16, "relu", 0.0), (2, 36, "leaky_relu", 0.1),
                                                  (3, 56, "elu", 0.3), (4, 76, "gelu", 0.0),
                                                  (5, 96, "sigmoid", 0.2), (3, 116, "tanh", 0.4)]]
    cands = [cand(hp, seed=s, name=f"c{i}-{s}") for s in (0, 1) for i, hp in enumerate(hps)]
    train = TrainConfig(epochs=3, num_threads=1)
    packed = evaluate_pack(cands, SMALL_TASK, train)
    lightning = [train_one(c, SMALL_TASK, train) for c in cands]
    assert all(r.ok for r in packed + lightning)
    lp, ll = np.log([r.fitness for r in packed]), np.log([r.fitness for r in lightning])
    assert np.corrcoef(lp, ll)[0, 1] > 0.9
    assert np.median(np.abs(lp - ll)) < 0.3


def test_evaluate_pack_names_results_in_candidate_order():
    # All seeds equal: every member sees the batch order it would see alone, so each result must be its own.
    hps = [genes(1, 16, "tanh", 0.0), genes(4, 30, "relu", 0.0), genes(2, 64, "sigmoid", 0.0)]
    cands = [cand(hp, seed=4, index=i) for i, hp in enumerate(hps)]
    train = TrainConfig(epochs=2, num_threads=1)
    together = evaluate_pack(cands, SMALL_TASK, train)
    assert [r.name for r in together] == [c.name for c in cands]
    for c, r in zip(cands, together):
        alone = evaluate_pack([c], SMALL_TASK, train)[0]
        assert r.fitness == pytest.approx(alone.fitness, rel=1e-4)
        assert r.metrics["train_loss"] == pytest.approx(alone.metrics["train_loss"], rel=1e-4)
        assert r.seconds > 0


def test_packs_are_chunked_by_pack_size(tmp_path):
    cands = [cand(MIXED[i], seed=i, index=i) for i in range(3)]
    train = TrainConfig(epochs=1, num_threads=1, pack_size=2)
    results = train_pack(cands, SMALL_TASK, train, workdir=tmp_path)
    assert [r.name for r in results] == [c.name for c in cands] and all(r.ok for r in results)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["packed-0.ckpt", "packed-1.ckpt"]
    assert device_pack_size(TrainConfig(), 7, gpu=False) == 7
    assert device_pack_size(TrainConfig(), 700, gpu=True) == 128
    assert device_pack_size(TrainConfig(pack_size=3), 700, gpu=True) == 3


def test_classification_metrics():
    cands = [cand(hp, seed=i, index=i) for i, hp in enumerate(MIXED[:3])]
    pack = Pack(cands, classification_data(), TrainConfig(epochs=2), torch.device("cpu"))
    pack.run(None)
    for r in pack.results():
        assert r.ok and set(r.metrics) == set(mlp_metrics("classification"))
        assert r.fitness == r.metrics["val_loss"] and 0 <= r.metrics["val_acc"] <= 1


def test_early_stopping_per_member_follows_lightnings_rule():
    cands = [cand(hp, seed=i, index=i) for i, hp in enumerate(MIXED[:6])]
    data = load_task(SMALL_TASK)
    train = TrainConfig(epochs=8, early_stopping_patience=1, learning_rate=0.02, num_threads=1)
    pack = Pack(cands, data, train, torch.device("cpu"))
    pack.run(None)
    results = pack.results()
    stopped_early = 0
    for k, r in enumerate(results):
        history = [row["val_mse"] for row in pack.history[k]]
        # Lightning's EarlyStopping(min_delta=0): a strictly lower value resets the wait; stop when it reaches patience.
        best, wait, expected = math.inf, 0, len(history)
        for epoch, value in enumerate(history, start=1):
            if value < best:
                best, wait = value, 0
            else:
                wait += 1
                if wait >= 1:
                    expected = epoch
                    break
        assert r.metrics["epochs"] == expected == len(history), k
        assert r.fitness == history[-1]
        stopped_early += expected < train.epochs
    assert stopped_early >= 1


# ----------------------------------------------------------------------------------------------- checkpoints


def test_a_requeued_pack_continues_exactly(tmp_path, monkeypatch):
    hps = [genes(2, 30, "relu", 0.3), genes(3, 40, "tanh", 0.1), genes(1, 20, "gelu", 0.0)]
    cands = [cand(hp, seed=k, index=k) for k, hp in enumerate(hps)]
    train = TrainConfig(epochs=3, num_threads=1)
    uninterrupted = train_pack(cands, SMALL_TASK, train, workdir=tmp_path / "a")

    original = Pack.save

    def killed_after_first_epoch(self, path):
        original(self, path)
        raise KeyboardInterrupt("requeued")

    monkeypatch.setattr(Pack, "save", killed_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_pack(cands, SMALL_TASK, train, workdir=tmp_path / "b")
    monkeypatch.setattr(Pack, "save", original)
    state = torch.load(tmp_path / "b" / "packed.ckpt", weights_only=True)
    assert state["epoch"] == 1
    resumed = train_pack(cands, SMALL_TASK, train, workdir=tmp_path / "b")
    # Same batch order and dropout draws after the resume: the very same numbers.
    assert [(r.name, r.fitness, reproducible(r.metrics)) for r in resumed] == [
        (r.name, r.fitness, reproducible(r.metrics)) for r in uninterrupted]
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["packed.ckpt"]  # no temporary file left

    # A finished pack's checkpoint answers at once; one of other candidates is ignored (with a warning).
    again = train_pack(cands, SMALL_TASK, train, workdir=tmp_path / "b")
    assert [r.fitness for r in again] == [r.fitness for r in uninterrupted]
    with pytest.warns(UserWarning, match="other candidates or settings"):
        other = train_pack(cands[:2], SMALL_TASK, train, workdir=tmp_path / "b")
    assert len(other) == 2 and all(r.ok for r in other)


def test_importing_the_packed_engine_does_not_import_lightning():
    code = ("import sys, json, workflow.trainer.packed; "
            "print(json.dumps([m for m in ('pytorch_lightning', 'lightning', 'wandb') if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


# ----------------------------------------------------------------------------------------------- GPU


def _cuda() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")


@pytest.mark.gpu
def test_cuda_matches_cpu():
    _cuda()
    cands = [cand(hp, seed=3, index=i) for i, hp in enumerate(MIXED[:6])]
    train = TrainConfig(epochs=2, num_threads=1)
    on_cpu = train_pack(cands, SMALL_TASK, train, device="cpu")
    on_gpu = train_pack(cands, SMALL_TASK, train, device="cuda")
    for a, b in zip(on_cpu, on_gpu):
        assert a.ok and b.ok and b.fitness == pytest.approx(a.fitness, rel=1e-3)


@pytest.mark.gpu
def test_cuda_graphs_match_eager(tmp_path):
    _cuda()
    cands = [cand(hp, seed=3, index=i) for i, hp in enumerate(MIXED[:6])]
    train = TrainConfig(epochs=3, num_threads=1, cuda_graphs=False)
    eager = train_pack(cands, SMALL_TASK, train, device="cuda")
    graphs = train_pack(cands, SMALL_TASK, train.model_copy(update={"cuda_graphs": True}), device="cuda",
                        workdir=tmp_path)
    for a, b in zip(eager, graphs):
        assert a.ok and b.ok and a.metrics["epochs"] == b.metrics["epochs"] == 3
        assert b.fitness == pytest.approx(a.fitness, rel=1e-3)
        assert b.metrics["train_loss"] == pytest.approx(a.metrics["train_loss"], rel=1e-3)


@pytest.mark.gpu
def test_cuda_graphs_with_dropout_early_stopping_and_a_requeue(tmp_path, monkeypatch):
    _cuda()
    cands = [cand(genes(h["n_layers"], h["hidden_size"], h["activation"], 0.3), seed=i, index=i)
             for i, h in enumerate(MIXED[:6])]
    train = TrainConfig(epochs=5, num_threads=1, cuda_graphs=True, early_stopping_patience=1, learning_rate=0.02)
    uninterrupted = train_pack(cands, SMALL_TASK, train, device="cuda")
    assert all(r.ok and math.isfinite(r.fitness) for r in uninterrupted)  # members leave, graphs are re-captured

    original = Pack.save

    def killed_after_second_epoch(self, path):
        original(self, path)
        if self.epoch == 2:
            raise KeyboardInterrupt("requeued")

    monkeypatch.setattr(Pack, "save", killed_after_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_pack(cands, SMALL_TASK, train, device="cuda", workdir=tmp_path)
    monkeypatch.setattr(Pack, "save", original)
    resumed = train_pack(cands, SMALL_TASK, train, device="cuda", workdir=tmp_path)
    # The batch order, weights, Adam state and the device's generator continue where they were.
    for a, b in zip(uninterrupted, resumed):
        assert b.ok and b.metrics["epochs"] == a.metrics["epochs"]
        assert b.fitness == pytest.approx(a.fitness, rel=1e-4)


def test_the_graph_step_arithmetic_matches_the_eager_loop():
    # What a CUDA graph replays (static index and weight buffers, the short last batch padded with weight 0),
    # run eagerly here: the same training as the eager loop, to float rounding.
    cands = [cand(hp, seed=i, index=i) for i, hp in enumerate(MIXED[:6])]
    data = load_task(SMALL_TASK)
    results = []
    for static in (False, True):
        pack = Pack(cands, data, TrainConfig(epochs=2), torch.device("cpu"))
        pack.static_steps = static
        pack.run(None)
        results.append(pack.results())
    assert data.n_train % 64 != 0
    for eager, static in zip(*results):
        assert static.ok and eager.ok
        for key in ("val_mse", "train_loss"):
            assert static.metrics[key] == pytest.approx(eager.metrics[key], rel=1e-4), key
