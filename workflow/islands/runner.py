"""One island per MPI rank: its own run directory under the parent, its own partition, migrants in and out.

Layout::

    RUN_DIR/                  the parent: the whole config, a journal (created, finished), combined results.csv
      islands/island-<k>/     a complete run directory per island (journal, results.csv, report/)

Migration (every ``islands.interval`` generations, after the generation is told):
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
from pathlib import Path
from typing import Any

from workflow.config import Config, island_config
from workflow.core import Optimizer
from workflow.core.migration import migration_due, migration_id, neighbours, select_emigrants, senders_to
from workflow.driver import BatchHook, RunSummary, apply_immigrants, run_search
from workflow.errors import RunDirError
from workflow.islands.transport import Transport
from workflow.progress import Progress
from workflow.records import Candidate, Evaluated, Result
from workflow.store import RESULTS, RunState, RunStore, write_results_file

log = logging.getLogger(__name__)


def island_dir(parent: Path, island: int) -> Path:
    return Path(parent) / "islands" / f"island-{island}"


def parent_of(run_dir: Path) -> Path | None:
    """The parent run directory when ``run_dir`` is one island's directory, else None."""
    if "island" in RunStore(run_dir).meta():
        return Path(run_dir).resolve().parent.parent
    return None


def create_layout(parent: Path, config: Config) -> None:
    """The parent run directory and one run directory per island (each created atomically)."""
    if not Path(parent).exists():
        RunStore.create(parent, config)
    (Path(parent) / "islands").mkdir(mode=0o700, exist_ok=True)
    for k in range(config.islands.count):
        if not island_dir(parent, k).exists():
            RunStore.create(island_dir(parent, k), island_config(config, k), meta={"island": k})


def _encode(migrants: list[Evaluated]) -> list[dict[str, Any]]:
    return [{"candidate": e.candidate.to_dict(), "result": e.result.to_dict()} for e in migrants]


def _decode(migrants: list[dict[str, Any]]) -> list[Evaluated]:
    return [Evaluated(Candidate.from_dict(m["candidate"]), Result.from_dict(m["result"])) for m in migrants]


