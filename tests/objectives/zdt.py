"""ZDT1 and ZDT2 bi-objective test problems (Zitzler, Deb, Thiele 2000), as plain functions and as objectives.

Both minimise (f1, f2) over n variables x_i in [0, 1]:

    f1 = x_0
    g  = 1 + 9 * sum(x_1 .. x_{n-1}) / (n - 1)          (g = 1 when n == 1)
    ZDT1: f2 = g * (1 - sqrt(f1 / g))      true front: f2 = 1 - sqrt(f1), convex
    ZDT2: f2 = g * (1 - (f1 / g) ** 2)     true front: f2 = 1 - f1 ** 2, concave

The true Pareto front is g = 1 (x_1 = ... = x_{n-1} = 0), f1 in [0, 1].

This module imports nothing from ``workflow``: the tool loads ``zdt1`` / ``zdt2`` by module path.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence

_GENE = re.compile(r"x(\d+)")


def _f1_g(x: Sequence[float]) -> tuple[float, float]:
    """f1 and g of the ZDT family for the variables ``x``."""
    if len(x) == 0:
        raise ValueError("ZDT needs at least one variable")
    xs = [float(v) for v in x]
    for i, v in enumerate(xs):
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"x{i} = {v} is outside [0, 1]")
    # With one variable there is no distance term; g = 1 puts every point on the true front.
    g = 1.0 + 9.0 * sum(xs[1:]) / (len(xs) - 1) if len(xs) > 1 else 1.0
    return xs[0], g


def zdt1_values(x: Sequence[float]) -> tuple[float, float]:
    """ZDT1 objectives (f1, f2) for variables ``x`` in [0, 1]; both minimised."""
    f1, g = _f1_g(x)
    return f1, g * (1.0 - math.sqrt(f1 / g))


def zdt2_values(x: Sequence[float]) -> tuple[float, float]:
    """ZDT2 objectives (f1, f2) for variables ``x`` in [0, 1]; both minimised."""
    f1, g = _f1_g(x)
    return f1, g * (1.0 - (f1 / g) ** 2)


def _genes(hparams: Mapping[str, float]) -> list[float]:
    """The genes ``x0``, ``x1``, ... of ``hparams`` in index order (however many); other keys are ignored.

    A gap in the numbering (x0, x2 without x1) is an error rather than a silently shorter vector.
    """
    indexed: dict[int, float] = {}
    for key, value in hparams.items():
        match = _GENE.fullmatch(key)
        if match:
            indexed[int(match.group(1))] = float(value)
    if sorted(indexed) != list(range(len(indexed))) or not indexed:
        raise ValueError(f"expected genes x0, x1, ... without gaps, got {sorted(hparams)}")
    return [indexed[i] for i in range(len(indexed))]


def _as_objective(
    values: Callable[[Sequence[float]], tuple[float, float]], hparams: Mapping[str, float]
) -> dict[str, float]:
    """Evaluate ``values`` on the genes of ``hparams`` and name the results as the tool expects."""
    f1, f2 = values(_genes(hparams))
    return {"f1": f1, "f2": f2}


def zdt1(hparams: Mapping[str, float], context: object) -> dict[str, float]:
    """ZDT1 as an objective function of the tool: genes ``x0`` .. ``x9``, returns ``{"f1": ..., "f2": ...}``."""
    return _as_objective(zdt1_values, hparams)


def zdt2(hparams: Mapping[str, float], context: object) -> dict[str, float]:
    """ZDT2 as an objective function of the tool: genes ``x0`` .. ``x9``, returns ``{"f1": ..., "f2": ...}``."""
    return _as_objective(zdt2_values, hparams)


# Per problem: H, an antiderivative of the true front h(a), and h^-1 (see true_front_hypervolume).
_FRONTS: dict[str, tuple[Callable[[float], float], Callable[[float], float]]] = {
    "zdt1": (lambda a: a - (2.0 / 3.0) * a**1.5, lambda r: (1.0 - r) ** 2),
    "zdt2": (lambda a: a - a**3 / 3.0, lambda r: math.sqrt(1.0 - r)),
}


def true_front_hypervolume(which: str, reference: Sequence[float]) -> float:
    """Hypervolume of the true Pareto front of "zdt1" or "zdt2" against a 2-D ``reference``, in closed form.

    Derivation. The front is {(t, h(t)) : t in [0, 1]} with h decreasing from h(0) = 1 to h(1) = 0. A point
    (a, b) of the box a < r1, b < r2 is dominated iff some t in [0, 1] has t <= a and h(t) <= b; since h is
    decreasing the best such t is min(a, 1) (and there is none when a < 0). So the dominated height above a is
    max(0, r2 - h(min(a, 1))), and

        HV = integral_0^{min(r1, 1)} max(0, r2 - h(a)) da  +  max(0, r1 - 1) * max(0, r2)      (h(1) = 0).

    The integrand is positive iff h(a) < r2, i.e. a > a0 = h^-1(r2) clipped to [0, 1] (a0 = 0 when r2 >= 1,
    a0 = 1 when r2 <= 0). With a1 = min(r1, 1) clipped at 0 and H an antiderivative of h, the first term is
    r2 * (a1 - a0) - (H(a1) - H(a0)) when a1 > a0, else 0.

        ZDT1: h(a) = 1 - sqrt(a),  H(a) = a - (2/3) a^(3/2),  h^-1(r) = (1 - r)^2
        ZDT2: h(a) = 1 - a^2,      H(a) = a - a^3 / 3,        h^-1(r) = sqrt(1 - r)

    E.g. ZDT1 at (1.1, 1.1): a0 = 0, a1 = 1, HV = 1.1 - (1 - 2/3) + 0.1 * 1.1 = 1.21 - 1/3 = 0.876666...
    (the 1.1 x 1.1 box minus the area under the front, integral_0^1 (1 - sqrt(a)) da = 1/3); ZDT2 at (1.1, 1.1)
    gives 1.21 - 2/3 = 0.543333...
    """
    if len(reference) != 2:
        raise ValueError(f"reference must have 2 values, got {len(reference)}")
    r1, r2 = float(reference[0]), float(reference[1])
    if which not in _FRONTS:
        raise ValueError(f"unknown problem {which!r}; expected one of {sorted(_FRONTS)}")
    antiderivative, inverse = _FRONTS[which]
    if r2 >= 1.0:
        a0 = 0.0
    elif r2 <= 0.0:
        a0 = 1.0
    else:
        a0 = inverse(r2)
    a1 = min(max(r1, 0.0), 1.0)
    curved = r2 * (a1 - a0) - (antiderivative(a1) - antiderivative(a0)) if a1 > a0 else 0.0
    flat = max(0.0, r1 - 1.0) * max(0.0, r2)
    return curved + flat
