"""Typed genes: bounds, the distributions of their mutations, variable-length crossover, BO and random search on
every type, a property test over random spaces, and the adaptive tree base."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chisquare, kstest

from workflow.config import from_mapping, load_config
from workflow.core import make_optimizer
from workflow.core.operators import mutate, two_point_crossover
from workflow.errors import ConfigError
from workflow.records import Candidate, Evaluated, Result
from workflow.space import CategoricalGene, FloatGene, IntGene, LayersGene, SearchSpace
from workflow.store.results import read_results_csv, write_results_file

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
TYPED = load_config(ROOT / "configs" / "typed_genes.yaml")

INT = IntGene("width", 16, 128, step=16)
LOG_INT = IntGene("batch_size", 16, 256, step=32, log=True)
FLOAT = FloatGene("dropout", 0.0, 0.5, sigma=0.15)
LOG_FLOAT = FloatGene("learning_rate", 1e-4, 1e-1, sigma=0.5, log=True)
CHOICE = CategoricalGene("optimizer", ("adam", "adamw", "sgd", "rmsprop"))
LAYERS = LayersGene("layers", 1, 5, 16, 128, step=16, resize_prob=0.2)


def _mutants(gene, value, n=4000, seed=0, bound_handling="clip"):
    rng = np.random.default_rng(seed)
    return [gene.mutate(value, gene.draw(rng), rng, base=None, bound_handling=bound_handling) for _ in range(n)]


# ----------------------------------------------------------------------------------------------- per type


@pytest.mark.parametrize("gene, value", [(INT, 120), (INT, 16), (LOG_INT, 250), (LOG_INT, 16), (FLOAT, 0.49),
                                         (LOG_FLOAT, 0.09), (LOG_FLOAT, 1.1e-4), (CHOICE, "sgd"),
                                         (LAYERS, [128, 16, 64])])
@pytest.mark.parametrize("mode", ["clip", "reflect"])
def test_a_mutation_never_leaves_the_bounds(gene, value, mode):
    assert all(gene.contains(v) for v in _mutants(gene, value, n=1000, bound_handling=mode))


def test_int_mutation_adds_a_uniform_step():
    moved = Counter(v - 64 for v in _mutants(INT, 64, n=33000))
    assert sorted(moved) == list(range(-16, 17))
    assert chisquare([moved[d] for d in range(-16, 17)]).pvalue > 0.01


def test_log_int_mutation_is_a_log_uniform_factor():
    # log(v'/v) ~ U(-log 3, log 3) for low 16, step 32: ((16 + 32) / 16) ** U(-1, 1); far from the bounds.
    gene = IntGene("n", 1, 10**6, step=2, log=True)
    ratios = np.log(np.array(_mutants(gene, 10**4, n=5000)) / 10**4) / math.log(3)
    assert kstest(ratios, "uniform", args=(-1, 2)).pvalue > 0.01


def test_float_mutation_adds_a_normal_draw():
    gene = FloatGene("x", -100.0, 100.0, sigma=0.15)
    assert kstest(np.array(_mutants(gene, 0.0, n=5000)), "norm", args=(0, 0.15)).pvalue > 0.01


def test_log_float_mutation_is_multiplicative():
    gene = FloatGene("x", 1e-9, 1e9, sigma=0.5, log=True)
    assert kstest(np.log(np.array(_mutants(gene, 1.0, n=5000))), "norm", args=(0, 0.5)).pvalue > 0.01


def test_plain_categorical_mutation_draws_uniformly_among_the_others():
    counts = Counter(_mutants(CHOICE, "adam", n=9000))
    assert set(counts) == {"adamw", "sgd", "rmsprop"}
    assert chisquare(list(counts.values())).pvalue > 0.01


def test_any_categorical_may_have_a_tree_with_its_own_base():
    space = TYPED.search_space()
    gene = space.gene("optimizer")
    assert gene.tree is not None and set(gene.values) == {"adam", "adamw", "rmsprop", "sgd"}
    counts = Counter(_mutants(gene, "adam", n=20000))
    probs = gene.tree.probabilities("adam", 2.0)
    assert chisquare([counts[v] for v in probs], [p * 20000 for p in probs.values()]).pvalue > 0.01
    assert counts["adamw"] > counts["rmsprop"] > counts["sgd"]  # nearer in the tree, likelier


def test_sampling_log_genes_is_log_uniform():
    rng = np.random.default_rng(3)
    draws = np.log10([LOG_FLOAT.sample(rng) for _ in range(4000)])
    assert kstest(draws, "uniform", args=(-4, 3)).pvalue > 0.01
    ints = [LOG_INT.sample(rng) for _ in range(4000)]
    assert min(ints) == 16 and max(ints) == 256
    assert sum(v < 64 for v in ints) > sum(v >= 64 for v in ints)  # half of log-space lies below 64


def test_layers_mutation_perturbs_widths_and_resizes():
    value = [64, 64, 64]
    kids = _mutants(LAYERS, value, n=4000)
    lengths = Counter(len(k) for k in kids)
    assert set(lengths) == {2, 3, 4}
    assert lengths[3] / 4000 == pytest.approx(0.8, abs=0.03)  # resize_prob 0.2, add or remove
    assert {w - 64 for k in kids if len(k) == 3 for w in k} == set(range(-16, 17))
    added = [k for k in kids if len(k) == 4]
    assert added and all(any(k[i] == k[i + 1] for i in range(3)) for k in added)  # a copy of a neighbour
    at_bounds = _mutants(LayersGene("l", 2, 2, 16, 128, 16, resize_prob=1.0), [32, 32], n=200)
    assert all(len(k) == 2 for k in at_bounds)  # no room to resize: the length stays


def test_layers_crossover_gives_valid_lists_of_every_length_in_range():
    rng = np.random.default_rng(0)
    a, b = [16, 32, 48, 64], [80, 96]
    lengths: set[int] = set()
    for _ in range(2000):
        c1, c2 = LAYERS.splice(a, b, rng)
        assert LAYERS.contains(c1) and LAYERS.contains(c2)
        assert len(c1) + len(c2) == 6 and sorted(c1 + c2) == sorted(a + b)  # cut and spliced, nothing lost
        lengths |= {len(c1), len(c2)}
    assert lengths == {1, 2, 3, 4, 5}


def test_two_point_crossover_on_a_space_with_a_layers_gene():
    space = TYPED.search_space()
    rng = np.random.default_rng(1)
    a, b = space.sample(rng), space.sample(rng)
    for _ in range(200):
        c1, c2 = two_point_crossover(a, b, space, rng)
        assert space.contains(c1) and space.contains(c2) and list(c1) == list(space.names)


# ----------------------------------------------------------------------------------------------- optimizers


def _fitness(hp):
    return (len(hp["layers"]) - 2) ** 2 + abs(math.log10(hp["learning_rate"]) + 2) + hp["dropout"]


@pytest.mark.parametrize("name", ["ga", "bo", "random"])
def test_every_optimizer_proposes_valid_candidates_of_every_type(name):
    config = load_config(ROOT / "configs" / "typed_genes.yaml", [f"optimizer.name={name}", "optimizer.generations=4",
                                                                  "optimizer.bo.initial_points=6"])
    space = config.search_space()
    opt = make_optimizer(config)
    seen = []
    while not opt.finished:
        batch = opt.ask()
        for c in batch:
            assert space.contains(c.hparams), c.hparams
            assert json.loads(json.dumps(c.to_dict())) == c.to_dict()  # plain values, in gene order
            assert list(c.hparams) == list(space.names)
        seen.extend(batch)
        opt.tell([Evaluated(c, Result(c.name, "ok", _fitness(c.hparams))) for c in batch])
    assert len({len(c.hparams["layers"]) for c in seen}) > 1
    assert len({c.hparams["optimizer"] for c in seen}) > 1


def test_bo_gets_a_dimension_per_coordinate_and_ignores_unused_widths():
    from workflow.core.encoding import skopt_dimensions

    dims, free = skopt_dimensions(TYPED.search_space())
    assert [d.kind for d in dims[:5]] == ["int", "int", "int", "int", "int"]  # depth, then max_layers widths
    assert [type(d).__name__ for d in free] == ["Integer"] * 5 + ["Categorical", "Categorical", "Real", "Real",
                                                                  "Integer"]
    assert free[8].prior == "log-uniform" and free[9].prior == "log-uniform"
    assert LAYERS.from_point([2, 16, 32, 48, 64, 80]) == [16, 32]
    assert LAYERS.to_point([16, 32]) == [2, 16, 32, 32, 32, 32]


# ----------------------------------------------------------------------------------------------- properties


def _gene(draw, name):
    kind = draw(st.sampled_from(["int", "float", "categorical", "tree", "layers"]))
    if kind == "int":
        low = draw(st.integers(1, 50))
        return IntGene(name, low, low + draw(st.integers(0, 100)), step=draw(st.integers(1, 20)),
                       log=draw(st.booleans()))
    if kind == "float":
        low = draw(st.floats(1e-3, 10))
        return FloatGene(name, low, low * draw(st.floats(1, 100)), sigma=draw(st.floats(0.01, 2)),
                         log=draw(st.booleans()))
    if kind == "categorical":
        return CategoricalGene(name, tuple(draw(st.lists(st.sampled_from("abcdefg"), min_size=1, max_size=5,
                                                            unique=True))))
    if kind == "tree":
        from workflow.space import CategoryTree

        tree = CategoryTree({"x": ["p", "q"], "y": {"r": None, "s": ["t", "u"]}})
        return CategoricalGene(name, tree.leaves, tree, draw(st.floats(1.1, 20)))
    low = draw(st.integers(1, 64))
    lo_layers = draw(st.integers(1, 3))
    return LayersGene(name, lo_layers, lo_layers + draw(st.integers(0, 4)), low, low + draw(st.integers(0, 64)),
                      step=draw(st.integers(1, 16)), resize_prob=draw(st.floats(0, 1)))


@st.composite
def spaces(draw):
    count = draw(st.integers(1, 6))
    return SearchSpace(tuple(_gene(draw, f"g{i}") for i in range(count)))


@settings(max_examples=60, deadline=None)
@given(space=spaces(), seed=st.integers(0, 2**31 - 1))
def test_any_space_samples_mutates_crosses_and_round_trips(tmp_path_factory, space, seed):
    rng = np.random.default_rng(seed)
    a, b = space.sample(rng), space.sample(rng)
    c1, c2 = two_point_crossover(a, b, space, rng)
    child, mutated = mutate(c1, space, rng, gene_prob=0.7, bound_handling="reflect")
    for genotype in (a, b, c1, c2, child):
        assert space.contains(genotype), genotype
    assert set(mutated) <= set(space.names)
    cand = Candidate("fitness-1-1", child, 1, 1, "ga", seed=3)
    back = Candidate.from_dict(json.loads(json.dumps(cand.to_dict())))
    assert space.canonical(back.hparams) == child and back == cand
    path = write_results_file(tmp_path_factory.mktemp("r") / "results.csv", space,
                              [Evaluated(cand, Result(cand.name, "ok", 0.5))])
    row = read_results_csv(path)[0]
    for gene in space.genes:
        assert row[gene.name] == str(gene.cell(child[gene.name]))


# ----------------------------------------------------------------------------------------------- config


@pytest.mark.parametrize("gene, message", [
    ({"type": "cube"}, "space.g.type='cube': a gene's type is one of int, float, categorical, layers"),
    ({"type": "int", "low": 1, "high": 4, "sigma": 1}, "space.g.sigma=1: unknown key; allowed: type, low, high, "
                                                        "step, mutation_step, log, when"),
    ({"type": "int", "low": 5, "high": 1}, "space.g=[5, 1]: low must be <= high"),
    ({"type": "int", "low": 1, "high": 5, "step": 0}, "space.g.step=0: must be > 0"),
    ({"type": "float", "low": 0.1, "high": 1, "sigma": -1}, "space.g.sigma=-1.0: must be > 0"),
    ({"type": "float", "low": 0, "high": 1, "log": True}, "space.g.low=0.0: must be > 0 with log: true"),
    ({"type": "categorical", "choices": []}, "space.g.choices=[]: must list at least one value"),
    ({"type": "categorical", "tree": {"a": ["x", "y"], "b": ["x"]}},
     "space.g.tree={'a': ['x', 'y'], 'b': ['x']}: leaf 'x' appears twice in the tree"),
    ({"type": "categorical", "choices": ["x"], "tree": ["x"]},
     "space.g='-': a categorical gene needs exactly one of choices (a list) or tree"),
    ({"type": "layers", "min_layers": 4, "max_layers": 2, "low": 8, "high": 16},
     "space.g.min_layers=4: must be <= max_layers (2)"),
])
def test_bad_genes_are_one_line_each(gene, message):
    with pytest.raises(ConfigError) as info:
        from_mapping({"version": 2, "objective": {"kind": "python", "function": "m:f"}, "space": {"g": gene}})
    assert str(info.value) == f"config error: {message}"


@pytest.mark.parametrize("name", ["2x", "a-b", "name", "seed", "workdir"])
def test_gene_names_are_safe_identifiers(name):
    with pytest.raises(ConfigError) as info:
        from_mapping({"objective": {"kind": "python", "function": "m:f"},
                      "space": {name: {"type": "int", "low": 1, "high": 2}}})
    assert str(info.value).startswith(f"config error: space={name!r}: gene names are identifiers (letters, digits, "
                                      "'_', not starting with a digit), other than name, seed, workdir, attempt, ")


def test_the_built_in_mlp_names_the_genes_it_understands():
    with pytest.raises(ConfigError) as info:
        from_mapping({"space": {"n_layers": {"type": "int", "low": 1, "high": 3},
                                "hidden_size": {"type": "int", "low": 8, "high": 16},
                                "activation": {"type": "categorical", "choices": ["relu"]},
                                "momentum": {"type": "float", "low": 0, "high": 1}}})
    assert str(info.value).startswith("config error: space.momentum='float': unknown gene for objective.kind=mlp; "
                                      "the built-in MLP understands: n_layers, hidden_size, layers, activation, ")
    with pytest.raises(ConfigError, match=r"space.activation='<missing>': the built-in MLP needs it"):
        from_mapping({"space": {"layers": {"type": "layers", "max_layers": 2, "low": 8, "high": 16}}})
    with pytest.raises(ConfigError, match="space.optimizer='lbfgs': unknown optimizer; allowed: adam, adamw"):
        from_mapping({"space": {**from_mapping({}).to_plain()["space"],
                                "optimizer": {"type": "categorical", "choices": ["adam", "lbfgs"]}}})


# ----------------------------------------------------------------------------------------------- adaptive base


def _adaptive_run(improves: bool, generations: int = 12) -> list[float]:
    """Bases of the activation gene per generation on a stub landscape where changing the activation always
    helps (each child beats its parents) or never does (each child is worse)."""
    config = from_mapping({"seed": 2, "optimizer": {"population_size": 8, "generations": generations,
                                                     "ga": {"adapt_base": True, "mutation_prob": 0.5}}})
    opt = make_optimizer(config)
    bases, step = [], 0
    while not opt.finished:
        batch = opt.ask()
        step += 1
        fitness = 100.0 - step if improves else 100.0 + step
        opt.tell([Evaluated(c, Result(c.name, "ok", fitness)) for c in batch])
        bases.append(opt.journal_state()["bases"]["activation"])
    return bases


def test_adaptive_base_shrinks_when_mutations_help_and_grows_when_they_do_not():
    helping, useless = _adaptive_run(True), _adaptive_run(False)
    assert helping[0] == 2.0 and useless[0] == 2.0  # generation 1 is a random sample: nothing to learn from
    assert helping[-1] < 2.0 and helping[-1] == pytest.approx(1.1)  # down to base_min
    assert useless[-1] > 2.0 and all(a <= b for a, b in zip(useless, useless[1:]))
    assert max(useless) <= 100.0
