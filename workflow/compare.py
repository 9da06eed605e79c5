"""GA versus BO versus random search: the same budget and the same seeds, one table, one plot, one top ten.

``run_comparison`` runs every optimizer with every seed, each in its own run directory
``OUT/<optimizer>-seed<k>/`` (an ordinary run: ``status``, ``report`` and ``resume`` work on it), through the
same driver loop and backend as ``run``. Only ``optimizer.name``, ``seed`` and ``name`` differ between them, so
every run gets ``population_size * generations`` evaluations. Running the comparison again continues
unfinished runs and skips finished ones. Then ``OUT/compare/`` gets:

- ``summary.md`` / ``summary.csv``: best fitness per optimizer (median, min, max over seeds), per-run details;
- ``best_so_far.png``: best fitness so far against the evaluation number (median line, min-max band);
- ``top10.md``: the ten best evaluations of all runs together (the seed's Figure 3, GA and BO rows mixed).
"""

from __future__ import annotations

import logging
import math
import statistics
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workflow.backends import Backend, make_backend
from workflow.config import Config, OptimizerConfig, from_mapping
from workflow.driver import run_search
from workflow.errors import ConfigError
from workflow.front import front_hypervolume, hypervolume_curve, reference_point
from workflow.progress import LogProgress
from workflow.records import Evaluated
from workflow.space import SearchSpace
from workflow.store.atomic import atomic_write_text
from workflow.store.rundir import prepare_run_dir
from workflow.tables import csv_text, ranked, running_best, top_table
from workflow.wandb_driver.experiment import with_tracking

log = logging.getLogger(__name__)

COMPARE_DIR = "compare"
SUMMARY_COLUMNS = ("optimizer", "runs", "seeds", "evaluations_per_run", "best_median", "best_min", "best_max",
                   "failed")


def known_optimizers() -> tuple[str, ...]:
    return tuple(typing.get_args(OptimizerConfig.model_fields["name"].annotation))


@dataclass
class RunOutcome:
    optimizer: str
    seed: int
    run_dir: Path
    evaluated: list[Evaluated]

    @property
    def ok(self) -> list[Evaluated]:
        """The successful evaluations, best first."""
        return ranked(self.evaluated)

    @property
    def best(self) -> Evaluated | None:
        return self.ok[0] if self.ok else None

    def best_so_far(self) -> list[float]:
        """Best finite fitness after each evaluation, in the order they were asked (inf before the first)."""
        return running_best(e.fitness if e.result.ok else math.inf for e in self.evaluated)


def check_optimizers(optimizers: Sequence[str]) -> list[str]:
    """Validate the ``--optimizers`` list: known names, at least one, no repeats."""
    names = [name.strip() for name in optimizers]
    allowed = known_optimizers()
    shown = ",".join(optimizers)
    if not names or any(not n for n in names):
        raise ConfigError("--optimizers", shown, f"a comma-separated list of {', '.join(allowed)}")
    for name in names:
        if name not in allowed:
            raise ConfigError("--optimizers", name, f"unknown optimizer; allowed: {', '.join(allowed)}")
    if len(set(names)) != len(names):
        raise ConfigError("--optimizers", shown, "each optimizer at most once")
    return names


def seed_list(config: Config, seeds: Sequence[int] | int) -> list[int]:
    """``N`` means the N seeds ``config.seed, config.seed + 1, ...``; a list is taken as it is."""
    if isinstance(seeds, int):
        if seeds < 1:
            raise ConfigError("--seeds", seeds, "must be >= 1")
        return [config.seed + k for k in range(seeds)]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError("--seeds", list(seeds), "at least one seed, each at most once")
    return [int(s) for s in seeds]


def run_config(config: Config, optimizer: str, seed: int) -> Config:
    """``config`` with only the optimizer, the seed and the name changed."""
    if config.islands.count > 1:
        raise ConfigError("islands.count", config.islands.count, "compare runs single populations; use 1")
    data = config.to_plain()
    data["optimizer"]["name"] = optimizer
    data["seed"] = seed
    suffix = f"-{optimizer}-seed{seed}"
    data["name"] = config.name[: 64 - len(suffix)] + suffix
    return from_mapping(data)


