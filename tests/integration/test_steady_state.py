"""Steady state end to end (``optimizer.mode: steady_state``): no generation barrier on the local backend, status
while it runs, and kill -9 at every crash point then resume (the Slurm case is in test_resume.py)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.objectives.landscape import SLEEPY_MEDIAN_ENV, sleepy_duration
from tests.support import ROOT, cli
from workflow.config import load_config
from workflow.core import make_optimizer
from workflow.driver.replay import replay
from workflow.store import RunStore
from workflow.store.events import Asked, Event, ResultRecorded, Told

#: Where a steady-state driver is killed (see workflow/faults.py): asking the second child, while results come
#: in, and between a result and its row.
CRASH_POINTS = {"before-submission": "after-ask:2", "while-recording": "after-result:3",
                "late": "after-result:9"}


def _config_file(tmp_path: Path, optimizer: str = "ga", **optimizer_extra) -> Path:
    config = {
        "name": "steady", "seed": 2,
        "objective": {"kind": "python", "function": "tests.objectives.landscape:sleepy", "path": str(ROOT)},
        "optimizer": {"name": optimizer, "population_size": 4, "generations": 3, "mode": "steady_state",
                      "ga": {"tournament_size": 2}, "bo": {"initial_points": 3}, **optimizer_extra},
        "backend": {"name": "local", "workers": 4, "timeout_s": 120},
    }
    path = tmp_path / "steady.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _env(median_s: float, crash: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "GASLURM_CRASH_AT"}
    env[SLEEPY_MEDIAN_ENV] = str(median_s)
    if crash:
        env["GASLURM_CRASH_AT"] = crash
    return env


def _journal(run_dir: Path) -> list[Event]:
    return list(RunStore(run_dir).events())


def _rows(run_dir: Path) -> list[dict]:
    with (run_dir / "results.csv").open() as handle:
        return list(csv.DictReader(handle))


def _check_exactly_once(run_dir: Path, planned: int) -> None:
    """Every planned evaluation has one result in the journal and one row, and the journal replays cleanly."""
    journal = _journal(run_dir)
    results = [e.result.name for e in journal if isinstance(e, ResultRecorded)]
    asked = [c.name for e in journal if isinstance(e, Asked) for c in e.candidates]
    assert len(asked) == len(set(asked)) == planned
    assert sorted(results) == sorted(asked), "an evaluation was lost or recorded twice"
    assert sorted(r["name"] for r in _rows(run_dir)) == sorted(asked)
    told = [n for e in journal if isinstance(e, Told) for n in e.names or ()]
    assert sorted(told) == sorted(asked) and len(told) == len(set(told))
    # A fresh optimizer replays the journal in its order of tells to a finished search.
    store = RunStore.open(run_dir)
    optimizer = make_optimizer(store.config(), journal_format=store.replay().format)
    replay(optimizer, store.replay())
    assert optimizer.finished


def test_no_barrier_a_freed_slot_is_filled_before_the_generation_is_done(tmp_path):
    config_file = _config_file(tmp_path)
    config = load_config(config_file)
    first = make_optimizer(config).ask(4)
    durations = sorted(sleepy_duration(c.seed, 0.6) for c in first)
    # The seeded durations of block 1 are far apart (more than any start-up jitter of the workers), so "the
    # first result comes before the last" is certain.
    assert durations[-1] - durations[0] > 0.8, durations
    run_dir = tmp_path / "run"
    cli("run", config_file, "--run-dir", run_dir, "--no-report", env=_env(0.6))
    _check_exactly_once(run_dir, 12)
    journal = _journal(run_dir)
    first_child = next(i for i, e in enumerate(journal) if isinstance(e, Asked)
                       and any(c.generation == 2 for c in e.candidates))
    block_one_done = max(i for i, e in enumerate(journal) if isinstance(e, Told)
                         and any(n.startswith("fitness-1-") for n in e.names or ()))
    assert first_child < block_one_done, "generation 2 waited for the whole of generation 1"
    # Each told event names the results it told, one arrival at a time, never the whole block at once.
    assert max(len(e.names or ()) for e in journal if isinstance(e, Told)) < 4
    status = json.loads(cli("status", run_dir, "--json").stdout)
    assert status["mode"] == "steady_state" and status["finished"]
    assert status["evaluations"]["done"] + status["evaluations"]["failed"] == 12


def test_status_during_a_steady_state_run_shows_in_flight_done_and_best(tmp_path):
    config_file = _config_file(tmp_path, generations=4)
    run_dir = tmp_path / "run"
    driver = subprocess.Popen([sys.executable, "-m", "workflow", "run", str(config_file), "--run-dir",
                               str(run_dir), "--no-report"], cwd=ROOT, env=_env(1.0), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        seen = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and driver.poll() is None:
            if (run_dir / "journal.jsonl").exists():
                status = json.loads(cli("status", run_dir, "--json").stdout)
                ev = status["evaluations"]
                if ev["done"] >= 1 and ev["in_flight"] >= 2 and not status["finished"]:
                    seen = status
                    break
            time.sleep(0.2)
        assert seen is not None, "never saw results and evaluations in flight at the same time"
        assert seen["best"]["name"].startswith("fitness-") and seen["best"]["fitness"] is not None
        text = cli("status", run_dir).stdout
        assert "in flight" in text and "steady_state" in text
    finally:
        out, _ = driver.communicate(timeout=300)
    assert driver.returncode == 0, out


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("optimizer", ["ga", "bo"])
def test_kill_9_at_every_point_then_resume_records_each_evaluation_once(tmp_path, optimizer):
    config_file = _config_file(tmp_path, optimizer)
    procs = {}
    for label, point in CRASH_POINTS.items():
        run_dir = tmp_path / label
        procs[label] = (run_dir, subprocess.Popen(
            [sys.executable, "-m", "workflow", "run", str(config_file), "--run-dir", str(run_dir), "--no-report"],
            cwd=ROOT, env=_env(0.2, point), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    for label, (_, proc) in procs.items():
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == -signal.SIGKILL, f"{label}: {out}"
    for label, (run_dir, _) in procs.items():
        status = json.loads(cli("status", run_dir, "--json").stdout)
        assert status["finished"] is False, label
        cli("resume", run_dir, "--no-report", env=_env(0.2))
        _check_exactly_once(run_dir, 12)
        assert json.loads(cli("status", run_dir, "--json").stdout)["finished"], label
