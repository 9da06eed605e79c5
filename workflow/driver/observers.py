"""The one observer protocol: what the loop tells the rest of the house while a search runs.

Progress displays, the island model's migration step and W&B's experiment run are observers; the loop knows
none of them. Every hook does nothing by default, so an observer implements only what it needs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workflow.config import Config
from workflow.core import Optimizer
from workflow.records import Candidate, Evaluated, Result
from workflow.store import RunState, RunStore
from workflow.store.events import Event
from workflow.store.queue import queued


@dataclass
class SearchRun:
    """What observers see of the running search (the loop owns it; observers may append to the journal)."""

    config: Config
    store: RunStore
    state: RunState
    optimizer: Optimizer
    island: int = 0

    def record(self, event: Event, durable: bool = True) -> None:
        """Append ``event`` to the journal and take it into the state (``durable``: fsync'ed now; otherwise
        by the journal's group commit, see :mod:`workflow.store.journal`)."""
        self.state.apply(self.store.append(event, durable=durable))

    def enqueue(self, hparams: Mapping[str, Any], source: str = "enqueue") -> None:
        """Evaluate ``hparams`` before anything the optimizer proposes next (checked against the space, journaled,
        taken by the optimizer's next ask; a resume replays it in place)."""
        event = queued(self.config.search_space(), hparams, source, "enqueue")
        self.record(event)
        self.optimizer.enqueue(event.hparams)


class Observer:
    """Hooks the loop calls: started; then asked, result, told as they happen, and generation each time a
    generation (in steady state: a block of ``population_size`` births) has been told in full; stopped."""

    def started(self, run: SearchRun) -> None:
        """The journal was replayed: the optimizer is where the run left off."""

    def asked(self, run: SearchRun, candidates: Sequence[Candidate]) -> None:
        """``candidates`` are (again, after a resume) being evaluated."""

    def result(self, run: SearchRun, result: Result) -> None:
        """One evaluation's result was journaled."""

    def told(self, run: SearchRun, told: Sequence[Evaluated]) -> None:
        """``told`` were given back to the optimizer (and journaled)."""

    def generation(self, run: SearchRun, number: int, evaluated: Sequence[Evaluated]) -> None:
        """Generation ``number`` has been told in full (``evaluated``: its members)."""

    def stopped(self, run: SearchRun) -> None:
        """The loop ended (finished, stopped early, or by an exception)."""


class Observers(Observer):
    """Several observers as one, called in order."""

    def __init__(self, observers: Iterable[Observer] = ()) -> None:
        self.observers = list(observers)

    def started(self, run: SearchRun) -> None:
        for observer in self.observers:
            observer.started(run)

    def asked(self, run: SearchRun, candidates: Sequence[Candidate]) -> None:
        for observer in self.observers:
            observer.asked(run, candidates)

    def result(self, run: SearchRun, result: Result) -> None:
        for observer in self.observers:
            observer.result(run, result)

    def told(self, run: SearchRun, told: Sequence[Evaluated]) -> None:
        for observer in self.observers:
            observer.told(run, told)

    def generation(self, run: SearchRun, number: int, evaluated: Sequence[Evaluated]) -> None:
        for observer in self.observers:
            observer.generation(run, number, evaluated)

    def stopped(self, run: SearchRun) -> None:
        for observer in self.observers:
            observer.stopped(run)
