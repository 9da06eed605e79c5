"""Resume: bring a fresh optimizer to the journal's state by replaying its events in the order they happened.

Asks are checked against what was recorded (same seed, same draws, same proposals; an optimizer whose asks are
costly, BO, checks only the last one and trusts the journal for the others), tells and immigrations are applied
where the journal has them, so an interrupted run continues exactly where it stopped. Results arrive in any
order in steady state: the journal's order of tells is the replay order.

A tell is replayed with the results the journal held at that point, not at its end: an evaluation retried
after it was told (``resume --retry-failed``) was told its earlier attempt, and so is the replayed optimizer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from workflow.core import Optimizer, ProtocolError
from workflow.errors import RunDirError
from workflow.records import Evaluated, Result
from workflow.store import RunState
from workflow.store.events import Asked, Enqueued, Immigrated, ResultRecorded, Retrying, Told


def apply_immigrants(optimizer: Optimizer, migrants: Sequence[Evaluated]) -> list[Evaluated]:
    """Hand immigrants to an optimizer that takes them (the GA); returns who was replaced."""
    if not optimizer.takes_immigrants:
        raise RunDirError(f"optimizer {optimizer.name} does not take immigrants (islands need the GA)")
    return optimizer.immigrate(list(migrants))


def replay(optimizer: Optimizer, state: RunState) -> None:
    """Replay ``state``'s journal into ``optimizer`` (whatever was asked and not told stays pending)."""
    # The last ask, and any ask since the tell before it, are proposed again and checked; an optimizer may take
    # the others from the journal as recorded (the state that tell recorded brings it up to date).
    asked = [i for i, event in enumerate(state.events) if isinstance(event, Asked)]
    last_ask = asked[-1] if asked else -1
    checked_from = 1 + max((i for i, event in enumerate(state.events[:last_ask + 1]) if isinstance(event, Told)),
                           default=-1)
    number = 0
    results: dict[str, Result] = {}  # what the journal held so far (first result wins, a retry forgets it)
    optimizer.replaying = True
    try:
        for position, event in enumerate(state.events):
            match event:
                case ResultRecorded(result=result):
                    results.setdefault(result.name, result)
                case Retrying(names=names):
                    for name in names:
                        results.pop(name, None)
                case Asked(candidates=recorded):
                    _tell_implicit(optimizer, results)
                    number += 1
                    try:
                        optimizer.restore(list(recorded), verify=position >= checked_from)
                    except ProtocolError as exc:
                        raise RunDirError(f"journal ask {number} {exc}") from None
                case Told(names=names, state=recorded_state):
                    chosen = set(names) if names is not None else {c.name for c in optimizer.pending}
                    optimizer.tell([Evaluated(c, results[c.name]) for c in optimizer.pending if c.name in chosen])
                    try:
                        optimizer.replayed_state(dict(recorded_state) if recorded_state else None)
                    except ProtocolError as exc:
                        raise RunDirError(f"journal event {position + 1} (told): {exc}") from None
                case Immigrated(migrants=migrants):
                    apply_immigrants(optimizer, migrants)
                case Enqueued(hparams=hparams):
                    optimizer.enqueue(hparams)
    finally:
        optimizer.replaying = False


def _tell_implicit(optimizer: Optimizer, results: Mapping[str, Result]) -> None:
    """A driver of version 0.1 could tell a complete generation without journaling it (it died in between)."""
    pending = optimizer.pending
    if optimizer.steady or not pending or optimizer.capacity():
        return
    if any(c.name not in results for c in pending):
        raise RunDirError(f"journal ask {optimizer.batches_asked} has no results but a later ask exists")
    optimizer.tell([Evaluated(c, results[c.name]) for c in optimizer.pending])
