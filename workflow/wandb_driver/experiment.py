"""W&B on the driver: after each batch, check its summaries and update the experiment-level run."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workflow.driver import Observer, SearchRun
from workflow.records import Candidate, Evaluated
from workflow.store.events import WandbChecked
from workflow.store.results import columns as results_columns
from workflow.store.results import results_row
from workflow.tracking.evaluation import init_run
from workflow.tracking.spec import EXPERIMENT, TrackingSpec, log, warn
from workflow.wandb_driver.check import compare
from workflow.wandb_driver.readback import collect

if TYPE_CHECKING:
    from workflow.config import Config
    from workflow.store import RunState


class ExperimentObserver(Observer):
    """After each generation is told: check its W&B summaries against the results, journal the check, and
    update the experiment-level run (about 20 times a run). Never raises: W&B trouble is logged."""

    def __init__(self, spec: TrackingSpec) -> None:
        self.spec = spec

    def generation(self, run: SearchRun, batch: int, told: Sequence[Evaluated]) -> None:
        candidates = [e.candidate for e in told]
        try:
            records = collect(self.spec, candidates)
            problems = compare(candidates, run.state.results, records)
            for problem in problems:
                log.warning("W&B disagrees with the result of %s: %s", problem["name"],
                            ", ".join(f"{k}={v}" for k, v in problem.items() if k != "name"))
            run.record(WandbChecked(generation=batch, runs=len(records), disagreements=tuple(problems)))
        except Exception as exc:  # noqa: BLE001 - tracking never stops the search
            warn(f"checking batch {batch}", exc)
        generations = run.config.optimizer.generations
        # The experiment run gets the whole table and the report: at most ~20 updates a run, and the last one,
        # so its cost stays flat per evaluation however long the run.
        if batch % max(1, generations // 20) and batch != generations:
            return
        try:
            update_experiment_run(self.spec, run.config, run.store.run_dir, run.state, batch, candidates)
        except Exception as exc:  # noqa: BLE001
            warn("updating the experiment run", exc)


def with_tracking(config: Config, run_dir: Path, observers: Sequence[Observer], island: int = 0) -> list[Observer]:
    """``observers``, plus the experiment run's observer when ``config.tracking`` is on."""
    spec = TrackingSpec.from_config(config, run_dir, island)
    return [*observers, ExperimentObserver(spec)] if spec is not None else list(observers)


def update_experiment_run(spec: TrackingSpec, config: Config, run_dir: Path, state: RunState, batch: int,
                          candidates: Sequence[Candidate] = ()) -> None:
    """Log the results table and the report figures to the experiment-level run (one step per batch)."""
    from workflow.report import write_report

    paths = write_report(run_dir)
    evaluated = state.evaluated()
    space = config.search_space()
    rows = [results_row(e.candidate, e.result, space) for e in evaluated]
    columns = results_columns(space, evaluated)
    run = init_run(spec, run_id=spec.experiment_id, name=f"{config.name}-{EXPERIMENT}", job_type=EXPERIMENT,
                    config=config.to_plain(), save_requirements=True)
    try:
        import wandb

        # Each update is a new session of the same run (its own offline folder): batches, not W&B steps,
        # on the x axis.
        run.define_metric("batch")
        run.define_metric("*", step_metric="batch")
        ok = [e for e in evaluated if e.result.ok]
        names = {c.name for c in candidates}
        batch_ok = [e.fitness for e in ok if e.candidate.name in names] or [math.inf]
        best = min(ok, key=lambda e: e.fitness, default=None)
        row: dict[str, Any] = {
            "batch": batch, "evaluations": len(evaluated), "failed": len(evaluated) - len(ok),
            "results": wandb.Table(columns=list[str | int](columns),
                                   data=[[_cell(r.get(c)) for c in columns] for r in rows]),
        }
        if math.isfinite(min(batch_ok)):
            row["batch_best_fitness"] = min(batch_ok)
        if best is not None:
            row["best_fitness"] = best.fitness
            run.summary.update({"best_name": best.candidate.name, "best_fitness": best.fitness,
                                **{f"best_{k}": v for k, v in space.cells(best.candidate.hparams).items()}})
        for path in paths:
            if path.suffix == ".png":
                row[path.stem] = wandb.Image(str(path))
        run.log(row)
    finally:
        run.finish()


def _cell(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return "" if value is None else value
