"""Warm starts: enqueued configurations (``optimizer.enqueue``, the store's :func:`enqueue`, a running driver's
``SearchRun.enqueue``) are evaluated first and replay on resume; ``optimizer.warm_start`` puts an earlier run's best
into generation 1; bad input is one line and creates nothing."""

from __future__ import annotations

import pytest

from tests.support import ROOT
from workflow.config import from_mapping
from workflow.driver import run_search
from workflow.errors import ConfigError, RunDirError
from workflow.store import RunStore
from workflow.store.events import Enqueued, decode, encode

SPACE = {"units": {"type": "int", "low": 4, "high": 64, "step": 4},
         "rate": {"type": "float", "low": 0.0, "high": 1.0},
         "opt": {"type": "categorical", "choices": ["adam", "sgd"]},
         "momentum": {"type": "float", "low": 0.0, "high": 0.9, "when": {"opt": ["sgd"]}}}


def _config(name="q", optimizer="ga", space=SPACE, **opt):
    return from_mapping({
        "name": name, "seed": 5, "version": 2,
        "objective": {"kind": "python", "function": "tests.objectives.recorder:record", "path": str(ROOT),
                      "metric": "loss"},
        "space": space, "backend": {"name": "inline"},
        "optimizer": {"name": optimizer, "population_size": 4, "generations": 2, **opt}})


KNOWN = [{"units": 8, "rate": 0.5, "opt": "adam"}, {"units": 12, "rate": 0, "opt": "sgd", "momentum": 0.3}]


@pytest.mark.parametrize("optimizer", ["ga", "bo", "random"])
def test_enqueued_configurations_are_evaluated_first_and_replay(tmp_path, optimizer):
    config = _config(optimizer=optimizer, enqueue=KNOWN)
    run_dir = tmp_path / "run"
    RunStore.create(run_dir, config)
    extra = {"units": 60, "rate": 0.25, "opt": "sgd", "momentum": 0.9}
    RunStore.open(run_dir).enqueue(extra)  # the Python API's path, before the run
    run_search(config, run_dir)
    state = RunStore.open(run_dir).replay()
    first = [c.hparams for c in state.candidates[:3]]
    assert first == [{"units": 8, "rate": 0.5, "opt": "adam", "momentum": 0.0},  # inactive: its neutral value
                     {"units": 12, "rate": 0.0, "opt": "sgd", "momentum": 0.3}, extra]
    assert all(c.generation == 1 for c in state.candidates[:3]) and len(state.evaluated()) == 8
    assert [e.source for e in state.of_kind(Enqueued)] == ["config", "config", "enqueue"]
    again = run_search(config, run_dir)  # a finished run resumes: the replay takes the queue in place
    assert again.evaluations == 8


def test_a_running_driver_takes_an_enqueued_configuration_at_its_next_ask(tmp_path):
    from workflow.driver.observers import Observer

    wanted = {"units": 40, "rate": 0.75, "opt": "adam"}

    class EnqueueAfterFirst(Observer):
        def generation(self, run, number, members):
            if number == 1:
                run.enqueue(wanted)

    config = _config(generations=3)
    run_dir = tmp_path / "run"
    RunStore.create(run_dir, config)
    run_search(config, run_dir, observers=[EnqueueAfterFirst()])
    state = RunStore.open(run_dir).replay()
    assert state.members[2][0].hparams == {**wanted, "momentum": 0.0}
    assert run_search(config, run_dir).evaluations == 12  # replays with the enqueue in place


def test_a_warm_start_puts_the_earlier_runs_best_into_generation_1(tmp_path):
    earlier = tmp_path / "earlier"
    config = _config()
    RunStore.create(earlier, config)
    best = run_search(config, earlier).best
    assert best is not None
    warm = _config(name="warm", warm_start=str(earlier))
    run_dir = tmp_path / "warm"
    RunStore.create(run_dir, warm)
    run_search(warm, run_dir)
    state = RunStore.open(run_dir).replay()
    assert state.candidates[0].hparams == best.candidate.hparams
    assert best.candidate.hparams in [c.hparams for c in state.members[1]]


def test_bad_warm_starts_and_enqueues_are_one_line_and_create_nothing(tmp_path):
    earlier = tmp_path / "earlier"
    RunStore.create(earlier, _config())
    run_search(_config(), earlier)
    target = tmp_path / "new"
    with pytest.raises(RunDirError, match=r"^optimizer.warm_start='.*nowhere': not a run directory"):
        RunStore.create(target, _config(warm_start=str(tmp_path / "nowhere")))
    narrow = {**SPACE, "units": {"type": "int", "low": 4, "high": 6}}
    with pytest.raises(RunDirError, match=r"does not fit this space: units=\d+ is out of range \(an int in 4..6\)"):
        RunStore.create(target, _config(space=narrow, warm_start=str(earlier)))
    fewer = {k: v for k, v in SPACE.items() if k != "rate"}
    with pytest.raises(RunDirError, match=r"does not fit this space: rate is not a gene of the space"):
        RunStore.create(target, _config(space=fewer, warm_start=str(earlier)))
    with pytest.raises(ConfigError, match=r"^config error: optimizer.enqueue\[0\]=.*: outside the space: units=5 is "
                                          r"out of range \(an int in 4..64 on the grid 4 \+ k \* 4\)"):
        _config(enqueue=[{"units": 5, "rate": 0.5, "opt": "adam"}])
    with pytest.raises(ConfigError, match=r"outside the space: gene momentum is missing"):
        RunStore.open(earlier).enqueue({"units": 8, "rate": 0.5, "opt": "sgd"})
    assert not target.exists() and not list(tmp_path.glob(".new*"))


def test_enqueued_events_round_trip():
    event = Enqueued(hparams={"layers": [16, 32], "opt": "sgd"}, source="config")
    assert decode(encode(event)) == event
