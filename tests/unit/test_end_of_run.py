"""Honest ends: a search without a successful evaluation exits non-zero with one line saying why, one with some
failures exits 0 and says how many, and a failure's reason is the user's exception and the user's own frames,
never a fragment of ours."""

from __future__ import annotations

from pathlib import Path

import pytest

import workflow.session
from tests.support import ROOT, SMOKE
from workflow.cli import main
from workflow.evaluate import reason_from_trace
from workflow.session import NO_SUCCESS
from workflow.store import RunStore

# A user's objective whose exception is raised two calls deep in the user's own file.
BROKEN = '''def check(width):
    if width > 0:
        raise ValueError("this width is not supported by my model")


def evaluate(hparams, context):
    check(hparams["hidden_size"])
    return 1.0
'''


@pytest.fixture
def quiet_driver(monkeypatch):
    """The driver's process-wide set-up (log handlers, signal handlers) left out so nothing outlives the test."""
    for name in ("log_to_console", "log_to_file", "stop_on"):
        monkeypatch.setattr(workflow.session, name, lambda *args, **kwargs: None)


def _run(tmp_path: Path, objective: list[str], *extra: str) -> list[str]:
    return ["run", str(SMOKE), "backend.name=inline", "tracking.mode=disabled", *objective, *extra,
            "--run-dir", str(tmp_path / "run"), "--no-report"]


def test_a_search_without_a_successful_evaluation_exits_non_zero_with_one_line(tmp_path, quiet_driver, capsys):
    (tmp_path / "mine.py").write_text(BROKEN)
    objective = ["objective.kind=python", "objective.function=mine:evaluate", f"objective.path={tmp_path}"]
    # Steady state, one block: fail fast does not stop the block that ends the search, so the search finishes.
    assert main(_run(tmp_path, objective, "optimizer.mode=steady_state", "optimizer.generations=1")) == NO_SUCCESS
    out = capsys.readouterr()
    assert "finished:" not in out.out
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"error: finished without a successful evaluation (4 of 4 failed) in {tmp_path / 'run'}; most common reason "
        "(4 of 4): ValueError: this width is not supported by my model; fix the cause, then ")
    assert lines[0].endswith(f"`python -m workflow resume {tmp_path / 'run'} --retry-failed`")
    for result in RunStore.open(tmp_path / "run").replay().results.values():
        # The user's exception, then the user's own frames, innermost last; nothing of ours.
        assert result.reason == (
            'ValueError: this width is not supported by my model (at mine.py:7 in evaluate: check(hparams['
            '"hidden_size"]); mine.py:3 in check: raise ValueError("this width is not supported by my model"))')
        assert "workflow" not in result.reason and 'File "' not in result.reason


def test_a_search_with_some_failures_exits_0_and_says_how_many(tmp_path, quiet_driver, capsys, monkeypatch):
    monkeypatch.delenv("GASLURM_TEST_READY", raising=False)
    objective = ["objective.kind=python", "objective.function=tests.objectives.landscape:index_1_fails_unless_ready",
                 f"objective.path={ROOT}"]
    assert main(_run(tmp_path, objective)) == 0
    out = capsys.readouterr()
    assert out.out.strip().startswith(f"finished: 8 evaluations (2 failed) in {tmp_path / 'run'}; best fitness-")
    assert out.err.strip().splitlines() == [
        "warning: 2 of 8 evaluations failed; most common reason (1 of 2): RuntimeError: fitness-1-1: the node is not "
        f"ready; evaluate them again with `python -m workflow resume {tmp_path / 'run'} --retry-failed`"]
    reasons = [r.reason for r in RunStore.open(tmp_path / "run").replay().results.values() if not r.ok]
    assert reasons[0].endswith('(at landscape.py:57 in index_1_fails_unless_ready: raise RuntimeError('
                               'f"{context.name}: the node is not ready"))')
    # ... and that command does: every name once, both attempts in the journal, nothing failed any more.
    monkeypatch.setenv("GASLURM_TEST_READY", "1")
    assert main(["resume", str(tmp_path / "run"), "--retry-failed", "--no-report"]) == 0
    assert "finished: 8 evaluations (0 failed)" in capsys.readouterr().out


def test_a_traceback_from_elsewhere_keeps_the_exception_and_the_users_frames_only(tmp_path):
    ours = "/home/someone/gaslurm/workflow/backends/slurm_task.py"  # our checkout on the machine the task ran on
    text = (
        "Job (task=0) failed during processing with trace:\n----------------------\n"
        "Traceback (most recent call last):\n"
        '  File "/usr/lib/python3/dist-packages/submitit/core/submission.py", line 55, in process_job\n'
        "    result = delayed.result()\n"
        f'  File "{ours}", line 30, in __call__\n'
        "    results = run_pack(self.candidates)\n"
        f'  File "{tmp_path}/train.py", line 12, in evaluate\n'
        "    loss = model(batch)\n"
        "RuntimeError: CUDA out of memory\n----------------------\n"
        "You can check full logs with 'job.stderr(0)' and 'job.stdout(0)'or at paths:\n  - /x/17_0_log.err\n")
    assert reason_from_trace(text) == ("RuntimeError: CUDA out of memory (at train.py:12 in evaluate: "
                                       "loss = model(batch))")
    assert reason_from_trace("no traceback here\nlast words\n") == "last words"