class MigrationHook(BatchHook):
    """The migration step of one island, run by the driver loop after each generation."""

    def __init__(self, config: Config, island: int, transport: Transport, parent: Path) -> None:
        self.config, self.island, self.transport, self.parent = config, island, transport, Path(parent)
        islands = config.islands
        matrix = [list(row) for row in islands.matrix] if islands.matrix else None
        self.targets = neighbours(islands.topology, islands.count, matrix)
        self.sources = senders_to(self.targets, island)

    # -- the driver's hooks ---------------------------------------------------------------------------

    def after_tell(self, batch: int, optimizer: Optimizer, store: RunStore, state: RunState) -> None:
        due = migration_due(batch, self.config.islands.interval, self.config.optimizer.generations)
        if due:
            self._emigrate(batch, optimizer, store)
        if due and self.config.islands.mode == "sync":
            self._await_round(batch, optimizer, store, state)
        for source, message in self.transport.poll():
            self._apply(message, batch, optimizer, store, state, source)

    def on_resume(self, optimizer: Optimizer, store: RunStore, state: RunState) -> None:
        told = max(state.told, default=0)
        if told == 0:
            return
        sent = {int(e["batch"]) for e in state.events if e["event"] == "emigrated"}
        if migration_due(told, self.config.islands.interval, self.config.optimizer.generations) and told not in sent:
            self._emigrate(told, optimizer, store)  # the driver died between telling and sending
        for source in self.sources:
            for event in RunStore(island_dir(self.parent, source)).events():
                if event["event"] == "emigrated" and self.island in event.get("to", []):
                    message = {"id": event["id"], "from": source, "generation": event["batch"],
                               "migrants": event["migrants"]}
                    self._apply(message, told, optimizer, store, state, source, recovered=True)

    # -- steps ----------------------------------------------------------------------------------------

    def _emigrate(self, batch: int, optimizer: Optimizer, store: RunStore) -> None:
        population = getattr(optimizer, "population", [])
        emigrants = select_emigrants(population, self.config.islands.migrants)
        if not emigrants or not self.targets[self.island]:
            return
        message = {"id": migration_id(self.island, batch), "from": self.island, "generation": batch,
                   "migrants": _encode(emigrants)}
        # Recorded before sending: a receiver that misses the message finds it here on resume.
        store.append({"event": "emigrated", "batch": batch, "id": message["id"], "to": self.targets[self.island],
                      "migrants": message["migrants"]})
        for dest in self.targets[self.island]:
            self.transport.send(dest, message)
        log.info("island %d: sent %s (fitness %s) to %s", self.island,
                 [e.candidate.name for e in emigrants], [round(e.fitness, 6) for e in emigrants],
                 self.targets[self.island])

    def _await_round(self, batch: int, optimizer: Optimizer, store: RunStore, state: RunState) -> None:
        expected = {migration_id(source, batch) for source in self.sources} - state.migrations_applied
        deadline = time.monotonic() + self.config.islands.sync_timeout_s
        while expected and time.monotonic() < deadline:
            for source, message in self.transport.wait(deadline - time.monotonic()):
                self._apply(message, batch, optimizer, store, state, source)
                expected.discard(str(message["id"]))
        if expected:
            log.warning("island %d: no migrants from %s within islands.sync_timeout_s; going on without them",
                        self.island, sorted(expected))

    def _apply(self, message: dict[str, Any], batch: int, optimizer: Optimizer, store: RunStore,
               state: RunState, source: int, recovered: bool = False) -> None:
        mid = str(message["id"])
        if mid in state.migrations_applied:
            return
        migrants = _decode(message["migrants"])
        ranked = sorted(getattr(optimizer, "population", []), key=lambda e: e.fitness)
        replaced = ranked[max(len(ranked) - len(migrants), 0):]
        store.append({"event": "immigrated", "batch": batch, "id": mid, "from": int(message["from"]),
                      "generation": int(message["generation"]), "migrants": message["migrants"],
                      "recovered": recovered,
                      "replaced": [{"name": e.candidate.name, "fitness": e.result.to_dict()["fitness"]}
                                   for e in replaced]})
        apply_immigrants(optimizer, migrants)
        state.immigrations.setdefault(batch, []).append(migrants)
        state.migrations_applied.add(mid)
        log.info("island %d: received %s from island %d%s", self.island, [e.candidate.name for e in migrants],
                 source, " (recovered from its journal)" if recovered else "")


def run_island(config: Config, parent: Path, transport: Transport, progress: Progress | None = None,
               create: bool = True) -> RunSummary:
    """Run island ``transport.rank`` of ``config`` under ``parent`` to the end (all ranks call this)."""
    island, count = transport.rank, config.islands.count
    if transport.size != count:
        raise RunDirError(f"islands.count={count} but {transport.size} MPI ranks were started "
                          f"(launch with mpiexec -n {count})")
    if island == 0 and create:
        create_layout(parent, config)
    transport.barrier()
    os.environ["GASLURM_ISLAND"] = str(island)
    handler = logging.FileHandler(island_dir(parent, island) / "driver.log")
    handler.setFormatter(logging.Formatter(f"%(asctime)s island {island} %(levelname)s %(message)s", "%H:%M:%S"))
    logging.getLogger().addHandler(handler)
    own = island_config(config, island)
    hook = MigrationHook(config, island, transport, parent)
    summary = run_search(own, island_dir(parent, island), progress=progress, hook=hook, island=island)
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
        store.append({"event": "finished"})


def write_combined_results(parent: Path, states: list[RunState]) -> None:
    """The parent's results.csv: every island's rows (names repeat across islands; the island column tells)."""
    write_results_file(Path(parent) / RESULTS, [e for state in states for e in state.evaluated()])
