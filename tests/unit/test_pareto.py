"""workflow.core.pareto: dominance, NSGA-II sorting and selection, hypervolume, ParEGO scalarisation."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.objectives import zdt
from workflow.core import pareto

INF = math.inf


# ---------------------------------------------------------------- independent brute-force oracles


def _dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """Plain-Python Pareto dominance, written independently of the module under test."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def _brute_fronts(points: list[tuple[float, ...]]) -> list[list[int]]:
    """Front k = the remaining points that nothing remaining dominates (remaining = not in fronts < k). O(n^3)."""
    remaining = list(range(len(points)))
    fronts = []
    while remaining:
        front = [i for i in remaining if not any(_dominates(points[j], points[i]) for j in remaining)]
        fronts.append(front)
        remaining = [i for i in remaining if i not in front]
    return fronts


def _brute_rank(points: list[tuple[float, ...]]) -> list[int]:
    """A point's front = 1 + the largest front of the points dominating it (0 if none), by memoised recursion."""
    memo: dict[int, int] = {}

    def rank(i: int) -> int:
        if i not in memo:
            above = [rank(j) for j in range(len(points)) if _dominates(points[j], points[i])]
            memo[i] = 1 + max(above) if above else 0
        return memo[i]

    return [rank(i) for i in range(len(points))]


def _grid_hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """Exact hypervolume for integer points and an integer reference: count the dominated unit cells.

    The cell with lower corner c is dominated (its interior, hence its whole volume) iff some point p <= c.
    """
    if len(points) == 0:
        return 0.0
    lo = points.min(axis=0).astype(int)
    count = 0
    for cell in itertools.product(*(range(int(a), int(b)) for a, b in zip(lo, reference))):
        if np.any(np.all(points <= np.array(cell), axis=1)):
            count += 1
    return float(count)


def _monte_carlo_hypervolume(points: np.ndarray, reference: np.ndarray, samples: int, seed: int) -> tuple[float, float]:
    """Monte Carlo hypervolume in the box [min(points), reference]: (estimate, standard error)."""
    rng = np.random.default_rng(seed)
    lo = points.min(axis=0)
    box = float(np.prod(reference - lo))
    u = rng.uniform(lo, reference, size=(samples, points.shape[1]))
    hit = np.zeros(samples, dtype=bool)
    for p in points:
        hit |= np.all(u >= p, axis=1)
    frac = hit.mean()
    return box * frac, box * math.sqrt(frac * (1.0 - frac) / samples)


# Integer-valued coordinates in a small range, so ties and duplicates are common; m is 2 or 3.
point_sets = st.integers(min_value=2, max_value=3).flatmap(
    lambda m: st.lists(st.tuples(*[st.integers(0, 4)] * m), min_size=0, max_size=30)
)


def _array(points: list[tuple[float, ...]], m: int = 2) -> np.ndarray:
    return np.array(points, dtype=float).reshape(len(points), len(points[0]) if points else m)


# ---------------------------------------------------------------- hand-worked example


# Eight points (f1, f2). 1 and 3 are duplicates; 4 and 6 tie on f2 = 4 (so 4 dominates 6); 2 and 6 tie on f1 = 4.
HAND = np.array(
    [
        [1, 5],  # 0
        [2, 3],  # 1
        [4, 1],  # 2
        [2, 3],  # 3  duplicate of 1
        [3, 4],  # 4  dominated by 1 and 3
        [5, 2],  # 5  dominated by 2
        [4, 4],  # 6  dominated by 1, 2, 3, 4 (4 through the tie on f2)
        [6, 6],  # 7  dominated by everything else
    ],
    dtype=float,
)
# Front 0: nobody has f1 <= 1 except 0; nobody has f2 <= 1 except 2; 1 and 3 are equal, so neither dominates.
# Once front 0 is removed, 4 (3, 4) and 5 (5, 2) are not dominated by each other nor by 6 or 7: front 1.
# Then 6 (4, 4) is only dominated by 4 (gone): front 2; 7 last: front 3.
HAND_FRONTS = [[0, 1, 2, 3], [4, 5], [6], [7]]
# Crowding of front 0 = points 0 (1, 5), 1 (2, 3), 2 (4, 1), 3 (2, 3):
#   f1: stable order 0 (1), 1 (2), 3 (2), 2 (4); range 4 - 1 = 3; 0 and 2 are boundaries (inf);
#       point 1: (f1[3] - f1[0]) / 3 = (2 - 1) / 3 = 1/3;  point 3: (f1[2] - f1[1]) / 3 = (4 - 2) / 3 = 2/3.
#   f2: stable order 2 (1), 1 (3), 3 (3), 0 (5); range 5 - 1 = 4; 2 and 0 are boundaries (inf);
#       point 1: (f2[3] - f2[2]) / 4 = (3 - 1) / 4 = 1/2;  point 3: (f2[0] - f2[1]) / 4 = (5 - 3) / 4 = 1/2.
#   totals: 0: inf, 1: 1/3 + 1/2 = 5/6, 2: inf, 3: 2/3 + 1/2 = 7/6.
# Fronts 1, 2, 3 have at most 2 points: all inf.
HAND_CROWDING = [INF, 5 / 6, INF, 7 / 6, INF, INF, INF, INF]
HAND_RANK = [0, 0, 0, 0, 1, 1, 2, 3]


