"""What a built-in MLP costs: parameters, FLOPs, measured latency (the ``MLP_COST_METRICS`` of every result).

A multi-objective search trades these against the validation loss. ``n_params`` and ``flops`` follow from the
architecture alone; ``latency_ms`` is measured where the model trained, so it is only comparable within one
kind of device (a GPU search and a CPU search rank differently, as they should).
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

from workflow.trainer.model import Architecture, build_mlp

#: Samples per timed forward pass, warm-up passes and timed repeats (the median is reported).
LATENCY_BATCH = 1000
LATENCY_WARMUP = 2
LATENCY_REPEATS = 5


def architecture_cost(arch: Architecture, n_inputs: int, n_outputs: int) -> dict[str, float]:
    """``n_params`` (weights and biases) and ``flops`` (per sample, forward: 2 per weight of each linear layer,
    a multiply and an add; activations and dropout are not counted)."""
    widths = [n_inputs, *arch.widths, n_outputs]
    weights = sum(a * b for a, b in zip(widths, widths[1:]))
    biases = sum(widths[1:])
    return {"n_params": float(weights + biases), "flops": float(2 * weights)}


def latency_ms(net: nn.Module, n_inputs: int, device: torch.device | str = "cpu") -> float:
    """Median milliseconds of a forward pass of :data:`LATENCY_BATCH` samples through ``net`` on ``device`` (in
    eval mode, without gradients, after :data:`LATENCY_WARMUP` passes; the net's mode is restored)."""
    device = torch.device(device)
    was_training = net.training
    net.eval()
    x = torch.randn(LATENCY_BATCH, n_inputs, device=device)
    times = []
    try:
        with torch.no_grad():
            for i in range(LATENCY_WARMUP + LATENCY_REPEATS):
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                start = time.perf_counter()
                net(x)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                if i >= LATENCY_WARMUP:
                    times.append(time.perf_counter() - start)
    finally:
        net.train(was_training)
    return 1e3 * statistics.median(times)


def mlp_cost(arch: Architecture, n_inputs: int, n_outputs: int, device: torch.device | str,
             train_seconds: float, net: nn.Module | None = None) -> dict[str, float]:
    """Every cost metric of one trained MLP (``net``: the trained module; else one of the same architecture is
    built on ``device`` for timing: the latency depends on the shapes, not on the weights)."""
    if net is None:
        net = build_mlp(arch, n_inputs, n_outputs).to(device)
    return {**architecture_cost(arch, n_inputs, n_outputs), "latency_ms": latency_ms(net, n_inputs, device),
            "train_seconds": float(train_seconds)}
