"""The search space: integer/real bounds and the activation hierarchy tree. Pure: numpy only.

The activation tree is the seed's idea: activations are the leaves of a hierarchy, the distance between
two leaves is ``d_b(l1, l2) = log_b(hops(l1, l2))`` and a mutation draws the new activation with
probability ``p ~ 2^(-d_b)``, normalised over the leaves.

``hops(l, l) = 0`` would make ``2^(-log_b 0)`` infinite, so the seed's sum is undefined when it includes
the current leaf. We exclude the current leaf: an activation mutation always changes the activation
(whether the activation gene mutates at all is decided by the mutation probability).
Since ``2^(-log_b h) = h^(-log_b 2)``, a larger base flattens the distribution towards uniform
(more exploration), and ``b = 2`` gives ``p ~ 1/hops``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workflow.records import Hparams

#: Activation names the trainer knows how to build. The config rejects any other leaf.
KNOWN_ACTIVATIONS: tuple[str, ...] = (
    "relu", "leaky_relu", "elu", "gelu", "silu", "selu", "mish", "softplus", "sigmoid", "tanh",
    "hardtanh", "identity",
)

#: The default tree (six activations, as in the seed):
#: rectifiers split into piecewise-linear and smooth ones; saturating functions on their own branch.
#: hops: relu-leaky_relu 2, relu-elu 4, relu-tanh 5.
DEFAULT_ACTIVATION_TREE: dict[str, Any] = {
    "rectifier": {
        "piecewise_linear": ["relu", "leaky_relu"],
        "smooth": ["elu", "gelu"],
    },
    "saturating": ["sigmoid", "tanh"],
}

TreeSpec = Mapping[str, Any] | Sequence[Any]


class ActivationTree:
    """A rooted tree whose leaves are activation names.

    Built from nested YAML: a mapping of inner-node names to subtrees, or a list of leaves (strings) and
    subtrees. Leaves keep their left-to-right order, which is also the integer encoding used by BO.
    """

    def __init__(self, spec: TreeSpec) -> None:
        self._paths: dict[str, tuple[str, ...]] = {}
        self._walk(spec, ("<root>",))
        if not self._paths:
            raise ValueError("the activation tree has no leaves")
        self.leaves: tuple[str, ...] = tuple(self._paths)

    def _walk(self, node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, str):
            if node in self._paths:
                raise ValueError(f"activation {node!r} appears twice in the tree")
            self._paths[node] = path + (node,)
        elif isinstance(node, Mapping):
            for key, child in node.items():
                if child is None or child == [] or child == {}:
                    self._walk(str(key), path)  # `relu: {}` or `relu:` is a leaf
                else:
                    self._walk(child, path + (str(key),))
        elif isinstance(node, Sequence):
            for i, child in enumerate(node):
                # Anonymous inner nodes in lists get a positional name so paths stay distinct.
                self._walk(child, path if isinstance(child, str) else path + (f"#{i}",))
        else:
            raise ValueError(f"activation tree node {node!r} is neither a name, a list nor a mapping")

    def hops(self, a: str, b: str) -> int:
        """Number of edges on the path between leaves ``a`` and ``b`` (0 when equal)."""
        pa, pb = self._paths[a], self._paths[b]
        common = 0
        for x, y in zip(pa, pb):
            if x != y:
                break
            common += 1
        return (len(pa) - common) + (len(pb) - common)

    def probabilities(self, current: str, base: float) -> dict[str, float]:
        """The seed's mutation distribution from ``current`` over the other leaves (current excluded)."""
        if base <= 1:
            raise ValueError(f"activation base must be > 1, got {base}")
        others = [leaf for leaf in self.leaves if leaf != current]
        if not others:
            return {current: 1.0}
        weights = [2.0 ** (-math.log(self.hops(current, leaf), base)) for leaf in others]
        total = sum(weights)
        return {leaf: w / total for leaf, w in zip(others, weights)}

    def mutate(self, current: str, base: float, rng: np.random.Generator) -> str:
        """Draw a new activation from :meth:`probabilities`."""
        probs = self.probabilities(current, base)
        names = list(probs)
        return names[int(rng.choice(len(names), p=np.array([probs[n] for n in names])))]


@dataclass(frozen=True)
class SearchSpace:
    """Bounds of the four genes plus the activation tree."""

    n_layers: tuple[int, int]
    hidden_size: tuple[int, int]
    dropout: tuple[float, float]
    tree: ActivationTree

    @property
    def activations(self) -> tuple[str, ...]:
        return self.tree.leaves

    def sample(self, rng: np.random.Generator) -> Hparams:
        """A uniform draw over the space (integers inclusive)."""
        return Hparams(
            n_layers=int(rng.integers(self.n_layers[0], self.n_layers[1] + 1)),
            hidden_size=int(rng.integers(self.hidden_size[0], self.hidden_size[1] + 1)),
            activation=self.activations[int(rng.integers(len(self.activations)))],
            dropout=float(rng.uniform(self.dropout[0], self.dropout[1])),
        )

    def contains(self, hp: Hparams) -> bool:
        return (
            self.n_layers[0] <= hp.n_layers <= self.n_layers[1]
            and self.hidden_size[0] <= hp.hidden_size <= self.hidden_size[1]
            and self.dropout[0] <= hp.dropout <= self.dropout[1]
            and hp.activation in self.activations
        )


def bound(value: float, low: float, high: float, mode: str) -> float:
    """Keep ``value`` inside ``[low, high]``: ``clip`` to the nearest bound or ``reflect`` off it.

    Reflection avoids piling mutants on the bounds; clipping (the default) keeps the seed's behaviour,
    where e.g. dropout 0 was often the best value and is reachable exactly.
    """
    if low == high:
        return low
    if mode == "clip":
        return min(max(value, low), high)
    span = high - low
    offset = (value - low) % (2 * span)
    return low + (offset if offset <= span else 2 * span - offset)
