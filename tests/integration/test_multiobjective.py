"""Multi-objective search end to end: NSGA-II reaches ZDT1's true front; the seed's sinewave experiment on
(val_mse, n_params) with GA and BO on the local and Slurm backends, its report and status; kill -9 and resume
exactly on the dev cluster."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from tests.objectives.zdt import true_front_hypervolume
from tests.support import ROOT, SMOKE, cli
from workflow.config import load_config
from workflow.front import front_hypervolume
from workflow.store import RunStore
from workflow.store.events import ResultRecorded

PARETO = ["optimizer.objectives=[{metric: val_mse}, {metric: n_params}]", "optimizer.bo.initial_points=3",
          "task.n_samples=300"]
SLURM = ["backend.name=slurm", "slurm.poll_s=0.5"]


def _rows(run_dir):
    with (run_dir / "results.csv").open() as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_nsga2_on_zdt1_reaches_the_true_fronts_hypervolume(tmp_path):
    run_dir = tmp_path / "zdt1"
    cli("run", ROOT / "configs" / "zdt1.yaml", "--run-dir", run_dir)
    config = load_config(ROOT / "configs" / "zdt1.yaml")
    evaluated = RunStore.open(run_dir).replay().evaluated()
    assert len(evaluated) == 3000
    reference = np.array([1.1, 1.1])
    ratio = front_hypervolume(evaluated, config.optimizer.objectives, reference) / true_front_hypervolume(
        "zdt1", reference)
    assert 0.95 <= ratio <= 1.0, ratio  # measured 0.985 (seed 0)
    status = json.loads(cli("status", run_dir, "--json").stdout)
    assert len(status["pareto"]) > 50 and set(status["pareto"][0]["objectives"]) == {"f1", "f2"}
    text = (run_dir / "report" / "pareto.md").read_text()
    assert "Hypervolume:" in text and (run_dir / "report" / "pareto.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("optimizer", ["ga", "bo"])
def test_sinewave_on_loss_and_size_locally_reports_the_front(tmp_path, optimizer):
    run_dir = tmp_path / optimizer
    cli("run", SMOKE, *PARETO, f"optimizer.name={optimizer}", "--run-dir", run_dir)
    rows = _rows(run_dir)
    assert len(rows) == 8 and all(r["status"] == "ok" for r in rows)
    assert {"val_mse", "n_params", "flops", "latency_ms", "train_seconds"} <= set(rows[0])
    inputs = load_config(SMOKE).task.n_waves  # the sinewave's covariates
    for row in rows:  # n_params follows from the genes: inputs, layers x width, one output
        layers, width = int(row["n_layers"]), int(row["hidden_size"])
        expected = (inputs * width + width) + (layers - 1) * (width * width + width) + (width + 1)
        assert float(row["n_params"]) == expected, row
    status = json.loads(cli("status", run_dir, "--json").stdout)
    front = status["pareto"]
    assert front and status["best"]["name"] == min(rows, key=lambda r: float(r["val_mse"]))["name"]
    sizes = [m["objectives"]["n_params"] for m in sorted(front, key=lambda m: m["objectives"]["val_mse"])]
    assert sizes == sorted(sizes, reverse=True)  # along the front, a lower loss costs more parameters
    md = (run_dir / "report" / "pareto.md").read_text()
    assert all(m["name"] in md for m in front)


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("optimizer", ["ga", "bo"])
def test_sinewave_pareto_on_slurm_resumes_exactly_after_kill_9(tmp_path, optimizer):
    def driver(run_dir, crash=None):
        env = {k: v for k, v in os.environ.items() if k != "GASLURM_CRASH_AT"}
        if crash:
            env["GASLURM_CRASH_AT"] = crash
        return subprocess.Popen([sys.executable, "-m", "workflow", "run", str(SMOKE), *PARETO, *SLURM,
                                 f"optimizer.name={optimizer}", "--run-dir", str(run_dir), "--no-report"],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    baseline, crashed = tmp_path / "baseline", tmp_path / "crashed"
    procs = {"baseline": driver(baseline), "crashed": driver(crashed, "after-result:5")}
    outs = {name: proc.communicate(timeout=900) for name, proc in procs.items()}
    assert procs["baseline"].returncode == 0, outs["baseline"]
    assert procs["crashed"].returncode == -signal.SIGKILL, outs["crashed"]
    cli("resume", crashed)

    def searched(run_dir):  # what the search saw: genes and both objectives (latency and times vary)
        return [(r["name"], r["n_layers"], r["hidden_size"], r["activation"], r["dropout"], r["val_mse"],
                 r["n_params"]) for r in _rows(run_dir)]

    assert searched(crashed) == searched(baseline)
    results = [e.result.name for e in RunStore(crashed).events() if isinstance(e, ResultRecorded)]
    assert len(results) == len(set(results)) == 8
    assert (crashed / "report" / "pareto.png").exists()
    assert json.loads(cli("status", crashed, "--json").stdout)["pareto"] == \
        json.loads(cli("status", baseline, "--json").stdout)["pareto"]


def test_compare_reports_each_optimizers_hypervolume_median_over_seeds(tmp_path):
    out = tmp_path / "cmp"
    cli("compare", ROOT / "configs" / "zdt1.yaml", "optimizer.population_size=20", "optimizer.generations=5",
        "optimizer.reference_point=[1.1, 10.0]", "--optimizers", "ga,random", "--seeds", "2", "--run-dir", out)
    config = load_config(ROOT / "configs" / "zdt1.yaml")
    reference = np.array([1.1, 10.0])  # reachable at this small budget
    with (out / "compare" / "summary.csv").open() as handle:
        summary = {row["optimizer"]: float(row["hypervolume_median"]) for row in csv.DictReader(handle)}
    assert set(summary) == {"ga", "random"}
    # Each optimizer's median is the median of its two runs' hypervolumes at the configured reference point.
    for name, median in summary.items():
        volumes = [front_hypervolume(RunStore.open(run_dir).replay().evaluated(), config.optimizer.objectives,
                                     reference) for run_dir in sorted(out.glob(f"{name}-seed*"))]
        assert len(volumes) == 2, sorted(p.name for p in out.iterdir())
        assert median == pytest.approx(float(np.median(volumes)), rel=1e-6), name
    assert summary["ga"] > summary["random"]  # NSGA-II beats random sampling on ZDT1 at equal budget
    text = (out / "compare" / "hypervolume.md").read_text()
    assert "| ga | 2 |" in text and (out / "compare" / "hypervolume.png").read_bytes()[:4] == b"\x89PNG"
