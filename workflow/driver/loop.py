"""The one loop for every optimizer and both modes: resume -> (tell -> ask -> submit -> collect)* -> finish.

The journal is written before and after everything that matters: candidates are recorded as ``asked`` before
they are submitted, each result as soon as it arrives, ``told`` once the optimizer has it. On start the loop
replays the journal into a fresh optimizer (same seed, same draws), checks the replay proposes what was
recorded, and carries on with whatever is missing, so a killed driver loses nothing and repeats nothing.

In a generation (``optimizer.mode: generational``) everything is asked at once and told at once; in steady
state each result is told as it arrives and each freed slot is filled at once: the loop is the same, the
optimizer says how many it can ask (:meth:`~workflow.core.Optimizer.capacity`) and what it can be told
(:meth:`~workflow.core.Optimizer.tellable`). New candidates found after one collect are submitted together
(one Slurm array per poll, not one sbatch per evaluation).

Fail fast: when the failed fraction of a generation (a block of ``population_size`` births) reaches
``optimizer.max_failure_rate`` (default 1.0: every evaluation failed), the loop submits nothing more and raises
:class:`~workflow.errors.SearchStopped` naming the most common reason; the run directory stays resumable.
In generational mode the check comes before the generation is told, so the optimizer has not bred from it: a
resume first evaluates that generation's failed evaluations again (``retrying``: same names, the next
attempt, the earlier results kept in the journal) and tells the generation once, with the new results.
``resume --retry-failed`` evaluates every failed evaluation of a run again; those the optimizer was already
told (a finished run) update the run's results and best, not the optimizer (replay stays exact).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from workflow.backends import Backend, make_backend
from workflow.config import Config
from workflow.core import Optimizer, make_optimizer
from workflow.driver.observers import Observer, Observers, SearchRun
from workflow.driver.replay import replay
from workflow.driver.sink import JournalSink
from workflow.errors import SearchStopped
from workflow.faults import crash_point
from workflow.records import Candidate, Evaluated
from workflow.stopping import raise_if_stopped
from workflow.store import RunStore
from workflow.store.events import Asked, Finished, Retrying, Stopped, Told
from workflow.store.layout import resume_command
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
    #: The most common failure reason (its first :data:`REASON_KEY_CHARS` characters, on one line) and how
    #: many failed evaluations gave it ("" and 0 when none failed).
    reason: str = ""
    reason_hits: int = 0


#: A reason shown in a one-line message is cut (at its end) to this many characters.
REASON_SHOWN_CHARS = 400


def most_common_reason(evaluated: Sequence[Evaluated]) -> tuple[str, int]:
    """The most common reason among the failed ``evaluated`` and how many gave it: reasons are compared on their
    first :data:`REASON_KEY_CHARS` characters, and shown on one line without the frames of where it was raised
    (``... (at file.py:12 in f: ...)``), which the journal and results.csv keep."""
    failed = [e.result.reason for e in evaluated if not e.result.ok]
    if not failed:
        return "", 0
    keys = Counter(reason[:REASON_KEY_CHARS] for reason in failed)
    key, hits = keys.most_common(1)[0]
    shown = " ".join(next(r for r in failed if r.startswith(key)).split(" (at ", 1)[0].split())
    return (shown if len(shown) <= REASON_SHOWN_CHARS else shown[:REASON_SHOWN_CHARS - 3] + "..."), hits


def run_search(config: Config, run_dir: Path, *, backend: Backend | None = None,
               observers: Iterable[Observer] = (), island: int = 0, retry_failed: bool = False) -> RunSummary:
    """Run (or continue) the search in ``run_dir`` until the optimizer is finished.

    ``backend``: where evaluations run (default: the one ``config.backend`` names, closed at the end; a
    backend given here is left open for its owner). ``retry_failed``: evaluate every failed evaluation again
    first (otherwise only those of a generation that stopped the search).
    """
    with DriverLock(run_dir):
        store = RunStore.open(run_dir)
        state = store.replay()
        optimizer = make_optimizer(config, island=island, journal_format=state.format)
        replay(optimizer, state)
        run = SearchRun(config, store, state, optimizer, island)
        observer = Observers(observers)
        own_backend = backend is None
        backend = backend or make_backend(config, run_dir)
        try:
            _Loop(run, observer, backend).run(retry_failed=retry_failed)
        finally:
            store.flush()
            observer.stopped(run)
            if own_backend:
                backend.close()
    evaluated = state.evaluated()
    reason, hits = most_common_reason(evaluated)
    return RunSummary(run_dir=Path(run_dir), evaluations=len(evaluated),
                      failed=sum(not e.result.ok for e in evaluated), best=state.best(), reason=reason,
                      reason_hits=hits)


class _Loop:
    """One driver session over a run: what it submitted, which generations it has seen completed."""

    def __init__(self, run: SearchRun, observer: Observer, backend: Backend) -> None:
        self.search, self.observer, self.backend = run, observer, backend
        self.optimizer: Optimizer = run.optimizer
        self.sink = JournalSink(run, observer)
        self.submitted: set[str] = set()
        state = run.state
        self.told_count = Counter(state.generation_of[name] for name in state.told_names)
        #: Told evaluations evaluated again (``--retry-failed``): the optimizer is not told their new results.
        self.retried_told: list[Candidate] = []
        #: The generation whose failures are evaluated again before anything new is asked, and those names.
        self.hold: tuple[int, set[str]] | None = None
        #: Whether the held generation was told before it stopped (steady state): judged again once back.
        self.rejudge = False

    def run(self, retry_failed: bool = False) -> None:
        run, state, optimizer = self.search, self.search.state, self.optimizer
        self._retry(retry_failed)
        run.store.results().sync(state.evaluated())  # behind the journal after a crash: rebuilt once, here
        self.observer.started(run)
        if optimizer.pending:
            self.observer.asked(run, [c for c in optimizer.pending if c.name not in state.results])
        while True:
            raise_if_stopped()
            told = optimizer.tellable(state.results)
            if told:
                if not optimizer.steady:
                    self._fail_fast_before_tell(told)
                self._tell(told)
                continue
            self._release_hold()
            if optimizer.finished and not self._retries_left():
                break
            if optimizer.capacity() and self.hold is None:
                asked = optimizer.ask(optimizer.capacity())
                run.record(Asked(ask=optimizer.batches_asked, candidates=tuple(asked)), durable=False)
                crash_point("after-ask")
                self.observer.asked(run, asked)
            fresh = [c for c in (*optimizer.pending, *self._retries_left()) if c.name not in self.submitted
                     and c.name not in state.results]
            if fresh:
                self.backend.submit(fresh, self.sink)
                self.submitted.update(c.name for c in fresh)
                continue  # results may be in already (inline; a re-attached task that had finished)
            if not self.backend.in_flight():
                lost = [c.name for c in (*optimizer.pending, *self.retried_told) if c.name not in state.results]
                raise RuntimeError(f"backend {self.backend.name} returned without results for {lost}")
            self.backend.collect(self.sink)
        if not state.finished:
            run.record(Finished())
        run.store.write_results_csv(state)

    def _retry(self, retry_failed: bool) -> None:
        """Record which failed evaluations are evaluated again: a fail-fast stop's generation (``retrying``
        before anything new is asked), or every failed one (``retry_failed``); each generation one event."""
        state = self.search.state
        stopped = state.stopped_generation
        if retry_failed:
            failed = [c for c in state.candidates if c.name in state.results and not state.results[c.name].ok]
        elif stopped is not None:
            failed = [c for c in state.members.get(stopped, []) if c.name in state.results
                      and not state.results[c.name].ok]
        else:
            failed = []
        by_generation: dict[int, list[Candidate]] = {}
        for c in failed:
            by_generation.setdefault(c.generation, []).append(c)
        for generation, members in by_generation.items():
            names = tuple(c.name for c in members)
            attempts = sorted({state.attempt(name) + 1 for name in names})
            log.warning("evaluating %d failed evaluation(s) of generation %d again (attempt %s)", len(names),
                        generation, "/".join(str(a) for a in attempts))
            self.search.record(Retrying(names=names, generation=generation))
        if stopped is not None and stopped in by_generation:
            self.hold = (stopped, {c.name for c in by_generation[stopped]})
            self.rejudge = stopped in state.told
        self.retried_told = state.retrying_told()  # includes those retried by an earlier driver, killed since

    def _retries_left(self) -> list[Candidate]:
        state = self.search.state
        return [c for c in self.retried_told if c.name not in state.results]

    def _release_hold(self) -> None:
        """Once a stopped generation's retried evaluations are all back, asking goes on; in steady state (whose
        block was told before it stopped) the block is judged again with its new results."""
        if self.hold is None:
            return
        generation, names = self.hold
        state = self.search.state
        if any(name not in state.results for name in names):
            return
        self.hold = None
        if self.rejudge:
            self._fail_fast(generation, [Evaluated(c, state.results[c.name]) for c in state.members[generation]])

    def _fail_fast_before_tell(self, candidates: Sequence[Candidate]) -> None:
        """Generational: judge a complete generation before the optimizer is told it, so a stop leaves it
        untold and the resume that retries its failures tells it once, with their new results."""
        state = self.search.state
        for number in sorted({c.generation for c in candidates}):
            if number not in state.told and self._block_done(number):
                self._fail_fast(number, [Evaluated(c, state.results[c.name]) for c in state.members[number]],
                                before_tell=True)

    def _tell(self, candidates: Sequence[Candidate]) -> None:
        run, state, optimizer = self.search, self.search.state, self.optimizer
        told = [Evaluated(c, state.results[c.name]) for c in candidates]
        optimizer.tell(told)
        for c in candidates:
            self.told_count[c.generation] += 1
        complete = sorted({c.generation for c in candidates
                           if self.told_count[c.generation] == len(state.members[c.generation])
                           and c.generation not in state.told and self._block_done(c.generation)})
        # Generational: a tell is the whole pending generation, so its names need not be spelled out.
        names = tuple(c.name for c in candidates) if optimizer.steady else None
        run.record(Told(ask=optimizer.batches_asked, names=names, generations=tuple(complete),
                        state=optimizer.journal_state() or None), durable=False)
        self.observer.told(run, told)
        for number in complete:
            members = [Evaluated(c, state.results[c.name]) for c in state.members[number]]
            self.observer.generation(run, number, members)
            if optimizer.steady:
                self._fail_fast(number, members)

    def _block_done(self, generation: int) -> bool:
        """Every birth of ``generation`` has been asked (a steady-state block fills up over several asks)."""
        return len(self.search.state.members[generation]) >= self.search.config.optimizer.population_size

    def _fail_fast(self, number: int, members: Sequence[Evaluated], before_tell: bool = False) -> None:
        """Stop the search when too many of a generation's evaluations failed (a broken set-up, not bad luck).

        After the tell (steady state) a generation that finished the search does not stop it; before the tell
        (generational) it does, so that a resume can evaluate its failures again.
        """
        run = self.search
        failed = [e for e in members if not e.result.ok]
        rate = run.config.optimizer.max_failure_rate
        if not members or len(failed) / len(members) < rate or (run.optimizer.finished and not before_tell):
            return
        reason, hits = most_common_reason(failed)
        what = "every evaluation" if len(failed) == len(members) else f"{len(failed)} of {len(members)} evaluations"
        message = (f"stopped after generation {number}: {what} failed (optimizer.max_failure_rate={rate:g}); "
                   f"most common reason ({hits} of {len(failed)}): {reason}; fix the cause, then "
                   f"`{resume_command(run.store.run_dir)}` (it evaluates them again first; runtime settings may be "
                   "overridden there, e.g. backend.timeout_s=900)")
        run.record(Stopped(generation=number, failed=len(failed), reason=reason))
        raise SearchStopped(message)
