"""Resume: bring a fresh optimizer to the journal's state by replaying its events in the order they happened.

Asks are checked against what was recorded (same seed, same draws, same proposals), tells and immigrations
are applied where the journal has them, so an interrupted run continues exactly where it stopped.
"""

from __future__ import annotations

from collections.abc import Sequence

from workflow.core import Optimizer
from workflow.errors import RunDirError
from workflow.records import Candidate, Evaluated
from workflow.store import RunState
from workflow.store.state import decode_migrants


def apply_immigrants(optimizer: Optimizer, migrants: Sequence[Evaluated]) -> list[Evaluated]:
    """Hand immigrants to an optimizer that supports them (the GA); returns who was replaced."""
    immigrate = getattr(optimizer, "immigrate", None)
    if immigrate is None:
        raise RunDirError(f"optimizer {optimizer.name} does not take immigrants (islands need the GA)")
    replaced: list[Evaluated] = immigrate(list(migrants))
    return replaced


def replay(optimizer: Optimizer, state: RunState) -> list[Candidate]:
    """Replay ``state``'s journal into ``optimizer``; return the batch asked but not yet told (or [])."""
    batches = iter(enumerate(state.batches, start=1))
    pending: list[Candidate] = []
    number = 0

    def tell(batch: list[Candidate]) -> None:
        optimizer.tell([Evaluated(c, state.results[c.name]) for c in batch])

    for event in state.events:
        kind = event["event"]
        if kind == "asked":
            if pending:
                # An older driver told a complete batch without journaling it (it died in between).
                if any(c.name not in state.results for c in pending):
                    raise RunDirError(f"journal batch {number} has no results but a later batch exists")
                tell(pending)
            number, recorded = next(batches)
            proposed = optimizer.ask()
            if [c.to_dict() for c in proposed] != [c.to_dict() for c in recorded]:
                raise RunDirError(f"journal batch {number} differs from what the optimizer proposes on replay "
                                  "(was the code or the config changed?)")
            pending = recorded
        elif kind == "told" and pending and int(event["batch"]) == number:
            tell(pending)
            pending = []
        elif kind == "immigrated":
            apply_immigrants(optimizer, decode_migrants(event["migrants"]))
    return pending
