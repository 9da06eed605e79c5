"""What the CLI says when it stops: Ctrl-C names the exact command that continues the run."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

import workflow.session
from tests.support import SMOKE
from workflow.cli import main

# A user's objective that is interrupted (Ctrl-C reaches the driver while it evaluates on its own thread).
INTERRUPTED = "def evaluate(hparams, context):\n    raise KeyboardInterrupt\n"


@pytest.fixture
def quiet_driver(monkeypatch):
    """The driver's process-wide set-up (log handlers, signal handlers) left out so nothing outlives the test."""
    for name in ("log_to_console", "log_to_file", "stop_on"):
        monkeypatch.setattr(workflow.session, name, lambda *args, **kwargs: None)


def _interrupting_run(tmp_path: Path, run_dir: Path) -> list[str]:
    (tmp_path / "interrupting.py").write_text(INTERRUPTED)
    return ["run", str(SMOKE), "objective.kind=python", "objective.function=interrupting:evaluate",
            "objective.metric=value", f"objective.path={tmp_path}", "backend.name=inline",
            "optimizer.generations=1", "--run-dir", str(run_dir), "--no-report"]


def test_ctrl_c_names_the_exact_resume_command(tmp_path, quiet_driver, capsys):
    run_dir = tmp_path / "a run dir"  # a space: the command must still be one that can be pasted
    assert main(_interrupting_run(tmp_path, run_dir)) == 130
    err = capsys.readouterr().err.strip().splitlines()
    expected = f"continue with `python -m workflow resume {shlex.quote(str(run_dir))}`"
    assert err[-1] == f"interrupted: the run directory is consistent; {expected}"
    # ... and that command continues it (interrupted again by the same objective, naming the same directory).
    assert main(["resume", str(run_dir), "--no-report"]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(expected)


def test_ctrl_c_before_a_run_directory_exists_offers_no_resume(tmp_path, capsys):
    from workflow.cli import interrupted_message

    assert interrupted_message(None) == "interrupted"
    missing = tmp_path / "never-made"
    assert interrupted_message(missing) == f"interrupted before the run directory {missing} was created; " \
                                           "nothing to resume"
