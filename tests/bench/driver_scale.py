"""Driver cost per evaluation at scale: an instant Python objective through the inline backend.

Every evaluation is free (``tests/objectives/landscape.py:seed_landscape``, no training), so what is measured is
the driver alone: asking, the journal (fsync'ed), the results file, progress, telling. For each case, side by
side in one process:

- ``ms/eval``: driver wall time per evaluation over the whole run;
- ``last/first``: ms per evaluation in the last fifth of the evaluations over the first fifth (1.0 is flat; a
  cost that grows with the run shows here);
- ``status``: seconds of ``python -m workflow status RUN --json`` on the finished run (a fresh process);
- ``reopen``: seconds of ``python -m workflow resume RUN`` on the finished run (replays the journal, nothing to do).

Cases: GA population 100 x 100 generations, generational and steady-state (10,000 evaluations each), and
population 1,000 x 10 generational. BO's own cost per ask (scikit-optimize's GP fit and acquisition) is not
the driver's: it is measured on its own at 100 and 1,000 told points (``--bo``).

Usage: ``python tests/bench/driver_scale.py [--scale 1.0] [--bo]``; ``--scale 0.1`` runs a tenth of every
budget (a quick check). Targets (issue 14): <= 1 ms/eval, last/first <= 1.5, status <= 1 s, reopen <= 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from workflow.config import from_mapping  # noqa: E402
from workflow.driver import Observer, run_search  # noqa: E402
from workflow.store import RunStore  # noqa: E402


class _Clock(Observer):
    """The wall time at each result, to compare the first and the last fifth of a run."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def result(self, run: Any, result: Any) -> None:
        self.times.append(time.perf_counter())


def _config(population: int, generations: int, mode: str, name: str = "ga", **optimizer: Any) -> Any:
    return from_mapping({
        "name": "scale", "seed": 0,
        "objective": {"kind": "python", "function": "tests.objectives.landscape:seed_landscape",
                      "path": str(ROOT)},
        "optimizer": {"name": name, "population_size": population, "generations": generations, "mode": mode,
                      **optimizer},
        "backend": {"name": "inline"},
    })


def _seconds(*args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "workflow", *args], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def case(population: int, generations: int, mode: str, folder: Path) -> dict[str, float]:
    config = _config(population, generations, mode)
    run_dir = folder / f"{mode}-{population}x{generations}"
    RunStore.create(run_dir, config)
    clock = _Clock()
    start = time.perf_counter()
    summary = run_search(config, run_dir, observers=[clock])
    elapsed = time.perf_counter() - start
    n = summary.evaluations
    assert n == population * generations and summary.failed == 0, summary
    fifth = n // 5
    stamps = [start, *clock.times]
    first = (stamps[fifth] - stamps[0]) / fifth
    last = (stamps[-1] - stamps[-1 - fifth]) / fifth
    status = _seconds("status", str(run_dir), "--json")
    reopen = _seconds("resume", str(run_dir), "--no-report")
    return {"evaluations": n, "ms_per_eval": 1e3 * elapsed / n, "last_over_first": last / first,
            "status_s": status, "reopen_s": reopen}


def bo_ask_cost(points: int) -> dict[str, float]:
    """Seconds of one BO ask (GP fit + acquisition) after ``points`` told evaluations, and of telling them."""
    from tests.objectives.landscape import seed_landscape
    from workflow.core import make_optimizer
    from workflow.records import Evaluated, Result

    # The told points are BO's random initial points: set-up asks that each fit a GP would cost far more than
    # the one ask measured.
    config = _config(points, 2, "steady_state", name="bo", bo={"initial_points": points})
    optimizer = make_optimizer(config)
    candidates = optimizer.ask(points)
    start = time.perf_counter()
    optimizer.tell([Evaluated(c, Result(c.name, "ok", seed_landscape(c.hparams, None))) for c in candidates])
    tell = time.perf_counter() - start
    start = time.perf_counter()
    optimizer.ask(1)
    return {"points": points, "tell_s": tell, "ask_s": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of every budget (generations)")
    parser.add_argument("--bo", action="store_true", help="also time BO asks (at --bo-points told points)")
    parser.add_argument("--bo-points", default="100,1000", help="comma-separated told points for --bo")
    args = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "disabled")
    cases = [(100, 100, "generational"), (100, 100, "steady_state"), (1000, 10, "generational")]
    rows = {}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        for population, generations, mode in cases:
            generations = max(2, round(generations * args.scale))
            label = f"{mode} {population}x{generations}"
            rows[label] = case(population, generations, mode, Path(tmp))
            print(label, json.dumps({k: round(v, 3) for k, v in rows[label].items()}), flush=True)
    if args.bo:
        for points in (int(p) for p in args.bo_points.split(",")):
            print("bo", json.dumps({k: round(v, 3) for k, v in bo_ask_cost(points).items()}), flush=True)
    worst = max(r["ms_per_eval"] for r in rows.values())
    growth = max(r["last_over_first"] for r in rows.values())
    print(f"worst_ms_per_eval={worst:.3f} worst_last_over_first={growth:.2f}")


if __name__ == "__main__":
    main()
