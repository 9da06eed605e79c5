"""What the backends report, recorded in the journal as it is reported."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from workflow.driver.observers import Observer, SearchRun
from workflow.faults import crash_point
from workflow.records import Result

log = logging.getLogger(__name__)


class JournalSink:
    """The driver's :class:`~workflow.backends.Sink`: every submission and result goes into the journal first."""

    def __init__(self, run: SearchRun, observer: Observer) -> None:
        self.run, self.observer = run, observer
        self._generation = {c.name: c.generation for c in run.state.candidates}

    def submitted(self, names: Sequence[str], info: dict[str, Any]) -> None:
        self.run.record({"event": "submitted", "batch": self._batch(names[0]) if names else 0,
                         "names": list(names), **info})

    def result(self, result: Result) -> None:
        if result.name in self.run.state.results:
            log.warning("ignoring a second result for %s (already recorded)", result.name)
            return
        self.run.record({"event": "result", "batch": self._batch(result.name), "result": result.to_dict()})
        crash_point("after-result")
        self.run.store.write_results_csv(self.run.state)
        self.observer.result(self.run, result)

    def previous_submission(self, name: str) -> dict[str, Any] | None:
        return self.run.state.submissions.get(name)

    def _batch(self, name: str) -> int:
        if name not in self._generation:  # asked after this sink was made
            self._generation.update({c.name: c.generation for c in self.run.state.candidates})
        return self._generation.get(name, 0)
