"""Bayesian optimization (scikit-optimize) as an ask/tell optimizer: the seed's BO baseline.

This is the only module that imports scikit-optimize. Each ask proposes a batch as wide as a GA generation
(``population_size``) with skopt's constant liar (``cl_min``), so a BO round fills a job array like a GA
generation does; the budget is the GA's, ``population_size * generations`` evaluations, named
``BO-Iteration-<n>`` (the seed's W&B names). The first ``optimizer.bo.initial_points`` points are uniform
random, then the surrogate (``optimizer.bo.base_estimator``, a GP by default) and ``optimizer.bo.acq_func``
choose.

Dimensions: each gene gives its own (:meth:`workflow.space.Gene.dimensions`): an int gene an ``Integer``, a float
gene a ``Real`` (both with a log-uniform prior when the gene is ``log``), a categorical gene a ``Categorical``
of its values (a tree's leaves in order; BO does not use the tree's distances), a layers gene a depth plus
``max_layers`` widths of which the first ``depth`` are used (the unused ones are told the last layer's width
and ignored on the way back). A dimension whose bounds are equal is not searched (skopt rejects empty ranges);
its value is fixed.

Failures never reach the surrogate as NaN or inf: a failed or non-finite evaluation is told as
``worst + (worst - best)`` over the finite fitness values told so far, i.e. clearly worse than everything
that ran, by the observed range, instead of an outlier that would flatten a GP normalised to unit variance
(``worst + |worst|``, or 1.0, when the range is zero). Until a first finite value exists there is nothing to
scale by, so failed points are held back and told, penalised, together with it. The penalty is a function of
what was told, in order, so replaying the journal reproduces it.

Determinism: skopt's ``random_state`` is an integer drawn from the injected generator at construction, and
every skopt call runs with one BLAS thread, so a fresh optimizer asked and told the same batches proposes the
same points (the driver's resume depends on it), whatever the machine's thread settings or load.

Cost: skopt proposes a batch from a copy of its optimizer that it refits on every point told so far, once per
proposed point (the constant liar), so an ask costs ``1 + size`` surrogate fits; the optimizer's own fit on each
tell only feeds ``gp_hedge``'s gains. In run directories of format 2, skopt's random state is drawn anew for
each ask and each tell from this optimizer's seed and their number (:func:`_stream`), and the gains are recorded
with each tell: a resume then replays the journal without refitting anything (it trusts the recorded asks, tells
with ``fit=False`` and takes the recorded gains) and checks only its last ask for real. Format 1 (version 0.1)
lets skopt's random state run on across calls, which a replay can reproduce only by refitting every step.

Steady state (``optimizer.mode: steady_state``): an ask lies about every point still in flight (the constant
liar across asks: an asynchronous batch), so a freed slot does not get a point next to a running one.

Several objectives (``optimizer.objectives``): ParEGO (Knowles 2006). Each ask draws weights uniformly on the
simplex (from this optimizer's seed and the ask's number), scalarises every told point with the augmented
Chebyshev function of its objectives normalised to [0, 1], and asks a surrogate fitted to those values: over
many asks, the weights sweep the front. A failed point gets the penalty above on the scalarised values. The
weights each ask used are kept in :attr:`BayesianOptimization.parego_weights` (not journaled: they are a function
of the seed and the ask's number).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from sklearn.ensemble import GradientBoostingRegressor
from skopt import Optimizer as SkoptOptimizer
from skopt.learning import GradientBoostingQuantileRegressor
from threadpoolctl import threadpool_limits

from workflow.config import OptimizerConfig
from workflow.core.base import BatchOptimizer, best_of
from workflow.core.encoding import Encoding
from workflow.core.pareto import chebyshev, chebyshev_weights
from workflow.core.ranking import Ranking
from workflow.core.surrogate import failure_penalty, penalised
from workflow.records import Candidate, Evaluated
from workflow.space import SearchSpace


class BayesianOptimization(BatchOptimizer):
    name = "bo"

    def __init__(self, config: OptimizerConfig, space: SearchSpace, rng: np.random.Generator,
                 island: int = 0, legacy: bool = False) -> None:
        super().__init__(config, space, rng, island)
        self._finite: list[float] = []  # finite fitness values told, for the penalty
        self._held: list[list[Any]] = []  # failed points waiting for a first finite value
        self._encoding = Encoding(space)
        self._free = self._encoding.free
        self._seed = int(rng.integers(2**31 - 1))
        self._legacy = legacy
        self._tells = 0
        self._skopt = _make_skopt(config, self._free, self._seed) if self._free else None
        self.ranking = Ranking(config.objectives)
        #: Several objectives: every told point with its objective vector (scalarised anew at each ask).
        self._told_points: list[tuple[list[Any], list[float]]] = []
        #: Several objectives: the Chebyshev weights each ask scalarised with, by the ask's number (0-based). An
        #: ask before anything was told draws none (its points are random), and neither does an ask a replay
        #: takes from the journal without proposing it again.
        self.parego_weights: dict[int, list[float]] = {}

    def _propose(self, size: int) -> list[dict[str, Any]]:
        if self._skopt is None:
            points: list[list[Any]] = [[] for _ in range(size)]
        else:
            with _quiet_single_thread():
                model = self._parego() if self.ranking.multi else self._skopt
                if not self._legacy:
                    model.rng = _stream(self._seed, 0, self.asks)
                points = self._liar(model).ask(n_points=size, strategy="cl_min")
        return [self._to_hparams(point) for point in points]

    def _liar(self, model: Any) -> Any:
        """``model``, or (steady state, points still in flight) a copy told the constant lie for them."""
        in_flight = [self._to_point(c.hparams) for c in self._pending]
        if not in_flight:
            return model
        lie = min(model.yi) if model.yi else 0.0
        liar = model.copy(random_state=model.rng.randint(0, np.iinfo(np.int32).max))
        liar.tell(in_flight, [lie] * len(in_flight), fit=False)
        return liar

    def _parego(self) -> Any:
        """A fresh skopt optimizer told every point so far, scalarised under this ask's random weights."""
        model = _make_skopt(self.config, self._free, int(_stream(self._seed, 2, self.asks).randint(2**31 - 1)))
        if not self._told_points:
            return model
        weights = chebyshev_weights(np.random.default_rng([self._seed, 3, self.asks]), len(self.ranking.objectives))
        self.parego_weights[self.asks] = [float(w) for w in weights]
        values = chebyshev(np.array([v for _, v in self._told_points], dtype=float), weights)
        ys = penalised(list(values))
        if ys is None:
            return model  # nothing ran yet: still the random initial points
        model.tell([x for x, _ in self._told_points], ys, fit=False)
        return model

    def restore(self, recorded: Sequence[Candidate], verify: bool = True) -> None:
        """Format 2: the recorded candidates taken as they are (no surrogate fits), except when ``verify``."""
        if verify or self._legacy:
            super().restore(recorded, verify)
            return
        for _ in recorded:  # the generator's draws an ask makes besides skopt's: one seed per candidate
            self.rng.integers(2**31 - 1)
        self._take_recorded(recorded)

    def journal_state(self) -> dict[str, Any]:
        if self.ranking.multi:
            return {}
        gains = getattr(self._skopt, "gains_", None)
        return {"gains": [float(g) for g in gains]} if gains is not None and not self._legacy else {}

    def replayed_state(self, state: dict[str, Any] | None) -> None:
        if self._legacy or self._skopt is None or not state or "gains" not in state:
            super().replayed_state(state)
            return
        self._skopt.gains_ = np.array(state["gains"], dtype=float)  # what the skipped fit would have computed

    def _candidate_name(self, generation: int, index: int, number: int) -> str:
        return f"BO-Iteration-{number}"

    def _learn(self, told: list[Evaluated]) -> None:
        if self.ranking.multi:
            self._told_points.extend((self._to_point(e.candidate.hparams), self.ranking.vector(e)) for e in told)
            self._tells += 1
            return
        ok = [e for e in told if e.result.ok and math.isfinite(e.fitness)]
        failed = [e for e in told if not (e.result.ok and math.isfinite(e.fitness))]
        self._finite.extend(e.fitness for e in ok)
        self._held.extend(self._to_point(e.candidate.hparams) for e in failed)
        if self._skopt is None:
            return
        xs = [self._to_point(e.candidate.hparams) for e in ok]
        ys = [float(e.fitness) for e in ok]
        if self._finite and self._held:
            penalty = failure_penalty(self._finite)
            xs.extend(self._held)
            ys.extend([penalty] * len(self._held))
            self._held = []
        if xs:
            with _quiet_single_thread():
                if self._legacy:
                    self._skopt.tell(xs, ys)
                else:
                    # The fit on tell only updates gp_hedge's gains (asks refit a copy anyway), and a replay
                    # takes the gains from the journal instead.
                    self._skopt.rng = _stream(self._seed, 1, self._tells)
                    fit = self.config.bo.acq_func == "gp_hedge" and not self.replaying
                    self._skopt.tell(xs, ys, fit=fit)
        self._tells += 1

    def best(self) -> Evaluated | None:
        finite = [e for e in self.history if math.isfinite(e.fitness)]
        return best_of(finite or self.history)

    def _to_point(self, hparams: dict[str, Any]) -> list[Any]:
        return self._encoding.to_point(hparams)

    def _to_hparams(self, point: Sequence[Any]) -> dict[str, Any]:
        return self._encoding.to_hparams(point)


