"""The phenotype: a genotype (:class:`~workflow.records.Hparams`) built into a torch MLP."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from workflow.records import Hparams

#: One constructor per name in :data:`workflow.space.KNOWN_ACTIVATIONS` (a test keeps the two in step).
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


def build_mlp(hp: Hparams, n_inputs: int, n_outputs: int) -> nn.Sequential:
    """``hp.n_layers`` blocks of Linear -> activation -> Dropout(``hp.dropout``), then a Linear output.

    Every block keeps its Dropout module even at ``dropout == 0`` so all genotypes share one layout
    (``net[3 * i]`` is the i-th hidden Linear, ``net[-1]`` the output layer).
    """
    if hp.activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {hp.activation!r}; allowed: {', '.join(ACTIVATIONS)}")
    if hp.n_layers < 0 or hp.hidden_size < 1 or n_inputs < 1 or n_outputs < 1:
        raise ValueError(f"cannot build an MLP with n_layers={hp.n_layers}, hidden_size={hp.hidden_size}, "
                         f"n_inputs={n_inputs}, n_outputs={n_outputs}: sizes must be >= 1 (n_layers >= 0)")
    if not 0.0 <= hp.dropout < 1.0:
        raise ValueError(f"dropout={hp.dropout} must lie in [0, 1)")
    layers: list[nn.Module] = []
    width = n_inputs
    for _ in range(hp.n_layers):
        layers += [nn.Linear(width, hp.hidden_size), ACTIVATIONS[hp.activation](), nn.Dropout(hp.dropout)]
        width = hp.hidden_size
    layers.append(nn.Linear(width, n_outputs))
    return nn.Sequential(*layers)
