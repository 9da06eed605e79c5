"""From the metrics an objective returned to the fitness the optimizer minimises.

``objective.metric`` names the metric (default: the built-in MLP's validation loss, or the single value a
user's objective returned) and ``objective.direction`` whether it is minimised or maximised; the fitness is
the metric, negated when maximised. A missing or non-finite metric is a failed result that says so, and so is
a missing or non-finite ``objective.required`` metric (a multi-objective search's other objectives).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Real

from workflow.config import ObjectiveConfig
from workflow.records import Result

#: The metric name of a plain number returned by a user's objective when ``objective.metric`` is not set.
VALUE = "value"


def as_metrics(returned: object, objective: ObjectiveConfig) -> dict[str, float]:
    """What a user's objective returned, as metrics: a number becomes ``{metric: number}``; a mapping keeps its
    numeric values. Anything else raises ``TypeError``."""
    if isinstance(returned, Real) and not isinstance(returned, bool):
        return {objective.metric or VALUE: float(returned)}
    if isinstance(returned, Mapping):
        return {str(k): float(v) for k, v in returned.items() if isinstance(v, Real) and not isinstance(v, bool)}
    raise TypeError(f"the objective returned {type(returned).__name__} ({returned!r:.100}); expected a number or "
                    "a mapping of metric names to numbers")


def chosen_metric(metrics: Mapping[str, float], objective: ObjectiveConfig, default: str | None = None) -> str:
    """The metric optimised: ``objective.metric``, else ``default``, else the only metric there is."""
    if objective.metric:
        return objective.metric
    if default:
        return default
    if len(metrics) == 1:
        return next(iter(metrics))
    return VALUE


def scored(name: str, metrics: Mapping[str, float], objective: ObjectiveConfig, seconds: float,
           default: str | None = None) -> Result:
    """The result of an evaluation that returned ``metrics``."""
    metric = chosen_metric(metrics, objective, default)
    if metric not in metrics:
        got = ", ".join(sorted(metrics)) or "nothing"
        hint = "" if objective.metric else "; set objective.metric to the one to optimise"
        return Result.failure(name, f"no metric {metric!r} in what the objective returned (got: {got}){hint}",
                              seconds=seconds)
    value = float(metrics[metric])
    if not math.isfinite(value):
        return Result.failure(name, f"non-finite {metric}={value}", seconds=seconds)
    for other in objective.required:
        if other not in metrics:
            got = ", ".join(sorted(metrics)) or "nothing"
            return Result.failure(name, f"no metric {other!r} (an objective) in what the objective returned "
                                  f"(got: {got})", seconds=seconds)
        if not math.isfinite(float(metrics[other])):
            return Result.failure(name, f"non-finite {other}={float(metrics[other])}", seconds=seconds)
    fitness = value if objective.direction == "minimize" else -value
    return Result(name=name, status="ok", fitness=fitness, metrics=dict(metrics), seconds=seconds)
