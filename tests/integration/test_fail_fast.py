"""Fail fast and check first: a broken set-up stops the search after one generation (resumably), and data or
an objective that cannot be used is refused before anything is created or submitted."""

from __future__ import annotations

import os
import socket

import pytest

from tests.support import ROOT, SMOKE, cli
from workflow.store import RunStore
from workflow.store.events import ConfigChanged, Stopped

BROKEN = ["backend.name=inline", "objective.kind=python", f"objective.path={ROOT}",
          "objective.function=tests.objectives.landscape:fails_unless_ready"]


def test_a_generation_that_fails_entirely_stops_the_search_and_resume_finishes_it(tmp_path):
    run_dir = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "GASLURM_TEST_READY"}
    proc = cli("run", SMOKE, *BROKEN, "--run-dir", run_dir, check=False, env=env)
    assert proc.returncode == 4, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(
        "error: stopped after generation 1: every evaluation failed (optimizer.max_failure_rate=1); ")
    assert "most common reason (4 of 4): RuntimeError: the environment is not ready" in errors[0]
    assert f"python -m workflow resume {run_dir}" in errors[0]
    state = RunStore(run_dir).replay()
    assert len(state.batches) == 1 and len(state.results) == 4  # nothing more was asked or submitted
    assert [e.generation for e in state.of_kind(Stopped)] == [1]
    resumed = cli("resume", run_dir, env={**env, "GASLURM_TEST_READY": "1"})
    # Generation 1's failures were evaluated again (a second attempt each) before generation 2 was bred.
    assert "finished: 8 evaluations (0 failed)" in resumed.stdout
    state = RunStore(run_dir).replay()
    assert state.finished and [state.attempt(f"fitness-1-{i}") for i in range(1, 5)] == [2, 2, 2, 2]


def test_resume_accepts_runtime_overrides_only(tmp_path):
    run_dir = tmp_path / "run"
    cli("run", SMOKE, "backend.name=inline", "optimizer.generations=1", "objective.kind=python",
        f"objective.path={ROOT}", "objective.function=tests.objectives.landscape:seed_landscape", "--run-dir", run_dir,
        "--no-report")
    refused = cli("resume", run_dir, "optimizer.population_size=2", check=False)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        f"error: resume {run_dir}: optimizer.population_size cannot change on resume (only the backend, slurm, "
        "tracking sections, and optimizer.generations to extend the run); start another run directory")
    cli("resume", run_dir, "backend.timeout_s=5")
    changed = [e for e in RunStore(run_dir).events() if isinstance(e, ConfigChanged)]
    assert changed and changed[-1].diff == ("backend.timeout_s: 300.0 -> 5.0",)


def test_missing_image_data_is_refused_before_the_run_directory_exists(tmp_path):
    run_dir = tmp_path / "run"
    data = tmp_path / "nonexistent" / "dir"
    proc = cli("run", SMOKE, "task.name=mnist", f"task.data_dir={data}", "task.download=false", "--run-dir", run_dir,
               check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"error: config error: task.data_dir='{data}': no MNIST files in {data}/MNIST/raw (missing "
        "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte) and "
        "task.download=false; put the four IDX files there, or set task.download=true where the driver has internet")
    assert not run_dir.exists() and not data.exists()


def _mnist_reachable() -> bool:
    try:
        with socket.create_connection(("ossci-datasets.s3.amazonaws.com", 443), timeout=3):
            return True
    except OSError:
        return False


def test_a_download_that_cannot_happen_is_refused_before_anything_is_created(tmp_path):
    if _mnist_reachable():
        pytest.skip("MNIST's server answers here: the download would succeed")
    run_dir, data = tmp_path / "run", tmp_path / "nonexistent" / "dir"
    proc = cli("run", SMOKE, "task.name=mnist", f"task.data_dir={data}", "--run-dir", run_dir, check=False)
    assert proc.returncode == 2
    line = proc.stderr.strip()
    assert "\n" not in line and line.startswith(f"error: config error: task.data_dir='{data}': no MNIST files in ")
    assert "and downloading them failed (cannot reach ossci-datasets.s3.amazonaws.com" in line
    assert not run_dir.exists() and not data.exists()


def test_an_objective_that_cannot_be_imported_is_refused_before_anything_is_created(tmp_path):
    run_dir = tmp_path / "run"
    proc = cli("run", SMOKE, "objective.kind=python", "objective.function=no_such_module:f", "--run-dir", run_dir,
               check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: config error: objective.function='no_such_module:f': cannot import module 'no_such_module': "
        "ModuleNotFoundError: No module named 'no_such_module'; set objective.path to its folder?")
    assert not run_dir.exists()
    wrong = cli("run", SMOKE, "objective.kind=python", f"objective.path={ROOT}",
                "objective.function=tests.objectives.zdt:zdt1_values", "--run-dir", run_dir, check=False)
    assert wrong.returncode == 2
    assert wrong.stderr.strip() == ("error: config error: objective.function='tests.objectives.zdt:zdt1_values': "
                                    "takes (x: 'Sequence[float]') but is called as zdt1_values(hparams, context)")
    assert not run_dir.exists()
