"""A command objective's program and script are checked on the driver before anything is created or submitted;
``{python}`` is the driver's interpreter."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import workflow.session
from tests.support import ROOT
from workflow.cli import main
from workflow.config import ObjectiveConfig, load_config
from workflow.errors import ConfigError
from workflow.objectives.command import evaluate
from workflow.preflight import check_objective
from workflow.records import Candidate

EXAMPLE = ROOT / "configs" / "examples" / "command_objective.yaml"


def _config(cwd: Path, argv: list[str]):
    return load_config(EXAMPLE, [f"objective.cwd={cwd}", f"objective.argv={json.dumps(argv)}"])


def _refusal(tmp_path: Path, argv: list[str], capsys, monkeypatch) -> str:
    # Should the check ever let it through, a one-generation inline run is all that starts, and the driver's
    # process-wide set-up (log handlers, signal handlers) is left out so that nothing outlives the test.
    for name in ("log_to_console", "log_to_file", "stop_on"):
        monkeypatch.setattr(workflow.session, name, lambda *args, **kwargs: None)
    run_dir = tmp_path / "run"
    status = main(["run", str(EXAMPLE), f"objective.cwd={tmp_path}", f"objective.argv={json.dumps(argv)}",
                   "backend.name=inline", "optimizer.generations=1", "--run-dir", str(run_dir), "--no-report"])
    err = capsys.readouterr().err.strip()
    assert status == 2, err
    assert not run_dir.exists()  # refused before anything was created
    assert len(err.splitlines()) == 1
    return err


def test_missing_program_is_refused_before_the_run_directory_exists(tmp_path, capsys, monkeypatch):
    err = _refusal(tmp_path, ["no-such-program-gaslurm", "train.py", "--lr", "{learning_rate}"], capsys, monkeypatch)
    assert err.startswith("error: config error: objective.argv=['no-such-program-gaslurm', 'train.py'")
    assert f"program 'no-such-program-gaslurm' not found: not on PATH (cwd {tmp_path})" in err


def test_missing_script_is_refused_naming_it_and_the_cwd(tmp_path, capsys, monkeypatch):
    err = _refusal(tmp_path, ["{python}", "trian.py", "--lr", "{learning_rate}"], capsys, monkeypatch)
    assert "objective.argv=" in err and f"script 'trian.py' not found in cwd {tmp_path}" in err


def test_program_given_as_a_path_must_be_an_executable_file_in_cwd(tmp_path):
    script = tmp_path / "bin" / "train"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n")
    with pytest.raises(ConfigError, match=f"program './bin/train' not found: not an executable file \\(cwd {tmp_path}"):
        check_objective(_config(tmp_path, ["./bin/train", "{learning_rate}"]))
    script.chmod(0o755)
    check_objective(_config(tmp_path, ["./bin/train", "{learning_rate}"]))
    with pytest.raises(ConfigError, match="the command's cwd .*missing is not a directory"):
        check_objective(_config(tmp_path / "missing", ["./bin/train", "{learning_rate}"]))


@pytest.mark.parametrize("argv", [
    ["{python}", "train.py", "--lr", "{learning_rate}", "--out", "results/out.py"],  # an output path after an option
    [sys.executable, "-m", "json.tool", "{learning_rate}"],  # a module, not a file
    ["{python}", "-u", "sub/train.py", "{learning_rate}"],  # options before the script
    ["{python}", "{learning_rate}.py"],  # a placeholder: only known per evaluation
    ["env", "LR={learning_rate}", "results/not-yet"],  # not a script: never refused
])
def test_legitimate_commands_pass(tmp_path, argv):
    (tmp_path / "train.py").write_text("")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "train.py").write_text("")
    check_objective(_config(tmp_path, argv))


def test_python_placeholder_is_the_drivers_interpreter(tmp_path):
    (tmp_path / "which.py").write_text(
        "import json, sys\nopen('seen.json', 'w').write(json.dumps(sys.argv[1:]))\nprint(json.dumps({'value': 1.0}))\n")
    objective = ObjectiveConfig(kind="command", argv=("{python}", "which.py", "{python}"), cwd=str(tmp_path),
                                metric="value")
    result = evaluate(Candidate("c1", {}, 1, 1, "ga", seed=0), objective, tmp_path / "w")
    assert result.ok, result
    assert json.loads((tmp_path / "seen.json").read_text()) == [sys.executable]
