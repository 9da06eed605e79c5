"""Your own training: a Python function, a command script and a CSV file, all living outside the repository,
through GA and BO on the inline, local and Slurm backends; crash and resume; requeue after a time limit;
what a misbehaving objective turns into; hostile gene values that must never reach a shell."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest

from tests.support import ROOT, cli
from workflow.store import RunStore
from workflow.store.events import ResultRecorded, Submission
from workflow.tasks import MLP_MEASURED_METRICS

EXAMPLES = ROOT / "configs" / "examples"
SMALL = ["optimizer.population_size=3", "optimizer.generations=2", "optimizer.bo.initial_points=3",
         "optimizer.ga.tournament_size=2"]
TWO = ["optimizer.population_size=2", "optimizer.generations=2", "optimizer.ga.tournament_size=2",
       "optimizer.bo.initial_points=2"]


@pytest.fixture
def project(tmp_path):
    """The examples copied to a folder of the user's own, outside the repository."""
    home = tmp_path / "my_project"
    shutil.copytree(EXAMPLES, home)
    return home


def settings(kind: str, home) -> list[str]:
    """The example config for ``kind`` and the overrides that point it at ``home``."""
    if kind == "function":
        return [EXAMPLES / "python_objective.yaml", f"objective.path={home}", "space.width.high=24",
                "space.batch_size.low=128"]
    if kind == "command":
        argv = json.dumps([sys.executable, "train_script.py", "--lr", "{learning_rate}", "--degree", "{degree}",
                           "--out", "{workdir}"])
        return [EXAMPLES / "command_objective.yaml", f"objective.argv={argv}", f"objective.cwd={home}"]
    return [EXAMPLES / "csv_task.yaml", f"task.path={home / 'concrete.csv'}", "train.epochs=3"]


def _rows(run_dir):
    return list(csv.DictReader((run_dir / "results.csv").open()))


@pytest.mark.parametrize("backend", ["inline", "local"])
@pytest.mark.parametrize("optimizer", ["ga", "bo"])
@pytest.mark.parametrize("kind", ["function", "command", "csv"])
def test_own_objectives_run_end_to_end(project, tmp_path, kind, optimizer, backend):
    config, *extra = settings(kind, project)
    run_dir = tmp_path / "run"
    out = cli("run", config, *extra, *SMALL, f"optimizer.name={optimizer}", f"backend.name={backend}",
              "--run-dir", run_dir)
    rows = _rows(run_dir)
    assert len(rows) == 6 and all(r["status"] == "ok" for r in rows), [r["reason"] for r in rows]
    assert "finished: 6 evaluations (0 failed)" in out.stdout
    metric = "val_mse" if kind == "csv" else "val_loss"
    assert all(float(r["fitness"]) == float(r[metric]) for r in rows)
    assert (run_dir / "report" / "evolution.png").exists()


#: The objective kinds on Slurm. The tests of one kind share its uninterrupted GA run (``slurm_ga_runs``): they
#: form one xdist group, so the run is made once, on one worker.
SLURM_KINDS = [pytest.param(kind, marks=pytest.mark.xdist_group(f"own-objectives-slurm-{kind}"))
               for kind in ("function", "command", "csv")]


@pytest.fixture(scope="module")
def slurm_ga_runs(tmp_path_factory):
    """``run(kind)`` -> (the user's project folder, the run directory) of one uninterrupted GA run through Slurm
    of the ``kind`` objective (population 2, 2 generations), made on first use. Tests only read the run."""
    runs: dict[str, tuple] = {}

    def run(kind: str):
        if kind not in runs:
            base = tmp_path_factory.mktemp(f"slurm-{kind}")
            home = base / "my_project"
            shutil.copytree(EXAMPLES, home)
            config, *extra = settings(kind, home)
            cli("run", config, *extra, *TWO, "optimizer.name=ga", *SLURM_RUN, "--run-dir", base / "whole")
            runs[kind] = home, base / "whole"
        return runs[kind]

    return run


