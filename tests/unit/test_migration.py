"""Island migration: the pure rules, and three islands talking through the in-process transport."""

import math
import threading
from pathlib import Path

import pytest

from tests.support import genes
from workflow.config import from_mapping
from workflow.core import make_optimizer
from workflow.core.ga import GeneticAlgorithm
from workflow.core.migration import migration_due, neighbours, select_emigrants, senders_to
from workflow.driver import Observer, SearchRun
from workflow.driver.replay import replay
from workflow.islands.runner import MigrationObserver, run_island
from workflow.islands.transport import LocalHub
from workflow.records import Candidate, Evaluated, Result
from workflow.store import RunStore
from workflow.store.events import Emigrated, Immigrated, Told
from workflow.store.layout import island_dir

ROOT = Path(__file__).resolve().parents[2]


def _ev(name, fitness, ok=True):
    cand = Candidate(name, genes(1, 16, "relu", 0.0), 1, 1, "ga")
    return Evaluated(cand, Result(name, "ok", fitness) if ok else Result.failure(name, "x"))


def test_topologies():
    assert neighbours("ring", 3) == {0: [1], 1: [2], 2: [0]}
    assert neighbours("full", 3) == {0: [1, 2], 1: [0, 2], 2: [0, 1]}
    assert neighbours("matrix", 3, [[0, 1, 1], [0, 0, 0], [1, 0, 0]]) == {0: [1, 2], 1: [], 2: [0]}
    assert senders_to(neighbours("ring", 3), 0) == [2]
    assert neighbours("ring", 1) == {0: []}


def test_migration_schedule_skips_the_last_generation():
    assert [g for g in range(1, 11) if migration_due(g, 3, 10)] == [3, 6, 9]
    assert [g for g in range(1, 5) if migration_due(g, 2, 4)] == [2]


def test_emigrants_are_the_best_ok_individuals():
    pop = [_ev("a", 3.0), _ev("b", 1.0), _ev("c", math.inf, ok=False), _ev("d", 2.0)]
    assert [e.candidate.name for e in select_emigrants(pop, 2)] == ["b", "d"]
    assert [e.candidate.name for e in select_emigrants([_ev("c", 1, ok=False)], 1)] == []


def test_immigrants_replace_the_worst():
    config = from_mapping({"optimizer": {"population_size": 4, "generations": 2}})
    ga = GeneticAlgorithm(config.optimizer, config.search_space(), __import__("numpy").random.default_rng(0))
    ga.population = [_ev("a", 1.0), _ev("b", 4.0), _ev("c", 2.0), _ev("d", 3.0)]
    replaced = ga.immigrate([_ev("x", 0.5), _ev("y", 9.0)])
    assert [e.candidate.name for e in replaced] == ["d", "b"]
    assert sorted(e.candidate.name for e in ga.population) == ["a", "c", "x", "y"]