def test_hand_worked_fronts():
    fronts = pareto.nondominated_sort(HAND)
    assert [f.tolist() for f in fronts] == HAND_FRONTS
    assert all(f.dtype.kind == "i" for f in fronts)


def test_hand_worked_crowding_of_first_front():
    assert pareto.crowding_distance(HAND[[0, 1, 2, 3]]).tolist() == pytest.approx([INF, 5 / 6, INF, 7 / 6])


def test_hand_worked_rank_and_crowding():
    rank, crowding = pareto.rank_and_crowding(HAND)
    assert rank.tolist() == HAND_RANK
    assert crowding.tolist() == pytest.approx(HAND_CROWDING)


def test_hand_worked_survivors_keep_whole_fronts_and_cut_by_crowding():
    # Front 0 in crowded order: 0 and 2 (inf, by index), 3 (7/6), 1 (5/6); then front 1: 4 and 5 (both inf).
    assert pareto.select_survivors(HAND, 3).tolist() == [0, 2, 3]  # cut inside front 0: 1 (least crowded) goes
    assert pareto.select_survivors(HAND, 4).tolist() == [0, 2, 3, 1]
    assert pareto.select_survivors(HAND, 5).tolist() == [0, 2, 3, 1, 4]  # tie on inf crowding: lower index
    assert pareto.select_survivors(HAND, 8).tolist() == [0, 2, 3, 1, 4, 5, 6, 7]
    assert pareto.select_survivors(HAND, 100).tolist() == [0, 2, 3, 1, 4, 5, 6, 7]
    assert pareto.select_survivors(HAND, 0).tolist() == []


def test_dominates():
    assert pareto.dominates(np.array([1.0, 2.0]), np.array([1.0, 3.0]))
    assert not pareto.dominates(np.array([1.0, 3.0]), np.array([1.0, 2.0]))
    assert not pareto.dominates(np.array([1.0, 2.0]), np.array([1.0, 2.0]))  # equal: no
    assert not pareto.dominates(np.array([1.0, 4.0]), np.array([2.0, 3.0]))  # incomparable
    assert pareto.dominates(np.array([5.0, 5.0]), np.array([INF, INF]))
    assert not pareto.dominates(np.array([INF, INF]), np.array([INF, INF]))
    with pytest.raises(ValueError):
        pareto.dominates(np.array([1.0]), np.array([1.0, 2.0]))


def test_sort_key():
    assert pareto.sort_key(1, 0.5) == (1, -0.5)
    keys = [(1, INF), (0, 0.1), (0, INF), (1, 2.0), (0, 3.0)]
    assert sorted(keys, key=lambda rc: pareto.sort_key(*rc)) == [(0, INF), (0, 3.0), (0, 0.1), (1, INF), (1, 2.0)]
    assert min(keys, key=lambda rc: pareto.sort_key(*rc)) == (0, INF)


# ---------------------------------------------------------------- nondominated_sort against brute force


