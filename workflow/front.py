"""A multi-objective run's Pareto front and hypervolume, from its evaluations (pure; status, report, compare).

The objective values shown are the metrics in their own units and directions (``n_params`` as a count, a
maximised accuracy as an accuracy); the computations minimise, negating maximised objectives.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from workflow.config import ObjectiveSpec
from workflow.core.pareto import hypervolume, hypervolume_reference, nondominated_sort
from workflow.core.ranking import Ranking
from workflow.records import Evaluated
from workflow.tables import cell, markdown_table


def objective_values(evaluated: Evaluated, objectives: Sequence[ObjectiveSpec]) -> dict[str, float]:
    """The objectives' metrics of one evaluation, as reported (NaN where missing)."""
    return {o.metric: float(evaluated.result.metrics.get(o.metric, math.nan)) for o in objectives}


def pareto_front(evaluated: Iterable[Evaluated], objectives: Sequence[ObjectiveSpec]) -> list[Evaluated]:
    """The non-dominated successful evaluations, by their first objective (best first); duplicates of a point
    are all on the front."""
    ranking = Ranking(objectives)
    ok = [e for e in evaluated if e.result.ok and all(math.isfinite(v) for v in ranking.vector(e))]
    if not ok:
        return []
    first = nondominated_sort(ranking.points(ok))[0]
    return sorted((ok[int(i)] for i in first), key=lambda e: (ranking.vector(e), e.candidate.name))


def reference_point(evaluated: Iterable[Evaluated], objectives: Sequence[ObjectiveSpec],
                    configured: Sequence[float] | None = None) -> np.ndarray:
    """The hypervolume reference in the minimised space: ``configured`` (metrics' units; maximised ones
    negated here), else per objective the worst value seen plus 10% of the range."""
    if configured is not None:
        return np.array([-v if o.direction == "maximize" else v for v, o in zip(configured, objectives)], float)
    ranking = Ranking(objectives)
    points = ranking.points([e for e in evaluated if e.result.ok])
    return hypervolume_reference(points if len(points) else np.zeros((0, len(objectives))))


def front_hypervolume(evaluated: Sequence[Evaluated], objectives: Sequence[ObjectiveSpec],
                      reference: np.ndarray) -> float:
    """The hypervolume the successful evaluations dominate, up to ``reference`` (minimised space)."""
    ranking = Ranking(objectives)
    points = ranking.points([e for e in evaluated if e.result.ok])
    return float(hypervolume(points, reference)) if len(points) else 0.0


def hypervolume_curve(evaluated: Sequence[Evaluated], objectives: Sequence[ObjectiveSpec],
                      reference: np.ndarray, steps: int = 50) -> list[tuple[int, float]]:
    """(evaluations so far, hypervolume of them) at up to ``steps`` points of the run, in the order asked."""
    n = len(evaluated)
    marks = sorted({max(1, round(n * k / steps)) for k in range(1, steps + 1)}) if n else []
    return [(m, front_hypervolume(evaluated[:m], objectives, reference)) for m in marks]


def front_rows(front: Sequence[Evaluated], objectives: Sequence[ObjectiveSpec]) -> list[dict[str, Any]]:
    """One row per front member: name, its objectives' values, its genes."""
    return [{"name": e.candidate.name, **objective_values(e, objectives), **e.candidate.hparams} for e in front]


def front_markdown(front: Sequence[Evaluated], objectives: Sequence[ObjectiveSpec], gene_names: Sequence[str],
                   hypervolume_value: float | None = None, reference: Mapping[str, float] | None = None) -> str:
    """``pareto.md``: the front as a table (best first on the first objective), and its hypervolume."""
    columns = ["name", *(o.metric for o in objectives), *gene_names]
    title = (f"Pareto front: {len(front)} non-dominated evaluations on "
             + ", ".join(f"{o.metric} ({'min' if o.direction == 'minimize' else 'max'})" for o in objectives))
    text = markdown_table(columns, front_rows(front, objectives), title=title)
    if hypervolume_value is not None:
        where = ", ".join(f"{k}={cell(v)}" for k, v in (reference or {}).items())
        text += f"\nHypervolume: {cell(hypervolume_value)} (reference point: {where})\n"
    return text
