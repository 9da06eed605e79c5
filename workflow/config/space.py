"""The ``space`` section: named, typed genes in the chromosome's order, and building the search space from it.

```yaml
space:
  layers:        {type: layers, min_layers: 1, max_layers: 5, low: 16, high: 128, step: 16, resize_prob: 0.2}
  activation:    {type: categorical, tree: {rectifier: [relu, elu], saturating: [sigmoid, tanh]}, base: 2}
  dropout:       {type: float, low: 0.0, high: 0.5, sigma: 0.15}
  learning_rate: {type: float, low: 1.0e-4, high: 1.0e-1, log: true, sigma: 0.5}
  batch_size:    {type: int, low: 32, high: 256, step: 32, mutation_step: 64}
  optimizer:     {type: categorical, choices: [adam, adamw, sgd, rmsprop]}
  momentum:      {type: float, low: 0.0, high: 0.99, when: {optimizer: [sgd]}}
```

An int gene's (and a layers gene's widths') ``step`` is a grid: the values are ``low + k * step`` up to ``high``,
as Optuna's ``suggest_int(step=...)`` (with ``log``, only step 1). The GA's mutation width is ``mutation_step``
(default: ``step``): a mutation adds ``U{-mutation_step..mutation_step}`` and snaps to the grid. Configs before
version 2 (no top-level ``version: 2``) meant the mutation width by ``step``: :mod:`workflow.config.legacy`
reads them that way. ``when: {gene: [values]}``: the gene is active only when that categorical gene (declared
before it) has one of the values. Defaults: a float gene's ``sigma`` is a tenth of its range (0.5 with ``log``);
a tree's ``base`` is 2. Without a ``space`` section the space is the seed's four genes.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from workflow.errors import ConfigError
from workflow.space import (
    DEFAULT_ACTIVATION_TREE,
    CategoricalGene,
    CategoryTree,
    Condition,
    FloatGene,
    Gene,
    IntGene,
    LayersGene,
    SearchSpace,
)

#: A gene's name reaches tables, W&B, placeholders and keyword arguments: an identifier.
GENE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
#: Names a command's placeholders, a function's context and the results table already use.
RESERVED_NAMES = ("name", "seed", "workdir", "attempt", "search", "island", "generation", "index", "status",
                  "fitness", "seconds", "job_id", "reason")

Scalar = str | bool | int | float


class _Gene(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: A conditional gene: active only when each named categorical gene (declared before) has one of the values.
    when: dict[str, tuple[Scalar, ...]] | None = None


class IntGeneConfig(_Gene):
    type: Literal["int"]
    low: int
    high: int
    #: The grid: values are low + k * step (as Optuna's suggest_int(step=...)).
    step: int = 1
    #: The GA's mutation adds U{-w..w} (with log: a factor ((low + w) / low) ** U(-1, 1)). Default: step.
    mutation_step: int | None = None
    log: bool = False


class FloatGeneConfig(_Gene):
    type: Literal["float"]
    low: float
    high: float
    #: Mutation adds N(0, sigma) (with log: multiplies by exp(N(0, sigma))). Default: a tenth of the range.
    sigma: float | None = None
    log: bool = False


class CategoricalGeneConfig(_Gene):
    type: Literal["categorical"]
    #: The values; a mutation draws uniformly among the others.
    choices: tuple[Scalar, ...] | None = None
    #: Or: the values as the leaves of a tree; a mutation draws through the seed's distance on it.
    tree: Any = None
    #: The tree distance's base b (> 1; larger explores more).
    base: float = 2.0


class LayersGeneConfig(_Gene):
    type: Literal["layers"]
    min_layers: int = 1
    max_layers: int
    low: int
    high: int
    #: The widths' grid: low + k * step.
    step: int = 1
    #: The GA's mutation adds U{-w..w} to each width. Default: step.
    mutation_step: int | None = None
    #: Probability that a mutation adds or removes a layer.
    resize_prob: float = Field(0.2, ge=0, le=1)


GeneConfig = Annotated[IntGeneConfig | FloatGeneConfig | CategoricalGeneConfig | LayersGeneConfig,
                       Field(discriminator="type")]
#: Each gene type's name and its section.
GENE_TYPES: dict[str, type[BaseModel]] = {"int": IntGeneConfig, "float": FloatGeneConfig,
                                          "categorical": CategoricalGeneConfig, "layers": LayersGeneConfig}


def seed_space() -> dict[str, GeneConfig]:
    """The seed's space: 1..5 layers (step 2), 16..128 units (step 16), six activations in a tree, dropout."""
    return {
        "n_layers": IntGeneConfig(type="int", low=1, high=5, mutation_step=2),
        "hidden_size": IntGeneConfig(type="int", low=16, high=128, mutation_step=16),
        "activation": CategoricalGeneConfig(type="categorical", tree=DEFAULT_ACTIVATION_TREE, base=2.0),
        "dropout": FloatGeneConfig(type="float", low=0.0, high=0.5, sigma=0.15),
    }


