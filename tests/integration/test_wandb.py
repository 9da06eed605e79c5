"""W&B with the real wandb package in offline mode, no network: smoke runs through the local backend and the
dev Slurm cluster, ``summary``, a requeued evaluation, ``sync`` without network, and the API-key marker."""

import csv
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import genes
from workflow.config import load_config
from workflow.evaluate import EvaluationSpec, run_pack
from workflow.records import Candidate
from workflow.store import RunStore
from workflow.store.events import WandbChecked
from workflow.tracking.spec import TrackingSpec
from workflow.wandb_driver.readback import offline_files, offline_records, read_offline_run

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "configs" / "smoke.yaml"
MARKER = "MARKER-wandb-key-5d1e8c2a9f7b"


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(WANDB_API_KEY=MARKER, **extra)
    return env


def cli(*args, check=True, env=None, timeout=600):
    proc = subprocess.run([sys.executable, "-m", "workflow", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, env=env or _env())
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def _results(run_dir):
    return {r["name"]: r for r in csv.DictReader((run_dir / "results.csv").open())}


def _assert_one_run_per_evaluation(run_dir, generations):
    spec = TrackingSpec.from_config(load_config(run_dir / "config.yaml"), run_dir)
    results = _results(run_dir)
    files = offline_files(run_dir / "wandb")
    assert set(files) == {spec.run_id(n) for n in results} | {spec.experiment_id}
    assert all(len(paths) == 1 for rid, paths in files.items() if rid != spec.experiment_id)
    assert len(files[spec.experiment_id]) == generations  # the experiment run is updated once per generation
    records = offline_records(run_dir / "wandb")
    for name, row in results.items():
        record = records[spec.run_id(name)]
        assert record.name == name and record.state == "finished"
        assert (record.config["n_layers"], record.config["hidden_size"], record.config["activation"]) == \
            (int(row["n_layers"]), int(row["hidden_size"]), row["activation"])
        assert record.config["dropout"] == pytest.approx(float(row["dropout"]), abs=1e-6)
        assert record.summary["status"] == "ok"
        assert record.summary["fitness"] == float(row["fitness"])
        assert record.summary["val_mse"] == float(row["val_mse"])
        assert record.summary["epoch"] == 1  # the per-epoch row
    experiment = records[spec.experiment_id]
    assert experiment.summary["best_fitness"] == min(float(r["fitness"]) for r in results.values())
    assert experiment.config["name"] == "smoke"


def _assert_summary_matches_results(run_dir):
    out = cli("summary", run_dir).stdout.splitlines()
    results = _results(run_dir)
    ranked = sorted(results.values(), key=lambda r: float(r["fitness"]))
    assert out[2] == "| name | n_layers | hidden_size | activation | dropout | fitness |"
    assert [line.split(" | ")[0].lstrip("| ") for line in out[4:4 + len(ranked)]] == [r["name"] for r in ranked]
    rows = list(csv.DictReader((run_dir / "wandb_summary.csv").open()))
    assert [r["name"] for r in rows] == [r["name"] for r in ranked]
    for row in rows:
        expected = results[row["name"]]
        assert float(row["fitness"]) == float(expected["fitness"])
        assert (row["n_layers"], row["hidden_size"], row["activation"]) == \
            (expected["n_layers"], expected["hidden_size"], expected["activation"])
        assert float(row["dropout"]) == pytest.approx(float(expected["dropout"]), abs=1e-6)
    assert (run_dir / "wandb_summary.md").read_text().splitlines()[2] == out[2]
    as_json = json.loads(cli("summary", run_dir, "--json").stdout)
    assert [r["name"] for r in as_json] == [r["name"] for r in ranked]


def _assert_no_marker(run_dir):
    hits = [str(p) for p in run_dir.rglob("*") if p.is_file() and MARKER.encode() in p.read_bytes()]
    assert hits == []


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("wandb") / "smoke"
    cli("run", SMOKE, "tracking.mode=offline", "--run-dir", run_dir)
    return run_dir


def test_one_offline_run_per_evaluation_with_name_config_and_summary(smoke_run):
    _assert_one_run_per_evaluation(smoke_run, generations=2)
    checked = [e for e in RunStore(smoke_run).events() if isinstance(e, WandbChecked)]
    assert [(e.generation, e.runs, e.disagreements) for e in checked] == [(1, 4, ()), (2, 4, ())]


def test_summary_reads_wandb_back_and_matches_results_csv(smoke_run):
    _assert_summary_matches_results(smoke_run)


def test_api_key_marker_appears_nowhere_in_the_run_directory(smoke_run):
    assert any(p.suffix == ".wandb" for p in smoke_run.rglob("*"))  # the binary logs are searched too
    _assert_no_marker(smoke_run)


def test_sync_chooses_unsynced_runs_and_fails_cleanly_without_network(smoke_run, tmp_path):
    files = [path for paths in offline_files(smoke_run / "wandb").values() for path in paths]
    assert len(files) == 10  # 8 evaluations, the experiment run once per generation
    out = cli("sync", smoke_run, "--dry-run").stdout.splitlines()
    assert out[0] == f"{len(files)} offline runs to upload, 0 already uploaded"
    # wandb sync marks an uploaded run-<id>.wandb with run-<id>.wandb.synced (wandb/cli/beta_sync.py); with one
    # marked, both our choice and wandb's own dry run skip it, so a repeated sync uploads nothing twice.
    marked = files[0].with_suffix(".wandb.synced")
    marked.touch()
    try:
        out = cli("sync", smoke_run, "--dry-run").stdout.splitlines()
        assert out[0] == f"{len(files) - 1} offline runs to upload, 1 already uploaded"
        command = out[1].split(" ")
        assert str(marked.parent) not in command and len(command) == 4 + len(files) - 1
        own = subprocess.run([sys.executable, "-m", "wandb", "sync", "--dry-run", *command[4:]],
                             capture_output=True, text=True, env=_env(), timeout=120)
        assert f"Would sync {len(files) - 1} run(s)" in own.stdout + own.stderr
        own = subprocess.run([sys.executable, "-m", "wandb", "sync", "--dry-run", str(marked.parent)],
                             capture_output=True, text=True, env=_env(), timeout=120)
        assert "Skipped 1 synced run(s)" in own.stdout + own.stderr
    finally:
        marked.unlink()

    def snapshot():
        return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in smoke_run.rglob("*") if p.is_file()}

    before = snapshot()
    proc = cli("sync", smoke_run, check=False, env=_env(WANDB_BASE_URL="http://127.0.0.1:9"))
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: cannot reach W&B at http://127.0.0.1:9 (")
    assert len(proc.stderr.strip().splitlines()) == 1
    home = tmp_path / "home"
    home.mkdir()
    no_key = {k: v for k, v in _env(HOME=str(home), NETRC=str(home / "netrc")).items() if k != "WANDB_API_KEY"}
    proc = cli("sync", smoke_run, check=False, env=no_key)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: no W&B API key: set WANDB_API_KEY or run `wandb login`")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert snapshot() == before
    _assert_no_marker(smoke_run)