@settings(max_examples=300, deadline=None)
@given(point_sets)
def test_nondominated_sort_matches_brute_force(points):
    fronts = [f.tolist() for f in pareto.nondominated_sort(_array(points))]
    assert fronts == _brute_fronts(points)
    ranks = _brute_rank(points)
    for k, front in enumerate(fronts):
        assert all(ranks[i] == k for i in front)
        assert front == sorted(front)
    # The fronts partition the indices.
    assert sorted(i for f in fronts for i in f) == list(range(len(points)))
    # Each front is mutually non-dominated, and every point of front k + 1 is dominated by one of front k.
    for front in fronts:
        assert not any(_dominates(points[i], points[j]) for i in front for j in front)
    for upper, lower in zip(fronts, fronts[1:]):
        assert all(any(_dominates(points[i], points[j]) for i in upper) for j in lower)


def test_nondominated_sort_empty_and_single():
    assert pareto.nondominated_sort(np.empty((0, 2))) == []
    assert pareto.nondominated_sort(np.array([])) == []
    assert [f.tolist() for f in pareto.nondominated_sort(np.array([[3.0, 1.0]]))] == [[0]]


def test_nondominated_sort_duplicates_share_a_front():
    pts = np.array([[1.0, 1.0]] * 4 + [[2.0, 2.0]] * 3)
    assert [f.tolist() for f in pareto.nondominated_sort(pts)] == [[0, 1, 2, 3], [4, 5, 6]]


def test_nondominated_sort_chain_one_point_per_front():
    pts = np.arange(50, dtype=float)[::-1, None].repeat(3, axis=1)  # point i = (49 - i) * (1, 1, 1)
    assert [f.tolist() for f in pareto.nondominated_sort(pts)] == [[i] for i in range(49, -1, -1)]


# ---------------------------------------------------------------- failed (inf) points


@settings(max_examples=100, deadline=None)
@given(point_sets, st.lists(st.integers(0, 30), max_size=5))
def test_inf_rows_form_the_last_front(points, where):
    arr = _array(points, m=3)
    m = arr.shape[1]
    failed: list[int] = []
    for w in where:  # insert all-inf rows at arbitrary positions
        pos = min(w, len(arr))
        arr = np.insert(arr, pos, np.full(m, INF), axis=0)
        failed = [f + 1 if f >= pos else f for f in failed] + [pos]
    fronts = pareto.nondominated_sort(arr)
    if failed:
        assert fronts[-1].tolist() == sorted(failed)
        assert all(pareto.dominates(arr[i], arr[j]) for i in range(len(arr)) if i not in failed for j in failed)
        assert not any(pareto.dominates(arr[i], arr[j]) for i in failed for j in failed)
    rank, crowding = pareto.rank_and_crowding(arr)
    assert not np.isnan(crowding).any()
    if failed:
        assert set(np.flatnonzero(rank == rank.max()).tolist()) == set(failed)


def test_nan_counts_as_inf():
    # Left as NaN, (nan, 0) would compare false both ways and look non-dominated; as inf it is dominated by (1, 0).
    pts = np.array([[np.nan, 0.0], [1.0, 0.0], [np.nan, np.nan], [INF, INF]])
    assert [f.tolist() for f in pareto.nondominated_sort(pts)] == [[1], [0], [2, 3]]
    assert pareto.dominates(np.array([1.0, 0.0]), np.array([np.nan, 0.0]))
    assert not np.isnan(pareto.crowding_distance(pts)).any()


def test_crowding_of_failed_front_has_no_nan():
    front = np.full((4, 2), INF)
    d = pareto.crowding_distance(front)
    assert d.tolist() == [INF, 0.0, 0.0, INF]  # stable order: boundaries are the first and last index


def test_crowding_with_an_infinite_objective_adds_nothing_from_it():
    # f2 has an inf value: its range is infinite and adds nothing; f1 still contributes (range 2).
    front = np.array([[0.0, 1.0], [1.0, INF], [2.0, 0.0], [1.5, 0.5]])
    d = pareto.crowding_distance(front)
    # f1 order 0 (0), 1 (1), 3 (1.5), 2 (2): 1 gets (1.5 - 0) / 2, 3 gets (2 - 1) / 2; f2 boundaries are 2 and 1.
    assert d.tolist() == [INF, INF, INF, 0.5]


