"""End to end: a GA run with the packed engine through the CLI (local backend, real training); W&B per member."""

import csv
import math
import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.support import genes
from workflow.config import TaskConfig, TrainConfig
from workflow.records import Candidate
from workflow.tracking.spec import TrackingSpec
from workflow.trainer import evaluate_pack
from workflow.wandb_driver.readback import offline_records

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "configs" / "smoke.yaml"


def test_smoke_run_with_the_packed_engine(tmp_path):
    run_dir = tmp_path / "packed"
    proc = subprocess.run([sys.executable, "-m", "workflow", "run", str(SMOKE), "train.engine=packed",
                           "--run-dir", str(run_dir)], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "finished: 8 evaluations (0 failed)" in proc.stdout
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["train"]["engine"] == "packed"
    rows = list(csv.DictReader((run_dir / "results.csv").open()))
    assert [r["name"] for r in rows if r["generation"] == "1"] == [f"fitness-1-{i}" for i in range(1, 5)]
    assert len(rows) == 8
    for row in rows:
        assert row["status"] == "ok", row
        assert math.isfinite(float(row["fitness"])) and float(row["fitness"]) == float(row["val_mse"])
        assert float(row["epochs"]) == 1.0 and math.isfinite(float(row["train_loss"]))


def test_each_member_of_a_pack_gets_its_own_wandb_run(tmp_path, monkeypatch):
    for key in [k for k in os.environ if k.startswith("WANDB_")]:
        monkeypatch.delenv(key)
    spec = TrackingSpec(mode="offline", project="packed", entity=None, group="packed-test",
                        dir=str(tmp_path / "wandb"), tag="t0")
    cands = [Candidate(name=f"fitness-0-{i}", hparams=genes(1 + i, 16 * (i + 1), "tanh", 0.1), generation=0,
                       index=i, optimizer="ga", seed=i) for i in range(2)]
    results = evaluate_pack(cands, TaskConfig(name="sinewave", n_samples=300), TrainConfig(epochs=2), tracking=spec)
    records = offline_records(tmp_path / "wandb")
    assert set(records) == {spec.run_id(c.name) for c in cands}
    for c, r in zip(cands, results):
        record = records[spec.run_id(c.name)]
        assert record.name == c.name and record.state == "finished"
        assert record.summary["fitness"] == r.fitness and record.summary["epoch"] == 2
        assert record.config["hidden_size"] == c.hparams["hidden_size"]
