"""A space of every gene type (a layers gene, a tree categorical that is not the activation, a log float, a log int,
a plain categorical) through GA, BO and random search, on the local, inline and Slurm backends and as islands,
with the built-in MLP on sinewave; kill -9 and resume gives the uninterrupted run's results."""

from __future__ import annotations

import csv
import json
import os

import pytest

from tests.support import ROOT, cli
from workflow.store import RunStore
from workflow.store.events import Immigrated, Told

TYPED = ROOT / "configs" / "typed_genes.yaml"
GENES = ["layers", "activation", "optimizer", "dropout", "learning_rate", "batch_size"]


def _rows(run_dir):
    return list(csv.DictReader((run_dir / "results.csv").open()))


def _check_run(run_dir, evaluations, depths_vary=True):
    rows = _rows(run_dir)
    assert len(rows) == evaluations and all(r["status"] == "ok" for r in rows), [r["reason"] for r in rows]
    header = list(rows[0])
    assert header[5] == "seed" and header[6:6 + len(GENES)] == GENES  # the seed, then a column per gene, in order
    depths = {len(r["layers"].split("-")) for r in rows}
    assert len(depths) > 1 or not depths_vary, depths
    assert all(16 <= int(w) <= 96 for r in rows for w in r["layers"].split("-"))
    assert {r["optimizer"] for r in rows} <= {"adam", "adamw", "rmsprop", "sgd"}
    assert all(1e-4 <= float(r["learning_rate"]) <= 3e-2 and 16 <= int(r["batch_size"]) <= 256 for r in rows)
    return rows


@pytest.mark.slow
def test_ga_on_the_local_backend_writes_every_gene_and_a_panel_per_gene(tmp_path):
    run_dir = tmp_path / "ga"
    cli("run", TYPED, "--run-dir", run_dir)
    _check_run(run_dir, 18)
    status = json.loads(cli("status", run_dir, "--json").stdout)
    assert list(status["best"]["hparams"]) == GENES
    report = run_dir / "report"
    top = (report / "top10.md").read_text().splitlines()
    assert top[2] == "| name | layers | activation | optimizer | dropout | learning_rate | batch_size | fitness |"
    from matplotlib import image

    # evolution.png: one panel per gene (two for the layers gene: depth and mean width) and the fitness.
    height = image.imread(report / "evolution.png").shape[0]
    assert height == pytest.approx(100 * 2.4 * (len(GENES) + 2), abs=2)
    assert (report / "bases.png").stat().st_size > 0  # adapt_base: the tree gene's base per generation
    told = [e for e in RunStore(run_dir).events() if isinstance(e, Told)]
    assert [sorted(e.state["bases"]) for e in told] == [["optimizer"]] * 3


PREFIX = {"ga": "fitness-", "bo": "BO-Iteration-", "random": "Random-Iteration-"}


#: A cheap function of the six genes (tests/objectives/typed.py) in place of the built-in MLP, for the tests of the
#: optimizers and backends: the MLP trained on every gene type is tested by the GA run above, the kill -9 test,
#: the islands and each optimizer through Slurm below.
CHEAP = ["objective.kind=python", "objective.function=tests.objectives.typed:typed_landscape",
         f"objective.path={ROOT}"]


@pytest.mark.parametrize("backend", ["inline", "local"])
@pytest.mark.parametrize("optimizer", ["ga", "bo", "random"])
def test_every_optimizer_on_the_inline_and_local_backends(tmp_path, optimizer, backend):
    run_dir = tmp_path / optimizer
    cli("run", TYPED, f"optimizer.name={optimizer}", f"backend.name={backend}", "optimizer.bo.initial_points=6",
        *CHEAP, "--run-dir", run_dir, "--no-report")
    rows = _check_run(run_dir, 18)
    assert all(r["name"].startswith(PREFIX[optimizer]) for r in rows)


@pytest.mark.slow
def test_kill_9_and_resume_give_the_uninterrupted_results(tmp_path):
    common = [TYPED, "backend.name=inline", "optimizer.generations=2", "--no-report"]
    cli("run", *common, "--run-dir", tmp_path / "whole")
    env = {**os.environ, "GASLURM_CRASH_AT": "after-result:8"}
    crashed = cli("run", *common, "--run-dir", tmp_path / "cut", check=False, env=env)
    assert crashed.returncode == -9
    assert len(RunStore(tmp_path / "cut").replay().results) == 8
    cli("resume", tmp_path / "cut", "--no-report")
    whole, cut = _rows(tmp_path / "whole"), _rows(tmp_path / "cut")
    assert [(r["name"], r[g]) for r in whole for g in GENES] == [(r["name"], r[g]) for r in cut for g in GENES]
    assert [r["fitness"] for r in whole] == [r["fitness"] for r in cut]


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
@pytest.mark.parametrize("optimizer", ["ga", "bo", "random"])
def test_every_optimizer_through_slurm_arrays(tmp_path, optimizer):
    run_dir = tmp_path / "slurm"
    cli("run", TYPED, f"optimizer.name={optimizer}", "backend.name=slurm", "slurm.poll_s=0.5",
        "optimizer.population_size=4", "optimizer.generations=2", "optimizer.bo.initial_points=4",
        "--run-dir", run_dir, "--no-report")
    rows = _check_run(run_dir, 8, depths_vary=False)
    assert all("_" in r["job_id"] and r["name"].startswith(PREFIX[optimizer]) for r in rows)


@pytest.mark.mpi
def test_islands_migrate_any_genotype(tmp_path, mpi_runtime):
    import subprocess
    import sys

    run_dir = tmp_path / "isl"
    proc = subprocess.run([mpi_runtime, "-n", "2", sys.executable, "-m", "workflow", "islands", str(TYPED),
                           "islands.count=2", "islands.interval=1", "islands.mode=sync", "backend.name=inline",
                           "--run-dir", str(run_dir)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for k in range(2):
        island = run_dir / "islands" / f"island-{k}"
        _check_run(island, 18)
        moved = [e for e in RunStore(island).events() if isinstance(e, Immigrated)]
        assert moved and all(set(m.candidate.hparams) == set(GENES) for e in moved for m in e.migrants)
