"""Resume's replay of a real journal (an inline search of a Python objective): a format-3 journal lets the GA take
its recorded asks as they are, and that reaches exactly the state a full re-breeding reaches, at every point a
driver could have died; the last asks are still bred again and checked."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.support import ROOT
from workflow.config import from_mapping
from workflow.core import make_optimizer
from workflow.core.ga import GeneticAlgorithm
from workflow.driver import run_search
from workflow.driver.replay import replay
from workflow.errors import RunDirError
from workflow.store import RunStore
from workflow.store.events import Asked, Created, Told
from workflow.store.journal import JOURNAL_FORMAT
from workflow.store.state import replay_events


def _config(mode: str) -> object:
    return from_mapping({
        "name": "replay", "seed": 4,
        "objective": {"kind": "python", "function": "tests.objectives.landscape:seed_landscape", "path": str(ROOT)},
        "optimizer": {"name": "ga", "population_size": 5, "generations": 4, "mode": mode, "max_in_flight": 3,
                      "ga": {"tournament_size": 2, "adapt_base": mode == "generational"}},
        "backend": {"name": "inline"},
    })


@pytest.fixture(scope="module", params=["generational", "steady_state"])
def journal(request, tmp_path_factory) -> tuple[object, list[dict]]:
    config = _config(request.param)
    run_dir = tmp_path_factory.mktemp(request.param) / "run"
    RunStore.create(run_dir, config)
    run_search(config, run_dir)
    return config, list(RunStore.open(run_dir).events())


def _replayed(config, events, journal_format, monkeypatch):
    """A fresh GA replayed to ``events``, and how many children it bred doing so."""
    bred = []
    propose = GeneticAlgorithm._propose
    monkeypatch.setattr(GeneticAlgorithm, "_propose", lambda self, size: bred.append(size) or propose(self, size))
    optimizer = make_optimizer(config, journal_format=journal_format)
    replay(optimizer, replay_events(events))
    monkeypatch.setattr(GeneticAlgorithm, "_propose", propose)
    return optimizer, sum(bred)


def _snapshot(optimizer) -> dict:
    return {"population": [(e.candidate.name, e.fitness) for e in optimizer.population],
            "pending": [c.to_dict() for c in optimizer.pending], "rng": optimizer.rng.bit_generator.state,
            "bases": optimizer.bases, "births": optimizer.births, "asks": optimizer.batches_asked}


def _without_rng(told):
    """A tell as format 2 recorded it: no generator state."""
    return replace(told, state={k: v for k, v in told.state.items() if k != "rng"})


def test_every_tell_records_the_generator_state(journal):
    config, events = journal
    assert events[0].format == JOURNAL_FORMAT
    told = [e for e in events if isinstance(e, Told)]
    keys = {"bases", "rng"} if config.optimizer.mode == "generational" else {"rng"}
    assert told and all(set(e.state) == keys for e in told)


def test_taking_the_recorded_asks_reaches_the_state_of_breeding_them_again(journal, monkeypatch):
    config, events = journal
    asks = [i for i, e in enumerate(events) if isinstance(e, Asked)]
    assert len(asks) >= 4
    for cut in range(asks[0] + 1, len(events) + 1):  # wherever a driver died, after its first ask
        trusted, bred_trusted = _replayed(config, events[:cut], 3, monkeypatch)
        full, bred_full = _replayed(config, events[:cut], 2, monkeypatch)
        assert _snapshot(trusted) == _snapshot(full), f"cut after event {cut}"
        n = trusted.capacity()
        if n:
            assert [c.to_dict() for c in trusted.ask(n)] == [c.to_dict() for c in full.ask(n)]
    # On the whole journal only the asks after the last tell before the last ask were bred again.
    _, bred_trusted = _replayed(config, events, 3, monkeypatch)
    _, bred_full = _replayed(config, events, 2, monkeypatch)
    assert bred_full == 20 and 0 < bred_trusted <= 5


def test_a_changed_last_ask_is_still_caught(journal):
    config, events = journal
    events = list(events)
    last = max(i for i, e in enumerate(events) if isinstance(e, Asked))
    first, *rest = events[last].candidates
    events[last] = replace(events[last], candidates=(replace(first, seed=first.seed + 1), *rest))
    with pytest.raises(RunDirError, match="differs from what the optimizer proposes on replay"):
        replay(make_optimizer(config), replay_events(events))


def test_a_format_2_journal_without_generator_states_replays_by_breeding(journal, monkeypatch):
    config, events = journal
    old = [replace(e, format=2) if isinstance(e, Created) else _without_rng(e) if isinstance(e, Told) else e
           for e in events]
    replayed, bred = _replayed(config, old, 2, monkeypatch)
    full, _ = _replayed(config, events, 2, monkeypatch)
    assert bred == 20 and _snapshot(replayed) == _snapshot(full)


def test_a_trusted_ask_needs_the_next_tell_to_record_the_generator(journal):
    config, events = journal
    broken = list(events)
    first_told = next(i for i, e in enumerate(broken) if isinstance(e, Told))
    broken[first_told] = _without_rng(broken[first_told])
    with pytest.raises(RunDirError, match="records no generator state"):
        replay(make_optimizer(config, journal_format=3), replay_events(broken))


def test_resume_of_a_finished_run_takes_its_asks(tmp_path: Path):
    # The whole path a `resume` takes: the store's state, the driver's optimizer, nothing left to evaluate.
    config = _config("steady_state")
    run_dir = tmp_path / "run"
    RunStore.create(run_dir, config)
    first = run_search(config, run_dir)
    again = run_search(config, run_dir)
    assert again.evaluations == first.evaluations == 20