def _stream(seed: int, kind: int, number: int) -> np.random.RandomState:
    """skopt's random state for ask (``kind`` 0) or tell (1) number ``number``: a function of these alone."""
    return np.random.RandomState(np.random.SeedSequence([seed, kind, number]).generate_state(1)[0])


def _make_skopt(config: OptimizerConfig, dimensions: list[Any], seed: int) -> Any:
    bo = config.bo
    estimator: Any = bo.base_estimator
    if estimator == "GBRT":
        # Same settings as skopt's cook_estimator("GBRT"), in the repaired class.
        estimator = QuantileGBRT(base_estimator=GradientBoostingRegressor(n_estimators=30, loss="quantile"),
                                 random_state=seed, n_jobs=1)
    return SkoptOptimizer(dimensions, base_estimator=estimator, acq_func=bo.acq_func,
                          n_initial_points=bo.initial_points, initial_point_generator="random",
                          random_state=seed, model_queue_size=1)


@contextmanager
def _quiet_single_thread() -> Iterator[None]:
    # One BLAS thread: several threads made a GP fit 4-5x slower next to training workers on 2 cores, and
    # thread-count-dependent rounding could change a proposal between a run and its resume.
    with threadpool_limits(limits=1), warnings.catch_warnings():
        # skopt swaps a repeated proposal for a random point (from its seeded state) and warns each time.
        warnings.filterwarnings("ignore", message="The objective has been evaluated at point")
        yield


class QuantileGBRT(GradientBoostingQuantileRegressor):
    """skopt's GBRT surrogate, repaired for scikit-learn >= 1.6 and numpy >= 2.4.

    scikit-optimize 0.10.2 (the last release) declares ``GradientBoostingQuantileRegressor(BaseEstimator,
    RegressorMixin)``; newer scikit-learn reads the estimator type from tags, where that base order loses the
    mixin, so skopt refuses it as "not a regressor". Its ``predict(return_std=True)`` calls ``np.in1d``, which
    numpy 2.4 removed.
    """

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.estimator_type = "regressor"
        return tags

    def predict(self, X: Any, return_std: bool = False, return_quantiles: bool = False) -> Any:
        if not return_std or return_quantiles:
            return super().predict(X, return_std=False, return_quantiles=return_quantiles)
        if not {0.16, 0.5, 0.84} <= set(self.quantiles):
            raise ValueError("return_std needs the quantiles 0.16, 0.5 and 0.84")
        low, mean, high = (self.regressors_[self.quantiles.index(q)].predict(X) for q in (0.16, 0.5, 0.84))
        return mean, (high - low) / 2.0
