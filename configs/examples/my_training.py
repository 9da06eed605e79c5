"""An objective of your own for gaslurm: a small PyTorch training function that keeps its own checkpoint.

gaslurm calls ``evaluate(hparams, context)`` once per evaluation, in whatever process evaluates it (the driver
for ``backend.name: inline``, a worker process, a Slurm array task). ``context.workdir`` survives requeues and
restarts: save a checkpoint there after every epoch and load it when it exists, and a training cut by the end
of an allocation continues where it stopped. Return a number (minimised) or a mapping of metrics (set
``objective.metric`` to the one to optimise).

Run it: ``python -m workflow run configs/examples/python_objective.yaml``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn


def _data(seed: int = 0, n: int = 2000) -> tuple[torch.Tensor, torch.Tensor]:
    """A noisy 1-D regression problem: y = sin(3x) + x^2 / 4."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, generator=gen) * 4 - 2
    y = torch.sin(3 * x) + x**2 / 4 + 0.05 * torch.randn(n, 1, generator=gen)
    return x, y


def evaluate(hparams: dict[str, Any], context: Any) -> dict[str, float]:
    torch.manual_seed(context.seed)
    torch.set_num_threads(1)
    x, y = _data()
    train_x, train_y, val_x, val_y = x[:1600], y[:1600], x[1600:], y[1600:]
    width = int(hparams["width"])
    model = nn.Sequential(nn.Linear(1, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh(), nn.Linear(width, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=float(hparams["learning_rate"]))
    checkpoint = Path(context.workdir) / "checkpoint.pt"
    start = 0
    if checkpoint.exists():  # a requeued or restarted attempt: continue where the last one stopped
        state = torch.load(checkpoint, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = int(state["epoch"])
    epochs = int(hparams.get("epochs", 20))
    val_loss = math.inf
    for epoch in range(start, epochs):
        order = torch.randperm(len(train_x))
        for batch in order.split(int(hparams.get("batch_size", 64))):
            loss = nn.functional.mse_loss(model(train_x[batch]), train_y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            val_loss = nn.functional.mse_loss(model(val_x), val_y).item()
        context.report(epoch + 1, val_loss=val_loss)  # W&B history (with tracking on) and workdir/history.jsonl
        tmp = checkpoint.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1}, tmp)
        tmp.replace(checkpoint)  # atomic: a kill mid-write leaves the previous checkpoint
    if start == epochs:  # finished in an earlier attempt: just validate the saved weights
        with torch.no_grad():
            val_loss = nn.functional.mse_loss(model(val_x), val_y).item()
    return {"val_loss": val_loss, "resumed_from_epoch": float(start), "attempt": float(context.attempt)}
