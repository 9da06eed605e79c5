"""End to end on this machine: the CLI, the local backend with real Lightning training, status, report."""

import csv
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import RecordingSink, genes
from workflow.backends import run_batch
from workflow.backends.local import LocalBackend
from workflow.config import load_config
from workflow.records import Candidate

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "configs" / "smoke.yaml"


def cli(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "workflow", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "smoke"
    proc = cli("run", SMOKE, "--run-dir", run_dir)
    return run_dir, proc


def test_smoke_run_writes_results_for_every_evaluation(smoke_run):
    run_dir, proc = smoke_run
    rows = list(csv.DictReader((run_dir / "results.csv").open()))
    assert [r["name"] for r in rows if r["generation"] == "1"] == [f"fitness-1-{i}" for i in range(1, 5)]
    assert len(rows) == 8
    for column in ("name", "search", "island", "generation", "index", "n_layers", "hidden_size",
                   "activation", "dropout", "status", "fitness", "seconds", "val_mse"):
        assert column in rows[0]
    assert all(r["status"] == "ok" and math.isfinite(float(r["fitness"])) for r in rows)
    assert all(float(r["fitness"]) == float(r["val_mse"]) for r in rows)
    assert "finished: 8 evaluations" in proc.stdout


def test_status_json_and_report(smoke_run):
    run_dir, _ = smoke_run
    status = json.loads(cli("status", run_dir, "--json").stdout)
    assert status["finished"] is True
    assert status["generation"] == 2
    assert status["evaluations"] == {"done": 8, "failed": 0, "pending": 0, "in_flight": 0, "planned": 8}
    rows = list(csv.DictReader((run_dir / "results.csv").open()))
    best = min(rows, key=lambda r: float(r["fitness"]))
    assert status["best"]["name"] == best["name"]
    assert status["best"]["fitness"] == pytest.approx(float(best["fitness"]))
    assert set(status["best"]["hparams"]) == {"n_layers", "hidden_size", "activation", "dropout"}
    human = cli("status", run_dir).stdout
    assert "finished" in human and best["name"] in human
    out = cli("report", run_dir).stdout
    for name in ("evolution.png", "best5.png", "top10.md"):
        path = run_dir / "report" / name
        assert str(path) in out and path.stat().st_size > 0
    assert (run_dir / "report" / "evolution.png").read_bytes()[:4] == b"\x89PNG"
    top = (run_dir / "report" / "top10.md").read_text().splitlines()
    assert top[2] == "| name | n_layers | hidden_size | activation | dropout | fitness |"
    assert top[4].startswith(f"| {best['name']} |")


def test_rerun_same_config_is_a_no_op_and_different_config_is_refused(smoke_run):
    run_dir, _ = smoke_run
    before = (run_dir / "journal.jsonl").read_text()
    cli("run", SMOKE, "--run-dir", run_dir, "--no-report")
    journal = (run_dir / "journal.jsonl").read_text()
    assert journal.count('"event":"result"') == before.count('"event":"result"') == 8
    proc = cli("run", SMOKE, "optimizer.generations=3", "--run-dir", run_dir, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: run directory {run_dir} exists with a different config (optimizer.generations: 2 -> 3); "
        "use another --run-dir, `resume` it with its own config, or --force")


@pytest.mark.parametrize(("override", "message"), [
    ("optimizer.tournament_size=9", "config error: optimizer.ga.tournament_size=9: must be <= "
                                    "optimizer.population_size (4)"),
    ("space.hidden_size=[128,16]", "config error: space.hidden_size=[128, 16]: low must be <= high"),
    ("space.activation.tree=[relu, swish]", "config error: space.activation='swish': unknown activation"),
    ("space.activation_tree=[relu, swish]", "config error: space.activation_tree=['relu', 'swish']: moved to the "
                                            "activation gene: space.activation.tree"),
])
def test_bad_input_exits_before_any_work(tmp_path, override, message):
    run_dir = tmp_path / "run"
    proc = cli("run", SMOKE, override, "--run-dir", run_dir, check=False)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and message in proc.stderr
    assert not run_dir.exists() and list(tmp_path.iterdir()) == []


def test_missing_data_dir_without_download_is_refused(tmp_path):
    proc = cli("run", ROOT / "configs" / "fashion_mnist.yaml", f"task.data_dir={tmp_path}/nothing",
               "--run-dir", tmp_path / "run", check=False)
    assert proc.returncode == 2
    assert f"config error: task.data_dir='{tmp_path}/nothing': no FashionMNIST files in " in proc.stderr
    assert not (tmp_path / "run").exists()


def test_local_backend_turns_failures_into_results(tmp_path):
    # The limit only bounds the test: a worker's start (Lightning's import) took more than 20 s on the loaded
    # 2-core machine with the suite in parallel. Timeouts: test_local_backend_times_out_and_reports_nan.
    config = load_config(SMOKE, ["backend.timeout_s=180", "train.epochs=1"])
    good = Candidate("good", genes(1, 16, "relu", 0.0), 1, 1, "ga", seed=1)
    bad = Candidate("bad", genes(1, 16, "no_such_activation", 0.0), 1, 2, "ga", seed=2)
    backend = LocalBackend(config, tmp_path)
    sink = RecordingSink()
    try:
        run_batch(backend, [good, bad], sink)
    finally:
        backend.close()
    assert sink.results["good"].ok
    assert sink.results["bad"].status == "failed" and "no_such_activation" in sink.results["bad"].reason
    assert sink.results["bad"].fitness == math.inf


def test_local_backend_times_out_and_reports_nan(tmp_path):
    slow_config = load_config(SMOKE, ["backend.timeout_s=0.5", "train.epochs=50", "task.n_samples=20000"])
    slow = Candidate("slow", genes(5, 128, "relu", 0.0), 1, 1, "ga", seed=1)
    backend = LocalBackend(slow_config, tmp_path)
    sink = RecordingSink()
    try:
        run_batch(backend, [slow], sink)
    finally:
        backend.close()
    assert sink.results["slow"].status == "failed"
    assert sink.results["slow"].reason == "timed out after 0.5 s (backend.timeout_s)"

    nan_config = load_config(SMOKE, ["train.learning_rate=1e12", "train.epochs=2"])
    diverging = Candidate("nan", genes(3, 128, "relu", 0.0), 1, 1, "ga", seed=1)
    backend = LocalBackend(nan_config, tmp_path)
    sink = RecordingSink()
    try:
        run_batch(backend, [diverging], sink)
    finally:
        backend.close()
    assert sink.results["nan"].status == "failed" and "non-finite" in sink.results["nan"].reason


def test_a_run_directory_of_version_0_1_resumes_as_a_new_run_would(tmp_path):
    # Written by 0.1 (tests/fixtures/run-v0.1): flat optimizer keys, a bounds-pair space, killed after asking
    # generation 2. Today's code reads its config as the same four genes and replays its journal exactly.
    old = tmp_path / "old"
    shutil.copytree(ROOT / "tests" / "fixtures" / "run-v0.1", old, ignore=shutil.ignore_patterns("README.md"))
    old.chmod(0o700)
    cli("resume", old, "--no-report")
    fresh = tmp_path / "fresh"
    cli("run", SMOKE, "--run-dir", fresh, "--no-report")
    resumed, uninterrupted = (list(csv.DictReader((d / "results.csv").open())) for d in (old, fresh))
    assert [(r["name"], r["n_layers"], r["hidden_size"], r["activation"], r["dropout"], r["fitness"])
            for r in resumed] == [(r["name"], r["n_layers"], r["hidden_size"], r["activation"], r["dropout"],
                                   r["fitness"]) for r in uninterrupted]
    assert len(resumed) == 8
