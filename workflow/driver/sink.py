"""What the backends report, recorded in the journal as it is reported."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from workflow.driver.observers import Observer, SearchRun
from workflow.faults import crash_point
from workflow.records import Result
from workflow.stopping import raise_if_stopped

log = logging.getLogger(__name__)


class JournalSink:
    """The driver's :class:`~workflow.backends.Sink`: every submission and result goes into the journal first."""

    def __init__(self, run: SearchRun, observer: Observer) -> None:
        self.run, self.observer = run, observer

    def submitted(self, names: Sequence[str], info: dict[str, Any]) -> None:
        # An intent ("submitting") must be durable before the submission leaves the machine: a driver that
        # dies after sbatch finds its array by the intent's tag.
        self.run.record({"event": "submitted", "batch": self._batch(names[0]) if names else 0,
                         "names": list(names), **info}, durable=info.get("event") == "submitting")

    def result(self, result: Result) -> None:
        if result.name in self.run.state.results:
            log.warning("ignoring a second result for %s (already recorded)", result.name)
            return
        self.run.record({"event": "result", "batch": self._batch(result.name), "result": result.to_dict()},
                        durable=False)
        crash_point("after-result")
        candidate = self.run.state.candidate(result.name)
        self.run.store.results().append(candidate, self.run.state.results[result.name], self.run.state.evaluated)
        self.observer.result(self.run, result)

    def previous_submission(self, name: str) -> dict[str, Any] | None:
        return self.run.state.submissions.get(name)

    def waiting(self) -> None:
        raise_if_stopped()
        self.run.store.flush()

    def _batch(self, name: str) -> int:
        return self.run.state.generation_of.get(name, 0)
