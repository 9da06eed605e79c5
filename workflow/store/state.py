"""What the journal says about a run, rebuilt in one pass over its typed events (:mod:`workflow.store.events`).

:meth:`RunState.apply` is the one place that takes an event into the state; readers (replay, status, report,
islands, the Slurm backend) use its typed views and never the journal's dicts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from workflow.records import Candidate, Evaluated, Result
from workflow.store.events import (
    Asked,
    Created,
    Emigrated,
    Event,
    Extended,
    Finished,
    Immigrated,
    ResultRecorded,
    Retrying,
    Stopped,
    Submission,
    Told,
)

E = TypeVar("E", bound=Event)


@dataclass
class RunState:
    """Everything the journal says about a run."""

    #: The candidates of each ``asked`` event (a generation, or in steady state one or more births).
    batches: list[list[Candidate]] = field(default_factory=list)
    #: Every candidate's generation, by name.
    generation_of: dict[str, int] = field(default_factory=dict)
    #: The candidates of each generation (a steady-state block of births), by generation.
    members: dict[int, list[Candidate]] = field(default_factory=dict)
    #: Names given back to the optimizer.
    told_names: set[str] = field(default_factory=set)
    _by_name: dict[str, Candidate] = field(default_factory=dict, repr=False)
    #: The journal's format (:data:`workflow.store.journal.JOURNAL_FORMAT`; 1 for run directories of 0.1).
    format: int = 1
    #: The ``created`` event (None for a journal without one).
    created: Created | None = None
    results: dict[str, Result] = field(default_factory=dict)
    #: The latest submission event of each evaluation, by name.
    submissions: dict[str, Submission] = field(default_factory=dict)
    #: Generations told in full.
    told: set[int] = field(default_factory=set)
    #: Island model: ids of the migrations already applied here.
    migrations_applied: set[str] = field(default_factory=set)
    finished: bool = False
    #: Evaluations run more than once (``retrying``): the attempt their current result (or the next) is.
    attempts: dict[str, int] = field(default_factory=dict)
    #: The results of their earlier attempts, oldest first (``results`` holds the latest one only).
    earlier: dict[str, list[Result]] = field(default_factory=dict, repr=False)
    #: The generation of a fail-fast stop that nothing has followed yet (no retry, no new ask): what a resume
    #: evaluates again first.
    stopped_generation: int | None = None
    #: Every event, in journal order.
    events: list[Event] = field(default_factory=list)

    @property
    def candidates(self) -> list[Candidate]:
        """Every candidate, in the order they were asked."""
        return [c for batch in self.batches for c in batch]

    def evaluated(self) -> list[Evaluated]:
        return [Evaluated(c, self.results[c.name]) for c in self.candidates if c.name in self.results]

    def candidate(self, name: str) -> Candidate:
        return self._by_name[name]

    def pending(self) -> list[Candidate]:
        return [c for c in self.candidates if c.name not in self.results]

    def attempt(self, name: str) -> int:
        """The attempt ``name``'s current result is (or its next result will be): 1 unless it was retried."""
        return self.attempts.get(name, 1)

    def retrying_told(self) -> list[Candidate]:
        """Evaluations the optimizer was told that are being evaluated again (``resume --retry-failed``)."""
        return [c for c in self.candidates if c.name in self.told_names and c.name not in self.results]

    def best(self) -> Evaluated | None:
        done = [e for e in self.evaluated() if e.result.ok]
        return min(done, key=lambda e: e.fitness, default=None)

    def of_kind(self, kind: type[E]) -> list[E]:
        """Every event of one kind (a class of :mod:`workflow.store.events`), in journal order."""
        return [event for event in self.events if isinstance(event, kind)]

    def job_id(self, name: str) -> str:
        """The Slurm job id last recorded for evaluation ``name`` ("" when none is)."""
        submission = self.submissions.get(name)
        return submission.job_id(name) if submission is not None else ""

    @property
    def emigrations(self) -> list[Emigrated]:
        return self.of_kind(Emigrated)

    @property
    def immigrations(self) -> list[Immigrated]:
        return self.of_kind(Immigrated)

    def bases_by_generation(self) -> dict[int, dict[str, Any]]:
        """The GA's tree bases recorded with each generation's tell (adaptive exploration)."""
        out: dict[int, dict[str, Any]] = {}
        for told in self.of_kind(Told):
            bases = (told.state or {}).get("bases")
            if bases and told.generations:
                out[told.generations[-1]] = dict(bases)
        return out

    def apply(self, event: Event) -> None:
        """Take one journal event into the state."""
        self.events.append(event)
        match event:
            case Asked(candidates=batch):
                self.stopped_generation = None
                self.batches.append(list(batch))
                for c in batch:
                    self.generation_of[c.name] = c.generation
                    self._by_name[c.name] = c
                    self.members.setdefault(c.generation, []).append(c)
            case Created(format=journal_format):
                self.created = event
                self.format = int(journal_format)
            case ResultRecorded(result=result):
                self.results.setdefault(result.name, result)  # exactly once: the first result wins
            case Retrying(names=names, generation=generation):
                for name in names:  # the next attempt: its result is the next one recorded
                    if name in self.results:
                        self.earlier.setdefault(name, []).append(self.results.pop(name))
                    self.attempts[name] = self.attempt(name) + 1
                    self.submissions.pop(name, None)  # submitted afresh, never re-attached to the failed job
                if generation == self.stopped_generation:
                    self.stopped_generation = None
            case Stopped(generation=generation):
                self.stopped_generation = generation
            case Submission(names=names):
                for name in names:
                    self.submissions[name] = event
            case Told(names=names, generations=generations):
                if names is None:  # a whole generation: everything it asked
                    for number in generations:
                        self.told_names.update(c.name for c in self.members.get(number, []))
                else:
                    self.told_names.update(names)
                self.told.update(generations)
            case Immigrated(id=migration):
                self.migrations_applied.add(migration)
            case Finished():
                self.finished = True
            case Extended():
                self.finished = False


def replay_events(events: Iterable[Event]) -> RunState:
    state = RunState()
    for event in events:
        state.apply(event)
    return state
