"""The Python front door (workflow.search / load / Study): inline and local backends, cheap objectives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import yaml

import workflow
from workflow.cli import main
from workflow.errors import ConfigError, RunDirError, WorkflowError
from workflow.status import run_status
from workflow.store import RunStore
from workflow.store.events import Extended, ResultRecorded, Submitted
from workflow.store.lock import DriverLock
from workflow.store.results import read_results_csv

ROOT = Path(__file__).resolve().parents[2]
SPACE = {"x": {"type": "float", "low": -2.0, "high": 2.0}, "n": {"type": "int", "low": 1, "high": 6}}
SMALL = {"population_size": 4, "generations": 2}


def bowl(hparams, context):
    return (hparams["x"] - 0.5) ** 2 + abs(hparams["n"] - 3)


def journal_results(run_dir):
    return [e.result.name for e in RunStore(run_dir).events() if isinstance(e, ResultRecorded)]


def test_search_with_a_closure_inline_returns_the_study_status_agrees_with(tmp_path):
    calls = []
    offset = 0.25

    def objective(hparams, context):  # a closure: it captures `calls` and `offset`
        calls.append((context.name, context.seed))
        return {"loss": (hparams["x"] - offset) ** 2 + hparams["n"], "size": hparams["n"]}

    study = workflow.search(objective, SPACE, run_dir=tmp_path / "run", metric="loss", seed=3,
                            backend={"name": "inline"}, optimizer=SMALL)
    assert len(study.results) == len(calls) == 8 and study.finished
    best = study.best
    status = run_status(tmp_path / "run")
    assert (best.name, best.hparams, best.fitness) == (status["best"]["name"], status["best"]["hparams"],
                                                       status["best"]["fitness"])
    assert best.metrics["size"] == best.hparams["n"] and best.job_id == ""
    assert best.seed == dict(calls)[best.name]  # the seed the objective's context got
    assert best.workdir == tmp_path / "run" / "evals" / best.name
    assert list(study.config.space) == ["x", "n"]  # the space's order is kept
    assert study.config.objective.kind == "callable" and "objective" in study.config.objective.function
    assert (tmp_path / "run" / "objective.pkl").is_file()
    assert status["driver"]["held"] is False and study.status["finished"] is True
    assert study.pareto == [best]


def test_python_yaml_and_cli_give_identical_results_for_the_same_seed(tmp_path):
    function = "tests.objectives.landscape:seed_landscape"
    config = {"name": "same", "seed": 5, "backend": {"name": "inline"}, "optimizer": SMALL,
              "objective": {"kind": "python", "function": function, "path": str(ROOT)}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    from_python = workflow.search(function, config=config, run_dir=tmp_path / "py")
    from_yaml = workflow.search(None, config=tmp_path / "c.yaml", run_dir=tmp_path / "yaml")
    assert main(["run", str(tmp_path / "c.yaml"), "--run-dir", str(tmp_path / "cli"), "--no-report"]) == 0
    from_cli = workflow.load(tmp_path / "cli")
    rows = [[(e.name, e.hparams, e.fitness, e.seed) for e in s.results] for s in (from_python, from_yaml, from_cli)]
    assert rows[0] == rows[1] == rows[2] and len(rows[0]) == 8
    tables = [read_results_csv(tmp_path / d / "results.csv") for d in ("py", "yaml", "cli")]
    assert [[{k: v for k, v in row.items() if k != "seconds"} for row in t] for t in tables].count(
        [{k: v for k, v in row.items() if k != "seconds"} for row in tables[0]]) == 3


def test_settings_as_sections_and_dotted_keys(tmp_path):
    study = workflow.search(bowl, SPACE, run_dir=tmp_path / "run", backend={"name": "inline"},
                            **{"optimizer.population_size": 3, "optimizer.generations": 1, "optimizer.name": "random"})
    assert study.config.optimizer.population_size == 3 and study.config.optimizer.name == "random"
    assert [e.optimizer for e in study.results] == ["random"] * 3


@pytest.mark.parametrize("kwargs, message", [
    ({"space": ["x"]}, "config error: space='list': a mapping of gene names to gene specs"),
    ({"space": {"x": 3}}, "config error: space.x=3: a gene spec is a mapping with a type"),
    ({"space": SPACE, "optimiser": {"generations": 2}}, "config error: optimiser={'generations': 2}: unknown "
                                                         "setting; allowed: name, seed, version, task, space, fixed"),
    ({"space": SPACE, "optimizer": {"generation": 2}}, "config error: optimizer.generation=2: unknown key"),
    ({"space": SPACE, "objective_fn": 1}, "unknown setting"),
])
def test_bad_input_is_one_line_and_creates_nothing(tmp_path, kwargs, message):
    with pytest.raises(ConfigError) as raised:
        workflow.search(bowl, run_dir=tmp_path / "run", backend={"name": "inline"}, **kwargs)
    assert message in str(raised.value) and "\n" not in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_a_callable_that_cannot_be_pickled_is_refused_for_local_and_runs_inline(tmp_path):
    lock = threading.Lock()

    def objective(hparams, context):
        with lock:
            return bowl(hparams, context)

    with pytest.raises(ConfigError, match=r"cannot be pickled for worker processes \(TypeError: .*lock.*backend "
                                          r"local\)"):
        workflow.search(objective, SPACE, run_dir=tmp_path / "local", backend={"name": "local"}, optimizer=SMALL)
    assert not (tmp_path / "local").exists()
    study = workflow.search(objective, SPACE, run_dir=tmp_path / "inline", backend={"name": "inline"},
                            optimizer=SMALL)
    assert len(study.results) == 8 and not (tmp_path / "inline" / "objective.pkl").exists()
    with pytest.raises(ConfigError, match="takes \\(hparams\\) but is called as function\\(hparams, context\\)"):
        workflow.search(lambda hparams: 1.0, SPACE, run_dir=tmp_path / "sig", backend={"name": "inline"})


def test_extend_adds_generations_and_reruns_nothing(tmp_path):
    calls = []

    def objective(hparams, context):
        calls.append(context.name)
        return bowl(hparams, context)

    study = workflow.search(objective, SPACE, run_dir=tmp_path / "run", backend={"name": "inline"}, optimizer=SMALL)
    first = [(e.name, e.hparams, e.fitness) for e in study.results]
    assert len(calls) == 8
    with pytest.raises(ConfigError, match="more than the run's 2"):
        study.extend(generations=2)
    study.extend(generations=4)
    assert len(calls) == 16 and len(set(calls)) == 16  # nothing evaluated twice
    assert [(e.name, e.hparams, e.fitness) for e in study.results][:8] == first
    assert study.finished and study.config.optimizer.generations == 4
    assert [e.generations for e in RunStore(study.run_dir).events() if isinstance(e, Extended)] == [4]
    # The CLI's way: resume RUN_DIR optimizer.generations=N (the pickled closure is loaded from objective.pkl).
    assert main(["resume", str(study.run_dir), "optimizer.generations=5", "--no-report"]) == 0
    names = journal_results(study.run_dir)
    assert len(names) == len(set(names)) == 20 and study.status["generation"] == 5
    assert main(["resume", str(study.run_dir), "optimizer.population_size=5"]) == 2


def test_ask_tell_journals_and_resumes(tmp_path):
    study = workflow.create_study(SPACE, run_dir=tmp_path / "run", optimizer={"population_size": 3, "generations": 2},
                                  seed=1)
    asked = [study.ask() for _ in range(3)]
    assert len({a.name for a in asked}) == 3 and all(a.status == "pending" for a in asked)
    with pytest.raises(WorkflowError, match="every evaluation asked is handed out"):
        study.ask()
    study.tell(asked[0].name, bowl(asked[0].hparams, None))
    with pytest.raises(WorkflowError, match="already has its result"):
        study.tell(asked[0].name, 1.0)
    with pytest.raises(WorkflowError, match="no evaluation named 'nope'"):
        study.tell("nope", 1.0)
    # A fresh process's view: load the run again, tell the rest, the optimizer goes on from the journal.
    again = workflow.load(tmp_path / "run")
    assert {e.name for e in again.pending} == {a.name for a in asked[1:]}
    again.tell(asked[1].name, {"value": 2.0})
    again.tell(asked[2].name, reason="my cluster lost it")
    second = again.ask()
    assert second.generation == 2
    handed = [e for e in RunStore(study.run_dir).events() if isinstance(e, Submitted)]
    assert [e.backend for e in handed] == ["ask"] * 4
    # A driver holds the run: ask/tell mixes with nothing else.
    with DriverLock(study.run_dir), pytest.raises(RunDirError):
        again.ask()
    for e in [second, again.ask(), again.ask()]:
        again.tell(e.name, bowl(e.hparams, None))
    assert again.finished and len(again.results) == 6
    assert [r.status for r in again.results].count("failed") == 1
    with pytest.raises(WorkflowError, match="finished"):
        again.ask()
    again.extend(generations=3)
    assert again.ask().generation == 3
    assert main(["resume", str(study.run_dir)]) == 2  # nothing for a driver to run


def test_load_reads_a_running_search_without_waiting_for_it(tmp_path):
    study = workflow.search(bowl, SPACE, run_dir=tmp_path / "run", backend={"name": "inline"}, optimizer=SMALL)
    with DriverLock(study.run_dir):  # as if a driver were running
        loaded = workflow.load(study.run_dir)
        assert len(loaded.results) == 8 and loaded.best == study.best
        assert loaded.status["driver"]["held"] is True
    with pytest.raises(WorkflowError, match="pandas"):
        loaded.dataframe()


def test_a_script_outside_the_repository_searches_with_a_closure_on_the_local_backend(tmp_path):
    script = tmp_path / "elsewhere" / "tune.py"
    script.parent.mkdir()
    script.write_text(textwrap.dedent("""
        import json, sys
        import workflow

        def make_objective(target):
            def objective(hparams, context):  # a closure over `target`, defined in __main__
                return {"loss": (hparams["x"] - target) ** 2, "pid": float(__import__("os").getpid())}
            return objective

        if __name__ == "__main__":  # the local backend's workers (spawn) import this file again
            study = workflow.search(make_objective(0.5), {"x": {"type": "float", "low": -2, "high": 2}},
                                    run_dir=sys.argv[1], metric="loss", seed=7,
                                    backend={"name": "local", "workers": 2}, optimizer={"population_size": 4,
                                    "generations": 2})
            best = study.best
            pids = sorted({e.metrics["pid"] for e in study.results})
            print(json.dumps({"best": best.name, "fitness": best.fitness, "n": len(study.results),
                              "pids": pids, "me": __import__("os").getpid()}))
    """))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "run")], cwd=script.parent, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["n"] == 8 and out["me"] not in out["pids"]  # evaluated in worker processes
    status = run_status(tmp_path / "run")
    assert (status["best"]["name"], status["best"]["fitness"]) == (out["best"], out["fitness"])


def test_detached_search_returns_at_once_and_a_background_driver_finishes_it(tmp_path, capsys):
    scale = 2.0

    def objective(hparams, context):  # a closure: the detached driver loads it from objective.pkl
        return scale * bowl(hparams, context)

    study = workflow.search(objective, SPACE, run_dir=tmp_path / "run", backend={"name": "inline"},
                            optimizer=SMALL, detach=True)
    assert "driver started" in capsys.readouterr().out
    deadline = time.monotonic() + 120
    while not study.finished and time.monotonic() < deadline:
        time.sleep(0.5)
    assert study.finished, (tmp_path / "run" / "driver.out").read_text()
    assert len(study.results) == 8 and study.best.fitness == pytest.approx(2 * bowl(study.best.hparams, None))
