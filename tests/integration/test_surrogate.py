"""A surrogate-assisted GA run killed with SIGKILL and resumed asks exactly what an uninterrupted run asks
(the model is refitted on replay from the journal, with the same draws)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support import ROOT, cli
from workflow.store import RunStore
from workflow.store.events import Asked


def _config_file(tmp_path: Path, mode: str) -> Path:
    config = {
        "name": "surrogate", "seed": 3,
        "objective": {"kind": "python", "function": "tests.objectives.landscape:seed_landscape", "path": str(ROOT)},
        "optimizer": {"name": "ga", "population_size": 5, "generations": 6, "mode": mode,
                      "ga": {"surrogate": "gp", "oversample": 4}},
        "backend": {"name": "inline"},
    }
    path = tmp_path / f"{mode}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _asked(run_dir: Path) -> list[dict]:
    return [c.to_dict() for e in RunStore(run_dir).events() if isinstance(e, Asked) for c in e.candidates]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["generational", "steady_state"])
def test_kill_9_then_resume_asks_what_an_uninterrupted_run_asks(tmp_path, mode):
    config_file = _config_file(tmp_path, mode)
    cli("run", config_file, "--run-dir", tmp_path / "whole", "--no-report")
    expected = _asked(tmp_path / "whole")
    assert len(expected) == 30
    for point in ("after-ask:3", "after-result:17"):
        run_dir = tmp_path / point.replace(":", "-")
        env = {**os.environ, "GASLURM_CRASH_AT": point}
        proc = subprocess.run([sys.executable, "-m", "workflow", "run", str(config_file), "--run-dir",
                               str(run_dir), "--no-report"], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
        assert len(_asked(run_dir)) < 30
        cli("resume", run_dir, "--no-report")
        assert _asked(run_dir) == expected, point
