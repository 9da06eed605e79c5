"""Training a pack: the epoch loop with per-member early stopping, validation, and checkpoints after every epoch."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from workflow.config import ObjectiveConfig, TrainConfig
from workflow.records import Candidate, Result
from workflow.store.atomic import atomic_write
from workflow.trainer.common import EVAL_BATCH_SIZE, Settings, metrics_result
from workflow.trainer.cost import mlp_cost
from workflow.trainer.data import TaskData
from workflow.trainer.model import Architecture
from workflow.trainer.packed.graphs import GraphStep
from workflow.trainer.packed.model import PackedMLP
from workflow.trainer.packed.optim import adam_step, make_optimizer, select_members

#: Validation batches hold at most this many hidden values (pack x samples x width) at once.
EVAL_ELEMENTS = 1 << 24
CHECKPOINT_VERSION = 1


def train_step(model: PackedMLP, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, kind: str,
               generator: torch.Generator | None = None, dropout: bool = True) -> torch.Tensor:
    """One eager training step on a shared batch; returns each member's batch loss ``(P,)`` (internal order)."""
    losses = model.losses(model(x, generator, dropout=dropout), y, kind)
    optimizer.zero_grad(set_to_none=True)
    losses.sum().backward()
    adam_step(optimizer)
    return losses.detach()


