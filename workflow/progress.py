"""Live progress of a search: a rich display on a terminal, plain log lines otherwise (files, Slurm logs)."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.console import Console
from rich.live import Live
from rich.table import Table

from workflow.driver import Observer, SearchRun
from workflow.records import Candidate, Result

if TYPE_CHECKING:
    from workflow.config import Config
    from workflow.store import RunState

log = logging.getLogger("workflow.progress")


class _Counts:
    def __init__(self) -> None:
        self.total_batches = 0
        self.current_batch = 0
        self.batch_size = 0
        self.done = 0
        self.failed = 0
        self.in_flight = 0
        self.best: Result | None = None

    def start(self, config: Config, state: RunState) -> None:
        self.total_batches = config.optimizer.generations
        for result in state.results.values():
            self._count(result)

    def asked(self, candidates: Sequence[Candidate], state: RunState) -> bool:
        """Count newly asked candidates; True when they open a generation not seen before."""
        self.in_flight += sum(c.name not in state.results for c in candidates)
        newest = max((c.generation for c in candidates), default=self.current_batch)
        opened = newest > self.current_batch
        self.current_batch = max(self.current_batch, newest)
        return opened

    def result(self, result: Result) -> None:
        self.in_flight = max(self.in_flight - 1, 0)
        self._count(result)

    def _count(self, result: Result) -> None:
        self.done += 1
        if not result.ok:
            self.failed += 1
        elif self.best is None or result.fitness < self.best.fitness:
            self.best = result

    def best_text(self) -> str:
        if self.best is None or not math.isfinite(self.best.fitness):
            return "-"
        return f"{self.best.fitness:.4g} ({self.best.name})"


class LogProgress(Observer):
    """One log line per generation and per result: readable in driver.log and Slurm output files."""

    def __init__(self) -> None:
        self.counts = _Counts()

    def started(self, run: SearchRun) -> None:
        self.counts.start(run.config, run.state)

    def asked(self, run: SearchRun, candidates: Sequence[Candidate]) -> None:
        if self.counts.asked(candidates, run.state) or not run.optimizer.steady:
            log.info("generation %d/%d: %d evaluations running", self.counts.current_batch,
                     self.counts.total_batches, self.counts.in_flight)

    def result(self, run: SearchRun, result: Result) -> None:
        self.counts.result(result)
        detail = f"fitness {result.fitness:.5g}" if result.ok else f"FAILED: {result.reason[:200]}"
        log.info("%s %s | done %d, failed %d, best %s", result.name, detail, self.counts.done,
                 self.counts.failed, self.counts.best_text())


class RichProgress(Observer):
    """A live table: generation x/N, evaluations done/running/failed, best so far."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.counts = _Counts()
        self.live = Live(self._render(), console=self.console, refresh_per_second=4, transient=False)

    def _render(self) -> Table:
        c = self.counts
        table = Table.grid(padding=(0, 2))
        table.add_row("[bold]generation[/]", f"{c.current_batch}/{c.total_batches}")
        table.add_row("[bold]evaluations[/]",
                      f"done {c.done - c.failed}  running {c.in_flight}  failed {c.failed}")
        table.add_row("[bold]best so far[/]", c.best_text())
        return table

    def started(self, run: SearchRun) -> None:
        self.counts.start(run.config, run.state)
        self.live.start()
        self.live.update(self._render())

    def asked(self, run: SearchRun, candidates: Sequence[Candidate]) -> None:
        self.counts.asked(candidates, run.state)
        self.live.update(self._render())

    def result(self, run: SearchRun, result: Result) -> None:
        self.counts.result(result)
        self.live.update(self._render())

    def stopped(self, run: SearchRun) -> None:
        self.live.update(self._render())
        self.live.stop()
