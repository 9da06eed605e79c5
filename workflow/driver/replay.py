"""Resume: bring a fresh optimizer to the journal's state by replaying its events in the order they happened.

Asks are checked against what was recorded (same seed, same draws, same proposals; an optimizer whose asks are
costly, BO, checks only the last one and trusts the journal for the others), tells and immigrations are applied
where the journal has them, so an interrupted run continues exactly where it stopped. Results arrive in any
order in steady state: the journal's order of tells is the replay order.
"""

from __future__ import annotations

from collections.abc import Sequence

from workflow.core import Optimizer, ProtocolError
from workflow.errors import RunDirError
from workflow.records import Evaluated
from workflow.store import RunState
from workflow.store.state import decode_migrants


def apply_immigrants(optimizer: Optimizer, migrants: Sequence[Evaluated]) -> list[Evaluated]:
    """Hand immigrants to an optimizer that supports them (the GA); returns who was replaced."""
    immigrate = getattr(optimizer, "immigrate", None)
    if immigrate is None:
        raise RunDirError(f"optimizer {optimizer.name} does not take immigrants (islands need the GA)")
    replaced: list[Evaluated] = immigrate(list(migrants))
    return replaced


def replay(optimizer: Optimizer, state: RunState) -> None:
    """Replay ``state``'s journal into ``optimizer`` (whatever was asked and not told stays pending)."""
    # The last ask, and any ask since the tell before it, are proposed again and checked; an optimizer may take
    # the others from the journal as recorded (the state that tell recorded brings it up to date).
    asked = [i for i, event in enumerate(state.events) if event["event"] == "asked"]
    last_ask = asked[-1] if asked else -1
    checked_from = 1 + max((i for i, event in enumerate(state.events[:last_ask + 1]) if event["event"] == "told"),
                           default=-1)
    batches = iter(enumerate(state.batches, start=1))
    optimizer.replaying = True
    try:
        for position, event in enumerate(state.events):
            kind = event["event"]
            if kind == "asked":
                _tell_implicit(optimizer, state)
                number, recorded = next(batches)
                try:
                    optimizer.restore(recorded, verify=position >= checked_from)
                except ProtocolError as exc:
                    raise RunDirError(f"journal batch {number} {exc}") from None
            elif kind == "told":
                names = set(event.get("names", [])) or {c.name for c in optimizer.pending}
                optimizer.tell([Evaluated(c, state.results[c.name]) for c in optimizer.pending if c.name in names])
                try:
                    optimizer.replayed_state(event.get("state"))
                except ProtocolError as exc:
                    raise RunDirError(f"journal event {position + 1} (told): {exc}") from None
            elif kind == "immigrated":
                apply_immigrants(optimizer, decode_migrants(event["migrants"]))
    finally:
        optimizer.replaying = False


def _tell_implicit(optimizer: Optimizer, state: RunState) -> None:
    """A driver of version 0.1 could tell a complete generation without journaling it (it died in between)."""
    pending = optimizer.pending
    if getattr(optimizer, "steady", False) or not pending or optimizer.capacity():
        return
    if any(c.name not in state.results for c in pending):
        raise RunDirError(f"journal batch {optimizer.batches_asked} has no results but a later batch exists")
    optimizer.tell([Evaluated(c, state.results[c.name]) for c in pending])