def _run_islands(parent: Path, mode="async", count=3, generations=4, interval=1, paced=False):
    """Run ``count`` islands in threads. ``paced``: no island tells its last generation before its senders have
    handed their last round to the transport (async mode alone never waits, so without this an island that
    runs ahead under load can finish before a neighbour sends anything, and take no migrant at all)."""
    # Cheap evaluations in each island's own thread: a Python objective through the inline backend.
    config = from_mapping({"name": "isl", "seed": 5, "optimizer": {"population_size": 4, "generations": generations,
                                                                   "ga": {"tournament_size": 2}},
                           "objective": {"kind": "python", "function": "tests.objectives.landscape:seed_landscape",
                                         "path": str(ROOT)},
                           "backend": {"name": "inline"},
                           "islands": {"count": count, "interval": interval, "migrants": 1, "mode": mode,
                                       "sync_timeout_s": 30}})
    hub = LocalHub(count)
    sent = _Sent()
    transports = [_Counted(hub.transport(k), sent) for k in range(count)]
    observers = [[_LastRoundIn(config, k, sent)] if paced else [] for k in range(count)]
    errors: list[Exception] = []
    threads = [threading.Thread(target=lambda k=k: _guard(run_island, config, parent, transports[k], observers[k],
                                                          errors))
               for k in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return config, errors


class _Sent:
    """Which migration rounds each island has handed to the transport (shared by the islands' threads)."""

    def __init__(self):
        self.rounds: dict[int, set[int]] = {}
        self.changed = threading.Condition()

    def add(self, island, generation):
        with self.changed:
            self.rounds.setdefault(island, set()).add(generation)
            self.changed.notify_all()

    def wait_for(self, island, generation, timeout_s):
        with self.changed:
            return self.changed.wait_for(lambda: generation in self.rounds.get(island, set()), timeout=timeout_s)


class _Counted:
    """A transport that notes each round once it is sent (after the send: the message is in the queue)."""

    def __init__(self, inner, sent):
        self.inner, self.sent, self.rank, self.size = inner, sent, inner.rank, inner.size

    def send(self, dest, message):
        self.inner.send(dest, message)
        self.sent.add(self.rank, int(message["generation"]))

    def __getattr__(self, name):
        return getattr(self.inner, name)


class _LastRoundIn(Observer):
    """Holds its island's last generation (before the migration step takes what has arrived) until every
    sender to it has sent its last round: every migrant sent is then in the queue before the island's last
    poll. An awaited condition, bounded; it does not decide whether the migrants are taken: the product does."""

    def __init__(self, config, island, sent):
        islands, self.last = config.islands, config.optimizer.generations
        self.sources = senders_to(neighbours(islands.topology, islands.count), island)
        self.round = max(g for g in range(1, self.last + 1) if migration_due(g, islands.interval, self.last))
        self.sent = sent

    def generation(self, run, number, evaluated):
        if number != self.last:
            return
        for source in self.sources:
            if not self.sent.wait_for(source, self.round, timeout_s=30):
                raise AssertionError(f"island {source} did not send round {self.round} within 30 s")


def _guard(fn, config, parent, transport, observers, errors):
    try:
        fn(config, parent, transport, observers)
    except Exception as exc:  # noqa: BLE001
        errors.append(exc)
        transport.abort(1)


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_three_islands_exchange_and_journal_migrations(tmp_path, mode):
    parent = tmp_path / "run"
    # Async: islands run at their own pace, but none finishes before its sender's last round is sent (in the
    # queue); the product must then take every round before its last generation ends. (Unpaced, an island that
    # ran ahead under load finished before its sender's first round and rightly took nothing.)
    # Sync: not paced, the product waits for each round itself.
    config, errors = _run_islands(parent, mode=mode, paced=mode == "async")
    assert errors == []
    for k in range(3):
        events = list(RunStore(island_dir(parent, k)).events())
        sent = [e for e in events if isinstance(e, Emigrated)]
        assert [e.generation for e in sent] == [1, 2, 3]
        assert all(e.to == ((k + 1) % 3,) for e in sent)
        received = [e for e in events if isinstance(e, Immigrated)]
        assert received and all(e.sender == (k - 1) % 3 for e in received)
        # Every round, each once: none dropped (async included), none applied twice.
        assert sorted(e.sender_generation for e in received) == [1, 2, 3]
        assert all(not e.recovered for e in received)
        if mode == "sync":  # taken at the round they were sent for
            assert [e.generation for e in received] == [e.sender_generation for e in received]
        state = RunStore(island_dir(parent, k)).replay()
        assert state.finished and len(state.results) == 16
    assert RunStore(parent).replay().finished


def test_in_flight_migrants_are_recovered_from_the_senders_journal(tmp_path):
    parent = tmp_path / "run"
    # One migration round, at generation 3: island 1 can take island 0's migrants only after its own told 3.
    # (With a round every generation, island 0 running ahead under load delivered them at island 1's
    # generation 2, and the cut below then did not lose them.)
    config, errors = _run_islands(parent, mode="sync", interval=3)
    assert errors == []
    # Island 1 died right after telling generation 3: before sending, and before island 0's migrants arrived.
    path = island_dir(parent, 1)
    lines = (path / "journal.jsonl").read_text().splitlines()
    events = list(RunStore(path).events())
    assert len(events) == len(lines)
    cut = next(i for i, e in enumerate(events) if isinstance(e, Told) and 3 in e.generations)
    (path / "journal.jsonl").write_text("\n".join(lines[: cut + 1]) + "\n")
    store = RunStore(path)
    state = store.replay()
    assert "0:3" not in state.migrations_applied
    opt = make_optimizer(config, island=1)
    replay(opt, state)
    hub = LocalHub(3)
    MigrationObserver(config, 1, hub.transport(1), parent).started(SearchRun(config, store, state, opt, island=1))
    assert "0:3" in store.replay().migrations_applied
    # It also sends what it had not sent before dying.
    assert [e.id for e in store.events() if isinstance(e, Emigrated)][-1] == "1:3"
    assert [m["id"] for _, m in hub.transport(2).poll()] == ["1:3"]
    recovered = [e for e in store.events() if isinstance(e, Immigrated) and e.id == "0:3"]
    assert len(recovered) == 1 and recovered[0].recovered is True
