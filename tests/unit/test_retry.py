"""Retry after the cause is fixed: a fail-fast stop's failures are evaluated again by the next resume before
anything new is bred, and ``resume --retry-failed`` evaluates a finished run's failures again, with every
attempt kept in the journal, every name once in results.csv, and replay exact."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.support import ROOT
from workflow.config import from_mapping
from workflow.core import make_optimizer
from workflow.driver import run_search
from workflow.driver.replay import replay
from workflow.errors import SearchStopped
from workflow.store import RunStore
from workflow.store.events import Asked, ResultRecorded, Retrying, Stopped, Told
from workflow.store.results import read_results_csv


def _config(function: str, mode: str = "generational"):
    return from_mapping({
        "name": "retry", "seed": 3,
        "objective": {"kind": "python", "function": f"tests.objectives.landscape:{function}", "path": str(ROOT)},
        "optimizer": {"name": "ga", "population_size": 4, "generations": 3, "mode": mode,
                      "ga": {"tournament_size": 2}},
        "backend": {"name": "inline"}, "tracking": {"mode": "disabled"},
    })


def _run(config, run_dir: Path, **kwargs):
    if not run_dir.exists():
        RunStore.create(run_dir, config)
    return run_search(config, run_dir, **kwargs)


def _outcomes(run_dir: Path) -> dict[str, float]:
    return {e.candidate.name: e.fitness for e in RunStore.open(run_dir).replay().evaluated()}


def _snapshot(config, run_dir: Path) -> dict:
    optimizer = make_optimizer(config)
    replay(optimizer, RunStore.open(run_dir).replay())
    return {"population": [(e.candidate.name, e.fitness) for e in optimizer.population],
            "rng": optimizer.rng.bit_generator.state, "asks": optimizer.batches_asked}


def test_resume_after_a_fail_fast_stop_retries_the_generation_before_breeding(tmp_path, monkeypatch):
    config = _config("fails_unless_ready")
    monkeypatch.setenv("GASLURM_TEST_READY", "1")
    clean = tmp_path / "clean"
    _run(config, clean)

    monkeypatch.delenv("GASLURM_TEST_READY")
    run_dir = tmp_path / "run"
    with pytest.raises(SearchStopped, match="stopped after generation 1: every evaluation failed"):
        _run(config, run_dir)
    stopped = RunStore.open(run_dir).replay()
    # Judged before the tell: the optimizer has not bred from the failed generation.
    assert not stopped.of_kind(Told) and [e.generation for e in stopped.of_kind(Stopped)] == [1]
    assert stopped.stopped_generation == 1 and len(stopped.batches) == 1

    monkeypatch.setenv("GASLURM_TEST_READY", "1")
    summary = _run(config, run_dir)
    assert summary.evaluations == 12 and summary.failed == 0
    events = list(RunStore.open(run_dir).events())
    kinds = [type(e).__name__ for e in events]
    retry = kinds.index("Retrying")
    generation_1 = tuple(f"fitness-1-{i}" for i in range(1, 5))
    assert events[retry] == Retrying(names=generation_1, generation=1, t=events[retry].t)
    # The retry comes before anything new is asked, and generation 1 is told once, after its new results.
    asks = [i for i, kind in enumerate(kinds) if kind == "Asked"]
    assert len(asks) == 3 and asks[0] < retry < asks[1]
    tells = [i for i, e in enumerate(events) if isinstance(e, Told) and 1 in e.generations]
    assert len(tells) == 1 and tells[0] > retry
    # Both attempts of each name are in the journal; the second one is the result.
    attempts = [(e.result.name, e.attempt, e.result.ok) for e in events if isinstance(e, ResultRecorded)
                and e.generation == 1]
    assert attempts == [(n, 1, False) for n in generation_1] + [(n, 2, True) for n in generation_1]
    state = RunStore.open(run_dir).replay()
    assert all(state.attempt(n) == 2 and len(state.earlier[n]) == 1 for n in generation_1)
    # Every name once in results.csv; the search is the one an uninterrupted run makes (replay exact).
    rows = read_results_csv(run_dir / "results.csv")
    assert Counter(r["name"] for r in rows) == Counter(set(_outcomes(clean))) and all(r["status"] == "ok" for r in rows)
    assert _outcomes(run_dir) == _outcomes(clean)
    assert _snapshot(config, run_dir) == _snapshot(config, clean)
    assert _run(config, run_dir).evaluations == 12  # resumes again, nothing run twice
    assert len(list(RunStore.open(run_dir).events())) == len(events)


def test_a_retry_that_fails_again_stops_again_and_the_next_resume_retries_again(tmp_path, monkeypatch):
    config = _config("fails_unless_ready")
    monkeypatch.delenv("GASLURM_TEST_READY", raising=False)
    run_dir = tmp_path / "run"
    for _ in range(2):
        with pytest.raises(SearchStopped):
            _run(config, run_dir)
    state = RunStore.open(run_dir).replay()
    assert [e.generation for e in state.of_kind(Stopped)] == [1, 1] and len(state.of_kind(Retrying)) == 1
    assert not state.of_kind(Told) and state.attempt("fitness-1-1") == 2
    monkeypatch.setenv("GASLURM_TEST_READY", "1")
    _run(config, run_dir)
    state = RunStore.open(run_dir).replay()
    assert state.attempt("fitness-1-1") == 3 and state.results["fitness-1-1"].ok
    assert [len(state.earlier[f"fitness-1-{i}"]) for i in range(1, 5)] == [2, 2, 2, 2]


def test_retry_failed_reevaluates_a_finished_runs_failures_without_telling_the_optimizer(tmp_path, monkeypatch):
    config = _config("index_1_fails_unless_ready")
    monkeypatch.delenv("GASLURM_TEST_READY", raising=False)
    run_dir = tmp_path / "run"
    first = _run(config, run_dir)
    assert first.evaluations == 12 and first.failed == 3  # one of four per generation: no stop
    before = _snapshot(config, run_dir)
    told_before = RunStore.open(run_dir).replay().of_kind(Told)

    monkeypatch.setenv("GASLURM_TEST_READY", "1")
    again = _run(config, run_dir, retry_failed=True)
    assert again.evaluations == 12 and again.failed == 0
    state = RunStore.open(run_dir).replay()
    assert [(e.generation, e.names) for e in state.of_kind(Retrying)] == [
        (g, (f"fitness-{g}-1",)) for g in (1, 2, 3)]
    # Nothing new asked or told: the optimizer keeps what it was told, and replay reaches the same state.
    assert len(state.of_kind(Asked)) == 3 and state.of_kind(Told) == told_before
    assert _snapshot(config, run_dir) == before
    rows = read_results_csv(run_dir / "results.csv")
    assert sorted(r["name"] for r in rows) == sorted(state.generation_of) and all(r["status"] == "ok" for r in rows)
    assert state.best() is not None and state.best().result.ok
    # Nothing succeeded is run again: each retried name has two results, every other one.
    results = Counter(e.result.name for e in state.of_kind(ResultRecorded))
    assert {n for n, k in results.items() if k == 2} == {f"fitness-{g}-1" for g in (1, 2, 3)}
    assert sum(results.values()) == 15


def test_a_retry_interrupted_before_its_results_is_finished_by_the_next_driver(tmp_path, monkeypatch):
    config = _config("index_1_fails_unless_ready")
    monkeypatch.delenv("GASLURM_TEST_READY", raising=False)
    run_dir = tmp_path / "run"
    _run(config, run_dir)
    # A driver recorded the retry and died before evaluating anything.
    RunStore.open(run_dir).append(Retrying(names=("fitness-2-1",), generation=2))
    assert [c.name for c in RunStore.open(run_dir).replay().retrying_told()] == ["fitness-2-1"]
    monkeypatch.setenv("GASLURM_TEST_READY", "1")
    summary = _run(config, run_dir)
    state = RunStore.open(run_dir).replay()
    assert state.results["fitness-2-1"].ok and state.attempt("fitness-2-1") == 2
    assert summary.failed == 2 and not state.retrying_told()


def test_steady_state_retries_the_stopped_block_before_asking_anything_new(tmp_path, monkeypatch):
    config = _config("fails_unless_ready", mode="steady_state")
    monkeypatch.delenv("GASLURM_TEST_READY", raising=False)
    run_dir = tmp_path / "run"
    with pytest.raises(SearchStopped):
        _run(config, run_dir)
    stopped = RunStore.open(run_dir).replay()
    block = stopped.stopped_generation
    assert block == 1 and all(n in stopped.told_names for n in (c.name for c in stopped.members[1]))
    monkeypatch.setenv("GASLURM_TEST_READY", "1")
    summary = _run(config, run_dir)
    assert summary.evaluations == 12 and summary.failed == 0
    events = list(RunStore.open(run_dir).events())
    retry = next(i for i, e in enumerate(events) if isinstance(e, Retrying))
    retried = set(events[retry].names)
    last_retried_result = max(i for i, e in enumerate(events) if isinstance(e, ResultRecorded)
                              and e.result.name in retried and e.attempt == 2)
    assert not any(isinstance(e, Asked) for e in events[retry:last_retried_result])
    # Told already, the block's new results are not told again; replay is exact (a resume adds nothing).
    assert not any(isinstance(e, Told) and e.names and retried & set(e.names) for e in events[retry:])
    assert _run(config, run_dir).evaluations == 12
    assert len(list(RunStore.open(run_dir).events())) == len(events)
