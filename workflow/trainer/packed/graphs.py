"""CUDA graphs for the packed engine: the whole training step (gather, forward, backward, Adam) captured once."""

from __future__ import annotations

import contextlib
import warnings
from typing import Protocol

import torch

from workflow.trainer.common import Settings
from workflow.trainer.packed.model import PackedMLP

#: Eager steps on a side stream before a CUDA graph is captured (real training steps, not thrown away).
GRAPH_WARMUP_STEPS = 3


class StepState(Protocol):
    """What a training step reads from the pack in training (:class:`~workflow.trainer.packed.loop.Pack`)."""

    @property
    def model(self) -> PackedMLP: ...
    @property
    def optimizer(self) -> torch.optim.Optimizer: ...
    @property
    def settings(self) -> Settings: ...
    @property
    def device(self) -> torch.device: ...
    @property
    def kind(self) -> str: ...
    @property
    def train_x(self) -> torch.Tensor: ...
    @property
    def train_y(self) -> torch.Tensor: ...
    @property
    def dropout_rng(self) -> torch.Generator: ...


class GraphStep:
    """The whole training step (batch gather, forward, backward, Adam) captured in one CUDA graph.

    Static buffers hold the batch's indices and per-sample weights: every batch has ``batch_size`` slots,
    the last (short) batch of an epoch repeats index 0 with weight 0, and each member's loss is the
    weighted sum of its per-sample losses (weights ``1/n`` for the ``n`` real samples), i.e. its batch
    mean. The first steps run eagerly on a side stream (they are real steps) to initialise cuBLAS and
    Adam's state before capture. Host work per step: two device-to-device copies and one replay.

    With ``capture=False`` every step runs eagerly through the same static buffers (a check of this step's
    arithmetic on any device).
    """

    def __init__(self, pack: StepState, capture: bool = True) -> None:
        self.pack = pack
        self.capture = capture
        batch = pack.settings.batch_size
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
