"""Bayesian optimization (scikit-optimize) as an ask/tell optimizer: the seed's BO baseline.

This is the only module that imports scikit-optimize. Each ask proposes a batch as wide as a GA generation
(``population_size``) with skopt's constant liar (``cl_min``), so a BO round fills a job array like a GA
generation does; the budget is the GA's, ``population_size * generations`` evaluations, named
``BO-Iteration-<n>`` (the seed's W&B names). The first ``optimizer.bo.initial_points`` points are uniform
random, then the surrogate (``optimizer.bo.base_estimator``, a GP by default) and ``optimizer.bo.acq_func``
choose.

Dimensions: ``n_layers`` and ``hidden_size`` are integers, ``activation`` is categorical (the tree's leaves in
order; BO does not use the tree's distances), ``dropout`` is real. A dimension whose bounds are equal is not
searched (skopt rejects empty ranges); its value is fixed.

Failures never reach the surrogate as NaN or inf: a failed or non-finite evaluation is told as
``worst + (worst - best)`` over the finite fitness values told so far, i.e. clearly worse than everything
that ran, by the observed range, instead of an outlier that would flatten a GP normalised to unit variance
(``worst + |worst|``, or 1.0, when the range is zero). Until a first finite value exists there is nothing to
scale by, so failed points are held back and told, penalised, together with it. The penalty is a function of
what was told, in order, so replaying the journal reproduces it.

Determinism: skopt's ``random_state`` is an integer drawn from the injected generator at construction, and
every skopt call runs with one BLAS thread, so a fresh optimizer asked and told the same batches proposes the
same points (the driver's resume depends on it), whatever the machine's thread settings or load.
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
from skopt.space import Categorical, Integer, Real
from threadpoolctl import threadpool_limits

from workflow.config import OptimizerConfig
from workflow.core.base import BatchOptimizer, best_of
from workflow.records import Evaluated, Hparams
from workflow.space import SearchSpace

#: Hyperparameters in the order of skopt's point vectors.
GENES = Hparams.gene_names()


def failure_penalty(finite: Sequence[float]) -> float:
    """The value told to the surrogate for a failed evaluation, given the finite fitness values so far."""
    worst, best = max(finite), min(finite)
    margin = worst - best
    if margin <= 0:
        margin = abs(worst) if worst != 0 else 1.0
    return worst + margin


class BayesianOptimization(BatchOptimizer):
    name = "bo"

    def __init__(self, config: OptimizerConfig, space: SearchSpace, rng: np.random.Generator,
                 island: int = 0) -> None:
        super().__init__(config, space, rng, island)
        self._finite: list[float] = []  # finite fitness values told, for the penalty
        self._held: list[list[Any]] = []  # failed points waiting for a first finite value
        self._fixed, dimensions = _dimensions(space)
        seed = int(rng.integers(2**31 - 1))
        self._skopt = _make_skopt(config, dimensions, seed) if dimensions else None

    def _propose(self, size: int) -> list[Hparams]:
        if self._skopt is None:
            points: list[list[Any]] = [[] for _ in range(size)]
        else:
            with _quiet_single_thread():
                points = self._skopt.ask(n_points=size, strategy="cl_min")
        return [self._to_hparams(point) for point in points]

    def _candidate_name(self, generation: int, index: int, number: int) -> str:
        return f"BO-Iteration-{number}"

    def _learn(self, told: list[Evaluated]) -> None:
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
                self._skopt.tell(xs, ys)

    def best(self) -> Evaluated | None:
        finite = [e for e in self.history if math.isfinite(e.fitness)]
        return best_of(finite or self.history)

    def _to_point(self, hp: Hparams) -> list[Any]:
        return [getattr(hp, gene) for gene in GENES if gene not in self._fixed]

    def _to_hparams(self, point: Sequence[Any]) -> Hparams:
        values = dict(self._fixed)
        values.update(zip((g for g in GENES if g not in self._fixed), point))
        low, high = self.space.dropout
        # skopt returns numpy scalars; the journal and the comparison on replay need plain Python values.
        return Hparams(n_layers=int(values["n_layers"]), hidden_size=int(values["hidden_size"]),
                       activation=str(values["activation"]),
                       dropout=min(max(float(values["dropout"]), low), high))


def _dimensions(space: SearchSpace) -> tuple[dict[str, Any], list[Any]]:
    """skopt dimensions for the genes that vary, and the fixed values of those that do not."""
    ranges: dict[str, Any] = {"n_layers": space.n_layers, "hidden_size": space.hidden_size,
                              "activation": space.activations, "dropout": space.dropout}
    fixed: dict[str, Any] = {}
    dims: list[Any] = []
    for gene in GENES:
        spec = ranges[gene]
        if gene == "activation":
            if len(spec) == 1:
                fixed[gene] = spec[0]
            else:
                dims.append(Categorical(list(spec), name=gene))
        elif spec[0] == spec[1]:
            fixed[gene] = spec[0]
        elif gene == "dropout":
            dims.append(Real(float(spec[0]), float(spec[1]), name=gene))
        else:
            dims.append(Integer(int(spec[0]), int(spec[1]), name=gene))
    return fixed, dims


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