def test_requeued_evaluation_keeps_its_run_id(tmp_path):
    config = load_config(SMOKE, ["tracking.mode=offline", "train.epochs=1"])
    spec = TrackingSpec.from_config(config, tmp_path)
    assert spec is not None
    cand = Candidate(name="fitness-1-1", hparams=genes(2, 16, "relu", 0.1), generation=1, index=1,
                     optimizer="ga", seed=5)
    workdir = str(tmp_path / "evals" / cand.name)
    first = run_pack([cand], EvaluationSpec(config.task, config.train, tracking=spec, checkpoint=True), str(workdir))[0]
    # The requeued task: same workdir and id; it resumes the checkpoint and trains the missing epoch.
    longer = config.train.model_copy(update={"epochs": 2})
    second = run_pack([cand], EvaluationSpec(config.task, longer, tracking=spec, checkpoint=True), str(workdir))[0]
    assert first.ok and second.ok
    files = offline_files(spec.dir)
    assert list(files) == [spec.run_id(cand.name)]  # one run id, one folder per attempt
    attempts = [read_offline_run(p) for p in files[spec.run_id(cand.name)]]
    assert len(attempts) == 2 and {a.run_id for a in attempts} == {spec.run_id(cand.name)}
    assert sorted(a.summary["epoch"] for a in attempts) == [1, 2]  # the second attempt continues the epochs
    latest = offline_records(spec.dir)[spec.run_id(cand.name)]
    assert latest.summary["fitness"] == second.fitness and latest.summary["epoch"] == 2


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
def test_smoke_through_slurm_leaves_one_offline_run_per_evaluation(tmp_path):
    run_dir = tmp_path / "run"
    # One generation (one array of 4 tasks) keeps the test short; the local smoke run covers two.
    cli("run", SMOKE, "backend.name=slurm", "slurm.partition=gpu", "slurm.poll_s=0.5", "tracking.mode=offline",
        "optimizer.generations=1", "--run-dir", run_dir)
    assert (run_dir / "slurm").is_dir()
    _assert_one_run_per_evaluation(run_dir, generations=1)
    _assert_summary_matches_results(run_dir)
    _assert_no_marker(run_dir)  # including the sbatch scripts and the tasks' logs


def test_a_python_objective_is_a_wandb_run_with_its_genes_metrics_and_reports(tmp_path):
    # config = the genes, summary = the returned metrics, history = the context.report() calls.
    run_dir = tmp_path / "run"
    cli("run", ROOT / "configs" / "examples" / "python_objective.yaml", "tracking.mode=offline", "backend.name=inline",
        f"objective.path={ROOT / 'configs' / 'examples'}", "optimizer.population_size=3", "optimizer.generations=1",
        "--run-dir", run_dir, "--no-report")
    results = _results(run_dir)
    spec = TrackingSpec.from_config(load_config(run_dir / "config.yaml"), run_dir)
    records = offline_records(spec.dir)
    for name, row in results.items():
        record = records[spec.run_id(name)]
        assert {k: record.config[k] for k in ("width", "learning_rate", "batch_size")} == {
            "width": int(row["width"]), "learning_rate": pytest.approx(float(row["learning_rate"])),
            "batch_size": int(row["batch_size"])}
        assert record.summary["status"] == "ok" and record.summary["val_loss"] == float(row["val_loss"])
        assert record.summary["epoch"] == 20  # the last report(step=20, ...) of the 20 epochs
    checked = [e for e in RunStore(run_dir).events() if isinstance(e, WandbChecked)]
    assert checked and checked[0].disagreements == ()
