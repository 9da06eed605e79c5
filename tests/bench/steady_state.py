"""Generational against steady state at equal budget, when evaluations take different times.

The objective (``tests/objectives/landscape.py:sleepy``) sleeps for a log-normal time (median 1 s, sigma 0.8,
seeded by the candidate, so both modes see the same kind of spread) and then returns the seed's stub
landscape: it needs no cores, so 8 workers run side by side on a small machine. For each of 5 seeds, side by
side in one script, the same search runs generational and steady-state (GA, population 8, 200 evaluations,
8 local workers):

- ``wall``: seconds of the search; ``speed-up``: generational wall over steady-state wall (median over seeds);
- ``utilisation``: the evaluations' own seconds (their sleeps) over ``wall x workers``;
- ``best``: the best fitness found (median over seeds): steady state must not be worse.

``--backend slurm`` runs the same on the dev cluster (smaller: population 4, 40 evaluations, 4 tasks at once,
median 3 s so that a task's start-up is not all there is). Targets (issue 14): speed-up >= 1.4, best not worse.

Usage: ``python tests/bench/steady_state.py [--seeds 5] [--median 1.0] [--backend local|slurm]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.objectives.landscape import SLEEPY_MEDIAN_ENV, sleepy_duration  # noqa: E402
from workflow.config import from_mapping  # noqa: E402
from workflow.driver import run_search  # noqa: E402
from workflow.store import RunStore  # noqa: E402


def _config(seed: int, mode: str, backend: str, population: int, evaluations: int) -> Any:
    settings: dict[str, Any] = {
        "name": f"steady-bench-{mode}", "seed": seed,
        "objective": {"kind": "python", "function": "tests.objectives.landscape:sleepy", "path": str(ROOT)},
        "optimizer": {"name": "ga", "population_size": population, "generations": evaluations // population,
                      "mode": mode, "ga": {"tournament_size": 2}},
        "backend": {"name": backend, "workers": population, "timeout_s": 600},
    }
    if backend == "slurm":
        settings["slurm"] = {"partition": "gpu", "cpus_per_task": 1, "mem_gb": 1, "time_min": 10, "poll_s": 0.5,
                             "array_parallelism": population}
    return from_mapping(settings)


def search(seed: int, mode: str, args: argparse.Namespace, folder: Path) -> dict[str, float]:
    config = _config(seed, mode, args.backend, args.population, args.evaluations)
    run_dir = folder / f"{mode}-{seed}"
    RunStore.create(run_dir, config)
    start = time.perf_counter()
    summary = run_search(config, run_dir)
    wall = time.perf_counter() - start
    evaluated = RunStore.open(run_dir).replay().evaluated()
    busy = sum(sleepy_duration(e.candidate.seed, args.median) for e in evaluated)
    assert summary.evaluations == args.evaluations and summary.best is not None
    return {"wall": wall, "utilisation": busy / (wall * args.population), "best": summary.best.fitness}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--median", type=float, default=None, help="median seconds of an evaluation")
    parser.add_argument("--backend", choices=["local", "slurm"], default="local")
    args = parser.parse_args()
    slurm = args.backend == "slurm"
    args.population, args.evaluations = (4, 40) if slurm else (8, 200)
    args.median = args.median or (3.0 if slurm else 1.0)
    os.environ[SLEEPY_MEDIAN_ENV] = str(args.median)  # the workers and Slurm tasks inherit it
    os.environ.setdefault("WANDB_MODE", "disabled")
    rows: dict[str, list[dict[str, float]]] = {"generational": [], "steady_state": []}
    with tempfile.TemporaryDirectory(prefix="bench-steady-") as tmp:
        for seed in range(args.seeds):
            for mode in rows:  # side by side, alternating
                rows[mode].append(search(seed, mode, args, Path(tmp)))
                print(seed, mode, json.dumps({k: round(v, 4) for k, v in rows[mode][-1].items()}), flush=True)
    median = {mode: {key: statistics.median(r[key] for r in runs) for key in runs[0]} for mode, runs in rows.items()}
    speedups = [g["wall"] / s["wall"] for g, s in zip(rows["generational"], rows["steady_state"])]
    print(json.dumps({"backend": args.backend, "median": median}, indent=1))
    print(f"speedup={statistics.median(speedups):.2f} best_generational={median['generational']['best']:.4g} "
          f"best_steady={median['steady_state']['best']:.4g}")


if __name__ == "__main__":
    main()