def build_gene(name: str, spec: GeneConfig) -> Gene:
    """The gene ``spec`` declares, checked (raises :class:`ConfigError` naming ``space.<name>``)."""
    key = f"space.{name}"
    if not GENE_NAME.match(name) or name in RESERVED_NAMES:
        raise ConfigError("space", name, "gene names are identifiers (letters, digits, '_', not starting with a "
                          f"digit), other than {', '.join(RESERVED_NAMES)}")
    if isinstance(spec, (IntGeneConfig, FloatGeneConfig, LayersGeneConfig)) and spec.low > spec.high:
        raise ConfigError(key, [spec.low, spec.high], "low must be <= high")
    if isinstance(spec, IntGeneConfig):
        mutation = _steps(key, spec)
        if spec.log and spec.low <= 0:
            raise ConfigError(f"{key}.low", spec.low, "must be > 0 with log: true")
        if spec.log and spec.step != 1:
            raise ConfigError(f"{key}.step", spec.step, "a grid step needs log: false (as Optuna's suggest_int); "
                              "for the GA's mutation width use mutation_step")
        return IntGene(name, spec.low, spec.high, mutation, spec.log, spec.step)
    if isinstance(spec, FloatGeneConfig):
        if spec.log and spec.low <= 0:
            raise ConfigError(f"{key}.low", spec.low, "must be > 0 with log: true")
        sigma = spec.sigma if spec.sigma is not None else (0.5 if spec.log else (spec.high - spec.low) / 10)
        if spec.sigma is not None:
            _positive(f"{key}.sigma", spec.sigma)
        return FloatGene(name, float(spec.low), float(spec.high), float(sigma), spec.log)
    if isinstance(spec, LayersGeneConfig):
        mutation = _steps(key, spec)
        if spec.min_layers < 1:
            raise ConfigError(f"{key}.min_layers", spec.min_layers, "must be >= 1")
        if spec.min_layers > spec.max_layers:
            raise ConfigError(f"{key}.min_layers", spec.min_layers, f"must be <= max_layers ({spec.max_layers})")
        if spec.low < 1:
            raise ConfigError(f"{key}.low", spec.low, "must be >= 1 (a layer has at least one unit)")
        return LayersGene(name, spec.min_layers, spec.max_layers, spec.low, spec.high, mutation, spec.resize_prob,
                          spec.step)
    return _categorical(name, spec)


def _categorical(name: str, spec: CategoricalGeneConfig) -> CategoricalGene:
    key = f"space.{name}"
    if (spec.choices is None) == (spec.tree is None):
        raise ConfigError(key, "-", "a categorical gene needs exactly one of choices (a list) or tree")
    if spec.base <= 1:
        raise ConfigError(f"{key}.base", spec.base, "must be > 1 (larger explores more)")
    if spec.tree is not None:
        try:
            tree = CategoryTree(spec.tree)
        except ValueError as exc:
            raise ConfigError(f"{key}.tree", spec.tree, str(exc)) from None
        return CategoricalGene(name, tree.leaves, tree, spec.base)
    choices = tuple(spec.choices or ())
    if not choices:
        raise ConfigError(f"{key}.choices", [], "must list at least one value")
    if len(set(map(repr, choices))) != len(choices):
        raise ConfigError(f"{key}.choices", list(choices), "each value at most once")
    return CategoricalGene(name, choices)


def _steps(key: str, spec: IntGeneConfig | LayersGeneConfig) -> int:
    """The gene's mutation width, with its grid ``step`` and the width checked."""
    _positive(f"{key}.step", spec.step)
    if spec.mutation_step is None:
        return spec.step
    _positive(f"{key}.mutation_step", spec.mutation_step)
    return spec.mutation_step


def _positive(key: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(key, value, "must be > 0")


def build_space(genes: dict[str, GeneConfig]) -> SearchSpace:
    """The search space of a ``space`` section (raises :class:`ConfigError`)."""
    if not genes:
        raise ConfigError("space", {}, "declare at least one gene")
    built = tuple(build_gene(name, spec) for name, spec in genes.items())
    return SearchSpace(built, _conditions(built, genes))


def _conditions(built: tuple[Gene, ...], genes: dict[str, GeneConfig]) -> tuple[tuple[str, Condition], ...]:
    """Each conditional gene's ``when``, checked: parents are categorical genes declared before it, with values
    among their choices."""
    out = []
    before: dict[str, Gene] = {}
    for gene in built:
        when = genes[gene.name].when
        if when is not None:
            key = f"space.{gene.name}.when"
            if not when:
                raise ConfigError(key, {}, "name at least one categorical gene and its values")
            condition = []
            for parent, values in when.items():
                if parent == gene.name:
                    raise ConfigError(key, parent, "a gene cannot depend on itself")
                target = before.get(parent)
                if target is None:
                    where = "is declared after it" if parent in genes else "is not a gene"
                    raise ConfigError(key, parent, f"{where}; a condition names a categorical gene declared "
                                      f"before {gene.name} ({', '.join(before) or 'none'})")
                if not isinstance(target, CategoricalGene):
                    raise ConfigError(key, parent, f"is a {target.type} gene; a condition names a categorical gene")
                unknown = [v for v in values if not target.contains(v)]
                if unknown or not values:
                    raise ConfigError(f"{key}.{parent}", list(values),
                                      f"must list values of {parent} ({', '.join(map(str, target.values))})")
                condition.append((parent, tuple(target.canonical(v) for v in values)))
            out.append((gene.name, tuple(condition)))
        before[gene.name] = gene
    return tuple(out)
