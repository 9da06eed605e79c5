"""The island model for real: 3 MPI ranks (the venv's mpiexec), Slurm arrays on both dev partitions."""

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import TypeVar

import pytest

from workflow.store import RunStore
from workflow.store.events import Emigrated, Event, Immigrated, ResultRecorded

E = TypeVar("E", bound=Event)

pytestmark = [pytest.mark.slurm, pytest.mark.mpi, pytest.mark.usefixtures("slurm_cluster"), pytest.mark.slow,
              pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "islands_smoke.yaml"
#: The seed's four genes, scored by a cheap function: what is tested here is the island model (MPI, migration,
#: one array per island and generation on its partition, resume), not training, which costs a Slurm task ~5 s
#: of CPU to import Lightning (36 tasks a run). MLP training through Slurm: test_slurm.py, test_typed_genes.py.
CHEAP = ["objective.kind=python", "objective.function=tests.objectives.landscape:seed_landscape",
         f"objective.path={ROOT}"]


def _islands(run_dir: Path, *extra: str, env: dict | None = None, timeout: float = 600):
    return subprocess.run([_mpiexec(), "-n", "3", sys.executable, "-m", "workflow", "islands", str(CONFIG),
                           "--run-dir", str(run_dir), *CHEAP, *extra], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env or os.environ.copy())


def _mpiexec() -> str:
    return str(Path(sys.executable).parent / "mpiexec")


def _rows(path: Path) -> list[dict]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def _events(path: Path, kind: type[E]) -> list[E]:
    return [e for e in RunStore(path).events() if isinstance(e, kind)]


def test_three_islands_on_two_partitions(tmp_path, mpi_runtime):
    run_dir = tmp_path / "run"
    proc = _islands(run_dir)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    partitions = {}
    for k in range(3):
        island = run_dir / "islands" / f"island-{k}"
        rows = _rows(island / "results.csv")
        assert len(rows) == 12 and all(r["status"] == "ok" and r["island"] == str(k) for r in rows)
        sent = _events(island, Emigrated)
        assert [e.generation for e in sent] == [1, 2] and all(e.to == ((k + 1) % 3,) for e in sent)
        for event in _events(island, Immigrated):
            assert event.sender == (k - 1) % 3 and math.isfinite(event.migrants[0].result.fitness)
        array = rows[0]["job_id"].split("_")[0]
        out = subprocess.run(["sacct", "-n", "-X", "-P", "-j", array, "-o", "Partition"], capture_output=True,
                             text=True, check=True).stdout.split()
        partitions[k] = set(out)
    assert partitions == {0: {"gpu"}, 1: {"gpu2"}, 2: {"gpu"}}
    assert sum(len(_events(run_dir / "islands" / f"island-{k}", Immigrated)) for k in range(3)) >= 1
    assert len(_rows(run_dir / "results.csv")) == 36
    status = json.loads(subprocess.run([sys.executable, "-m", "workflow", "status", str(run_dir), "--json"],
                                       cwd=ROOT, capture_output=True, text=True, check=True).stdout)
    assert status["finished"] and [i["island"] for i in status["islands"]] == [0, 1, 2]
    best = min((r for k in range(3) for r in _rows(run_dir / "islands" / f"island-{k}" / "results.csv")),
               key=lambda r: float(r["fitness"]))
    assert status["best"]["fitness"] == pytest.approx(float(best["fitness"]))
    assert status["best"]["island"] == int(best["island"])
    report = subprocess.run([sys.executable, "-m", "workflow", "report", str(run_dir)], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    assert str(run_dir / "report" / "islands.png") in report
    assert (run_dir / "report" / "top10.md").read_text().count("\n| fitness-") == 10


def test_killing_one_rank_ends_the_job_and_resume_completes_it(tmp_path, mpi_runtime):
    run_dir = tmp_path / "run"
    env = {**os.environ, "GASLURM_CRASH_AT": "after-result:6@1"}
    proc = _islands(run_dir, env=env)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "KILLED BY SIGNAL: 9" in output or "killed" in output.lower(), output[-3000:]
    status = json.loads(subprocess.run([sys.executable, "-m", "workflow", "status", str(run_dir), "--json"],
                                       cwd=ROOT, capture_output=True, text=True, check=True).stdout)
    assert status["finished"] is False
    resumed = subprocess.run([sys.executable, "-m", "workflow", "resume", str(run_dir)], cwd=ROOT,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    for k in range(3):
        island = run_dir / "islands" / f"island-{k}"
        rows = _rows(island / "results.csv")
        assert len(rows) == 12 and len({r["name"] for r in rows}) == 12
        results = _events(island, ResultRecorded)
        assert len(results) == len({e.result.name for e in results}) == 12
