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
from workflow.backends.packing import make_packs, pack_size, pack_workdir
from workflow.backends.worker import run_pack
from workflow.config import Config
from workflow.records import Candidate, Result
from workflow.tracking import TrackingSpec


class LocalBackend:
    name = "local"

    def __init__(self, config: Config, run_dir: Path) -> None:
        self._pool: ProcessPool | None = None
        self.rebind(config, run_dir)

    def rebind(self, config: Config, run_dir: Path) -> None:
        """Serve another run with the same warm workers (``compare`` runs several searches in turn; starting
        a pool costs seconds per run, every worker importing torch)."""
        self.config = config
        self.run_dir = Path(run_dir)
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
        size = pack_size(self.config, len(candidates), slots=self.config.backend.workers)
        futures: dict[Any, tuple[list[Candidate], float]] = {}
        for pack in make_packs(candidates, size):
            workdir = str(pack_workdir(self.run_dir, pack)) if len(pack) > 1 else None
            future = pool.schedule(run_pack, args=(pack, self.config.task, self.config.train, workdir),
                                   kwargs={"tracking": self.tracking}, timeout=timeout)
            futures[future] = (pack, time.monotonic())
        sink.submitted([c.name for c in candidates], {"backend": "local", "pack_size": size})
        remaining: set[Future[Any]] = set(futures)
        while remaining:
            done, remaining = wait(remaining, return_when=FIRST_COMPLETED)
            for finished in done:
                pack, started = futures[finished]
                for result in _outcome(finished, pack, time.monotonic() - started, timeout):
                    sink.result(result)

    def close(self) -> None:
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