def run_comparison(config: Config, optimizers: list[str], seeds: list[int] | int, out_dir: Path) -> dict[str, Any]:
    """Run (or continue) every optimizer with every seed in ``out_dir``; write ``out_dir/compare/``.

    Returns ``{"runs": [...], "summary": [...], "files": {...}}``: one dict per run (optimizer, seed, run_dir,
    best, best_name, evaluations, failed), one summary row per optimizer (the CSV's columns), the written paths.
    The runs share one backend: the runs differ only in optimizer and seed, which evaluations never see, and a
    local worker pool costs seconds to start (every worker imports torch).
    """
    names = check_optimizers(optimizers)
    seeds = seed_list(config, seeds)
    out_dir = Path(out_dir)
    plan = [(name, seed, run_config(config, name, seed)) for seed in seeds for name in names]
    backend: Backend | None = None
    outcomes: list[RunOutcome] = []
    try:
        for number, (name, seed, cfg) in enumerate(plan, start=1):
            run_dir = out_dir / f"{name}-seed{seed}"
            store = prepare_run_dir(cfg, run_dir, hint="use another --run-dir for a different comparison")
            if store.replay().finished:
                log.info("compare %d/%d: %s seed %d already finished in %s", number, len(plan), name, seed,
                         run_dir)
            else:
                log.info("compare %d/%d: %s seed %d in %s", number, len(plan), name, seed, run_dir)
                if backend is None:
                    backend = make_backend(cfg, run_dir)
                else:
                    backend.bind(cfg, run_dir)
                run_search(cfg, run_dir, backend=backend, observers=with_tracking(cfg, run_dir, [LogProgress()]))
            outcomes.append(RunOutcome(name, seed, run_dir, store.replay().evaluated()))
    finally:
        if backend is not None:
            backend.close()
    return write_comparison(config, names, outcomes, out_dir / COMPARE_DIR)


# --------------------------------------------------------------------------------------------- outputs


