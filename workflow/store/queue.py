"""Known configurations evaluated first: ``optimizer.enqueue``, ``optimizer.warm_start`` and the Python API's
enqueue (:meth:`workflow.store.RunStore.enqueue`), all journaled as :class:`~workflow.store.events.Enqueued`
events that the optimizer takes before anything it proposes (:meth:`workflow.core.Optimizer.enqueue`; a resume
replays them in place).

A configuration is checked against the run's space first (one line naming the gene and why); a warm start
reads the earlier run directory's journal and enqueues its best ``population_size`` successful evaluations,
best first, so the first generation contains the earlier run's best.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workflow.config import Config
from workflow.errors import ConfigError, RunDirError
from workflow.space import SearchSpace
from workflow.store.events import Enqueued
from workflow.store.layout import CONFIG, JOURNAL
from workflow.store.state import RunState


def queued(space: SearchSpace, hparams: Mapping[str, Any], source: str, what: str) -> Enqueued:
    """The event enqueuing ``hparams`` (completed to a whole chromosome), or a :class:`ConfigError` naming
    ``what`` and why it is outside the space."""
    problem = space.problem(hparams)
    if problem is not None:
        raise ConfigError(what, dict(hparams), f"outside the space: {problem}")
    return Enqueued(hparams=space.complete(hparams), source=source)


def warm_start_dir(path: str | Path) -> Path:
    """``optimizer.warm_start``'s directory, checked to be a run directory."""
    run_dir = Path(path)
    if not (run_dir / JOURNAL).is_file() or not (run_dir / CONFIG).is_file():
        raise RunDirError(f"optimizer.warm_start={str(path)!r}: not a run directory (no {JOURNAL} and {CONFIG} "
                          "there); name the run directory of an earlier search")
    return run_dir


def warm_start(config: Config, earlier: RunState, run_dir: Path) -> list[Enqueued]:
    """The best ``population_size`` successful evaluations of ``earlier`` (best first), checked against this
    config's space."""
    space = config.search_space()
    ranked = sorted((e for e in earlier.evaluated() if e.result.ok), key=lambda e: e.fitness)
    if not ranked:
        raise RunDirError(f"optimizer.warm_start={str(run_dir)!r}: that run has no successful evaluation yet")
    events = []
    for e in ranked[: config.optimizer.population_size]:
        problem = space.problem(e.candidate.hparams)
        if problem is not None:
            raise RunDirError(f"optimizer.warm_start={str(run_dir)!r}: its evaluation {e.candidate.name} does not fit "
                              f"this space: {problem}")
        events.append(Enqueued(hparams=space.complete(e.candidate.hparams),
                               source=f"warm_start {run_dir} {e.candidate.name}"))
    return events
