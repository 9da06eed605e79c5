"""The best model back: a ``seed`` column in results.csv and ``status --json``, and the ``best`` command whose
hparams and seed re-train the best evaluation to its recorded value."""

from __future__ import annotations

import csv
import json
from types import SimpleNamespace

from tests.objectives.recorder import record
from tests.support import ROOT
from workflow.cli import main
from workflow.config import from_mapping
from workflow.driver import run_search
from workflow.store import RunStore


def _run(tmp_path):
    config = from_mapping({
        "name": "best", "seed": 11, "version": 2,
        "objective": {"kind": "python", "function": "tests.objectives.recorder:record", "path": str(ROOT),
                      "metric": "loss"},
        "space": {"opt": {"type": "categorical", "choices": ["adam", "sgd"]},
                  "momentum": {"type": "float", "low": 0.0, "high": 0.9, "when": {"opt": ["sgd"]}},
                  "units": {"type": "int", "low": 2, "high": 10, "step": 2}},
        "fixed": {"epochs": 3},
        "optimizer": {"name": "ga", "population_size": 4, "generations": 3}, "backend": {"name": "inline"}})
    run_dir = tmp_path / "run"
    RunStore.create(run_dir, config)
    run_search(config, run_dir)
    return run_dir


def test_best_gives_what_re_trains_the_best_evaluation_to_its_value(tmp_path, capsys):
    run_dir = _run(tmp_path)
    assert main(["best", str(run_dir), "--json"]) == 0
    best = json.loads(capsys.readouterr().out)
    state = RunStore.open(run_dir).replay()
    recorded = state.best()
    assert best["name"] == recorded.candidate.name and best["fitness"] == recorded.fitness
    assert best["seed"] == recorded.candidate.seed and best["metrics"] == {"loss": recorded.fitness}
    # What the objective was given, read back from its workdir (as a checkpoint would be).
    given = json.loads((run_dir / "evals" / best["name"] / "given.json").read_text())
    assert best["workdir"] == str(run_dir / "evals" / best["name"]) and best["workdir_exists"]
    assert given == {"hparams": best["hparams"], "seed": best["seed"]} and best["hparams"]["epochs"] == 3
    # Re-training from best's hparams and seed reproduces the recorded value.
    again = record(best["hparams"], SimpleNamespace(seed=best["seed"], workdir=str(tmp_path / "again")))
    assert again["loss"] == best["fitness"]
    assert main(["best", str(run_dir)]) == 0 and best["name"] in capsys.readouterr().out


def test_results_and_status_carry_each_evaluations_seed(tmp_path, capsys):
    run_dir = _run(tmp_path)
    state = RunStore.open(run_dir).replay()
    rows = list(csv.DictReader((run_dir / "results.csv").open()))
    assert rows and all(int(r["seed"]) == state.candidate(r["name"]).seed for r in rows)
    assert len({r["seed"] for r in rows}) == len(rows)
    assert main(["status", str(run_dir), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["best"]["seed"] == state.best().candidate.seed


def test_best_of_a_run_without_results_is_one_line(tmp_path, capsys):
    config = from_mapping({"name": "empty"})
    RunStore.create(tmp_path / "empty", config)
    assert main(["best", str(tmp_path / "empty")]) == 2
    assert capsys.readouterr().err.strip().endswith("no successful evaluation yet")
    assert main(["best", str(tmp_path / "nowhere")]) == 2
