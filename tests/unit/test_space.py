"""The category tree and its mutation distribution (the seed's d_b = log_b(hops), p ~ 2^(-d_b))."""

import math

import numpy as np
import pytest
from scipy.stats import chisquare

from tests.support import genes
from workflow.config import from_mapping
from workflow.space import DEFAULT_ACTIVATION_TREE, CategoryTree, bound

TREE = CategoryTree(DEFAULT_ACTIVATION_TREE)


def test_default_tree_has_six_leaves_and_graded_hops():
    assert TREE.leaves == ("relu", "leaky_relu", "elu", "gelu", "sigmoid", "tanh")
    assert TREE.hops("relu", "relu") == 0
    assert TREE.hops("relu", "leaky_relu") == 2
    assert TREE.hops("relu", "elu") == 4
    assert TREE.hops("relu", "tanh") == 5
    assert TREE.hops("sigmoid", "tanh") == 2


@pytest.mark.parametrize("base", [1.5, 2.0, 3.0, 10.0])
@pytest.mark.parametrize("current", TREE.leaves)
def test_probabilities_sum_to_one_and_exclude_current(current, base):
    probs = TREE.probabilities(current, base)
    assert current not in probs
    assert set(probs) == set(TREE.leaves) - {current}
    assert math.isclose(sum(probs.values()), 1.0, rel_tol=1e-12)


def test_probability_follows_the_seed_formula():
    probs = TREE.probabilities("relu", 2.0)
    # b = 2: p~ = 2^(-log2 h) = 1/h  -> weights 1/2, 1/4, 1/4, 1/5, 1/5
    weights = {"leaky_relu": 1 / 2, "elu": 1 / 4, "gelu": 1 / 4, "sigmoid": 1 / 5, "tanh": 1 / 5}
    total = sum(weights.values())
    for leaf, w in weights.items():
        assert probs[leaf] == pytest.approx(w / total)


def test_nearer_leaves_are_more_likely():
    for current in TREE.leaves:
        probs = TREE.probabilities(current, 2.0)
        for a in probs:
            for b in probs:
                if TREE.hops(current, a) < TREE.hops(current, b):
                    assert probs[a] > probs[b]


def test_large_base_tends_to_uniform():
    spreads = []
    for base in (1.5, 2, 4, 16, 1e3, 1e100):
        probs = np.array(list(TREE.probabilities("relu", base).values()))
        spreads.append(probs.max() - probs.min())
    assert all(a > b for a, b in zip(spreads, spreads[1:]))
    assert spreads[-1] < 1e-3


def test_base_must_exceed_one():
    with pytest.raises(ValueError, match="base must be > 1"):
        TREE.probabilities("relu", 1.0)


def test_sampled_frequencies_match_the_distribution():
    rng = np.random.default_rng(1234)
    n = 20_000
    probs = TREE.probabilities("elu", 2.0)
    draws = [TREE.mutate("elu", 2.0, rng) for _ in range(n)]
    observed = [draws.count(leaf) for leaf in probs]
    expected = [p * n for p in probs.values()]
    assert chisquare(observed, expected).pvalue > 0.01


def test_tree_from_yaml_shapes():
    tree = CategoryTree({"a": ["relu", "tanh"], "b": {"elu": None, "gelu": {}}})
    assert tree.leaves == ("relu", "tanh", "elu", "gelu")
    assert tree.hops("elu", "gelu") == 2 and tree.hops("relu", "elu") == 4
    with pytest.raises(ValueError, match="appears twice"):
        CategoryTree(["relu", {"x": ["relu"]}])


def test_the_seed_space_samples_inside_its_bounds():
    space = from_mapping({}).search_space()  # no space section: the seed's four genes
    assert space.names == ("n_layers", "hidden_size", "activation", "dropout")
    rng = np.random.default_rng(0)
    samples = [space.sample(rng) for _ in range(500)]
    assert all(space.contains(s) for s in samples)
    assert {s["n_layers"] for s in samples} == {1, 2, 3, 4, 5}
    assert {s["activation"] for s in samples} == set(TREE.leaves)
    assert not space.contains(genes(6, 16, "relu", 0.1))


@pytest.mark.parametrize(("value", "mode", "expected"), [
    (-0.1, "clip", 0.0), (0.7, "clip", 0.5), (0.3, "clip", 0.3),
    (-0.1, "reflect", 0.1), (0.7, "reflect", 0.3), (1.2, "reflect", 0.2),
])
def test_bound(value, mode, expected):
    assert bound(value, 0.0, 0.5, mode) == pytest.approx(expected)
