"""Search quality at the seed's budget: the GA (plain and surrogate-assisted) against BO, random search and
Optuna's TPESampler and GPSampler, all through one evaluation function, side by side in one script.

Each optimizer gets the same budget (100 evaluations; the GA and BO as population 5 x 20 generations), the same
seeds and the same evaluation function, one thread each:

- ``synthetic``: ``tests/objectives/landscape.py:seed_landscape`` on the seed's genes (free; default 30 seeds);
- ``sinewave``: the built-in MLP on ``configs/sinewave.yaml``'s task and training (about 1.3 s per evaluation on
  a 2-core CPU);
- ``fashion``: the built-in MLP on a Fashion-MNIST subset (20,000 training / 5,000 validation images, 1 epoch;
  needs the dataset, see ``make data``).

Printed per task and optimizer: median, min and max of the best value over the seeds, how many seeds beat
Optuna's GP sampler, and for our optimizers the driver's seconds per generation spent asking (the surrogate's fit
and choice; the plain GA's ask is ~1 ms): the mean, and the largest last ask (at 95 evaluated points).

Usage: ``python tests/bench/search_quality.py [--tasks synthetic,sinewave] [--seeds 5] [--first-seed 0]
[--optimizers ...] [--set optimizer.ga.elitism=2 ...]`` (``--set``: a lever, applied to our optimizers only).
Optuna is a dev extra (``pip install -e .[dev]``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.objectives.landscape import seed_landscape  # noqa: E402
from workflow.config import Config, load_config  # noqa: E402
from workflow.core import make_optimizer  # noqa: E402
from workflow.records import Candidate, Evaluated, Result  # noqa: E402
from workflow.space import SearchSpace  # noqa: E402

Evaluate = Callable[[dict[str, Any], int], float]
OPTIMIZERS = ("ga", "ga+gp", "ga+et", "bo", "random", "optuna-tpe", "optuna-gp")
SEED_BUDGET = {"population_size": 5, "generations": 20}


#: ``--set`` overrides (a lever such as ``optimizer.ga.elitism=2``) applied to our optimizers, not to Optuna's.
LEVERS: list[str] = []


def _config(task: str, optimizer: str, seed: int) -> Config:
    overrides = [*LEVERS, f"seed={seed}", "tracking.mode=disabled",
                 "optimizer.population_size=5", "optimizer.generations=20"]
    name, _, surrogate = optimizer.partition("+")
    overrides.append(f"optimizer.name={name}")
    if surrogate:
        overrides.append(f"optimizer.ga.surrogate={surrogate}")
    if task == "fashion":
        return load_config(ROOT / "configs" / "fashion_mnist.yaml",
                           [*overrides, "task.train_subset=20000", "task.val_subset=5000", "train.epochs=1"])
    return load_config(ROOT / "configs" / "sinewave.yaml", overrides)


def evaluation(task: str) -> Evaluate:
    """The one evaluation function of ``task``: hyperparameters and a training seed -> the value minimised."""
    if task == "synthetic":
        return lambda hparams, seed: float(seed_landscape(hparams, None))
    from workflow.trainer import evaluate

    config = _config(task, "ga", 0)

    def train(hparams: dict[str, Any], seed: int) -> float:
        candidate = Candidate("bench", hparams, 1, 1, "bench", 0, seed)
        return evaluate(candidate, config.task, config.train).fitness

    return train


def ours(task: str, optimizer: str, seed: int, value: Evaluate) -> tuple[float, float, float]:
    """Best value of our ``optimizer`` (ga, ga+gp, ga+et, bo, random), its mean seconds per ask, and the seconds
    of its last ask (the surrogate's dearest: fitted on 95 evaluated points)."""
    opt = make_optimizer(_config(task, optimizer, seed))
    asking = last = 0.0
    while not opt.finished:
        start = time.perf_counter()
        batch = opt.ask()
        last = time.perf_counter() - start
        asking += last
        opt.tell([Evaluated(c, Result(c.name, "ok", value(c.hparams, c.seed))) for c in batch])
    best = opt.best()
    assert best is not None
    return best.fitness, asking / max(1, opt.batches_asked), last


def optuna_best(space: SearchSpace, sampler_name: str, seed: int, value: Evaluate) -> float:
    """Best value of Optuna's TPE (multivariate, its default otherwise) or GP sampler over the same genes."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = (optuna.samplers.TPESampler(seed=seed, multivariate=True) if sampler_name == "optuna-tpe"
               else optuna.samplers.GPSampler(seed=seed))

    def objective(trial: Any) -> float:
        hparams: dict[str, Any] = {}
        for gene in space.genes:
            if gene.type == "int":
                hparams[gene.name] = trial.suggest_int(gene.name, gene.low, gene.high, log=gene.log)
            elif gene.type == "float":
                hparams[gene.name] = trial.suggest_float(gene.name, gene.low, gene.high, log=gene.log)
            elif gene.type == "categorical":
                hparams[gene.name] = trial.suggest_categorical(gene.name, list(gene.values))
            else:
                raise SystemExit(f"{gene.type} genes have no Optuna equivalent here")
        return value(hparams, trial.number)

    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=SEED_BUDGET["population_size"] * SEED_BUDGET["generations"])
    return float(study.best_value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="synthetic", help="comma-separated: synthetic, sinewave, fashion")
    parser.add_argument("--seeds", type=int, default=None, help="default: 30 for synthetic, 5 otherwise")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="start the seeds here: finish a benchmark that was cut short")
    parser.add_argument("--optimizers", default=",".join(OPTIMIZERS))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for our optimizers (a lever), e.g. optimizer.ga.elitism=2")
    args = parser.parse_args()
    LEVERS.extend(args.set)
    os.environ.setdefault("WANDB_MODE", "disabled")
    optimizers = args.optimizers.split(",")
    for task in args.tasks.split(","):
        count = args.seeds or (30 if task == "synthetic" else 5)
        seeds = range(args.first_seed, args.first_seed + count)
        value = evaluation(task)
        space = _config(task, "ga", 0).search_space()
        best: dict[str, list[float]] = {name: [] for name in optimizers}
        ask_s: dict[str, list[float]] = {name: [] for name in optimizers}
        last_ask_s: dict[str, list[float]] = {name: [] for name in optimizers}
        for seed in seeds:
            for name in optimizers:
                start = time.perf_counter()
                if name.startswith("optuna"):
                    best[name].append(optuna_best(space, name, seed, value))
                else:
                    found, per_ask, last_ask = ours(task, name, seed, value)
                    best[name].append(found)
                    ask_s[name].append(per_ask)
                    last_ask_s[name].append(last_ask)
                # One line per run as it ends: a long benchmark cut short still tells what it saw.
                print(json.dumps({"task": task, "optimizer": name, "levers": args.set, "seed": seed,
                                  "best": best[name][-1], "seconds": round(time.perf_counter() - start, 1)}),
                      flush=True)
        reference = best.get("optuna-gp")
        for name in optimizers:
            values = best[name]
            row: dict[str, Any] = {"task": task, "optimizer": name, "levers": args.set, "seeds": len(values),
                                   "median": f"{statistics.median(values):.4g}", "min": f"{min(values):.4g}",
                                   "max": f"{max(values):.4g}"}
            if reference and name != "optuna-gp":
                row["seeds_beating_optuna_gp"] = sum(v < r for v, r in zip(values, reference))
            if ask_s[name]:
                row["ask_s_per_generation"] = round(statistics.mean(ask_s[name]), 4)
                row["last_ask_s_max"] = round(max(last_ask_s[name]), 4)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
