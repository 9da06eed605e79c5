"""A driver told to stop by a signal stops, also when the handler's exception is swallowed where it landed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support import ROOT


def test_a_stop_signal_swallowed_in_a_finaliser_still_stops_the_driver(tmp_path):
    config = tmp_path / "search.yaml"
    config.write_text(json.dumps({
        "name": "stopping", "seed": 1,
        "objective": {"kind": "python", "function": "tests.objectives.landscape:signal_in_a_finaliser",
                      "path": str(ROOT)},
        "optimizer": {"name": "ga", "population_size": 4, "generations": 3},
        "backend": {"name": "inline"}, "tracking": {"mode": "disabled"},
    }))
    run_dir = tmp_path / "run"
    stopped = subprocess.run([sys.executable, "-m", "workflow", "run", str(config), "--run-dir", str(run_dir),
                              "--no-report"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                             env={**os.environ, "GASLURM_TEST_SIGNAL_IN_FINALISER": "1"})
    # The handler's DriverSignal was dropped inside __del__ (Python says so on stderr) ...
    assert "Exception ignored" in stopped.stderr and "DriverSignal" in stopped.stderr, stopped.stderr[-2000:]
    # ... and the driver stopped all the same, at its next safe point, with its run directory consistent.
    assert stopped.returncode == 3, stopped.stderr[-2000:]
    assert "driver stopped by SIGUSR1" in (run_dir / "driver.log").read_text()
    resumed = subprocess.run([sys.executable, "-m", "workflow", "resume", str(run_dir), "--no-report"], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    results = (run_dir / "results.csv").read_text().splitlines()
    assert len(results) == 1 + 12
