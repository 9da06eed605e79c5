"""The search space: named, typed genes in the chromosome's order (the order of crossover and of tables).

A genotype is a mapping from gene names to values (``Candidate.hparams``). The seed's four genes
(``n_layers``, ``hidden_size``, ``activation`` through a tree, ``dropout``) are a configuration
(``configs/sinewave.yaml``), not code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from workflow.space.genes import CategoricalGene, Dimension, FloatGene, Gene, IntGene, LayersGene, Value, bound
from workflow.space.tree import DEFAULT_ACTIVATION_TREE, CategoryTree

__all__ = ["DEFAULT_ACTIVATION_TREE", "CategoricalGene", "CategoryTree", "Condition", "Dimension", "FloatGene",
           "Gene", "IntGene", "LayersGene", "SearchSpace", "Value", "bound"]


#: A conditional gene's rule: each parent (a categorical gene declared before it) and the values it must have.
Condition = tuple[tuple[str, tuple[Value, ...]], ...]


@dataclass(frozen=True)
class SearchSpace:
    """The genes, in order, and the conditions of conditional genes (``when``).

    A conditional gene is active when every parent it names is active and has one of the given values. The
    chromosome (``Candidate.hparams``) always holds every gene, so the GA can bring an inactive one back; what
    the objective sees (:meth:`active`) and what BO's model sees leave the inactive ones out.
    """

    genes: tuple[Gene, ...]
    #: (gene name, its condition), in gene order; genes not named here are always active.
    conditions: tuple[tuple[str, Condition], ...] = ()

    def inactive(self, hparams: Mapping[str, Any]) -> set[str]:
        """The conditional genes that ``hparams`` switches off (parents come first, so one pass decides)."""
        off: set[str] = set()
        for name, condition in self.conditions:
            if any(parent in off or hparams.get(parent) not in values for parent, values in condition):
                off.add(name)
        return off

    def active(self, hparams: Mapping[str, Any]) -> dict[str, Any]:
        """``hparams`` without the genes it switches off (what the objective is given)."""
        if not self.conditions:
            return dict(hparams)
        off = self.inactive(hparams)
        return {name: value for name, value in hparams.items() if name not in off}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(gene.name for gene in self.genes)

    def gene(self, name: str) -> Gene:
        for gene in self.genes:
            if gene.name == name:
                return gene
        raise KeyError(name)

    @property
    def tree_genes(self) -> tuple[CategoricalGene, ...]:
        """The categorical genes mutated through a tree (their base can adapt)."""
        return tuple(g for g in self.genes if isinstance(g, CategoricalGene) and g.tree is not None)

    def problem(self, hparams: Mapping[str, Any]) -> str | None:
        """Why ``hparams`` is not a configuration of this space (None: it is). Inactive conditional genes may be
        left out (see :meth:`complete`)."""
        unknown = [name for name in hparams if name not in self.names]
        if unknown:
            return f"{unknown[0]} is not a gene of the space (genes: {', '.join(self.names)})"
        off = self.inactive(hparams)
        for gene in self.genes:
            if gene.name not in hparams:
                if gene.name in off:
                    continue
                return f"gene {gene.name} is missing ({gene.describe()})"
            if not gene.contains(_as_gene_type(gene, hparams[gene.name])):
                return f"{gene.name}={hparams[gene.name]!r} is out of range ({gene.describe()})"
        return None

    def complete(self, hparams: Mapping[str, Any]) -> dict[str, Value]:
        """A configuration that :meth:`problem` accepts as a whole chromosome, in gene order: inactive genes left
        out get their neutral value (the objective does not see them)."""
        return {gene.name: gene.canonical(_as_gene_type(gene, hparams[gene.name])) if gene.name in hparams
                else gene.neutral() for gene in self.genes}

    def sample(self, rng: np.random.Generator) -> dict[str, Value]:
        """A uniform draw of every gene, in order."""
        return {gene.name: gene.sample(rng) for gene in self.genes}

    def contains(self, hparams: Mapping[str, Any]) -> bool:
        return set(hparams) == set(self.names) and all(g.contains(hparams[g.name]) for g in self.genes)

    def canonical(self, hparams: Mapping[str, Any]) -> dict[str, Value]:
        """``hparams`` in gene order with plain Python values."""
        return {gene.name: gene.canonical(hparams[gene.name]) for gene in self.genes}

    def cells(self, hparams: Mapping[str, Any]) -> dict[str, Any]:
        """The genes as table cells (a layers gene as ``64-32-16``), in gene order."""
        return {gene.name: gene.cell(hparams[gene.name]) if gene.name in hparams else "" for gene in self.genes}


def _as_gene_type(gene: Gene, value: Any) -> Any:
    """A float gene accepts an int written without a point (``dropout: 0``)."""
    if isinstance(gene, FloatGene) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value
