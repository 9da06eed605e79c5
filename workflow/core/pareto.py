"""Multi-objective utilities: Pareto dominance, NSGA-II ranking and selection, hypervolume, ParEGO scalarisation.

Pure functions on numpy arrays; this module imports only the standard library and numpy.

Conventions:

* Everything MINIMISES. Callers negate the objectives they maximise before calling in.
* A set of points is a float array of shape ``(n, m)``: n points, m objectives.
* ``inf`` means "worst". A failed evaluation has every objective ``inf``: it is dominated by every point with
  finite values, and several failed points are mutually non-dominated, so they share the last front.
* ``NaN`` is read as ``inf`` (a NaN loss is a failed evaluation too); comparisons with NaN are always false, so
  left alone it would make a broken point look non-dominated.

References: Deb, Pratap, Agarwal, Meyarivan (2002), "A fast and elitist multiobjective genetic algorithm:
NSGA-II"; Knowles (2006), "ParEGO"; While, Hingston, Barone, Huband (2006), "A faster algorithm for calculating
hypervolume" (HSO, the slicing scheme used for m >= 3).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "chebyshev",
    "chebyshev_weights",
    "crowding_distance",
    "dominates",
    "hypervolume",
    "hypervolume_reference",
    "nondominated_sort",
    "rank_and_crowding",
    "select_survivors",
    "sort_key",
]


def _as_points(points: np.ndarray) -> np.ndarray:
    """Return ``points`` as a fresh float array of shape (n, m), NaN replaced by +inf.

    An empty 1-D array is accepted as "no points" (shape (0, 0)) because ``np.array([])`` is the natural way to
    write an empty population; any other non-2-D input is an error rather than a silent reshape.
    """
    arr = np.array(points, dtype=float)  # a copy: callers' arrays are never modified
    if arr.ndim == 1 and arr.size == 0:
        arr = arr.reshape(0, 0)
    if arr.ndim != 2:
        raise ValueError(f"points must have shape (n, m), got shape {arr.shape}")
    arr[np.isnan(arr)] = np.inf
    return arr


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    """True when ``a`` Pareto-dominates ``b``: ``a <= b`` in every objective and ``a < b`` in at least one.

    Both are 1-D vectors of the same length; NaN counts as +inf. Equal vectors do not dominate each other, and
    neither do two all-inf (failed) vectors.
    """
    va = np.array(a, dtype=float).ravel()
    vb = np.array(b, dtype=float).ravel()
    if va.shape != vb.shape:
        raise ValueError(f"cannot compare vectors of lengths {va.size} and {vb.size}")
    va[np.isnan(va)] = np.inf
    vb[np.isnan(vb)] = np.inf
    return bool(np.all(va <= vb) and np.any(va < vb))


def _domination_matrix(points: np.ndarray) -> np.ndarray:
    """``dom[i, j]`` is True when point i dominates point j. O(m n^2) time, O(n^2) memory. No NaN allowed.

    Built one objective at a time so the temporaries stay n x n booleans, never n x n x m. Without NaN,
    "a < b somewhere" is "not (a >= b everywhere)", and "a >= b everywhere" is the transpose of "a <= b
    everywhere", so one comparison per objective suffices: dom = le & ~le.T.
    """
    n, m = points.shape
    le = np.ones((n, n), dtype=bool)
    for j in range(m):
        col = np.ascontiguousarray(points[:, j])
        # inf <= inf is True, so two failed points are "equal" (neither dominates) while every finite point is
        # <= a failed one and strictly less somewhere: it dominates it.
        le &= col[:, None] <= col[None, :]
    return le & ~le.T


def nondominated_sort(points: np.ndarray) -> list[np.ndarray]:
    """Split the points into Pareto fronts, best first (Deb et al. 2002, fast non-dominated sort).

    Returns a list of int arrays of row indices, each in ascending order; together they partition
    ``range(n)``. Front 0 holds the points nobody dominates; front k holds those dominated only by points of
    fronts < k. Duplicated points share a front. ``n == 0`` gives ``[]``.

    Complexity: O(m n^2) time and O(n^2) memory for the domination matrix (vectorised), then peeling the fronts
    costs O(n^2) in total, since each point's row of the matrix is subtracted from the counts exactly once.
    """
    pts = _as_points(points)
    n = pts.shape[0]
    if n == 0:
        return []
    dom = _domination_matrix(pts)
    # How many points dominate each point; a point joins the next front when this count drops to 0.
    dominated_by = dom.sum(axis=0, dtype=np.int64)
    fronts: list[np.ndarray] = []
    left = n
    while left:
        front = np.flatnonzero(dominated_by == 0)  # flatnonzero: ascending indices for free
        if front.size == 0:  # unreachable for a strict partial order; guards against an endless loop
            raise RuntimeError("domination cycle: the domination matrix is not a strict partial order")
        # Domination is a strict partial order (acyclic), so some unassigned point always has count 0, and the
        # points of one front never dominate each other, so their own counts stay 0 until marked done (-1).
        dominated_by -= dom[front].sum(axis=0, dtype=np.int64)
        dominated_by[front] = -1
        left -= front.size
        fronts.append(front.astype(np.intp))
    return fronts


def crowding_distance(points: np.ndarray) -> np.ndarray:
    """Crowding distance of the points of ONE front (Deb et al. 2002).

    For each objective the front is sorted (stable sort, so equal values keep index order and the result is
    deterministic with ties); the two boundary points get ``inf`` and each inner point adds
    ``(next - prev) / (max - min)``. An objective whose range is 0 or not finite (inf values, e.g. a front of
    failed points) adds nothing to the inner points, but its boundary points still get ``inf`` (as in DEAP).
    A front of 1 or 2 points is all ``inf``. Never produces NaN. O(m n log n).
    """
    pts = _as_points(points)
    n, m = pts.shape
    if n <= 2:
        return np.full(n, np.inf)
    dist = np.zeros(n)
    for j in range(m):
        col = pts[:, j]
        order = np.argsort(col, kind="stable")
        dist[order[0]] = np.inf
        dist[order[-1]] = np.inf
        lo, hi = col[order[0]], col[order[-1]]
        # Finite ends mean every value of the column is finite, so (next - prev) below is finite too; an
        # infinite range would only turn inner distances into inf, or NaN from inf - inf. (Checking the ends
        # before subtracting also keeps numpy from warning about inf - inf.)
        if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
            continue
        span = hi - lo
        dist[order[1:-1]] += (col[order[2:]] - col[order[:-2]]) / span
    return dist


def rank_and_crowding(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per point, its front number (0 = best) and its crowding distance computed within its own front.

    Returns ``(rank, crowding)``: an int array and a float array, both of length n.
    """
    pts = _as_points(points)
    n = pts.shape[0]
    rank = np.zeros(n, dtype=np.intp)
    crowding = np.zeros(n)
    for k, front in enumerate(nondominated_sort(pts)):
        rank[front] = k
        crowding[front] = crowding_distance(pts[front])
    return rank, crowding