@torch.no_grad()
def validate(model: PackedMLP, x: torch.Tensor, y: torch.Tensor, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Each member's mean validation loss and accuracy (zeros for regression), ``(P,)`` internal order."""
    total = torch.zeros(model.size, device=x.device)
    correct = torch.zeros(model.size, device=x.device)
    batch = max(1, min(EVAL_BATCH_SIZE, EVAL_ELEMENTS // (model.size * model.width)))
    for start in range(0, x.shape[0], batch):
        xb, yb = x[start:start + batch], y[start:start + batch]
        out = model(xb)
        # As the Lightning engine: the loss summed over the batch (and outputs), divided by y.numel() at the end.
        if kind == "regression":
            total += (out - yb).square().sum(dim=(1, 2))
        else:
            total += model.sample_losses(out, yb, kind).sum(dim=1)
            correct += (out.argmax(dim=2) == yb).sum(dim=1)
    count = max(1, y.numel())
    return total / count, correct / max(1, x.shape[0])


@dataclass
class _MemberState:
    """Early-stopping bookkeeping of one member (Lightning's ``EarlyStopping`` with min_delta 0)."""

    best: float = math.inf
    wait: int = 0


class Pack:
    """One pack in training: model, optimizer, random streams, per-member results; checkpointable."""

    def __init__(self, candidates: Sequence[Candidate], data: TaskData, train: TrainConfig,
                 device: torch.device, objective: ObjectiveConfig | None = None) -> None:
        self.candidates = list(candidates)
        self.objective = objective
        self.settings = Settings.of(candidates[0].hparams, train)
        if any(Settings.of(c.hparams, train) != self.settings for c in candidates):
            raise ValueError("a pack's members must train with the same settings (optimizer, batch size, learning "
                             "rate, weight decay); packs are grouped by them")
        self.data, self.train, self.device = data, train, device
        self.kind = data.kind
        self.seed = candidates[0].seed % 2**32
        self.active = list(range(len(candidates)))  # caller indices still training
        self.members = [_MemberState() for _ in candidates]
        self.finished: dict[int, dict[str, float]] = {}
        #: Each member's per-epoch metrics (what the Lightning engine logs to W&B every epoch).
        self.history: list[list[dict[str, float]]] = [[] for _ in candidates]
        self.epoch = 0
        #: Training seconds of earlier attempts (from a checkpoint) and when this attempt started.
        self.seconds_before = 0.0
        self.started = time.monotonic()
        self.shuffle = torch.Generator().manual_seed(self.seed)
        # Dropout draws: a private generator on the CPU; on CUDA the device's default one (the one a CUDA
        # graph advances on every replay), seeded as Lightning's seed_everything would seed it.
        if device.type == "cuda":
            torch.cuda.init()  # default_generators is empty before CUDA's lazy initialisation
            index = device.index if device.index is not None else torch.cuda.current_device()
            self.dropout_rng = torch.cuda.default_generators[index]
        else:
            self.dropout_rng = torch.Generator(device=device)
        self.dropout_rng.manual_seed(self.seed)
        self.capturable = bool(train.cuda_graphs and device.type == "cuda")
        #: Train through the static buffers of :class:`GraphStep`: with a CUDA graph when capturable; else
        #: (tests only) the same step run eagerly, which any device can check against the eager loop.
        self.static_steps = self.capturable
        self.model = PackedMLP.initial(candidates, data.n_inputs, data.n_outputs).to(device)
        self.optimizer = make_optimizer(self.model, self.settings, capturable=self.capturable)
        self.train_x, self.train_y = data.train_x.to(device), data.train_y.to(device)
        self.val_x, self.val_y = data.val_x.to(device), data.val_y.to(device)
        self.graph: GraphStep | None = None

    # --- the epoch loop
    def run(self, checkpoint: Path | None) -> None:
        while self.active and self.epoch < self.train.epochs:
            # One permutation per epoch, moved to the device once (no host copy per step).
            perm = torch.randperm(self.data.n_train, generator=self.shuffle).to(self.device)
            order = list(perm.split(self.settings.batch_size))
            train_sum = self._train_epoch(order)
            val_loss, val_acc = validate(self.model, self.val_x, self.val_y, self.kind)
            self.epoch += 1
            self._end_epoch(train_sum / len(order), val_loss, val_acc)
            if checkpoint is not None:
                self.save(checkpoint)

    def _train_epoch(self, order: list[torch.Tensor]) -> torch.Tensor:
        if self.static_steps:
            if self.graph is None:
                self.graph = GraphStep(self, capture=self.capturable)
            return self.graph.epoch(order)
        train_sum = torch.zeros(self.model.size, device=self.device)
        x, y, kind, rng = self.train_x, self.train_y, self.kind, self.dropout_rng
        for idx in order:
            xb, yb = x.index_select(0, idx), y.index_select(0, idx)
            train_sum += train_step(self.model, self.optimizer, xb, yb, kind, rng)
        return train_sum

    def _end_epoch(self, train_loss: torch.Tensor, val_loss: torch.Tensor, val_acc: torch.Tensor) -> None:
        model = self.model
        # One host sync per epoch; caller order of the active members.
        train_l = model.to_caller(train_loss).tolist()
        val_l = model.to_caller(val_loss).tolist()
        acc_l = model.to_caller(val_acc).tolist()
        stopped = []
        patience = self.train.early_stopping_patience
        for j, k in enumerate(self.active):
            metrics = {"val_loss": val_l[j], "train_loss": train_l[j], "epochs": float(self.epoch)}
            if self.kind == "regression":
                metrics["val_mse"] = val_l[j]
            else:
                metrics["val_acc"] = acc_l[j]
            self.history[k].append(metrics)
            state = self.members[k]
            stop = self.epoch >= self.train.epochs or not math.isfinite(val_l[j])
            if patience > 0 and not stop:
                if val_l[j] < state.best:
                    state.best, state.wait = val_l[j], 0
                else:
                    state.wait += 1
                    stop = state.wait >= patience
            if stop:
                self.finished[k] = metrics
                stopped.append(k)
        if stopped and len(stopped) < len(self.active):
            self._compact([k for k in self.active if k not in stopped])
        self.active = [k for k in self.active if k not in stopped]

    def _compact(self, keep: list[int]) -> None:
        """Drop finished members (and padding no longer needed) from the pack; exact for the others."""
        local = [self.active.index(k) for k in keep]
        self.model, self.optimizer = select_members(self.model, self.optimizer, local, self.settings,
                                                    capturable=self.capturable)
        self.graph = None

    # --- results
    def elapsed(self) -> float:
        return self.seconds_before + time.monotonic() - self.started

    def results(self) -> list[Result]:
        seconds = self.elapsed() / len(self.candidates)
        data = self.data
        return [metrics_result(candidate.name, self.kind,
                               {**self.finished[k], **mlp_cost(Architecture.of(candidate.hparams), data.n_inputs,
                                                               data.n_outputs, self.device, seconds)},
                               seconds, self.objective)
                for k, candidate in enumerate(self.candidates)]

    # --- checkpoints
    def signature(self) -> dict[str, Any]:
        train = self.train
        return {"candidates": [c.to_dict() for c in self.candidates], "n_train": self.data.n_train,
                "n_val": self.data.n_val, "n_inputs": self.data.n_inputs, "n_outputs": self.data.n_outputs,
                "kind": self.kind, "epochs": train.epochs, "settings": asdict(self.settings),
                "patience": train.early_stopping_patience}

    def save(self, path: Path) -> None:
        state = {
            "version": CHECKPOINT_VERSION, "signature": self.signature(), "epoch": self.epoch,
            "seconds": self.elapsed(), "active": list(self.active),
            "members": [[m.best, m.wait] for m in self.members],
            "finished": {str(k): v for k, v in self.finished.items()}, "history": self.history,
            "model": self.model.state_dict() if self.active else {},
            "optimizer": self.optimizer.state_dict() if self.active else {},
            "shuffle_rng": self.shuffle.get_state(),
            "dropout_rng": self.dropout_rng.get_state(), "dropout_rng_device": self.device.type,
        }
        save_checkpoint(state, path)

    def load(self, path: Path) -> bool:
        """Continue from ``path`` when it holds this very pack; False (and a warning) when it does not."""
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - a torn or foreign file: start over, say why
            warnings.warn(f"ignoring unreadable packed checkpoint {path}: {exc}", stacklevel=3)
            return False
        if state.get("version") != CHECKPOINT_VERSION or state.get("signature") != self.signature():
            warnings.warn(f"ignoring packed checkpoint {path}: it belongs to other candidates or settings",
                          stacklevel=3)
            return False
        self.epoch, self.seconds_before = int(state["epoch"]), float(state["seconds"])
        self.members = [_MemberState(best=float(b), wait=int(w)) for b, w in state["members"]]
        self.finished = {int(k): dict(v) for k, v in state["finished"].items()}
        self.history = [list(rows) for rows in state["history"]]
        self.shuffle.set_state(state["shuffle_rng"])
        if state["dropout_rng_device"] == self.device.type:  # else: resumed elsewhere, new dropout draws
            self.dropout_rng.set_state(state["dropout_rng"])
        self.active = [int(k) for k in state["active"]]
        if self.active:
            if self.active != list(range(len(self.candidates))):
                self.model = PackedMLP([Architecture.of(self.candidates[k].hparams) for k in self.active],
                                       self.data.n_inputs,
                                       self.data.n_outputs).to(self.device)
                self.optimizer = make_optimizer(self.model, self.settings,
                                                capturable=self.capturable)
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        self.graph = None
        return True


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """``torch.save`` of ``state`` to ``path``, atomically (a task killed mid-write leaves the old checkpoint)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda handle: torch.save(state, handle))
