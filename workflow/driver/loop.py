"""The one loop for every optimizer: resume -> ask -> run -> record -> tell -> stop?

The journal is written before and after everything that matters: a batch is recorded as ``asked`` before it is
submitted, each result as soon as it arrives, ``told`` once the optimizer has it. On start the loop replays the
journal into a fresh optimizer (same seed, same draws), checks the replay proposes exactly what was recorded,
and carries on with whatever is missing, so a killed driver loses nothing and repeats nothing.

Fail fast: when the failed fraction of a generation reaches ``optimizer.max_failure_rate`` (default 1.0:
every evaluation failed), the loop submits nothing more and raises :class:`~workflow.errors.SearchStopped`
naming the most common reason; the run directory stays resumable.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from workflow.backends import Backend, make_backend, run_batch
from workflow.config import Config
from workflow.core import make_optimizer
from workflow.driver.observers import Observer, Observers, SearchRun
from workflow.driver.replay import replay
from workflow.driver.sink import JournalSink
from workflow.errors import SearchStopped
from workflow.faults import crash_point
from workflow.records import Evaluated
from workflow.store import RunStore
from workflow.store.lock import DriverLock

log = logging.getLogger(__name__)

#: A failure reason is compared on this many leading characters (tails carry ids, times, line numbers).
REASON_KEY_CHARS = 120


@dataclass
class RunSummary:
    run_dir: Path
    evaluations: int
    failed: int
    best: Evaluated | None


def run_search(config: Config, run_dir: Path, *, backend: Backend | None = None,
               observers: Iterable[Observer] = (), island: int = 0) -> RunSummary:
    """Run (or continue) the search in ``run_dir`` until the optimizer is finished.

    ``backend``: where evaluations run (default: the one ``config.backend`` names, closed at the end; a
    backend given here is left open for its owner).
    """
    with DriverLock(run_dir):
        store = RunStore.open(run_dir)
        state = store.replay()
        optimizer = make_optimizer(config, island=island)
        pending = replay(optimizer, state)
        run = SearchRun(config, store, state, optimizer, island)
        observer = Observers(observers)
        own_backend = backend is None
        backend = backend or make_backend(config, run_dir)
        sink = JournalSink(run, observer)
        observer.started(run)
        try:
            while pending or not optimizer.finished:
                if not pending:
                    pending = optimizer.ask()
                    run.record({"event": "asked", "batch": optimizer.batches_asked,
                                "candidates": [c.to_dict() for c in pending]})
                    crash_point("after-ask")
                batch = optimizer.batches_asked
                observer.asked(run, batch, pending)
                missing = [c for c in pending if c.name not in state.results]
                if missing:
                    run_batch(backend, missing, sink)
                lost = [c.name for c in pending if c.name not in state.results]
                if lost:
                    raise RuntimeError(f"backend {backend.name} returned without results for {lost}")
                told = [Evaluated(c, state.results[c.name]) for c in pending]
                optimizer.tell(told)
                run.record({"event": "told", "batch": batch})
                observer.told(run, batch, told)
                pending = []
                _fail_fast(run, batch, told)
            if not state.finished:
                run.record({"event": "finished"})
            store.write_results_csv(state)
        finally:
            observer.stopped(run)
            if own_backend:
                backend.close()
    evaluated = state.evaluated()
    return RunSummary(run_dir=Path(run_dir), evaluations=len(evaluated),
                      failed=sum(not e.result.ok for e in evaluated), best=state.best())


def _fail_fast(run: SearchRun, batch: int, told: Sequence[Evaluated]) -> None:
    """Stop the search when too many of a generation's evaluations failed (a broken set-up, not bad luck)."""
    failed = [e for e in told if not e.result.ok]
    rate = run.config.optimizer.max_failure_rate
    if not told or len(failed) / len(told) < rate or run.optimizer.finished:
        return
    reasons = Counter(e.result.reason[:REASON_KEY_CHARS] for e in failed)
    reason, hits = reasons.most_common(1)[0]
    what = "every evaluation" if len(failed) == len(told) else f"{len(failed)} of {len(told)} evaluations"
    message = (f"stopped after generation {batch}: {what} failed (optimizer.max_failure_rate={rate:g}); "
               f"most common reason ({hits} of {len(failed)}): {' '.join(reason.split())}; fix the cause, then "
               f"`python -m workflow resume {run.store.run_dir}` (runtime settings may be overridden there, e.g. "
               "backend.timeout_s=900)")
    run.record({"event": "stopped", "batch": batch, "failed": len(failed), "reason": reason})
    raise SearchStopped(message)