def write_comparison(config: Config, optimizers: Sequence[str], outcomes: Sequence[RunOutcome],
                     out: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    runs = [_run_row(o) for o in outcomes]
    summary = [_summary_row(name, [o for o in outcomes if o.optimizer == name]) for name in optimizers]
    files = {"summary_md": out / "summary.md", "summary_csv": out / "summary.csv",
             "best_so_far": out / "best_so_far.png", "top10": out / "top10.md"}
    columns: tuple[str, ...] = SUMMARY_COLUMNS
    if config.multi_objective:  # first: it adds each run's and each optimizer's hypervolume to the tables
        files.update(write_hypervolumes(config, optimizers, outcomes, runs, summary, out))
        columns = (*SUMMARY_COLUMNS, "hypervolume_median")
    atomic_write_text(files["summary_md"], summary_markdown(config, summary, runs), mode=0o644)
    atomic_write_text(files["summary_csv"], csv_text(columns, summary), mode=0o644)
    plot_best_so_far(config, optimizers, outcomes, files["best_so_far"])
    atomic_write_text(files["top10"], merged_top_table(outcomes, config.search_space()), mode=0o644)
    return {"runs": runs, "summary": summary, "files": {k: str(v) for k, v in files.items()}}


def write_hypervolumes(config: Config, optimizers: Sequence[str], outcomes: Sequence[RunOutcome],
                       runs: list[dict[str, Any]], summary: list[dict[str, Any]], out: Path) -> dict[str, Path]:
    """Multi-objective: each run's hypervolume (one reference point for all runs: the configured one, else the
    worst value seen in any run plus 10%), the median per optimizer, and hypervolume against evaluations."""
    import matplotlib

    matplotlib.use("Agg")  # headless
    import matplotlib.pyplot as plt
    import numpy as np

    objectives = config.optimizer.objectives
    reference = reference_point([e for o in outcomes for e in o.evaluated], objectives,
                                config.optimizer.reference_point)
    for row, outcome in zip(runs, outcomes):
        row["hypervolume"] = front_hypervolume(outcome.evaluated, objectives, reference)
    lines = [f"# Hypervolume: {config.name}", "",
             "Objectives: " + ", ".join(f"{o.metric} ({o.direction})" for o in objectives)
             + f"; reference point (minimised space): {[round(float(v), 6) for v in reference]}", "",
             "| optimizer | runs | hypervolume (median) | min | max |", "|---|---|---|---|---|"]
    fig, ax = plt.subplots(figsize=(8, 5))
    for row in summary:
        volumes = [r["hypervolume"] for r in runs if r["optimizer"] == row["optimizer"]]
        row["hypervolume_median"] = statistics.median(volumes) if volumes else 0.0
        lines.append(f"| {row['optimizer']} | {len(volumes)} | {_g(row['hypervolume_median'])} | "
                     f"{_g(min(volumes, default=0.0))} | {_g(max(volumes, default=0.0))} |")
    for name in optimizers:
        curves = [hypervolume_curve(o.evaluated, objectives, reference) for o in outcomes
                  if o.optimizer == name and o.evaluated]
        if not curves:
            continue
        length = min(len(c) for c in curves)
        xs = [n for n, _ in curves[0][:length]]
        values = np.array([[v for _, v in c[:length]] for c in curves])
        ax.plot(xs, np.median(values, axis=0), label=f"{name} (median of {len(curves)})")
        ax.fill_between(xs, values.min(axis=0), values.max(axis=0), alpha=0.2, linewidth=0)
    ax.set_xlabel("evaluation")
    ax.set_ylabel("hypervolume (higher is better)")
    ax.set_title(f"{config.name}: hypervolume of the evaluations so far, median and min-max over seeds")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend()
    fig.tight_layout()
    files = {"hypervolume_md": out / "hypervolume.md", "hypervolume_png": out / "hypervolume.png"}
    fig.savefig(files["hypervolume_png"], dpi=100)
    plt.close(fig)
    atomic_write_text(files["hypervolume_md"], "\n".join(lines) + "\n", mode=0o644)
    return files


def _run_row(outcome: RunOutcome) -> dict[str, Any]:
    best = outcome.best
    return {"optimizer": outcome.optimizer, "seed": outcome.seed, "run_dir": str(outcome.run_dir),
            "best": best.fitness if best else math.inf, "best_name": best.candidate.name if best else "",
            "evaluations": len(outcome.evaluated), "failed": len(outcome.evaluated) - len(outcome.ok)}


def _summary_row(name: str, outcomes: Sequence[RunOutcome]) -> dict[str, Any]:
    bests = [o.best.fitness for o in outcomes if o.best is not None]
    counts = sorted({len(o.evaluated) for o in outcomes})
    return {
        "optimizer": name, "runs": len(outcomes), "seeds": " ".join(str(o.seed) for o in outcomes),
        "evaluations_per_run": f"{counts[0]}-{counts[-1]}" if len(counts) > 1 else (counts[0] if counts else 0),
        "best_median": statistics.median(bests) if bests else math.inf,
        "best_min": min(bests, default=math.inf), "best_max": max(bests, default=math.inf),
        "failed": sum(len(o.evaluated) - len(o.ok) for o in outcomes),
    }


def _g(value: float) -> str:
    return f"{value:.4g}" if math.isfinite(value) else "-"


def summary_markdown(config: Config, summary: Sequence[dict[str, Any]], runs: Sequence[dict[str, Any]]) -> str:
    opt = config.optimizer
    lines = [
        f"# Comparison: {config.name}",
        "",
        f"Task `{config.task.name}`; every run: {opt.population_size} x {opt.generations} = "
        f"{config.evaluations_planned} evaluations (batches of {opt.population_size}); "
        "fitness = validation loss (lower is better).",
        "",
        "| optimizer | runs | seeds | evaluations per run | best (median) | best (min) | best (max) | failed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in summary:
        lines.append(f"| {row['optimizer']} | {row['runs']} | {row['seeds']} | {row['evaluations_per_run']} | "
                     f"{_g(row['best_median'])} | {_g(row['best_min'])} | {_g(row['best_max'])} | "
                     f"{row['failed']} |")
    lines += ["", "## Runs", "", "| optimizer | seed | best | best evaluation | evaluations | failed | run directory |",
              "|---|---|---|---|---|---|---|"]
    for row in runs:
        lines.append(f"| {row['optimizer']} | {row['seed']} | {_g(row['best'])} | {row['best_name'] or '-'} | "
                     f"{row['evaluations']} | {row['failed']} | {row['run_dir']} |")
    return "\n".join(lines) + "\n"


def merged_top_table(outcomes: Sequence[RunOutcome], space: SearchSpace, n: int = 10) -> str:
    """The ten best evaluations of all runs (name, optimizer, seed, the hyperparameters, fitness), best first."""
    seed_of = {id(e): o.seed for o in outcomes for e in o.evaluated}
    return top_table([e for o in outcomes for e in o.evaluated], space, n,
                     "Top ten best models (all optimizers and seeds)",
                     extra={"search": lambda e: e.candidate.optimizer, "seed": lambda e: seed_of[id(e)]})


def plot_best_so_far(config: Config, optimizers: Sequence[str], outcomes: Sequence[RunOutcome],
                     path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # headless
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(8, 5))
    positive = True
    for color, name in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"] * 4, optimizers):
        curves = [o.best_so_far() for o in outcomes if o.optimizer == name and o.evaluated]
        if not curves:
            continue
        length = min(len(c) for c in curves)
        values = np.array([c[:length] for c in curves], dtype=float)
        values[~np.isfinite(values)] = np.nan  # no successful evaluation yet
        xs = np.arange(1, length + 1)
        started = ~np.all(np.isnan(values), axis=0)
        if not started.any():
            continue
        xs, values = xs[started], values[:, started]
        median = np.nanmedian(values, axis=0)
        low, high = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
        positive = positive and bool(np.all(low > 0))
        ax.plot(xs, median, color=color, label=f"{name} (median of {len(curves)})")
        ax.fill_between(xs, low, high, color=color, alpha=0.2, linewidth=0)
    if positive and ax.lines:
        ax.set_yscale("log")
    ax.set_xlabel("evaluation")
    ax.set_ylabel("best fitness so far (val loss)")
    ax.set_title(f"{config.name}: best so far, median and min-max over seeds")
    ax.grid(alpha=0.3, which="both")
    if ax.lines:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
