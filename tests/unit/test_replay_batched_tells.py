"""Resume's replay of steady-state journals in which one ``told`` event gives back several results (they arrived
in the same collect and the driver told them together), for every optimizer: a driver killed after any tell
is replayed to exactly the state the live optimizer was in (history, population, pending, generator, the next
ask). An inline search of a cheap Python objective, on a backend that returns up to three results at a time."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tests.support import ROOT
from workflow.backends.base import Sink
from workflow.backends.inline import InlineBackend
from workflow.config import Config, from_mapping
from workflow.core import Optimizer, make_optimizer
from workflow.driver import Observer, SearchRun, run_search
from workflow.driver.replay import replay
from workflow.records import Evaluated
from workflow.store import RunState, RunStore
from workflow.store.events import Told

#: Each collect runs this many queued evaluations, in turn: several results are told in one event.
RESULTS_PER_COLLECT = (2, 3, 1)


def _config(name: str) -> Config:
    return from_mapping({
        "name": "batched-tells", "seed": 6,
        "objective": {"kind": "python", "function": "tests.objectives.landscape:seed_landscape", "path": str(ROOT)},
        "optimizer": {"name": name, "population_size": 4, "generations": 3, "mode": "steady_state",
                      "max_in_flight": 3, "ga": {"tournament_size": 2}, "bo": {"initial_points": 4}},
        "backend": {"name": "inline"},
    })


class _SeveralAtOnce(InlineBackend):
    """The inline backend, except that a collect evaluates up to :data:`RESULTS_PER_COLLECT` queued tasks."""

    def __init__(self, config: Config, run_dir: Path) -> None:
        super().__init__(config, run_dir)
        self._turn = 0

    def collect(self, sink: Sink, timeout_s: float | None = None) -> int:
        want = RESULTS_PER_COLLECT[self._turn % len(RESULTS_PER_COLLECT)]
        self._turn += 1
        reported = 0
        for _ in range(want):
            if not self.in_flight():
                break
            reported += super().collect(sink, timeout_s)
        return reported


class _Died(Exception):
    """The driver dies right after a tell was journaled."""


class _Watch(Observer):
    """Records what each tell gave back together and a copy of the live optimizer after it; dies after tell
    number ``die_after`` (None: never)."""

    def __init__(self, die_after: int | None = None) -> None:
        self.die_after = die_after
        self.groups: list[list[str]] = []
        self.live: list[Optimizer] = []

    def told(self, run: SearchRun, told: list[Evaluated]) -> None:
        self.groups.append([e.candidate.name for e in told])
        self.live.append(copy.deepcopy(run.optimizer))
        if len(self.groups) == self.die_after:
            raise _Died


def _state(optimizer: Optimizer) -> dict:
    """Everything a resumed optimizer must agree on, the candidates it asks next included (asked of a copy)."""
    following = copy.deepcopy(optimizer)
    n = following.capacity()
    return {"history": [(e.candidate.name, e.fitness) for e in optimizer.history],
            "population": [(e.candidate.name, e.fitness) for e in getattr(optimizer, "population", [])],
            "pending": [c.to_dict() for c in optimizer.pending], "rng": optimizer.rng.bit_generator.state,
            "births": optimizer.births, "asks": optimizer.batches_asked,
            "next": [c.to_dict() for c in following.ask(n)] if n else []}


def _told_groups(state: RunState) -> list[list[str]]:
    """The names each of the journal's ``told`` events gave back."""
    return [list(event.names or ()) for event in state.of_kind(Told)]


def _search(config: Config, run_dir: Path, watch: _Watch) -> None:
    RunStore.create(run_dir, config)
    backend = _SeveralAtOnce(config, run_dir)
    try:
        run_search(config, run_dir, backend=backend, observers=[watch])
    finally:
        backend.close()


def _resumed(config: Config, run_dir: Path) -> Optimizer:
    """What resume does: the journal's state, a fresh optimizer of its format, replayed."""
    state = RunStore.open(run_dir).replay()
    optimizer = make_optimizer(config, journal_format=state.format)
    replay(optimizer, state)
    return optimizer


@pytest.mark.parametrize("name", ["ga", "bo", "random"])
def test_a_driver_killed_after_any_tell_of_several_results_replays_to_the_live_state(name, tmp_path):
    config = _config(name)
    whole = _Watch()
    _search(config, tmp_path / "whole", whole)
    journal = RunStore.open(tmp_path / "whole").replay()
    assert _told_groups(journal) == whole.groups
    several = [number for number, group in enumerate(whole.groups, start=1) if len(group) > 1]
    assert len(several) >= 3, f"too few tells of several results: {whole.groups}"
    assert sum(map(len, whole.groups)) == config.evaluations_planned
    assert _state(_resumed(config, tmp_path / "whole")) == _state(whole.live[-1])
    # BO's asks cost GP fits: it dies after its tells of several results only; the others after every tell.
    for number in several if name == "bo" else range(1, len(whole.groups)):
        run_dir = tmp_path / f"died-after-{number}"
        died = _Watch(die_after=number)
        with pytest.raises(_Died):
            _search(config, run_dir, died)
        assert died.groups == whole.groups[:number]  # the same search up to there
        assert _state(_resumed(config, run_dir)) == _state(whole.live[number - 1]), \
            f"replay after tell {number} (told together: {whole.groups[number - 1]})"
