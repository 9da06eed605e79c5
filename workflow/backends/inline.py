"""Inline backend: evaluations run one after another in the driver's own process.

For cheap objectives (a Python function that returns in milliseconds), for stepping through an objective
with a debugger, and for tests. Nothing is started, nothing is pickled; there is no per-evaluation timeout
(the objective runs on the driver's own thread). The work directory is the same as on the other backends.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from pathlib import Path

from workflow.backends.base import BackendBase, Sink
from workflow.config import Config
from workflow.evaluate import run_pack
from workflow.packing import make_packs, pack_size
from workflow.records import Candidate
from workflow.store.layout import pack_workdir


class InlineBackend(BackendBase):
    name = "inline"

    def __init__(self, config: Config, run_dir: Path) -> None:
        super().__init__(config, run_dir)
        self._queue: deque[list[Candidate]] = deque()

    def submit(self, candidates: Sequence[Candidate], sink: Sink) -> None:
        if not candidates:
            return
        size = pack_size(self.config.train, len(candidates), slots=1)
        self._queue.extend(make_packs(candidates, size))
        sink.submitted([c.name for c in candidates], backend=self.name, pack_size=size)

    def collect(self, sink: Sink, timeout_s: float | None = None) -> int:
        """Evaluate the next queued task now (whatever ``timeout_s`` says: there is nobody else to wait for)."""
        if not self._queue:
            return 0
        pack = self._queue.popleft()
        results = run_pack(pack, self.spec, str(pack_workdir(self.run_dir, pack)))
        for result in results:
            sink.result(result)
        return len(results)

    def in_flight(self) -> int:
        return sum(len(pack) for pack in self._queue)

    def close(self) -> None:
        self._queue.clear()
