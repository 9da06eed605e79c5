"""Typed genes: each type owns its sampling, mutation, bounds, table cell and BO dimensions. Pure: numpy only.

- :class:`IntGene` ``low..high``, on the grid ``low + k * grid`` (Optuna's ``suggest_int(step=grid)``; the
  config's ``step``): mutation adds ``U{-step..step}`` (the dataclass's ``step`` is the GA's mutation width, the
  config's ``mutation_step``) and snaps to the nearest grid value; with ``log`` (grid 1 only) it is
  multiplicative, a factor ``((low + step) / low) ** u`` with ``u ~ U(-1, 1)``, so it moves by about ``step`` at
  the low end and in proportion above; sampled log-uniformly.
- :class:`FloatGene` ``[low, high]``: mutation adds ``N(0, sigma)``; with ``log`` it multiplies by
  ``exp(N(0, sigma))`` (``sigma`` in log units); sampled log-uniformly.
- :class:`CategoricalGene`: ``choices`` (a mutation draws uniformly among the other values) or a ``tree``
  (the seed's distance, see :mod:`workflow.space.tree`, with the gene's ``base``).
- :class:`LayersGene`: a variable-length list of widths (the seed's "variable length chromosomes"), each on the
  grid ``low + k * grid``. Mutation perturbs each width like an int gene, then with ``resize_prob`` adds a layer
  (a copy of a neighbour) or removes one; crossover cuts both lists and splices them (:meth:`LayersGene.splice`),
  lengths kept in range.

Mutation happens in two phases so that the generator's stream does not depend on which genes mutate: every
gene first makes its unconditional draw (:meth:`Gene.draw`: the integer or normal perturbation), then the
genes that mutate make their conditional ones (a category's new value, a layers gene's changes). For the seed's
four genes this is exactly the order of draws of the seed's own GA, so its runs reproduce.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from workflow.space.tree import CategoryTree

Value = Any  # int | float | str | bool | list[int], as the journal stores it


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


def on_grid(value: float, low: int, high: int, grid: int) -> int:
    """``value`` rounded to the nearest of ``low, low + grid, ...`` not above ``high`` (grid 1: plain rounding)."""
    if grid == 1:
        return int(round(value))
    top = low + (high - low) // grid * grid
    return int(min(max(low + round((value - low) / grid) * grid, low), top))


def grid_size(low: int, high: int, grid: int) -> int:
    """How many values ``low + k * grid`` lie in ``low..high``."""
    return (high - low) // grid + 1


@dataclass(frozen=True)
class Dimension:
    """One coordinate of a gene as a BO dimension (scikit-optimize's Integer, Real or Categorical)."""

    kind: str  # "int", "real" or "categorical"
    low: float = 0
    high: float = 0
    log: bool = False
    choices: tuple[Value, ...] = ()

    @property
    def fixed(self) -> Value | None:
        """The only value of a dimension that cannot vary (skopt refuses empty ranges), else None."""
        if self.kind == "categorical":
            return self.choices[0] if len(self.choices) == 1 else None
        return self.low if self.low == self.high else None


class Gene:
    """A named, typed gene. Subclasses are frozen dataclasses; every draw comes from the generator given."""

    name: str
    type: ClassVar[str]

    def sample(self, rng: np.random.Generator) -> Value:
        """A uniform draw (log-uniform for log genes)."""
        raise NotImplementedError

    def draw(self, rng: np.random.Generator) -> Any:
        """The unconditional part of a mutation, drawn for every child whether this gene mutates or not."""
        return None

    def mutate(self, value: Value, drawn: Any, rng: np.random.Generator, *, base: float | None,
               bound_handling: str) -> Value:
        """``value`` mutated, with ``drawn`` from :meth:`draw` (``base``: a tree gene's current base)."""
        raise NotImplementedError

    def splice(self, a: Value, b: Value, rng: np.random.Generator) -> tuple[Value, Value]:
        """Crossover inside the gene (only variable-length genes have one; others draw nothing)."""
        return a, b

    def contains(self, value: Value) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        """What :meth:`contains` accepts, for an error message."""
        raise NotImplementedError

    def neutral(self) -> Value:
        """A value standing in for an inactive conditional gene a configuration leaves out (its lowest)."""
        raise NotImplementedError

    def canonical(self, value: Value) -> Value:
        """``value`` as a plain Python value of this gene's type (from JSON, numpy or skopt)."""
        return value

    def cell(self, value: Value) -> Any:
        """``value`` in a table cell (``results.csv``, ``top10.md``)."""
        return value

    def dimensions(self) -> list[Dimension]:
        raise NotImplementedError

    def to_point(self, value: Value) -> list[Value]:
        """``value`` as coordinates of :meth:`dimensions` (fixed ones included)."""
        return [value]

    def from_point(self, point: Sequence[Value]) -> Value:
        return self.canonical(point[0])


@dataclass(frozen=True)
class IntGene(Gene):
    name: str
    low: int
    high: int
    #: The GA's mutation width (the config's ``mutation_step``; before config version 2, its ``step``).
    step: int = 1
    log: bool = False
    #: The values are ``low + k * grid`` (the config's ``step``, as Optuna's ``suggest_int(step=...)``).
    grid: int = 1
    type: ClassVar[str] = "int"

    def sample(self, rng: np.random.Generator) -> int:
        if self.grid > 1:
            return self.low + self.grid * int(rng.integers(grid_size(self.low, self.high, self.grid)))
        if not self.log:
            return int(rng.integers(self.low, self.high + 1))
        # Log-uniform over the integers: each integer gets the log-width of [k, k + 1) (clamped against rounding).
        value = int(math.exp(rng.uniform(math.log(self.low), math.log(self.high + 1))))
        return min(max(value, self.low), self.high)

    def draw(self, rng: np.random.Generator) -> float:
        if self.log:
            return float(rng.uniform(-1.0, 1.0))
        return int(rng.integers(-self.step, self.step + 1))

    def mutate(self, value: Value, drawn: Any, rng: np.random.Generator, *, base: float | None,
               bound_handling: str) -> int:
        if self.log:
            moved = value * ((self.low + self.step) / self.low) ** drawn
        else:
            moved = value + drawn
        return on_grid(bound(moved, self.low, self.high, bound_handling), self.low, self.high, self.grid)

    def contains(self, value: Value) -> bool:
        return (isinstance(value, int) and not isinstance(value, bool) and self.low <= value <= self.high
                and (value - self.low) % self.grid == 0)

    def canonical(self, value: Value) -> int:
        return int(value)

    def describe(self) -> str:
        return f"an int in {self.low}..{self.high}" + (f" on the grid {self.low} + k * {self.grid}"
                                                        if self.grid > 1 else "")

    def neutral(self) -> int:
        return self.low

    def dimensions(self) -> list[Dimension]:
        if self.grid > 1:  # BO searches the grid's index k (skopt's Integer has no step)
            return [Dimension("int", 0, grid_size(self.low, self.high, self.grid) - 1)]
        return [Dimension("int", self.low, self.high, self.log)]

    def to_point(self, value: Value) -> list[Value]:
        return [(value - self.low) // self.grid] if self.grid > 1 else [value]

    def from_point(self, point: Sequence[Value]) -> int:
        return self.low + self.grid * int(point[0]) if self.grid > 1 else int(point[0])


@dataclass(frozen=True)
class FloatGene(Gene):
    name: str
    low: float
    high: float
    sigma: float
    log: bool = False
    type: ClassVar[str] = "float"

    def sample(self, rng: np.random.Generator) -> float:
        if self.log:  # clamped: exp(log(x)) is x only up to rounding
            return float(min(max(math.exp(rng.uniform(math.log(self.low), math.log(self.high))), self.low), self.high))
        return float(rng.uniform(self.low, self.high))

    def draw(self, rng: np.random.Generator) -> float:
        # No draw for sigma 0 (a gene that never moves): what configurations of version 0.1 did.
        return float(rng.normal(0.0, self.sigma)) if self.sigma > 0 else 0.0

    def mutate(self, value: Value, drawn: Any, rng: np.random.Generator, *, base: float | None,
               bound_handling: str) -> float:
        if self.log:
            moved = math.exp(bound(math.log(value) + drawn, math.log(self.low), math.log(self.high), bound_handling))
            return float(min(max(moved, self.low), self.high))
        return float(bound(value + drawn, self.low, self.high, bound_handling))

    def contains(self, value: Value) -> bool:
        return isinstance(value, float) and self.low <= value <= self.high

    def canonical(self, value: Value) -> float:
        return float(value)

    def describe(self) -> str:
        return f"a number in [{self.low:g}, {self.high:g}]"

    def neutral(self) -> float:
        return self.low

    def cell(self, value: Value) -> float:
        return float(f"{float(value):.8g}")  # significant digits: a log gene's 1e-4 keeps its precision

    def dimensions(self) -> list[Dimension]:
        return [Dimension("real", self.low, self.high, self.log)]


@dataclass(frozen=True)
class CategoricalGene(Gene):
    name: str
    values: tuple[Value, ...]
    tree: CategoryTree | None = None
    #: The tree's distance base b (larger explores more); the GA may adapt it per generation.
    base: float = 2.0
    type: ClassVar[str] = "categorical"

    def sample(self, rng: np.random.Generator) -> Value:
        return self.values[int(rng.integers(len(self.values)))]

    def mutate(self, value: Value, drawn: Any, rng: np.random.Generator, *, base: float | None,
               bound_handling: str) -> Value:
        if self.tree is not None:
            return self.tree.mutate(value, self.base if base is None else base, rng)
        others = [v for v in self.values if v != value]
        return others[int(rng.integers(len(others)))] if others else value

    def contains(self, value: Value) -> bool:
        return value in self.values

    def describe(self) -> str:
        return "one of " + ", ".join(map(str, self.values))

    def neutral(self) -> Value:
        return self.values[0]

    def canonical(self, value: Value) -> Value:
        for choice in self.values:  # the declared value, with its type (skopt hands back numpy scalars)
            if choice == value and isinstance(choice, bool) == isinstance(value, (bool, np.bool_)):
                return choice
        return value

    def dimensions(self) -> list[Dimension]:
        return [Dimension("categorical", choices=self.values)]


@dataclass(frozen=True)
class LayersGene(Gene):
    """A width per layer; ``min_layers..max_layers`` layers of ``low..high`` units."""

    name: str
    min_layers: int
    max_layers: int
    low: int
    high: int
    #: The GA's mutation width of each layer (the config's ``mutation_step``).
    step: int
    resize_prob: float = 0.2
    #: Widths are ``low + k * grid`` (the config's ``step``).
    grid: int = 1
    type: ClassVar[str] = "layers"

    def sample(self, rng: np.random.Generator) -> list[int]:
        depth = int(rng.integers(self.min_layers, self.max_layers + 1))
        if self.grid > 1:
            count = grid_size(self.low, self.high, self.grid)
            return [self.low + self.grid * int(rng.integers(count)) for _ in range(depth)]
        return [int(rng.integers(self.low, self.high + 1)) for _ in range(depth)]

    def mutate(self, value: Value, drawn: Any, rng: np.random.Generator, *, base: float | None,
               bound_handling: str) -> list[int]:
        widths = [on_grid(bound(w + int(rng.integers(-self.step, self.step + 1)), self.low, self.high,
                                bound_handling), self.low, self.high, self.grid) for w in value]
        if rng.random() < self.resize_prob:
            moves = (["add"] if len(widths) < self.max_layers else []) + (
                ["remove"] if len(widths) > self.min_layers else [])
            if moves:
                move = moves[int(rng.integers(len(moves)))]
                if move == "add":
                    at = int(rng.integers(len(widths) + 1))
                    widths.insert(at, widths[min(at, len(widths) - 1)])  # a copy of a neighbour
                else:
                    del widths[int(rng.integers(len(widths)))]
        return widths

    def splice(self, a: Value, b: Value, rng: np.random.Generator) -> tuple[list[int], list[int]]:
        """Cut ``a`` after ``i`` layers and ``b`` after ``j``; children ``a[:i] + b[j:]`` and ``b[:j] + a[i:]``,
        with ``(i, j)`` drawn uniformly among the cuts that keep both within ``min_layers..max_layers``."""
        lo, hi = self.min_layers, self.max_layers
        cuts = [(i, j) for i in range(len(a) + 1) for j in range(len(b) + 1)
                if lo <= i + len(b) - j <= hi and lo <= j + len(a) - i <= hi]
        i, j = cuts[int(rng.integers(len(cuts)))]  # never empty: (len(a), len(b)) keeps both parents' lengths
        return list(a[:i]) + list(b[j:]), list(b[:j]) + list(a[i:])

    def contains(self, value: Value) -> bool:
        return (isinstance(value, list) and self.min_layers <= len(value) <= self.max_layers
                and all(isinstance(w, int) and not isinstance(w, bool) and self.low <= w <= self.high
                        and (w - self.low) % self.grid == 0 for w in value))

    def canonical(self, value: Value) -> list[int]:
        return [int(w) for w in value]

    def describe(self) -> str:
        grid = f" on the grid {self.low} + k * {self.grid}" if self.grid > 1 else ""
        return f"a list of {self.min_layers}..{self.max_layers} widths in {self.low}..{self.high}{grid}"

    def neutral(self) -> list[int]:
        return [self.low] * self.min_layers

    def cell(self, value: Value) -> str:
        return "-".join(str(w) for w in value)

    def dimensions(self) -> list[Dimension]:
        # A depth, then max_layers widths of which the first `depth` are used (the rest are ignored).
        width = (Dimension("int", 0, grid_size(self.low, self.high, self.grid) - 1) if self.grid > 1
                 else Dimension("int", self.low, self.high))
        return [Dimension("int", self.min_layers, self.max_layers)] + [width for _ in range(self.max_layers)]

    def to_point(self, value: Value) -> list[Value]:
        # Unused width coordinates repeat the last layer's width: a neutral continuation for the surrogate.
        widths = [(w - self.low) // self.grid for w in value] if self.grid > 1 else list(value)
        return [len(value), *widths, *[widths[-1]] * (self.max_layers - len(value))]

    def from_point(self, point: Sequence[Value]) -> list[int]:
        depth = int(point[0])
        return [self.low + self.grid * int(w) if self.grid > 1 else int(w) for w in point[1:1 + depth]]
