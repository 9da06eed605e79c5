"""The Python front door on the dev cluster: a closure defined in a user's script outside the repository,
searched through Slurm arrays by ``workflow.search``; the Study's best is what ``status --json`` says."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support import daemon_logs

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_closure_from_a_script_outside_the_repository_searches_through_slurm(tmp_path):
    script = tmp_path / "elsewhere" / "tune.py"
    script.parent.mkdir()
    script.write_text(textwrap.dedent("""
        import json, os, sys
        import workflow

        def make_objective(target):
            def objective(hparams, context):  # a closure over `target`, defined in __main__
                return {"loss": (hparams["x"] - target) ** 2 + hparams["n"], "pid": float(os.getpid())}
            return objective

        if __name__ == "__main__":
            study = workflow.search(make_objective(0.5), {"x": {"type": "float", "low": -2, "high": 2},
                                                          "n": {"type": "int", "low": 0, "high": 3}},
                                    run_dir=sys.argv[1], metric="loss", seed=11,
                                    backend={"name": "slurm"}, slurm={"partition": "gpu2", "poll_s": 0.5},
                                    optimizer={"population_size": 4, "generations": 2})
            best = study.best
            print(json.dumps({"best": best.name, "fitness": best.fitness, "job_id": best.job_id,
                              "seed": best.seed, "n": len(study.results),
                              "pids": sorted({e.metrics["pid"] for e in study.results}), "me": os.getpid()}))
    """))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, str(script), str(run_dir)], cwd=script.parent, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:] + daemon_logs()[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["n"] == 8 and out["me"] not in out["pids"]  # evaluated in Slurm tasks
    assert out["job_id"]  # a Slurm task id
    status = json.loads(subprocess.run([sys.executable, "-m", "workflow", "status", str(run_dir), "--json"],
                                       capture_output=True, text=True, check=True, cwd=ROOT).stdout)
    assert (status["best"]["name"], status["best"]["fitness"], status["best"]["seed"]) == (
        out["best"], out["fitness"], out["seed"])
    assert (run_dir / "objective.pkl").exists()
