"""The phenotype: a genotype's architecture built into a torch MLP.

The built-in MLP reads these genes (:data:`workflow.tasks.MLP_GENES`): ``n_layers`` + ``hidden_size`` (the
seed's uniform width) or ``layers`` (a width per layer), ``activation``, ``dropout`` (default 0). The genes
that override ``train`` settings are read by :class:`workflow.trainer.common.Settings`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

#: One constructor per name in :data:`workflow.tasks.KNOWN_ACTIVATIONS` (a test keeps the two in step).
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "selu": nn.SELU,
    "mish": nn.Mish,
    "softplus": nn.Softplus,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "hardtanh": nn.Hardtanh,
    "identity": nn.Identity,
}

@dataclass(frozen=True)
class Architecture:
    """What the MLP looks like: hidden widths (one per layer), the activation, the dropout probability."""

    widths: tuple[int, ...]
    activation: str
    dropout: float = 0.0

    @property
    def depth(self) -> int:
        return len(self.widths)

    @classmethod
    def of(cls, hparams: Mapping[str, Any]) -> Architecture:
        """The architecture the genes describe (``layers``, or ``n_layers`` x ``hidden_size``)."""
        if "layers" in hparams:
            widths = tuple(int(w) for w in hparams["layers"])
        else:
            widths = (int(hparams["hidden_size"]),) * int(hparams["n_layers"])
        return cls(widths=widths, activation=str(hparams["activation"]), dropout=float(hparams.get("dropout", 0.0)))


def build_mlp(arch: Architecture, n_inputs: int, n_outputs: int) -> nn.Sequential:
    """Per hidden width: Linear -> activation -> Dropout(``arch.dropout``), then a Linear output.

    Every block keeps its Dropout module even at ``dropout == 0`` so all genotypes share one layout
    (``net[3 * i]`` is the i-th hidden Linear, ``net[-1]`` the output layer).
    """
    if arch.activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {arch.activation!r}; allowed: {', '.join(ACTIVATIONS)}")
    if any(w < 1 for w in arch.widths) or n_inputs < 1 or n_outputs < 1:
        raise ValueError(f"cannot build an MLP with widths {list(arch.widths)}, n_inputs={n_inputs}, "
                         f"n_outputs={n_outputs}: sizes must be >= 1")
    if not 0.0 <= arch.dropout < 1.0:
        raise ValueError(f"dropout={arch.dropout} must lie in [0, 1)")
    layers: list[nn.Module] = []
    width = n_inputs
    for hidden in arch.widths:
        layers += [nn.Linear(width, hidden), ACTIVATIONS[arch.activation](), nn.Dropout(arch.dropout)]
        width = hidden
    layers.append(nn.Linear(width, n_outputs))
    return nn.Sequential(*layers)
