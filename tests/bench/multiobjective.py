"""Multi-objective search quality: our NSGA-II against Optuna's NSGAIISampler on ZDT1 and ZDT2.

Both optimisers see the same problem (10 float variables in [0, 1], two objectives minimised,
``tests/objectives/zdt.py``), the same budget (population 100, 3,000 evaluations by default) and the same seeds.
Ours runs through the tool itself: the Python objective on the inline backend, journal and all. Optuna's runs in
memory with its defaults apart from the population size. For each run the hypervolume of every evaluation's
non-dominated set is taken at the reference point (1.1, 1.1) and divided by the true front's (closed form).

Printed per problem: each optimiser's median (min-max) hypervolume ratio to the true front over the seeds, and
the ratio ours / Optuna's (median over seeds of the per-seed ratio). Target (issue 15): >= 1.0.

Usage: ``python tests/bench/multiobjective.py [--seeds 5] [--evaluations 3000]`` (Optuna is a dev extra).
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

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.objectives.zdt import true_front_hypervolume, zdt1_values, zdt2_values  # noqa: E402
from workflow.config import from_mapping  # noqa: E402
from workflow.core.pareto import hypervolume  # noqa: E402
from workflow.driver import run_search  # noqa: E402
from workflow.store import RunStore  # noqa: E402

REFERENCE = np.array([1.1, 1.1])
N_VARIABLES = 10
POPULATION = 100
PROBLEMS = {"zdt1": zdt1_values, "zdt2": zdt2_values}


def ours(problem: str, seed: int, evaluations: int, folder: Path) -> np.ndarray:
    """The objective values of every evaluation of our GA (NSGA-II survival) on ``problem``."""
    config = from_mapping({
        "name": f"{problem}-{seed}", "seed": seed,
        "objective": {"kind": "python", "function": f"tests.objectives.zdt:{problem}", "path": str(ROOT)},
        "space": {f"x{i}": {"type": "float", "low": 0.0, "high": 1.0} for i in range(N_VARIABLES)},
        "optimizer": {"name": "ga", "population_size": POPULATION, "generations": evaluations // POPULATION,
                      "objectives": [{"metric": "f1"}, {"metric": "f2"}], "reference_point": REFERENCE.tolist(),
                      "ga": {"tournament_size": 2, "mutation_prob": 0.1}},
        "backend": {"name": "inline"},
    })
    run_dir = folder / f"{problem}-{seed}"
    RunStore.create(run_dir, config)
    run_search(config, run_dir)
    evaluated = RunStore.open(run_dir).replay().evaluated()
    return np.array([[e.result.metrics["f1"], e.result.metrics["f2"]] for e in evaluated if e.result.ok])


def optuna_nsga2(problem: str, seed: int, evaluations: int) -> np.ndarray:
    """The objective values of every trial of Optuna's NSGAIISampler on ``problem`` (its defaults otherwise)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    values = PROBLEMS[problem]

    def objective(trial: Any) -> tuple[float, float]:
        return values([trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(N_VARIABLES)])

    sampler = optuna.samplers.NSGAIISampler(population_size=POPULATION, seed=seed)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    study.optimize(objective, n_trials=evaluations)
    return np.array([t.values for t in study.trials if t.values is not None])


def _ratio(points: np.ndarray, problem: str) -> float:
    return hypervolume(points, REFERENCE) / true_front_hypervolume(problem, REFERENCE)


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.4f} ({min(values):.4f} - {max(values):.4f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--evaluations", type=int, default=3000)
    args = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "disabled")
    with tempfile.TemporaryDirectory(prefix="bench-mo-") as tmp:
        for problem in PROBLEMS:
            mine, theirs, seconds = [], [], {"ours": 0.0, "optuna": 0.0}
            for seed in range(args.seeds):
                start = time.perf_counter()
                mine.append(_ratio(ours(problem, seed, args.evaluations, Path(tmp)), problem))
                seconds["ours"] += time.perf_counter() - start
                start = time.perf_counter()
                theirs.append(_ratio(optuna_nsga2(problem, seed, args.evaluations), problem))
                seconds["optuna"] += time.perf_counter() - start
            per_seed = [m / t if t > 0 else float("inf") for m, t in zip(mine, theirs, strict=True)]
            print(json.dumps({
                "problem": problem, "evaluations": args.evaluations, "seeds": args.seeds,
                "ours_hv_over_true": _spread(mine), "optuna_hv_over_true": _spread(theirs),
                "ours_over_optuna_median": round(statistics.median(per_seed), 4),
                "seconds_per_run": {k: round(v / args.seeds, 1) for k, v in seconds.items()},
            }), flush=True)


if __name__ == "__main__":
    main()
