"""A hierarchy tree over a categorical gene's values, and the seed's mutation through distances on it.

The seed's idea, for the activation function (and here for any categorical gene): the values are the leaves
of a hierarchy, the distance between two leaves is ``d_b(l1, l2) = log_b(hops(l1, l2))`` and a mutation draws
the new value with probability ``p ~ 2^(-d_b)``, normalised over the leaves.

``hops(l, l) = 0`` would make ``2^(-log_b 0)`` infinite, so the seed's sum is undefined when it includes the
current leaf. We exclude the current leaf: a mutation of a tree gene always changes its value (whether the
gene mutates at all is decided by the mutation probability). Since ``2^(-log_b h) = h^(-log_b 2)``, a larger
base flattens the distribution towards uniform (more exploration), and ``b = 2`` gives ``p ~ 1/hops``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

TreeSpec = Mapping[str, Any] | Sequence[Any]

#: The seed's activation tree (six activations): rectifiers split into piecewise-linear and smooth ones,
#: saturating functions on their own branch. hops: relu-leaky_relu 2, relu-elu 4, relu-tanh 5.
DEFAULT_ACTIVATION_TREE: dict[str, Any] = {
    "rectifier": {
        "piecewise_linear": ["relu", "leaky_relu"],
        "smooth": ["elu", "gelu"],
    },
    "saturating": ["sigmoid", "tanh"],
}


class CategoryTree:
    """A rooted tree whose leaves are a categorical gene's values.

    Built from nested YAML: a mapping of inner-node names to subtrees, or a list of leaves (strings) and
    subtrees. Leaves keep their left-to-right order, which is also their order as a BO dimension.
    """

    def __init__(self, spec: TreeSpec) -> None:
        self._paths: dict[str, tuple[str, ...]] = {}
        self._walk(spec, ("<root>",))
        if not self._paths:
            raise ValueError("the tree has no leaves")
        self.leaves: tuple[str, ...] = tuple(self._paths)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CategoryTree) and self._paths == other._paths

    def __hash__(self) -> int:
        return hash(tuple(self._paths.items()))

    def __repr__(self) -> str:
        return f"CategoryTree(leaves={list(self.leaves)})"

    def _walk(self, node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, str):
            if node in self._paths:
                raise ValueError(f"leaf {node!r} appears twice in the tree")
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
            raise ValueError(f"tree node {node!r} is neither a name, a list nor a mapping")

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
            raise ValueError(f"the tree's base must be > 1, got {base}")
        others = [leaf for leaf in self.leaves if leaf != current]
        if not others:
            return {current: 1.0}
        weights = [2.0 ** (-math.log(self.hops(current, leaf), base)) for leaf in others]
        total = sum(weights)
        return {leaf: w / total for leaf, w in zip(others, weights)}

    def mutate(self, current: str, base: float, rng: np.random.Generator) -> str:
        """Draw a new leaf from :meth:`probabilities`."""
        probs = self.probabilities(current, base)
        names = list(probs)
        return names[int(rng.choice(len(names), p=np.array([probs[n] for n in names])))]
