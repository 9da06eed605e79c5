"""Genotypes as points of scikit-optimize's space: the one encoding BO and the GA's surrogate share.

Each gene gives its own dimensions (:meth:`workflow.space.Gene.dimensions`): an int gene an ``Integer``, a float
gene a ``Real`` (log-uniform when the gene is ``log``), a categorical gene a ``Categorical`` of its values (a
tree's leaves in order), a layers gene a depth plus ``max_layers`` widths. A dimension whose bounds are equal is
not searched (skopt rejects empty ranges): it is left out of the points and its value is fixed.

A conditional gene that a point switches off (``when``) is not part of that point for the model: its
coordinates are told as their dimensions' lower bounds (first choice), whatever the chromosome holds, so points
that differ only there are one point to the surrogate. On the way back every gene gets a value (the GA's
chromosome keeps them all); the objective is given only the active ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from skopt.space import Categorical, Integer, Real

from workflow.space import Dimension, SearchSpace


class Encoding:
    """The points of ``space`` as skopt sees them: :attr:`free` are skopt's dimensions of the varying ones."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.dims, self.free = skopt_dimensions(space)

    def to_point(self, hparams: dict[str, Any]) -> list[Any]:
        off = self.space.inactive(hparams) if self.space.conditions else set()
        coordinates = [x for gene in self.space.genes for x in (
            _neutral(gene.dimensions()) if gene.name in off else gene.to_point(hparams[gene.name]))]
        return [x for x, dim in zip(coordinates, self.dims) if dim.fixed is None]

    def to_hparams(self, point: Sequence[Any]) -> dict[str, Any]:
        free = iter(point)
        coordinates = [dim.fixed if dim.fixed is not None else plain(next(free), dim) for dim in self.dims]
        hparams, start = {}, 0
        for gene in self.space.genes:
            count = len(gene.dimensions())
            hparams[gene.name] = gene.from_point(coordinates[start:start + count])
            start += count
        return hparams


def _neutral(dims: list[Dimension]) -> list[Any]:
    """An inactive gene's coordinates: each dimension's lower bound (a categorical's first value)."""
    return [dim.choices[0] if dim.kind == "categorical" else dim.low for dim in dims]


def plain(value: Any, dim: Dimension) -> Any:
    """skopt's numpy scalar as a plain value of the dimension, reals kept inside their bounds."""
    if dim.kind == "real":
        return min(max(float(value), dim.low), dim.high)
    if dim.kind == "int":
        return int(value)
    return value.item() if hasattr(value, "item") else value


def skopt_dimensions(space: SearchSpace) -> tuple[list[Dimension], list[Any]]:
    """Every gene's dimensions in order, and skopt's dimensions for those that vary."""
    dims = [dim for gene in space.genes for dim in gene.dimensions()]
    names = [f"{gene.name}[{i}]" if len(gene.dimensions()) > 1 else gene.name
             for gene in space.genes for i in range(len(gene.dimensions()))]
    free: list[Any] = []
    for dim, name in zip(dims, names):
        if dim.fixed is not None:
            continue
        prior = "log-uniform" if dim.log else "uniform"
        if dim.kind == "categorical":
            free.append(Categorical(list(dim.choices), name=name))
        elif dim.kind == "real":
            free.append(Real(float(dim.low), float(dim.high), prior=prior, name=name))
        else:
            free.append(Integer(int(dim.low), int(dim.high), prior=prior, name=name))
    return dims, free
