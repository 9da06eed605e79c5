"""The one loop for every optimizer: resume -> ask -> run -> record -> tell -> stop?

The journal is written before and after everything that matters: a batch is recorded as ``asked`` before it is
submitted, each result as soon as it arrives, ``told`` once the optimizer has it. On start the loop replays the
journal into a fresh optimizer (same seed, same draws), checks the replay proposes exactly what was recorded,
and carries on with whatever is missing, so a killed driver loses nothing and repeats nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workflow.backends.base import Backend, make_backend
from workflow.config import Config
from workflow.core import Optimizer, make_optimizer
from workflow.errors import RunDirError
from workflow.faults import crash_point
from workflow.lock import DriverLock
from workflow.progress import NullProgress, Progress
from workflow.records import Candidate, Evaluated, Result
from workflow.store import RunState, RunStore
from workflow.tracking import TrackingSpec, after_batch

log = logging.getLogger(__name__)


class _JournalSink:
    """Records what a backend reports, as it reports it, and keeps the progress display current."""

    def __init__(self, store: RunStore, state: RunState, batch: int, progress: Progress) -> None:
        self.store, self.state, self.batch, self.progress = store, state, batch, progress

    def submitted(self, names: Sequence[str], info: dict[str, Any]) -> None:
        event = {"event": "submitted", "batch": self.batch, "names": list(names), **info}
        self.store.append(event)
        for name in names:
            self.state.submissions[name] = event

    def result(self, result: Result) -> None:
        if result.name in self.state.results:
            log.warning("ignoring a second result for %s (already recorded)", result.name)
            return
        self.store.append({"event": "result", "batch": self.batch, "result": result.to_dict()})
        crash_point("after-result")
        self.state.results[result.name] = result
        self.store.write_results_csv(self.state)
        self.progress.result(result)

    def previous_submission(self, name: str) -> dict[str, Any] | None:
        return self.state.submissions.get(name)


@dataclass
class RunSummary:
    run_dir: Path
    evaluations: int
    failed: int
    best: Evaluated | None
    finished: bool


class BatchHook:
    """Called by the loop after each batch is told (the island model's migration step plugs in here)."""

    def after_tell(self, batch: int, optimizer: Optimizer, store: RunStore, state: RunState) -> None:
        return None

    def on_resume(self, optimizer: Optimizer, store: RunStore, state: RunState) -> None:
        return None


def apply_immigrants(optimizer: Optimizer, migrants: Sequence[Evaluated]) -> list[Evaluated]:
    """Hand immigrants to an optimizer that supports them (the GA); returns who was replaced."""
    immigrate = getattr(optimizer, "immigrate", None)
    if immigrate is None:
        raise RunDirError(f"optimizer {optimizer.name} does not take immigrants (islands need the GA)")
    replaced: list[Evaluated] = immigrate(list(migrants))
    return replaced


def replay(optimizer: Optimizer, state: RunState) -> list[Candidate]:
    """Bring ``optimizer`` to the journal's state; return the batch still missing results (or []).

    Immigrants recorded after a generation are re-applied at the same point, so an island replays exactly.
    """
    for number, recorded in enumerate(state.batches, start=1):
        proposed = optimizer.ask()
        if [c.to_dict() for c in proposed] != [c.to_dict() for c in recorded]:
            raise RunDirError(
                f"journal batch {number} differs from what the optimizer proposes on replay "
                "(was the code or the config changed?)"
            )
        if any(c.name not in state.results for c in recorded):
            if number != len(state.batches):
                raise RunDirError(f"journal batch {number} has no results but a later batch exists")
            return recorded
        optimizer.tell([Evaluated(c, state.results[c.name]) for c in recorded])
        for migrants in state.immigrations.get(number, []):
            apply_immigrants(optimizer, migrants)
    return []


def run_search(config: Config, run_dir: Path, *, backend: Backend | None = None,
               progress: Progress | None = None, hook: BatchHook | None = None, island: int = 0) -> RunSummary:
    """Run (or continue) the search in ``run_dir`` until the optimizer is finished."""
    with DriverLock(run_dir):
        return _run_locked(config, run_dir, backend, progress, hook or BatchHook(), island)


def _run_locked(config: Config, run_dir: Path, backend: Backend | None, progress: Progress | None,
                hook: BatchHook, island: int) -> RunSummary:
    store = RunStore.open(run_dir)
    state = store.replay()
    optimizer = make_optimizer(config, island=island)
    pending = replay(optimizer, state)
    hook.on_resume(optimizer, store, state)
    progress = progress or NullProgress()
    own_backend = backend is None
    backend = backend or make_backend(config, run_dir)
    tracking = TrackingSpec.from_config(config, run_dir, island)  # None: W&B disabled
    progress.start(config, state)
    try:
        while True:
            if not pending:
                if optimizer.finished:
                    break
                pending = optimizer.ask()
                store.append({"event": "asked", "batch": optimizer.batches_asked,
                              "candidates": [c.to_dict() for c in pending]})
                state.batches.append(pending)
                crash_point("after-ask")
            batch = optimizer.batches_asked
            missing = [c for c in pending if c.name not in state.results]
            progress.batch(batch, pending, state)
            if missing:
                backend.run(missing, _JournalSink(store, state, batch, progress))
            lost = [c.name for c in pending if c.name not in state.results]
            if lost:
                raise RuntimeError(f"backend {backend.name} returned without results for {lost}")
            optimizer.tell([Evaluated(c, state.results[c.name]) for c in pending])
            store.append({"event": "told", "batch": batch})
            state.told.add(batch)
            if tracking is not None:  # check the batch's W&B summaries, update the experiment run
                after_batch(tracking, config, store, state, batch, pending)
            hook.after_tell(batch, optimizer, store, state)
            pending = []
        if not state.finished:
            store.append({"event": "finished"})
            state.finished = True
        store.write_results_csv(state)
    finally:
        progress.stop()
        if own_backend:
            backend.close()
    evaluated = state.evaluated()
    return RunSummary(run_dir=Path(run_dir), evaluations=len(evaluated),
                      failed=sum(not e.result.ok for e in evaluated), best=state.best(), finished=True)