def sort_key(rank: int, crowding: float) -> tuple[int, float]:
    """NSGA-II crowded-comparison key for ``sorted`` / ``min``: lower rank first, then larger crowding first.

    That is ``(rank, -crowding)``; an ``inf`` crowding (a boundary point) sorts before every finite one.
    """
    return int(rank), -float(crowding)


def select_survivors(points: np.ndarray, k: int) -> np.ndarray:
    """NSGA-II environmental selection: the indices of ``k`` survivors, best first.

    Whole fronts are taken in order until the next one does not fit; that last, partial front is cut by
    descending crowding distance (computed within that front), ties broken by lower index. Within each whole
    front the indices are listed in the same crowded-comparison order, so the result is the population sorted
    by ``(rank, -crowding, index)`` and truncated to ``k``: the survivors for k are a prefix of those for k + 1.
    ``k >= n`` returns every index in that order; ``k <= 0`` returns an empty array.
    """
    pts = _as_points(points)
    n = pts.shape[0]
    rank, crowding = rank_and_crowding(pts)
    # np.lexsort sorts by the last key first and is stable, so equal (rank, crowding) keep ascending index.
    order = np.lexsort((np.arange(n), -crowding, rank))
    return order[: max(0, min(int(k), n))].astype(np.intp)


def _hv2d(points: np.ndarray, reference: np.ndarray) -> float:
    """Exact 2-D hypervolume by sort and sweep, O(n log n). Points must already be strictly inside the box.

    Sorted by the first objective (ties by the second), each point adds the rectangle between its first
    objective and the reference, and between its second objective and the best second objective seen so far;
    dominated points add a zero-height rectangle.
    """
    if points.shape[0] == 0:
        return 0.0
    order = np.lexsort((points[:, 1], points[:, 0]))
    x = points[order, 0]
    y = points[order, 1]
    best_y = np.minimum.accumulate(y)
    prev_y = np.concatenate(([reference[1]], best_y[:-1]))
    return float(np.sum((reference[0] - x) * (prev_y - best_y)))


def _nondominated_mask(points: np.ndarray) -> np.ndarray:
    """Boolean mask of the points no other point dominates (duplicates are all kept). O(m n^2)."""
    return np.asarray(~_domination_matrix(points).any(axis=0))


def _hv_recursive(points: np.ndarray, reference: np.ndarray) -> float:
    """Exact hypervolume of points strictly inside the box, by slicing along the last objective (HSO).

    Sorted by the last objective, the slab between the i-th and (i+1)-th values (the last one up to the
    reference) is dominated exactly by the first i+1 points, so its volume is its depth times the
    (m-1)-dimensional hypervolume of those points projected away from the last objective.
    """
    n, m = points.shape
    if n == 0:
        return 0.0
    if m == 1:
        return float(reference[0] - points[:, 0].min())
    if m == 2:
        return _hv2d(points, reference)
    if m > 3:
        # Dominated points never add volume; dropping them keeps the sub-problems of every slice small, and the
        # O(m n^2) filter is cheap next to the recursion. (For m == 3 the 2-D sweep ignores them at no cost.)
        points = points[_nondominated_mask(points)]
        n = points.shape[0]
    points = points[np.argsort(points[:, -1], kind="stable")]
    z = points[:, -1]
    upper = np.concatenate((z[1:], [reference[-1]]))
    sub_reference = reference[:-1]
    total = 0.0
    for i in range(n):
        depth = upper[i] - z[i]
        if depth > 0.0:
            total += depth * _hv_recursive(points[: i + 1, :-1], sub_reference)
    return total


def hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """Exact hypervolume dominated by ``points`` and bounded by ``reference`` (minimisation).

    Only points strictly better than the reference in every objective and with every value finite contribute;
    the others add nothing. ``n == 0`` gives 0.0. ``reference`` must be finite and have one value per objective.

    Algorithms and complexity (n points after filtering):

    * m == 1: ``reference - min``, O(n).
    * m == 2: sort and sweep, O(n log n).
    * m >= 3: recursive slicing along the last objective (HSO, While et al. 2006) down to the 2-D sweep:
      O(n^2 log n) for m == 3 (n slices, each a 2-D sweep), and O(n^(m-1) log n) in the worst case beyond,
      where the non-dominated filter at each level usually prunes far more. Fine for the population sizes of a
      search (n ~ 200 at m = 3 takes milliseconds); use a WFG implementation for large m.
    """
    pts = _as_points(points)
    ref = np.array(reference, dtype=float).ravel()
    if pts.shape[0] == 0:
        return 0.0
    if ref.size != pts.shape[1]:
        raise ValueError(f"reference has {ref.size} values but the points have {pts.shape[1]} objectives")
    if not np.all(np.isfinite(ref)):
        raise ValueError(f"reference must be finite, got {ref}")
    inside = np.all(np.isfinite(pts), axis=1) & np.all(pts < ref, axis=1)
    return _hv_recursive(pts[inside], ref)


def hypervolume_reference(points: np.ndarray, margin: float = 0.1) -> np.ndarray:
    """Default hypervolume reference point: per objective, the worst finite value plus a margin.

    The margin is ``margin`` times the finite range of that objective, or ``margin * max(abs(worst), 1.0)`` when
    the range is 0 (a single point or all equal), so the boundary points still add volume. Objectives with no
    finite value at all get 1.0. Returns an array of length m.
    """
    pts = _as_points(points)
    m = pts.shape[1]
    ref = np.ones(m)
    for j in range(m):
        finite = pts[np.isfinite(pts[:, j]), j]
        if finite.size == 0:
            continue
        worst = float(finite.max())
        span = worst - float(finite.min())
        ref[j] = worst + margin * (span if span > 0.0 else max(abs(worst), 1.0))
    return ref


def chebyshev_weights(rng: np.random.Generator, m: int) -> np.ndarray:
    """A random weight vector drawn uniformly on the simplex {w >= 0, sum w = 1}, from ``rng`` only.

    Uses the flat Dirichlet(1, ..., 1) draw, which is the uniform distribution on the simplex. ParEGO
    (Knowles 2006) instead picks uniformly among the lattice vectors with components in {0, 1/s, ..., 1}
    (C(s+m-1, m-1) of them); the continuous draw avoids choosing s and never gives exact zeros, so every
    objective keeps some weight.
    """
    if m < 1:
        raise ValueError(f"m must be at least 1, got {m}")
    w = rng.dirichlet(np.ones(m))
    return np.asarray(w / w.sum(), dtype=float)  # renormalise away the rounding of the Dirichlet draw


def chebyshev(points: np.ndarray, weights: np.ndarray, rho: float = 0.05) -> np.ndarray:
    """ParEGO's augmented Chebyshev scalarisation (Knowles 2006), one value per point; lower is better.

    Each objective is first normalised to [0, 1] with the min and max of its finite values in ``points`` (an
    objective whose finite range is 0 normalises to all 0), then
    ``max_j(w_j f_j) + rho * sum_j(w_j f_j)``. The small augmentation term makes weakly dominated points score
    strictly worse. Rows with any non-finite value get ``inf``.
    """
    pts = _as_points(points)
    n, m = pts.shape
    w = np.array(weights, dtype=float).ravel()
    if w.size != m:
        raise ValueError(f"weights have {w.size} values but the points have {m} objectives")
    finite = np.isfinite(pts)
    normalised = np.zeros((n, m))
    for j in range(m):
        col = pts[finite[:, j], j]
        if col.size == 0:
            continue  # every row is non-finite here and gets inf below
        lo, hi = float(col.min()), float(col.max())
        if hi > lo:
            normalised[:, j] = (pts[:, j] - lo) / (hi - lo)
    weighted = normalised * w
    out = np.full(n, np.inf)
    ok = finite.all(axis=1)
    if m > 0:
        out[ok] = weighted[ok].max(axis=1) + rho * weighted[ok].sum(axis=1)
    return out
