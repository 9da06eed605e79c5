"""A Python objective: the user's ``function(hparams, context) -> float | Mapping[str, float]``.

``objective.function`` is ``module:function``; ``objective.path``, when set, is put on ``sys.path`` first.
The function is imported where the evaluation runs (the driver's process for ``inline``, a worker process,
a Slurm array task) and once on the driver before anything is submitted (:func:`check_function`), so a typo
is one line at the start instead of a generation of failures.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workflow.config import ObjectiveConfig
from workflow.objectives.context import make_context
from workflow.records import Candidate, Result
from workflow.scoring import as_metrics, scored
from workflow.tracking.evaluation import tracked_evaluation
from workflow.tracking.spec import TrackingSpec

Objective = Callable[[dict[str, Any], Any], object]


class ObjectiveError(ValueError):
    """``objective.function`` cannot be used: one line saying why."""


def load_function(objective: ObjectiveConfig) -> Objective:
    """Import ``objective.function`` (after putting ``objective.path`` on ``sys.path``)."""
    spec = str(objective.function)
    module_name, _, attribute = spec.partition(":")
    if objective.path:
        path = str(Path(objective.path).expanduser().resolve())
        if path not in sys.path:
            sys.path.insert(0, path)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure of the user's module is the same one line
        where = f" (objective.path={objective.path!r})" if objective.path else "; set objective.path to its folder?"
        raise ObjectiveError(f"cannot import module {module_name!r}: {type(exc).__name__}: {exc}{where}") from None
    function = getattr(module, attribute, None)
    if function is None:
        raise ObjectiveError(f"module {module_name!r} ({getattr(module, '__file__', '?')}) has no attribute "
                             f"{attribute!r}")
    if not callable(function):
        raise ObjectiveError(f"{spec} is a {type(function).__name__}, not a function")
    return function


def check_function(objective: ObjectiveConfig) -> None:
    """Import the function and check it can be called as ``function(hparams, context)``."""
    function = load_function(objective)
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return  # a builtin or C function: nothing to check ahead
    try:
        signature.bind({}, None)
    except TypeError:
        params = signature.replace(return_annotation=inspect.Signature.empty)
        raise ObjectiveError(f"takes {params} but is called as {function.__name__}(hparams, context)") from None


def evaluate(candidate: Candidate, objective: ObjectiveConfig, workdir: Path,
             tracking: TrackingSpec | None = None, function: Objective | None = None) -> Result:
    """Call the function (``function``, else ``objective.function`` imported) for ``candidate`` and score what it
    returns (exceptions propagate)."""
    function = function or load_function(objective)
    with tracked_evaluation(tracking, candidate) as tracker:
        start = time.monotonic()
        context = make_context(candidate, workdir, reporter=lambda step, m: tracker.log_epoch(m, step))
        returned = function(dict(candidate.hparams), context)
        result = scored(candidate.name, as_metrics(returned, objective), objective, time.monotonic() - start)
        tracker.set_result(result)
    return result
