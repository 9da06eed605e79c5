"""Local backend: a pool of long-lived worker processes on this machine (pebble), one timeout per evaluation.

Workers live for the whole run so torch is imported and the dataset loaded once per worker, not once per
evaluation. pebble kills a worker whose evaluation exceeds ``backend.timeout_s`` and starts a new one.
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

from workflow.backends.base import BatchSink
from workflow.backends.worker import run_evaluation
from workflow.config import Config
from workflow.records import Candidate, Result
from workflow.tracking import TrackingSpec


class LocalBackend:
    name = "local"

    def __init__(self, config: Config, run_dir: Path) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self._pool: ProcessPool | None = None
        self.tracking = TrackingSpec.from_config(config, self.run_dir)

    def _get_pool(self) -> ProcessPool:
        if self._pool is None:
            # spawn: the driver may run threads (progress display); forking those is unsafe.
            self._pool = ProcessPool(max_workers=self.config.backend.workers,
                                     context=multiprocessing.get_context("spawn"))
        return self._pool

    def run(self, candidates: Sequence[Candidate], sink: BatchSink) -> None:
        pool = self._get_pool()
        timeout = self.config.backend.timeout_s
        futures: dict[Any, tuple[Candidate, float]] = {}
        for cand in candidates:
            future = pool.schedule(run_evaluation, args=(cand, self.config.task, self.config.train),
                                   kwargs={"tracking": self.tracking}, timeout=timeout)
            futures[future] = (cand, time.monotonic())
        sink.submitted([c.name for c in candidates], {"backend": "local"})
        remaining: set[Future[Any]] = set(futures)
        while remaining:
            done, remaining = wait(remaining, return_when=FIRST_COMPLETED)
            for finished in done:
                cand, started = futures[finished]
                sink.result(_outcome(finished, cand, time.monotonic() - started, timeout))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.stop()
            self._pool.join()
            self._pool = None


def _outcome(future: Future[Any], cand: Candidate, elapsed: float, timeout: float) -> Result:
    try:
        result = future.result()
    except FutureTimeout:
        return Result.failure(cand.name, f"timed out after {timeout:g} s (backend.timeout_s)", seconds=elapsed)
    except ProcessExpired as exc:
        return Result.failure(cand.name, f"worker process died (exit code {exc.exitcode})", seconds=elapsed)
    except Exception as exc:  # noqa: BLE001 - e.g. the result could not be unpickled
        return Result.failure(cand.name, f"{type(exc).__name__}: {exc}", seconds=elapsed)
    if not isinstance(result, Result) or result.name != cand.name:
        return Result.failure(cand.name, f"worker returned {result!r} instead of a result", seconds=elapsed)
    return result