def test_crowding_small_fronts_and_zero_range():
    assert pareto.crowding_distance(np.empty((0, 2))).tolist() == []
    assert pareto.crowding_distance(np.array([[1.0, 2.0]])).tolist() == [INF]
    assert pareto.crowding_distance(np.array([[1.0, 2.0], [2.0, 1.0]])).tolist() == [INF, INF]
    # f2 constant (range 0) adds nothing; f1 gives 1: (2 - 0) / 3, 2: (3 - 1) / 3.
    d = pareto.crowding_distance(np.array([[0.0, 7.0], [1.0, 7.0], [2.0, 7.0], [3.0, 7.0]]))
    assert d.tolist() == pytest.approx([INF, 2 / 3, 2 / 3, INF])


# ---------------------------------------------------------------- select_survivors


@settings(max_examples=200, deadline=None)
@given(point_sets, st.integers(0, 35))
def test_select_survivors_keeps_whole_fronts_and_cuts_by_crowding(points, k):
    arr = _array(points)
    n = len(arr)
    chosen = pareto.select_survivors(arr, k).tolist()
    assert len(chosen) == min(k, n) and len(set(chosen)) == len(chosen)
    rank, crowding = pareto.rank_and_crowding(arr)
    chosen_set = set(chosen)
    # Ranks never decrease along the result (whole fronts in order, best first).
    assert [rank[i] for i in chosen] == sorted(rank[i] for i in chosen)
    if chosen and len(chosen) < n:
        cut = rank[chosen[-1]]
        # Every point of a better front survives; nobody of a worse front does.
        assert all(i in chosen_set for i in range(n) if rank[i] < cut)
        assert not any(rank[i] > cut for i in chosen)
        # In the cut front, no dropped point beats a kept one in the crowded comparison (crowding, then index).
        kept = [i for i in chosen if rank[i] == cut]
        dropped = [i for i in range(n) if rank[i] == cut and i not in chosen_set]
        if dropped:  # empty when k falls exactly at the end of a front
            assert min((-crowding[i], i) for i in dropped) > max((-crowding[i], i) for i in kept)
    if k >= n:
        assert sorted(chosen) == list(range(n))


# ---------------------------------------------------------------- hypervolume


def test_hypervolume_small_cases():
    ref = np.array([4.0, 4.0])
    assert pareto.hypervolume(np.empty((0, 2)), ref) == 0.0
    assert pareto.hypervolume(np.array([[1.0, 2.0]]), ref) == pytest.approx(3.0 * 2.0)  # single box
    # Two points: (1, 3) -> 3 x 1 = 3, (2, 1) -> 2 x 3 = 6, overlap [2, 4] x [3, 4] = 2 x 1 = 2: 3 + 6 - 2 = 7.
    two = np.array([[1.0, 3.0], [2.0, 1.0]])
    assert pareto.hypervolume(two, ref) == pytest.approx(7.0)
    # A dominated point (3, 3) and a duplicate add nothing.
    assert pareto.hypervolume(np.vstack([two, [[3.0, 3.0]], two]), ref) == pytest.approx(7.0)
    # Points outside the reference (or on its boundary) and failed points add nothing.
    outside = np.array([[5.0, 0.0], [0.0, 4.0], [4.0, 0.0], [INF, INF], [0.0, np.nan], [-1.0, 9.0]])
    assert pareto.hypervolume(np.vstack([two, outside]), ref) == pytest.approx(7.0)
    assert pareto.hypervolume(outside, ref) == 0.0
    # 3-D: (1, 1, 1) against (2, 3, 4): 1 x 2 x 3 = 6; add (0, 2, 3): its box 2 x 1 x 1 = 2 overlaps in
    # [1, 2] x [2, 3] x [3, 4] = 1: 6 + 2 - 1 = 7.
    ref3 = np.array([2.0, 3.0, 4.0])
    assert pareto.hypervolume(np.array([[1.0, 1.0, 1.0]]), ref3) == pytest.approx(6.0)
    assert pareto.hypervolume(np.array([[1.0, 1.0, 1.0], [0.0, 2.0, 3.0]]), ref3) == pytest.approx(7.0)
    assert pareto.hypervolume(np.array([[3.0]]), np.array([5.0])) == pytest.approx(2.0)  # m = 1: a segment
    with pytest.raises(ValueError):
        pareto.hypervolume(two, np.array([4.0, 4.0, 4.0]))


