"""Surrogate-assisted breeding: a model of everything evaluated chooses which bred children are evaluated.

The GA breeds ``oversample`` times as many children as it needs with the seed's operators; a regression model
fitted on every evaluation told so far (scikit-optimize's GP, or its extra-trees regressor with a spread) scores
each child by expected improvement over the best value seen, and the best-scoring children are evaluated. A
share of the children (``random_share``) is drawn uniformly from the rest instead, so that the population
cannot collapse onto the model's belief. Children are encoded as BO encodes points (:mod:`encoding`: one-hot
categoricals, unit-scaled numbers), failed evaluations enter at BO's penalty value.

Several objectives: each generation draws Chebyshev weights (as ParEGO does) and the model fits the
scalarised values; over the generations the weights sweep the front.

Pure: no I/O, every draw from the injected generator (the model's random state included), one BLAS thread, so a
replayed generation chooses the same children.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from skopt.acquisition import gaussian_ei
from skopt.space import Space
from skopt.utils import cook_estimator, normalize_dimensions
from threadpoolctl import threadpool_limits

from workflow.core.encoding import Encoding
from workflow.core.pareto import chebyshev, chebyshev_weights
from workflow.core.ranking import Ranking
from workflow.records import Evaluated
from workflow.space import SearchSpace

#: The fewest told evaluations with a finite value before the model is trusted (fewer: children as bred).
MIN_POINTS = 3


def failure_penalty(finite: Sequence[float]) -> float:
    """The value a failed evaluation is given in a surrogate's data, given the finite values so far: worse than
    everything that ran by the observed range (``worst + |worst|``, or 1.0, when the range is zero)."""
    worst, best = max(finite), min(finite)
    margin = worst - best
    if margin <= 0:
        margin = abs(worst) if worst != 0 else 1.0
    return worst + margin


def penalised(values: Sequence[float]) -> list[float] | None:
    """``values`` with every non-finite one replaced by :func:`failure_penalty` of the finite ones (None when
    none is finite: there is nothing to scale a penalty by)."""
    finite = [float(v) for v in values if math.isfinite(v)]
    if not finite:
        return None
    penalty = failure_penalty(finite)
    return [float(v) if math.isfinite(v) else penalty for v in values]


class SurrogateChooser:
    """Chooses ``k`` of a list of bred children by expected improvement under a model of ``told``."""

    def __init__(self, kind: str, space: SearchSpace, ranking: Ranking, random_share: float) -> None:
        self.kind, self.ranking, self.random_share = kind, ranking, random_share
        self.encoding = Encoding(space)
        # Unit-scaled numbers and one-hot categoricals, as skopt's own GP optimizer sees them.
        self._space = Space(normalize_dimensions(self.encoding.free)) if self.encoding.free else None

    def choose(self, children: Sequence[dict[str, Any]], told: Sequence[Evaluated], k: int,
               rng: np.random.Generator) -> list[int]:
        """Indices of the ``k`` children to evaluate, in the order they were bred.

        Draws from ``rng`` the same number of times whatever the model says: the model's seed, the weights
        (several objectives) and the random share's picks.
        """
        seed = int(rng.integers(2**31 - 1))
        targets = self._targets(told, rng)
        n_random = min(k, int(round(self.random_share * k)))
        order = list(range(len(children)))
        if self._space is not None and targets is not None and len(children) > k:
            scores = self._expected_improvement(children, told, targets, seed)
            order = sorted(order, key=lambda i: (-scores[i], i))
        chosen = order[: k - n_random]
        rest = order[k - n_random:]
        picks = rng.permutation(len(rest))[:n_random]
        chosen.extend(rest[int(i)] for i in picks)
        return sorted(chosen)

    def _targets(self, told: Sequence[Evaluated], rng: np.random.Generator) -> np.ndarray | None:
        """The value the model fits for each told evaluation (lower is better), or None with too few finite."""
        if self.ranking.multi:
            weights = chebyshev_weights(rng, len(self.ranking.objectives))
            values = chebyshev(self.ranking.points(told), weights) if told else np.zeros(0)
        else:
            values = np.array([e.fitness if e.result.ok else math.inf for e in told], dtype=float)
        if sum(math.isfinite(v) for v in values) < MIN_POINTS:
            return None
        targets = penalised(list(values))
        return None if targets is None else np.array(targets, dtype=float)

    def _expected_improvement(self, children: Sequence[dict[str, Any]], told: Sequence[Evaluated],
                              targets: np.ndarray, seed: int) -> np.ndarray:
        assert self._space is not None
        x_told = self._space.transform([self.encoding.to_point(e.candidate.hparams) for e in told])
        x_children = self._space.transform([self.encoding.to_point(c) for c in children])
        # One BLAS thread: faster beside training workers on small machines, and the same rounding on replay.
        with threadpool_limits(limits=1), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the GP's convergence warnings on tiny data sets
            model = self._model(seed)
            model.fit(x_told, targets)
            return np.asarray(gaussian_ei(x_children, model, y_opt=float(np.min(targets))), dtype=float)

    def _model(self, seed: int) -> Any:
        assert self._space is not None
        if self.kind == "gp":
            return cook_estimator("GP", space=self._space, random_state=seed, noise="gaussian")
        return cook_estimator("ET", random_state=seed, n_jobs=1)
