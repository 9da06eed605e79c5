"""Per-generation driver overhead on the dev Slurm cluster: the workflow against bare submitit.

Both sides run the same tiny evaluations (the smoke task shrunk to a few samples, so a task is mostly Python
and torch start-up) as one job array, side by side, alternating, several repeats:

- bare: ``SlurmExecutor.map_array`` of the evaluation function, then ``job.result()`` for each (submitit
  polls every second);
- workflow: a fresh run directory and ``run_search`` for one generation (cluster checks, journal with fsync,
  the ``submitting`` intent, results.csv rewritten per result, polling every ``slurm.poll_s`` = 1 s).

Usage: ``python tests/bench/driver_overhead.py [--tasks 20] [--repeats 3]`` with the dev cluster up.
The last line is ``ratio=<workflow seconds / bare seconds>`` (medians); the target is at most 1.2.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import submitit

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from workflow.backends.slurm import executor_parameters  # noqa: E402
from workflow.config import load_config  # noqa: E402
from workflow.core import make_optimizer  # noqa: E402
from workflow.driver import run_search  # noqa: E402
from workflow.evaluate import EvaluationSpec, run_pack  # noqa: E402
from workflow.store import RunStore  # noqa: E402


def _config(tasks: int):
    return load_config(ROOT / "configs" / "smoke.yaml", [
        "backend.name=slurm", f"optimizer.population_size={tasks}", "optimizer.generations=1",
        "optimizer.ga.tournament_size=2", "task.n_samples=40", "train.epochs=1", "slurm.poll_s=1.0",
        "slurm.mem_gb=0.5", f"slurm.array_parallelism={tasks}",
    ])


def bare(tasks: int, folder: Path) -> float:
    config = _config(tasks)
    candidates = make_optimizer(config).ask()
    start = time.perf_counter()
    executor = submitit.SlurmExecutor(folder=folder / "%j", max_num_timeout=0)
    executor.update_parameters(**executor_parameters(config, "bench-bare"))
    spec = EvaluationSpec.from_config(config, folder)
    jobs = executor.map_array(run_pack, [[c] for c in candidates], [spec] * tasks,
                              [str(folder / "evals" / c.name) for c in candidates])
    results = [job.result()[0] for job in jobs]
    elapsed = time.perf_counter() - start
    assert all(r.ok for r in results), [r.reason for r in results if not r.ok]
    return elapsed


def workflow(tasks: int, folder: Path) -> float:
    config = _config(tasks)
    start = time.perf_counter()
    run_dir = folder / "run"
    RunStore.create(run_dir, config)
    summary = run_search(config, run_dir)
    elapsed = time.perf_counter() - start
    assert summary.evaluations == tasks and summary.failed == 0
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"bare": [], "workflow": []}
    with tempfile.TemporaryDirectory(prefix="bench-driver-") as tmp:
        for repeat in range(args.repeats):
            for name, fn in (("bare", bare), ("workflow", workflow)):
                seconds = fn(args.tasks, Path(tmp) / f"{name}-{repeat}")
                times[name].append(seconds)
                print(f"repeat {repeat + 1}: {name:8s} {seconds:6.2f} s for one generation of {args.tasks} tasks",
                      flush=True)
    bare_s, workflow_s = statistics.median(times["bare"]), statistics.median(times["workflow"])
    print(f"median bare submitit map_array: {bare_s:.2f} s; workflow generation: {workflow_s:.2f} s "
          f"(overhead {workflow_s - bare_s:+.2f} s)")
    print(f"ratio={workflow_s / bare_s:.3f}")


if __name__ == "__main__":
    main()