@settings(max_examples=150, deadline=None)
@given(st.integers(2, 4).flatmap(lambda m: st.lists(st.tuples(*[st.integers(0, 4)] * m), max_size=12)))
def test_hypervolume_matches_cell_count_on_integer_points(points):
    m = len(points[0]) if points else 2
    arr = _array(points, m=m)
    ref = np.full(m, 5.0)
    assert pareto.hypervolume(arr, ref) == pytest.approx(_grid_hypervolume(arr, ref))


@pytest.mark.parametrize(("m", "n", "seed"), [(2, 20, 1), (2, 60, 2), (3, 15, 3), (3, 40, 4), (4, 12, 5)])
def test_hypervolume_matches_monte_carlo(m, n, seed):
    rng = np.random.default_rng(seed)
    if m == 2:  # points near a convex front, so most are non-dominated
        t = rng.uniform(0.0, 1.0, n)
        pts = np.column_stack([t, 1.0 - np.sqrt(t)]) + rng.uniform(0.0, 0.2, (n, 2))
    else:
        pts = rng.uniform(0.0, 1.0, (n, m))
    ref = np.full(m, 1.3)
    exact = pareto.hypervolume(pts, ref)
    estimate, stderr = _monte_carlo_hypervolume(pts, ref, samples=200_000, seed=seed + 100)
    assert exact > 0.0
    assert abs(exact - estimate) <= 3.0 * stderr


def test_hypervolume_reference():
    pts = np.array([[0.0, 5.0, 2.0, INF], [2.0, 1.0, 2.0, INF], [INF, INF, INF, INF]])
    ref = pareto.hypervolume_reference(pts)
    # f1: worst 2, range 2 -> 2.2; f2: worst 5, range 4 -> 5.4; f3: range 0 -> 2 + 0.1 * 2; f4: no finite -> 1.
    assert ref.tolist() == pytest.approx([2.2, 5.4, 2.2, 1.0])
    assert pareto.hypervolume_reference(np.array([[0.0, -0.5]]), margin=0.5).tolist() == pytest.approx([0.5, 0.0])
    # Every finite point is strictly inside the default reference, so all of them add volume.
    assert pareto.hypervolume(pts[:, :2], ref[:2]) > 0.0


# ---------------------------------------------------------------- ZDT


@pytest.mark.parametrize("which", ["zdt1", "zdt2"])
@pytest.mark.parametrize("reference", [(1.1, 1.1), (1.0, 1.0), (0.5, 0.9), (2.0, 0.3), (1.1, 3.0)])
def test_true_front_hypervolume_matches_sampled_front(which, reference):
    f1 = np.linspace(0.0, 1.0, 10_001)
    f2 = 1.0 - np.sqrt(f1) if which == "zdt1" else 1.0 - f1**2
    sampled = pareto.hypervolume(np.column_stack([f1, f2]), np.array(reference))
    exact = zdt.true_front_hypervolume(which, reference)
    assert exact > 0.0
    assert sampled == pytest.approx(exact, rel=1e-3)
    assert sampled <= exact + 1e-12  # a finite sample of the front can only dominate less


def test_true_front_hypervolume_known_values():
    # The 1.1 x 1.1 box minus the area under the front: int_0^1 (1 - sqrt(a)) da = 1 - 2/3 = 1/3 (ZDT1),
    # int_0^1 (1 - a^2) da = 2/3 (ZDT2).
    assert zdt.true_front_hypervolume("zdt1", (1.1, 1.1)) == pytest.approx(1.21 - 1 / 3, rel=1e-12)
    assert zdt.true_front_hypervolume("zdt1", (1.1, 1.1)) == pytest.approx(0.876667, abs=1e-6)
    assert zdt.true_front_hypervolume("zdt2", (1.1, 1.1)) == pytest.approx(1.21 - 2 / 3, rel=1e-12)
    assert zdt.true_front_hypervolume("zdt1", (1.0, 1.0)) == pytest.approx(2 / 3)
    assert zdt.true_front_hypervolume("zdt2", (0.0, 1.0)) == 0.0
    with pytest.raises(ValueError):
        zdt.true_front_hypervolume("zdt3", (1.1, 1.1))


