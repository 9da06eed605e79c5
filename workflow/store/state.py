"""What the journal says about a run, rebuilt in one pass over its events.

Events: ``created``, ``asked`` (a batch the optimizer proposed, recorded before anything is submitted),
``submitting`` (a Slurm job name recorded before sbatch runs), ``submitted`` (backend details such as Slurm
job ids), ``abandoned`` (a submission given up), ``result`` (one per evaluation, the first one wins),
``told`` (given back to the optimizer: a generation's ``batch``, or steady-state ``names`` and the
``generations`` they completed), ``emigrated`` / ``immigrated`` (island model),
``config_changed``, ``stopped`` (the search stopped early, e.g. every evaluation of a generation failed),
``finished``. Unknown events are kept in ``events`` and otherwise ignored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from workflow.records import Candidate, Evaluated, Result


@dataclass
class RunState:
    """Everything the journal says about a run."""

    #: The candidates of each ``asked`` event (a generation, or in steady state one or more births).
    batches: list[list[Candidate]] = field(default_factory=list)
    #: Every candidate's generation (its ``batch`` in journal events), by name.
    generation_of: dict[str, int] = field(default_factory=dict)
    #: The candidates of each generation (a steady-state block of births), by generation.
    members: dict[int, list[Candidate]] = field(default_factory=dict)
    #: Names given back to the optimizer.
    told_names: set[str] = field(default_factory=set)
    _by_name: dict[str, Candidate] = field(default_factory=dict, repr=False)
    #: The journal's format (:data:`workflow.store.journal.JOURNAL_FORMAT`; 1 for run directories of 0.1).
    format: int = 1
    results: dict[str, Result] = field(default_factory=dict)
    submissions: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> latest submission event
    #: Generations told in full.
    told: set[int] = field(default_factory=set)
    #: Island model: ids of the migrations already applied here.
    migrations_applied: set[str] = field(default_factory=set)
    finished: bool = False
    events: list[dict[str, Any]] = field(default_factory=list)

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

    def best(self) -> Evaluated | None:
        done = [e for e in self.evaluated() if e.result.ok]
        return min(done, key=lambda e: e.fitness, default=None)

    def count(self, kind: str) -> int:
        """How many events of ``kind`` the journal holds."""
        return sum(1 for event in self.events if event["event"] == kind)

    def apply(self, event: dict[str, Any]) -> None:
        """Take one journal event into the state."""
        self.events.append(event)
        kind = event["event"]
        if kind == "asked":
            batch = [Candidate.from_dict(c) for c in event["candidates"]]
            self.batches.append(batch)
            for c in batch:
                self.generation_of[c.name] = c.generation
                self._by_name[c.name] = c
                self.members.setdefault(c.generation, []).append(c)
        elif kind == "created":
            self.format = int(event.get("format", 1))
        elif kind == "result":
            result = Result.from_dict(event["result"])
            self.results.setdefault(result.name, result)  # exactly once: the first result wins
        elif kind in ("submitting", "submitted", "abandoned"):
            for name in event.get("names", []):
                self.submissions[name] = event
        elif kind == "told":
            if "batch" in event:  # a whole generation
                self.told.add(int(event["batch"]))
                self.told_names.update(c.name for c in self.members.get(int(event["batch"]), []))
            self.told_names.update(event.get("names", []))
            self.told.update(int(k) for k in event.get("generations", []))
        elif kind == "immigrated":
            self.migrations_applied.add(str(event["id"]))
        elif kind == "finished":
            self.finished = True


def replay_events(events: Iterable[dict[str, Any]]) -> RunState:
    state = RunState()
    for event in events:
        state.apply(event)
    return state


def decode_migrants(migrants: Iterable[dict[str, Any]]) -> list[Evaluated]:
    """Migrants as journaled and sent (``{"candidate": ..., "result": ...}`` each)."""
    return [Evaluated(Candidate.from_dict(m["candidate"]), Result.from_dict(m["result"])) for m in migrants]


def encode_migrants(migrants: Iterable[Evaluated]) -> list[dict[str, Any]]:
    return [{"candidate": e.candidate.to_dict(), "result": e.result.to_dict()} for e in migrants]
