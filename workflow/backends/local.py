"""Local backend: a pool of long-lived worker processes on this machine (pebble), one timeout per evaluation.

Workers live for the whole run so torch is imported and the dataset loaded once per worker, not once per
evaluation. pebble kills a worker whose evaluation exceeds ``backend.timeout_s`` and starts a new one.
``compare`` keeps one pool for all its runs (:meth:`bind`): starting one costs seconds, every worker
importing torch.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

from pebble import ProcessExpired, ProcessPool

from workflow.backends.base import BackendBase, Sink
from workflow.config import Config
from workflow.evaluate import run_pack
from workflow.packing import make_packs, pack_size
from workflow.records import Candidate, Result
from workflow.store.layout import pack_workdir


class LocalBackend(BackendBase):
    name = "local"

    def __init__(self, config: Config, run_dir: Path) -> None:
        super().__init__(config, run_dir)
        self._pool: ProcessPool | None = None
        self._futures: dict[Future[Any], tuple[list[Candidate], float]] = {}

    def _get_pool(self) -> ProcessPool:
        if self._pool is None:
            # spawn: the driver may run threads (progress display); forking those is unsafe.
            self._pool = ProcessPool(max_workers=self.config.backend.workers,
                                     context=multiprocessing.get_context("spawn"))
        return self._pool

    def submit(self, candidates: Sequence[Candidate], sink: Sink) -> None:
        if not candidates:
            return
        pool = self._get_pool()
        size = pack_size(self.config.train, len(candidates), slots=self.config.backend.workers)
        for pack in make_packs(candidates, size):
            future = pool.schedule(run_pack, args=(pack, self.spec, str(pack_workdir(self.run_dir, pack))),
                                   timeout=self.config.backend.timeout_s)
            self._futures[future] = (pack, time.monotonic())
        sink.submitted([c.name for c in candidates], backend=self.name, pack_size=size)

    def collect(self, sink: Sink, timeout_s: float | None = None) -> int:
        if not self._futures:
            return 0
        if not any(future.done() for future in self._futures):
            sink.waiting()
        done, _ = wait(list(self._futures), timeout=timeout_s, return_when=FIRST_COMPLETED)
        count = 0
        for finished in done:
            pack, started = self._futures.pop(finished)
            for result in _outcome(finished, pack, time.monotonic() - started, self.config.backend.timeout_s):
                sink.result(result)
                count += 1
        return count

    def in_flight(self) -> int:
        return sum(len(pack) for pack, _ in self._futures.values())

    def close(self) -> None:
        self._futures.clear()
        if self._pool is not None:
            self._pool.stop()
            self._pool.join()
            self._pool = None


def _outcome(future: Future[Any], pack: list[Candidate], elapsed: float, timeout: float) -> list[Result]:
    def failed(reason: str) -> list[Result]:
        return [Result.failure(c.name, reason, seconds=elapsed) for c in pack]

    try:
        results = future.result()
    except FutureTimeout:
        return failed(f"timed out after {timeout:g} s (backend.timeout_s)")
    except ProcessExpired as exc:
        return failed(f"worker process died (exit code {exc.exitcode})")
    except Exception as exc:  # noqa: BLE001 - e.g. the result could not be unpickled
        return failed(f"{type(exc).__name__}: {exc}")
    names = [c.name for c in pack]
    if not isinstance(results, list) or [getattr(r, "name", None) for r in results] != names:
        return failed(f"worker returned {results!r:.200} instead of results for {names}")
    return results