SLURM_RUN = ["backend.name=slurm", "slurm.poll_s=0.5", "--no-report"]


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
@pytest.mark.parametrize("optimizer", ["ga", "bo"])
@pytest.mark.parametrize("kind", SLURM_KINDS)
def test_own_objectives_through_slurm(project, tmp_path, kind, optimizer, slurm_ga_runs):
    if optimizer == "ga":
        _, run_dir = slurm_ga_runs(kind)  # the same run test_kill_9_and_resume_on_slurm... compares against
    else:
        config, *extra = settings(kind, project)
        run_dir = tmp_path / "run"
        cli("run", config, *extra, *TWO, f"optimizer.name={optimizer}", *SLURM_RUN, "--run-dir", run_dir)
    rows = _rows(run_dir)
    assert len(rows) == 4 and all(r["status"] == "ok" and "_" in r["job_id"] for r in rows), rows


def _sacct_names(run_dir) -> list[str]:
    """The job name of every Slurm task sacct knows for this run's submissions (one line per task)."""
    tags = {e.tag for e in RunStore(run_dir).events() if isinstance(e, Submission) and e.tag}
    out = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "JobName", "--name", ",".join(sorted(tags)),
                          "-S", "now-1hours"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line]


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
@pytest.mark.parametrize("kind", SLURM_KINDS)
def test_kill_9_and_resume_on_slurm_give_the_same_results_once_each(tmp_path, kind, slurm_ga_runs):
    home, whole_dir = slurm_ga_runs(kind)  # the uninterrupted run, shared with test_own_objectives_through_slurm
    config, *extra = settings(kind, home)
    common = [config, *extra, *TWO, "optimizer.name=ga", *SLURM_RUN]
    crashed = cli("run", *common, "--run-dir", tmp_path / "cut", check=False,
                  env={**os.environ, "GASLURM_CRASH_AT": "after-result:1"})
    assert crashed.returncode == -9
    cli("resume", tmp_path / "cut", "--no-report")
    whole, cut = _rows(whole_dir), _rows(tmp_path / "cut")
    genes = [k for k in whole[0] if k not in ("job_id", "seconds", "reason", *MLP_MEASURED_METRICS)]
    assert [[r[k] for k in genes] for r in whole] == [[r[k] for k in genes] for r in cut]
    results = [e for e in RunStore(tmp_path / "cut").events() if isinstance(e, ResultRecorded)]
    assert len(results) == len({e.result.name for e in results}) == 4
    # Each evaluation ran once: two arrays of two tasks (sacct writes array tasks a few seconds late: wait).
    deadline = time.monotonic() + 30
    while len(_sacct_names(tmp_path / "cut")) < 4 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(_sacct_names(tmp_path / "cut")) == 4


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_time_limited_objectives_are_requeued_and_finish_from_their_checkpoint(tmp_path):
    """A Python function and a command, each 70 s of work saving its progress in its workdir, under a 1-minute
    limit whose pre-timeout signal comes 12-26 s after a start: neither can finish in one attempt."""
    slurm = ["backend.name=slurm", "slurm.partition=gpu2", "slurm.time_min=1", "slurm.signal_delay_s=45",
             "slurm.max_requeues=20", "slurm.poll_s=0.5", "slurm.mem_gb=0.5", "optimizer.population_size=1",
             "optimizer.generations=1", "optimizer.ga.tournament_size=1", "optimizer.ga.elitism=0",
             "objective.metric=value", "space={x: {type: int, low: 1, high: 3}}", "--no-report"]
    runs = {
        "function": ["objective.kind=python", f"objective.path={ROOT}",
                     "objective.function=tests.objectives.landscape:slow_steps"],
        "command": ["objective.kind=command", "objective.grace_s=3",
                    "objective.argv=" + json.dumps([sys.executable, str(ROOT / "tests" / "objectives" / "script.py"),
                                                    "slow", "{workdir}"])],
    }
    procs: dict[str, subprocess.CompletedProcess] = {}

    def run(kind):
        procs[kind] = cli("run", ROOT / "configs" / "smoke.yaml", *runs[kind], *slurm, "--run-dir", tmp_path / kind,
                          check=False, timeout=900)

    threads = [threading.Thread(target=run, args=(kind,)) for kind in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for kind, proc in procs.items():
        assert proc.returncode == 0, (kind, proc.stderr[-3000:])
        (row,) = _rows(tmp_path / kind)
        assert row["status"] == "ok", row["reason"]
        assert float(row["attempt"]) >= 1 and float(row["resumed_from"]) > 0, row  # went on from its checkpoint
        results = [e for e in RunStore(tmp_path / kind).events() if isinstance(e, ResultRecorded)]
        assert len(results) == 1


def test_a_misbehaving_command_is_a_failed_result_and_the_search_goes_on(tmp_path):
    script = str(ROOT / "tests" / "objectives" / "script.py")
    config = [ROOT / "configs" / "smoke.yaml", "backend.name=inline", "objective.kind=command",
              f"objective.argv={json.dumps([sys.executable, script, '{mode}', '{workdir}'])}", "objective.metric=value",
              "space={mode: {type: categorical, choices: [ok, exit3, nojson]}}", "optimizer.population_size=6",
              "optimizer.generations=2", "--no-report"]
    cli("run", *config, "--run-dir", tmp_path / "mixed")
    rows = _rows(tmp_path / "mixed")
    assert len(rows) == 12 and {r["mode"] for r in rows} == {"ok", "exit3", "nojson"}
    for row in rows:
        if row["mode"] == "ok":
            assert row["status"] == "ok"
        elif row["mode"] == "exit3":
            assert row["status"] == "failed"
            assert row["reason"] == "command exited 3: training diverged: loss is nan"
        else:
            assert row["status"] == "failed" and row["reason"].startswith(
                "command printed no JSON object of metrics on stdout and wrote no metrics.json")
    # Every evaluation failing is a broken set-up: the search stops after the generation (fail fast).
    broken = cli("run", *config[:-3], "space={mode: {type: categorical, choices: [exit3]}}", "--run-dir",
                 tmp_path / "broken", check=False)
    assert broken.returncode == 4 and "command exited 3: training diverged" in broken.stderr


HOSTILE = ["a; rm -rf ./victim", "$(touch pwned)", "`touch pwned2`", "it's \"quoted\"", "two\nlines", "{name}",
           "--flag=1 --other"]


def test_hostile_gene_values_reach_the_command_as_one_literal_argument_each(tmp_path):
    (tmp_path / "victim").mkdir()
    choices = json.dumps(HOSTILE)
    argv = json.dumps([sys.executable, str(ROOT / "tests" / "objectives" / "script.py"), "argv", "{workdir}",
                       "{arg}"])
    cli("run", ROOT / "configs" / "smoke.yaml", "backend.name=inline", "objective.kind=command",
        f"objective.argv={argv}", f"objective.cwd={tmp_path}", "objective.metric=value",
        f"space={{arg: {{type: categorical, choices: {choices}}}}}", "optimizer.population_size=7",
        "optimizer.generations=2", "--run-dir", tmp_path / "run", "--no-report")
    seen = set()
    for row in _rows(tmp_path / "run"):
        received = json.loads((tmp_path / "run" / "evals" / row["name"] / "argv.json").read_text())
        assert received[:2] == ["argv", str((tmp_path / "run" / "evals" / row["name"]).resolve())]
        value = received[2]
        assert value in HOSTILE and len(received) == 3  # one literal argument, whatever it holds
        seen.add(value)
    assert len(seen) > 3
    assert (tmp_path / "victim").is_dir() and not list(tmp_path.glob("pwned*"))
