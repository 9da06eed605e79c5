"""The packed engine: a whole pack of individuals trained at once, as one vectorized model on one device.

Tiny MLPs leave a device idle: per step, a per-individual engine spends far more time in Python, Lightning
hooks and kernel launches than in arithmetic. Here P individuals with different genotypes (depth, width,
activation, dropout) become one :class:`PackedMLP` whose every layer is one batched matrix product over the
members, and one optimizer step updates them all. Each member is trained exactly as it would be alone (up
to float rounding), from the same initial weights:

- widths: every hidden layer is padded to the widest member (``H``); padded weights start at zero, padded
  units stay exactly zero (masked where ``act(0) != 0``) and get exactly zero gradients, so Adam never moves
  them;
- depths: members are ordered by depth (deepest first), so the members that have a layer ``l`` are a prefix
  of the pack and layer ``l`` holds parameters for that prefix only; the others' hidden states pass through
  unchanged and the output layer reads each member's state after its own last layer;
- activations: members are also ordered by activation within a depth, so each activation is applied to
  contiguous slices (views) of a layer's pre-activations, never to another member's values;
- dropout: one Bernoulli mask per layer with each member's own keep probability, scaled by ``1/(1-p)`` like
  ``nn.Dropout`` (a member with ``p = 0`` is multiplied by exactly 1);
- loss: the sum over members of each member's own mean loss, so each member's gradient is its own;
- optimizer: one ``torch.optim.Adam`` (fused, like the Lightning engine's) over the packed tensors; Adam is
  elementwise, so each member's moments and updates are its own.

What differs from training alone: all members of a pack see the same batch order (one shuffle per pack,
seeded with the first candidate's seed) and one dropout random stream. A pack of one reproduces
:func:`~workflow.trainer.lightning_engine.train_one`'s batch order and initial weights exactly. See
``docs/packed.md`` for the design and measurements.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import time
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812 - the usual torch alias

from workflow.config import TaskConfig, TrainConfig
from workflow.records import Candidate, Hparams, Result
from workflow.tracking import EvaluationTracker, TrackingSpec
from workflow.trainer.data import TaskData, load_task
from workflow.trainer.model import ACTIVATIONS, build_mlp
from workflow.trainer.torch_env import cpu_cuda_probe

#: Default pack size on a GPU when ``train.pack_size == 0`` (on the CPU: every candidate given).
GPU_DEFAULT_PACK = 128
#: Validation batches hold at most this many hidden values (pack x samples x width) at once.
EVAL_ELEMENTS = 1 << 24
#: Same as the Lightning engine's validation batch (an upper bound; large packs use smaller batches).
EVAL_BATCH_SIZE = 8192
#: Eager steps on a side stream before a CUDA graph is captured (real training steps, not thrown away).
GRAPH_WARMUP_STEPS = 3
CHECKPOINT_NAME = "packed.ckpt"
_CHECKPOINT_VERSION = 1

Activation = Callable[[torch.Tensor], torch.Tensor]


# ----------------------------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class _Layer:
    """How hidden layer ``l`` is computed: for the first ``count`` members (those deeper than ``l``)."""

    count: int
    #: (members, activation) over consecutive members sharing an activation.
    runs: tuple[tuple[int, Activation], ...]
    #: Whether some member here has dropout > 0 / an activation with act(0) != 0 and padded units.
    has_dropout: bool
    needs_mask: bool

    @property
    def sizes(self) -> list[int]:
        return [n for n, _ in self.runs]


class PackedMLP(nn.Module):
    """P MLPs (:func:`~workflow.trainer.model.build_mlp` layouts) as one batched model.

    Members are stored in an internal order (deepest first, then by activation name, then as given);
    ``order[i]`` is the caller's index of internal member ``i`` and ``position[k]`` the internal index of
    the caller's member ``k``. :meth:`forward` and :meth:`losses` work in the internal order;
    :meth:`to_caller` maps a per-member vector back, :meth:`member` unpacks one member as an
    ``nn.Sequential``.

    Parameters: ``weights[l]`` is ``(count_l, fan_in, H)`` (``fan_in`` is the input size for ``l = 0``,
    else ``H``), ``biases[l]`` is ``(count_l, 1, H)``, ``out_weight`` ``(P, H, n_outputs)`` and
    ``out_bias`` ``(P, 1, n_outputs)``; a member's real block is the top-left corner, the rest is zero.
    """

    keep: torch.Tensor  # (P, 1, 1): each member's keep probability 1 - dropout
    mask: torch.Tensor  # (P, 1, H): 1 on a member's real units, 0 on its padding
    scale: torch.Tensor  # (P, 1, H): mask / keep, the dropout scale of kept units

    def __init__(self, hparams: Sequence[Hparams], n_inputs: int, n_outputs: int) -> None:
        super().__init__()
        if not hparams:
            raise ValueError("a pack needs at least one member")
        for hp in hparams:
            build_mlp(hp, 1, 1)  # the same validation (activation name, sizes, dropout range) as alone
            if hp.n_layers < 1:
                raise ValueError(f"the packed engine needs n_layers >= 1, got {hp.n_layers}")
        self.n_inputs, self.n_outputs = n_inputs, n_outputs
        self.order: list[int] = sorted(range(len(hparams)),
                                       key=lambda k: (-hparams[k].n_layers, hparams[k].activation, k))
        self.position: list[int] = [0] * len(hparams)
        for i, k in enumerate(self.order):
            self.position[k] = i
        self.hparams: list[Hparams] = [hparams[k] for k in self.order]
        self.width = max(hp.hidden_size for hp in self.hparams)
        self.depth = max(hp.n_layers for hp in self.hparams)
        size = self.size
        width = self.width
        counts = [sum(hp.n_layers > layer for hp in self.hparams) for layer in range(self.depth)]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.zeros(count, n_inputs if layer == 0 else width, width))
            for layer, count in enumerate(counts))
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(count, 1, width)) for count in counts)
        self.out_weight = nn.Parameter(torch.zeros(size, width, n_outputs))
        self.out_bias = nn.Parameter(torch.zeros(size, 1, n_outputs))

        functions = {hp.activation: ACTIVATIONS[hp.activation]().forward for hp in self.hparams}
        nonzero_at_zero = {name: bool(fn(torch.zeros(1)).item() != 0) for name, fn in functions.items()}
        keep = torch.tensor([1.0 - hp.dropout for hp in self.hparams])
        mask = torch.zeros(size, 1, width)
        for i, hp in enumerate(self.hparams):
            mask[i, 0, : hp.hidden_size] = 1.0
        self.register_buffer("keep", keep.view(size, 1, 1).clone(), persistent=False)
        self.register_buffer("mask", mask, persistent=False)
        self.register_buffer("scale", mask / keep.view(size, 1, 1), persistent=False)
        layers = []
        for count in counts:
            members = self.hparams[:count]
            runs: list[tuple[int, Activation]] = []
            for i, hp in enumerate(members):
                if i and members[i - 1].activation == hp.activation:
                    runs[-1] = (runs[-1][0] + 1, runs[-1][1])
                else:
                    runs.append((1, functions[hp.activation]))
            layers.append(_Layer(
                count=count, runs=tuple(runs),
                has_dropout=any(hp.dropout > 0 for hp in members),
                needs_mask=any(nonzero_at_zero[hp.activation] and hp.hidden_size < width for hp in members)))
        self._layers: tuple[_Layer, ...] = tuple(layers)

    @property
    def size(self) -> int:
        return len(self.hparams)

    # --- building and unpacking
    @classmethod
    def from_modules(cls, nets: Sequence[nn.Sequential], hparams: Sequence[Hparams], n_inputs: int,
                     n_outputs: int) -> PackedMLP:
        """A pack whose members start from the weights of ``nets`` (``build_mlp`` layouts, caller order)."""
        if len(nets) != len(hparams):
            raise ValueError(f"{len(nets)} modules for {len(hparams)} genotypes")
        packed = cls(hparams, n_inputs, n_outputs)
        with torch.no_grad():
            for k, net in enumerate(nets):
                for tensor, source in zip(packed._member_views(packed.position[k]), _sequential_tensors(net)):
                    if tensor.shape != source.shape:
                        raise ValueError(f"module {k} does not match its genotype {hparams[k]}: "
                                         f"{tuple(source.shape)} where {tuple(tensor.shape)} was expected")
                    tensor.copy_(source)
        return packed

    @classmethod
    def initial(cls, candidates: Sequence[Candidate], n_inputs: int, n_outputs: int) -> PackedMLP:
        """A pack whose members start exactly as the Lightning engine starts each candidate alone.

        ``train_one`` seeds torch's global generator with the candidate's seed, then builds the MLP; so does
        this (for each member in turn), restoring the global generator's state afterwards.
        """
        nets = []
        with torch.random.fork_rng(devices=[]):
            for candidate in candidates:
                torch.manual_seed(candidate.seed % 2**32)
                nets.append(build_mlp(candidate.hparams, n_inputs, n_outputs))
        return cls.from_modules(nets, [c.hparams for c in candidates], n_inputs, n_outputs)

    def member(self, k: int) -> nn.Sequential:
        """A copy of the caller's member ``k`` as a standalone ``build_mlp`` module (on the CPU)."""
        i = self.position[k]
        net = build_mlp(self.hparams[i], self.n_inputs, self.n_outputs)
        with torch.no_grad():
            for target, view in zip(_sequential_tensors(net), self._member_views(i)):
                target.copy_(view.detach().cpu())
        return net

    def _member_views(self, i: int) -> Iterator[torch.Tensor]:
        """Views of internal member ``i``'s real blocks, in ``_sequential_tensors`` order (W as in x @ W)."""
        hp = self.hparams[i]
        h = hp.hidden_size
        for layer in range(hp.n_layers):
            fan_in = self.n_inputs if layer == 0 else h
            yield self.weights[layer][i, :fan_in, :h]
            yield self.biases[layer][i, 0, :h]
        yield self.out_weight[i, :h, :]
        yield self.out_bias[i, 0, :]

    # --- computing
    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None,
                dropout: bool = False) -> torch.Tensor:
        """Outputs ``(P, B, n_outputs)`` (internal order) for one shared batch ``x`` ``(B, n_inputs)``."""
        pieces: list[torch.Tensor] = []
        h = x
        for layer, plan in enumerate(self._layers):
            weight, bias = self.weights[layer], self.biases[layer]
            if layer == 0:
                z = torch.baddbmm(bias, x.expand(plan.count, *x.shape), weight)
            else:
                if plan.count < h.shape[0]:
                    # Members whose last layer was the previous one: their final hidden state. (split, not
                    # slicing: its backward is one cat instead of a zero-filled full-size tensor per slice)
                    h, done = h.split([plan.count, h.shape[0] - plan.count])
                    pieces.append(done)
                z = torch.baddbmm(bias, h, weight)
            if len(plan.runs) == 1:
                h = plan.runs[0][1](z)
            else:
                h = torch.cat([fn(part) for part, (_, fn) in zip(z.split(plan.sizes), plan.runs)])
            if dropout and plan.has_dropout:
                # u < keep is Bernoulli(keep) (always 1 for p = 0, as u < 1); one uniform draw per unit is
                # about half the price of torch.bernoulli with per-member probabilities on the CPU. In place
                # on the float draw: no bool tensor and no dtype conversion.
                mask = torch.rand(h.shape, generator=generator, device=h.device)
                h = h * mask.lt_(self.keep[: plan.count]).mul_(self.scale[: plan.count])
            elif plan.needs_mask:
                h = h * self.mask[: plan.count]
        if pieces:
            pieces.append(h)
            h = torch.cat(pieces[::-1])
        return torch.baddbmm(self.out_bias, h, self.out_weight)

    def sample_losses(self, out: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
        """Per-member, per-sample losses ``(P, B)``: squared error (mean over outputs) or cross-entropy."""
        if kind == "regression":
            return (out - y).square().mean(dim=2)
        return F.cross_entropy(out.transpose(1, 2), y.expand(out.shape[0], -1), reduction="none")

    def losses(self, out: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
        """Each member's mean loss over the batch ``(P,)``: what ``F.mse_loss``/``F.cross_entropy`` give alone."""
        if kind == "regression":
            return (out - y).square().mean(dim=(1, 2))
        return self.sample_losses(out, y, kind).mean(dim=1)

    def to_caller(self, values: torch.Tensor) -> torch.Tensor:
        """A per-member tensor (first dimension in internal order) in the caller's order."""
        return values[self.position]

    def select(self, keep: Sequence[int]) -> tuple[PackedMLP, Callable[[torch.Tensor, str], torch.Tensor]]:
        """A smaller pack of the caller's members ``keep`` (ascending), with their current weights.

        Also returns ``transfer(tensor, name)``: the part of a tensor shaped like this pack's parameter
        ``name`` (e.g. Adam's moments for it) that belongs to the smaller pack's parameter of that name.
        Exact: only other members and all-zero padding are dropped (the new width and depth are the
        remaining members' maxima, so the smaller pack may lack some of this pack's parameters).
        """
        keep = sorted(keep)
        small = PackedMLP([self.hparams[self.position[k]] for k in keep], self.n_inputs, self.n_outputs)
        # This pack's internal rows of the kept members, in the small pack's internal order.
        rows = torch.tensor([self.position[keep[k]] for k in small.order], device=self.out_bias.device)
        shapes = {name: tuple(p.shape) for name, p in small.named_parameters()}

        def transfer(tensor: torch.Tensor, name: str) -> torch.Tensor:
            count, d1, d2 = shapes[name]
            return tensor[rows[:count]][:, :d1, :d2].contiguous()

        small.to(self.out_bias.device)
        mine = dict(self.named_parameters())
        with torch.no_grad():
            for name, target in small.named_parameters():
                target.copy_(transfer(mine[name], name))
        return small, transfer


def _sequential_tensors(net: nn.Sequential) -> Iterator[torch.Tensor]:
    """A ``build_mlp`` module's weights (transposed: x @ W) and biases, layer by layer, output last."""
    linears = [m for m in net if isinstance(m, nn.Linear)]
    for linear in linears:
        yield linear.weight.T
        yield linear.bias


# ----------------------------------------------------------------------------------------------- training


def make_optimizer(model: nn.Module, learning_rate: float, *, capturable: bool = False) -> torch.optim.Adam:
    """Adam as the Lightning engine configures it (defaults, fused kernel on cpu/cuda), over the whole pack."""
    params = list(model.parameters())
    fused = all(p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.Adam(params, lr=learning_rate, fused=fused, capturable=capturable)


#: Per optimizer: its parameters and state tensors in step order, for :func:`adam_step`.
_FUSED_STATE: weakref.WeakKeyDictionary[torch.optim.Optimizer, tuple[list[torch.Tensor], ...]] = (
    weakref.WeakKeyDictionary())


def adam_step(optimizer: torch.optim.Optimizer) -> None:
    """``optimizer.step()``, for a fused Adam without its per-step Python bookkeeping.

    ``Adam.step`` spends about as long gathering its state lists, checking devices and asking for an
    accelerator as its fused kernel needs for a small pack (0.3 ms a step on the CPU). From the second step
    on, this calls the very kernel ``Adam.step`` calls (``torch._fused_adam_``, after incrementing the step
    counts), with the group's hyperparameters and the optimizer's own state tensors, so the state, the
    checkpoints and the arithmetic stay Adam's. Anything else (not fused, capturable, several groups,
    amsgrad, a tensor learning rate, a state replaced by ``load_state_dict``) takes ``optimizer.step()``.
    """
    cached = _FUSED_STATE.get(optimizer)
    if cached is not None:
        params, exp_avgs, exp_avg_sqs, steps = cached
        if optimizer.state[params[0]].get("exp_avg") is exp_avgs[0]:
            group = optimizer.param_groups[0]
            beta1, beta2 = group["betas"]
            grads = cast(list[torch.Tensor], [p.grad for p in params])  # all set: every parameter is used
            torch._foreach_add_(steps, 1)
            torch._fused_adam_(params, grads, exp_avgs, exp_avg_sqs, [], steps,
                               lr=group["lr"], beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"],
                               eps=group["eps"],
                               amsgrad=False, maximize=False, grad_scale=None, found_inf=None)
            return
    optimizer.step()
    groups = optimizer.param_groups
    group = groups[0]
    params = list(group["params"])
    if (isinstance(optimizer, torch.optim.Adam) and len(groups) == 1 and group["fused"]
            and not group["capturable"] and not group["amsgrad"] and not group["maximize"]
            and not group["differentiable"] and not group["decoupled_weight_decay"]
            and not isinstance(group["lr"], torch.Tensor) and hasattr(torch, "_fused_adam_")
            and all(p.grad is not None and p in optimizer.state for p in params)):
        states = [optimizer.state[p] for p in params]
        _FUSED_STATE[optimizer] = (params, [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
                                   [s["step"] for s in states])


def train_step(model: PackedMLP, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, kind: str,
               generator: torch.Generator | None = None, dropout: bool = True) -> torch.Tensor:
    """One eager training step on a shared batch; returns each member's batch loss ``(P,)`` (internal order)."""
    losses = model.losses(model(x, generator, dropout=dropout), y, kind)
    optimizer.zero_grad(set_to_none=True)
    losses.sum().backward()
    adam_step(optimizer)
    return losses.detach()


def select_members(model: PackedMLP, optimizer: torch.optim.Optimizer, keep: Sequence[int], *,
                   capturable: bool = False) -> tuple[PackedMLP, torch.optim.Adam]:
    """The caller's members ``keep`` of ``model`` as a smaller pack, with their weights and Adam state.

    Training the smaller pack on goes on exactly as the big one would have for those members (Adam's state
    is elementwise; the step count is shared), only faster: finished members and padding are gone.
    """
    small, transfer = model.select(keep)
    group = optimizer.param_groups[0]
    new = make_optimizer(small, group["lr"], capturable=capturable)
    old_params = dict(model.named_parameters())
    for name, param in small.named_parameters():
        state = optimizer.state.get(old_params[name])
        if state:
            new.state[param] = {"step": state["step"].clone(), "exp_avg": transfer(state["exp_avg"], name),
                                "exp_avg_sq": transfer(state["exp_avg_sq"], name)}
    return small, new


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


class _Pack:
    """One pack in training: model, optimizer, random streams, per-member results; checkpointable."""

    def __init__(self, candidates: Sequence[Candidate], data: TaskData, train: TrainConfig,
                 device: torch.device) -> None:
        self.candidates = list(candidates)
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
        #: Train through the static buffers of :class:`_GraphStep`: with a CUDA graph when capturable; else
        #: (tests only) the same step run eagerly, which any device can check against the eager loop.
        self.static_steps = self.capturable
        self.model = PackedMLP.initial(candidates, data.n_inputs, data.n_outputs).to(device)
        self.optimizer = make_optimizer(self.model, train.learning_rate, capturable=self.capturable)
        self.train_x, self.train_y = data.train_x.to(device), data.train_y.to(device)
        self.val_x, self.val_y = data.val_x.to(device), data.val_y.to(device)
        self.graph: _GraphStep | None = None

    # --- the epoch loop
    def run(self, checkpoint: Path | None) -> None:
        while self.active and self.epoch < self.train.epochs:
            # One permutation per epoch, moved to the device once (no host copy per step).
            perm = torch.randperm(self.data.n_train, generator=self.shuffle).to(self.device)
            order = list(perm.split(self.train.batch_size))
            train_sum = self._train_epoch(order)
            val_loss, val_acc = validate(self.model, self.val_x, self.val_y, self.kind)
            self.epoch += 1
            self._end_epoch(train_sum / len(order), val_loss, val_acc)
            if checkpoint is not None:
                self.save(checkpoint)

    def _train_epoch(self, order: list[torch.Tensor]) -> torch.Tensor:
        if self.static_steps:
            if self.graph is None:
                self.graph = _GraphStep(self, capture=self.capturable)
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
        self.model, self.optimizer = select_members(self.model, self.optimizer, local, capturable=self.capturable)
        self.graph = None

    # --- results
    def elapsed(self) -> float:
        return self.seconds_before + time.monotonic() - self.started

    def results(self) -> list[Result]:
        seconds = self.elapsed() / len(self.candidates)
        out = []
        for k, candidate in enumerate(self.candidates):
            metrics = self.finished[k]
            metric = "val_mse" if self.kind == "regression" else "val_loss"
            fitness = metrics[metric]
            if not math.isfinite(fitness):
                out.append(Result.failure(candidate.name, f"non-finite validation loss ({metric}={fitness})",
                                          seconds=seconds))
                continue
            keep = ("val_mse",) if self.kind == "regression" else ("val_loss", "val_acc")
            values = {key: metrics[key] for key in (*keep, "train_loss", "epochs")}
            out.append(Result(name=candidate.name, status="ok", fitness=fitness, metrics=values,
                              seconds=seconds))
        return out

    # --- checkpoints
    def signature(self) -> dict[str, Any]:
        train = self.train
        return {"candidates": [c.to_dict() for c in self.candidates], "n_train": self.data.n_train,
                "n_val": self.data.n_val, "n_inputs": self.data.n_inputs, "n_outputs": self.data.n_outputs,
                "kind": self.kind, "epochs": train.epochs, "batch_size": train.batch_size,
                "learning_rate": train.learning_rate, "patience": train.early_stopping_patience}

    def save(self, path: Path) -> None:
        state = {
            "version": _CHECKPOINT_VERSION, "signature": self.signature(), "epoch": self.epoch,
            "seconds": self.elapsed(), "active": list(self.active),
            "members": [[m.best, m.wait] for m in self.members],
            "finished": {str(k): v for k, v in self.finished.items()}, "history": self.history,
            "model": self.model.state_dict() if self.active else {},
            "optimizer": self.optimizer.state_dict() if self.active else {},
            "shuffle_rng": self.shuffle.get_state(),
            "dropout_rng": self.dropout_rng.get_state(), "dropout_rng_device": self.device.type,
        }
        _atomic_save(state, path)

    def load(self, path: Path) -> bool:
        """Continue from ``path`` when it holds this very pack; False (and a warning) when it does not."""
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - a torn or foreign file: start over, say why
            warnings.warn(f"ignoring unreadable packed checkpoint {path}: {exc}", stacklevel=3)
            return False
        if state.get("version") != _CHECKPOINT_VERSION or state.get("signature") != self.signature():
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
                self.model = PackedMLP([self.candidates[k].hparams for k in self.active], self.data.n_inputs,
                                       self.data.n_outputs).to(self.device)
                self.optimizer = make_optimizer(self.model, self.train.learning_rate,
                                                capturable=self.capturable)
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        self.graph = None
        return True


def _atomic_save(state: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class _GraphStep:
    """The whole training step (batch gather, forward, backward, Adam) captured in one CUDA graph.

    Static buffers hold the batch's indices and per-sample weights: every batch has ``batch_size`` slots,
    the last (short) batch of an epoch repeats index 0 with weight 0, and each member's loss is the
    weighted sum of its per-sample losses (weights ``1/n`` for the ``n`` real samples), i.e. its batch
    mean. The first steps run eagerly on a side stream (they are real steps) to initialise cuBLAS and
    Adam's state before capture. Host work per step: two device-to-device copies and one replay.

    With ``capture=False`` every step runs eagerly through the same static buffers (a check of this step's
    arithmetic on any device).
    """

    def __init__(self, pack: _Pack, capture: bool = True) -> None:
        self.pack = pack
        self.capture = capture
        batch = pack.train.batch_size
        device = pack.device
        self.batch = batch
        self.idx = torch.zeros(batch, dtype=torch.long, device=device)
        self.full_weight = torch.full((batch,), 1.0 / batch, device=device)
        self.weight = self.full_weight.clone()
        self.weight_full = True
        self.train_sum = torch.zeros(pack.model.size, device=device)
        self.graph: torch.cuda.CUDAGraph | None = None

    def _step(self) -> None:
        pack = self.pack
        x = pack.train_x.index_select(0, self.idx)
        y = pack.train_y.index_select(0, self.idx)
        # Captured: the device's default generator (pack.dropout_rng itself), which a graph must be given as None.
        out = pack.model(x, None if self.capture else pack.dropout_rng, dropout=True)
        losses = pack.model.sample_losses(out, y, pack.kind) @ self.weight
        losses.sum().backward()
        pack.optimizer.step()
        self.train_sum.add_(losses.detach())

    def _load(self, idx: torch.Tensor) -> None:
        n = idx.shape[0]
        if n == self.batch:
            self.idx.copy_(idx)
            if not self.weight_full:
                self.weight.copy_(self.full_weight)
                self.weight_full = True
        else:
            self.idx.zero_()
            self.idx[:n].copy_(idx)
            self.weight.zero_()
            self.weight[:n] = 1.0 / n
            self.weight_full = False

    def epoch(self, order: list[torch.Tensor]) -> torch.Tensor:
        device = self.pack.device
        self.train_sum.zero_()
        start = 0
        if self.graph is None:
            start = min(GRAPH_WARMUP_STEPS, len(order)) if self.capture else len(order)
            side = torch.cuda.Stream(device) if self.capture else None
            if side is not None:
                side.wait_stream(torch.cuda.current_stream(device))
            on_side = torch.cuda.stream(side) if side is not None else contextlib.nullcontext()
            with on_side, warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=r".*capturable=True.*")
                for idx in order[:start]:
                    self._load(idx)
                    self.pack.optimizer.zero_grad(set_to_none=True)
                    self._step()
            if side is not None:
                torch.cuda.current_stream(device).wait_stream(side)
            if start == len(order):
                return self.train_sum.clone()
            self.pack.optimizer.zero_grad(set_to_none=True)
            self._load(order[start])
            graph = torch.cuda.CUDAGraph()
            # Capturing records the step without running it: order[start] is trained by the first replay.
            with torch.cuda.graph(graph):
                self._step()
            self.graph = graph
        for idx in order[start:]:
            self._load(idx)
            self.graph.replay()
        return self.train_sum.clone()


# ----------------------------------------------------------------------------------------------- entry


def resolve_device(train: TrainConfig, device: str | None = None) -> torch.device:
    """``device`` if given, else ``train.accelerator`` (``auto``: CUDA when available, like Lightning)."""
    if device is not None:
        return torch.device(device)
    if train.accelerator == "cpu":
        return torch.device("cpu")
    if train.accelerator == "gpu" or torch.cuda.is_available():
        if not torch.cuda.is_available():
            raise RuntimeError("train.accelerator='gpu' but CUDA is not available here")
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def default_pack_size(train: TrainConfig, device: torch.device, n_candidates: int) -> int:
    """``train.pack_size``, or by default: all candidates on the CPU, up to 128 on a GPU."""
    if train.pack_size > 0:
        return train.pack_size
    if device.type == "cuda":
        return GPU_DEFAULT_PACK
    return max(1, n_candidates)


def train_pack(candidates: Sequence[Candidate], task: TaskConfig, train: TrainConfig, workdir: Path | None = None,
               device: str | None = None, tracking: TrackingSpec | None = None) -> list[Result]:
    """Train ``candidates`` together, in packs, and return one :class:`Result` per candidate, in order.

    Each member's fitness and metrics are defined as in :func:`~workflow.trainer.lightning_engine.train_one`
    (``val_mse`` or ``val_loss`` after the member's last epoch; ``train_loss`` the epoch's mean batch loss;
    early stopping per member). A member with a non-finite validation loss fails alone; the others go on.
    ``Result.seconds`` is the pack's training time divided by its size (the amortised cost per evaluation).

    With ``workdir``, each pack writes ``packed.ckpt`` there (``packed-<i>.ckpt`` for the ``i``-th pack when
    there are several) after every epoch, and a later call with the same candidates continues from it (e.g.
    after a Slurm requeue) with the same batch order and dropout draws an uninterrupted run would have used.

    With ``tracking``, each member gets its own W&B run (as with the Lightning engine: one per evaluation),
    written when its pack has finished: its per-epoch rows, then its result as summary (W&B keeps one run
    open per process, so the members' runs cannot be open side by side during training).
    """
    if not candidates:
        return []
    dev = resolve_device(train, device)
    size = default_pack_size(train, dev, len(candidates))
    data = load_task(task)
    torch.set_num_threads(train.num_threads)
    chunks = [candidates[i:i + size] for i in range(0, len(candidates), size)]
    results: list[Result] = []
    for i, chunk in enumerate(chunks):
        checkpoint = None
        if workdir is not None:
            checkpoint = Path(workdir) / (CHECKPOINT_NAME if len(chunks) == 1 else f"packed-{i}.ckpt")
        results.extend(_train_chunk(chunk, task, data, train, dev, checkpoint, tracking))
    return results


def _train_chunk(candidates: Sequence[Candidate], task: TaskConfig, data: TaskData, train: TrainConfig,
                 device: torch.device, checkpoint: Path | None, tracking: TrackingSpec | None) -> list[Result]:
    pack: _Pack | None = None
    try:
        with cpu_cuda_probe(device.type == "cpu"):
            pack = _Pack(candidates, data, train, device)
            if checkpoint is not None and checkpoint.is_file():
                pack.load(checkpoint)
            pack.run(checkpoint)
        results = pack.results()
    except BaseException as exc:
        if tracking is not None:
            for k, candidate in enumerate(candidates):
                tracker = EvaluationTracker.start(tracking, candidate, task, train)
                for row in pack.history[k] if pack is not None else []:
                    tracker.log_epoch(row, int(row["epochs"]))
                tracker.fail(f"{type(exc).__name__}: {exc}")
        raise
    if tracking is not None:
        for k, (candidate, result) in enumerate(zip(candidates, results)):
            tracker = EvaluationTracker.start(tracking, candidate, task, train)
            for row in pack.history[k]:
                tracker.log_epoch(row, int(row["epochs"]))
            tracker.finish(result)
    return results
