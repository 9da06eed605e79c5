"""One island per MPI rank: its own run directory under the parent, its own partition, migrants in and out.

Layout::

    RUN_DIR/                  the parent: the whole config, a journal (created, finished), combined results.csv
      islands/island-<k>/     a complete run directory per island (journal, results.csv, report/)

(:mod:`workflow.store.layout` knows these paths.)

Migration (every ``islands.interval`` generations, after the generation is told; in steady state every
``interval`` blocks of ``population_size`` births):
1. the sender records ``emigrated`` (id, targets, migrants) in its journal, then sends;
2. a receiver records ``immigrated`` (id, sender, migrants, who was replaced) before applying it, and replays
   it at the same generation on resume;
3. on resume, migrants that were in flight (recorded as sent by a neighbour, never recorded as received) are
   read from the neighbour's journal and applied; ids make a migration apply at most once.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from workflow.backends import Backend
from workflow.config import Config, island_config
from workflow.core.migration import (
    migration_due,
    migration_id,
    neighbours,
    replace_worst,
    select_emigrants,
    senders_to,
)
from workflow.core.ranking import Ranking
from workflow.driver import Observer, RunSummary, SearchRun, apply_immigrants, run_search
from workflow.errors import RunDirError
from workflow.islands.transport import Transport
from workflow.logs import log_to_file
from workflow.records import Evaluated
from workflow.store import RunState, RunStore
from workflow.store.events import Emigrated, Finished, Immigrated, Replaced, decode_migrants, encode_migrants
from workflow.store.layout import DRIVER_LOG, ISLANDS, RESULTS, island_dir
from workflow.store.results import write_results_file
from workflow.wandb_driver.experiment import with_tracking

log = logging.getLogger(__name__)


def create_layout(parent: Path, config: Config) -> None:
    """The parent run directory and one run directory per island (each created atomically)."""
    if not Path(parent).exists():
        RunStore.create(parent, config)
    (Path(parent) / ISLANDS).mkdir(mode=0o700, exist_ok=True)
    for k in range(config.islands.count):
        if not island_dir(parent, k).exists():
            RunStore.create(island_dir(parent, k), island_config(config, k), island=k)


def _population(run: SearchRun) -> list[Evaluated]:
    return list(run.optimizer.population)


class MigrationObserver(Observer):
    """The migration step of one island: after each generation is told, and on resume."""

    def __init__(self, config: Config, island: int, transport: Transport, parent: Path) -> None:
        self.config, self.island, self.transport, self.parent = config, island, transport, Path(parent)
        islands = config.islands
        matrix = [list(row) for row in islands.matrix] if islands.matrix else None
        self.targets = neighbours(islands.topology, islands.count, matrix)
        self.sources = senders_to(self.targets, island)
        #: Sync mode: messages of rounds this island has not reached yet, by round.
        self._early: dict[int, list[tuple[int, dict[str, Any]]]] = {}

    # -- the driver's hooks ---------------------------------------------------------------------------

    def generation(self, run: SearchRun, batch: int, evaluated: Sequence[Evaluated]) -> None:
        due = migration_due(batch, self.config.islands.interval, self.config.optimizer.generations)
        if due:
            self._emigrate(run, batch)
        if self.config.islands.mode != "sync":
            for source, message in self.transport.poll():
                self._apply(run, message, batch, source)
        elif due:
            # Sync: migrants are taken at their own round only, so a run does not depend on which island ran
            # ahead (a neighbour's next round can arrive while this island is still between rounds).
            self._await_round(run, batch)

    def started(self, run: SearchRun) -> None:
        told = max(run.state.told, default=0)
        if told == 0:
            return
        sent = {e.generation for e in run.state.emigrations}
        if migration_due(told, self.config.islands.interval, self.config.optimizer.generations) and told not in sent:
            self._emigrate(run, told)  # the driver died between telling and sending
        for source in self.sources:
            for event in RunStore(island_dir(self.parent, source)).events():
                if isinstance(event, Emigrated) and self.island in event.to:
                    message = {"id": event.id, "from": source, "generation": event.generation,
                               "migrants": encode_migrants(event.migrants)}
                    self._apply(run, message, told, source, recovered=True)

    # -- steps ----------------------------------------------------------------------------------------

    def _emigrate(self, run: SearchRun, batch: int) -> None:
        emigrants = select_emigrants(_population(run), self.config.islands.migrants,
                                     Ranking(self.config.optimizer.objectives))
        if not emigrants or not self.targets[self.island]:
            return
        message = {"id": migration_id(self.island, batch), "from": self.island, "generation": batch,
                   "migrants": encode_migrants(emigrants)}
        # Recorded before sending: a receiver that misses the message finds it here on resume.
        run.record(Emigrated(generation=batch, id=str(message["id"]), to=tuple(self.targets[self.island]),
                             migrants=tuple(emigrants)))
        for dest in self.targets[self.island]:
            self.transport.send(dest, message)
        log.info("island %d: sent %s (fitness %s) to %s", self.island,
                 [e.candidate.name for e in emigrants], [round(e.fitness, 6) for e in emigrants],
                 self.targets[self.island])

    def _await_round(self, run: SearchRun, batch: int) -> None:
        expected = {migration_id(source, batch) for source in self.sources} - run.state.migrations_applied
        for source, message in self._early.pop(batch, []):
            self._apply(run, message, batch, source)
            expected.discard(str(message["id"]))
        deadline = time.monotonic() + self.config.islands.sync_timeout_s
        while expected and time.monotonic() < deadline:
            for source, message in self.transport.wait(deadline - time.monotonic()):
                if int(message["generation"]) > batch:  # a later round: kept for it
                    self._early.setdefault(int(message["generation"]), []).append((source, message))
                    continue
                self._apply(run, message, batch, source)  # this round's, or a late one after a timeout
                expected.discard(str(message["id"]))
        if expected:
            log.warning("island %d: no migrants from %s within islands.sync_timeout_s; going on without them",
                        self.island, sorted(expected))

    def _apply(self, run: SearchRun, message: dict[str, Any], batch: int, source: int,
               recovered: bool = False) -> None:
        mid = str(message["id"])
        if mid in run.state.migrations_applied:
            return
        migrants = decode_migrants(message["migrants"])
        _, replaced = replace_worst(_population(run), migrants, Ranking(self.config.optimizer.objectives))
        # Recorded before applying: replay applies it at this very point of the journal.
        run.record(Immigrated(generation=batch, id=mid, sender=int(message["from"]),
                              sender_generation=int(message["generation"]), migrants=migrants, recovered=recovered,
                              replaced=tuple(Replaced(e.candidate.name, e.result.to_dict()["fitness"])
                                             for e in replaced)))
        apply_immigrants(run.optimizer, migrants)
        log.info("island %d: received %s from island %d%s", self.island, [e.candidate.name for e in migrants],
                 source, " (recovered from its journal)" if recovered else "")


def run_island(config: Config, parent: Path, transport: Transport, observers: Sequence[Observer] = (),
               create: bool = True, backend: Backend | None = None) -> RunSummary:
    """Run island ``transport.rank`` of ``config`` under ``parent`` to the end (all ranks call this).

    ``backend``: where this island's evaluations run (default: the one its config names).
    """
    island, count = transport.rank, config.islands.count
    if transport.size != count:
        raise RunDirError(f"islands.count={count} but {transport.size} MPI ranks were started "
                          f"(launch with mpiexec -n {count})")
    if island == 0 and create:
        create_layout(parent, config)
    transport.barrier()
    os.environ["GASLURM_ISLAND"] = str(island)
    run_dir = island_dir(parent, island)
    log_to_file(run_dir / DRIVER_LOG, island)
    own = island_config(config, island)
    migration = MigrationObserver(config, island, transport, parent)
    summary = run_search(own, run_dir, backend=backend, island=island,
                         observers=with_tracking(own, run_dir, [*observers, migration], island))
    transport.finish()
    late = transport.poll()
    if late:
        log.info("island %d: %d migrations arrived after it finished (ignored)", island, len(late))
    if island == 0:
        finish_parent(parent)
    return summary


def finish_parent(parent: Path) -> None:
    """Combined results.csv in the parent, and its ``finished`` event once every island is finished."""
    store = RunStore.open(parent)
    config = store.config()
    states = [RunStore.open(island_dir(parent, k)).replay() for k in range(config.islands.count)]
    write_combined_results(parent, states)
    if all(s.finished for s in states) and not store.replay().finished:
        store.append(Finished())


def write_combined_results(parent: Path, states: list[RunState]) -> None:
    """The parent's results.csv: every island's rows (names repeat across islands; the island column tells)."""
    space = RunStore.open(parent).config().search_space()
    write_results_file(Path(parent) / RESULTS, space, [e for state in states for e in state.evaluated()])