def test_zdt_objectives():
    on_front = {f"x{i}": 0.0 for i in range(10)} | {"x0": 0.25}
    assert zdt.zdt1(on_front, None) == pytest.approx({"f1": 0.25, "f2": 0.5})
    assert zdt.zdt2(on_front, None) == pytest.approx({"f1": 0.25, "f2": 1 - 0.0625})
    # Off the front: x1..x9 = 1 gives g = 10; f2 = 10 * (1 - sqrt(0.25 / 10)).
    off = {f"x{i}": 1.0 for i in range(10)} | {"x0": 0.25}
    assert zdt.zdt1(off, None)["f2"] == pytest.approx(10 * (1 - math.sqrt(0.025)))
    assert zdt.zdt2_values([0.25] + [1.0] * 9)[1] == pytest.approx(10 * (1 - 0.025**2))
    # Genes are read in index order, not key order, and however many there are.
    shuffled = {"x2": 0.0, "x10": 0.0, "x0": 0.5, "lr": 3.0, "x1": 0.0}
    for i in range(3, 10):
        shuffled[f"x{i}"] = 0.0
    assert zdt.zdt1(shuffled, None)["f1"] == 0.5
    assert zdt.zdt1({"x0": 1.0, "x1": 1.0}, None) == pytest.approx({"f1": 1.0, "f2": 10 * (1 - math.sqrt(0.1))})
    with pytest.raises(ValueError):
        zdt.zdt1({"x0": 0.5, "x2": 0.1}, None)


# ---------------------------------------------------------------- ParEGO scalarisation


def test_chebyshev_weights_on_simplex_and_reproducible():
    for m in (1, 2, 3, 5):
        a = pareto.chebyshev_weights(np.random.default_rng(7), m)
        b = pareto.chebyshev_weights(np.random.default_rng(7), m)
        assert a.shape == (m,) and np.array_equal(a, b)
        assert a.sum() == pytest.approx(1.0, abs=1e-12) and np.all(a >= 0.0)
    rng = np.random.default_rng(7)
    draws = np.array([pareto.chebyshev_weights(rng, 3) for _ in range(2000)])
    assert not np.array_equal(draws[0], draws[1])
    # Uniform on the 2-simplex: each component is Beta(1, 2), mean 1/3, variance 1/18.
    assert draws.mean(axis=0) == pytest.approx([1 / 3] * 3, abs=0.02)
    assert draws.var(axis=0) == pytest.approx([1 / 18] * 3, abs=0.01)


def test_chebyshev_values():
    pts = np.array([[0.0, 10.0], [1.0, 0.0], [0.5, 5.0], [INF, 0.0], [0.5, np.nan]])
    w = np.array([0.25, 0.75])
    # Normalised by finite min/max (f1 in [0, 1], f2 in [0, 10]): (0, 1), (1, 0), (0.5, 0.5).
    # Weighted: (0, 0.75) -> 0.75 + 0.05 * 0.75; (0.25, 0) -> 0.25 + 0.05 * 0.25; (0.125, 0.375) -> 0.375 + 0.025.
    got = pareto.chebyshev(pts, w)
    assert got[:3].tolist() == pytest.approx([0.7875, 0.2625, 0.4])
    assert got[3] == INF and got[4] == INF
    # A constant objective normalises to 0.
    assert pareto.chebyshev(np.array([[1.0, 3.0], [2.0, 3.0]]), w, rho=0.0).tolist() == pytest.approx([0.0, 0.25])


@settings(max_examples=200, deadline=None)
@given(point_sets.filter(bool), st.integers(0, 2**32 - 1))
def test_chebyshev_minimiser_is_nondominated(points, seed):
    arr = _array(points)
    w = pareto.chebyshev_weights(np.random.default_rng(seed), arr.shape[1])
    s = pareto.chebyshev(arr, w)
    assert np.all(np.isfinite(s))
    first = set(pareto.nondominated_sort(arr)[0].tolist())
    # Every minimiser (ties included) is on the first front: with w > 0 and rho > 0 a dominating point scores
    # strictly lower.
    assert set(np.flatnonzero(s == s.min()).tolist()) <= first
