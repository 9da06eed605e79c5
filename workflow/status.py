"""What a run directory says about its search, at any moment (driver up or down): pure reading."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from workflow.errors import ClusterError, RunDirError
from workflow.front import objective_values, pareto_front
from workflow.store import RunState, RunStore
from workflow.store.layout import EVALS, JOURNAL, island_dir, resume_command
from workflow.store.lock import lease_holder


def run_status(run_dir: Path) -> dict[str, Any]:
    """The status object printed by ``status --json`` (for an island run: every island and the global best)."""
    store = RunStore.open(run_dir)
    if islands := store.island_count():
        return islands_status(run_dir, islands)
    return _status(store, store.replay())


def _status(store: RunStore, state: RunState) -> dict[str, Any]:
    """The status of one run from its journal, read once."""
    config = store.config()
    evaluated = state.evaluated()
    failed = sum(not e.result.ok for e in evaluated)
    best = state.best()
    pending = state.pending()
    unfinished_ids = {state.job_id(c.name) for c in pending} - {""}
    queue = _queue_states(unfinished_ids)
    generations = []
    for number, batch in sorted(state.members.items()):
        results = [state.results.get(c.name) for c in batch]
        ids = {c.name: state.job_id(c.name) for c in batch if c.name in state.submissions}
        generations.append({
            "generation": number,
            "done": sum(r is not None and r.ok for r in results),
            "failed": sum(r is not None and not r.ok for r in results),
            "pending": sum(r is None for r in results),
            # Of the pending ones, those Slurm reports RUNNING now (0 without Slurm or for the local backend).
            "running": sum(r is None and queue.get(ids.get(c.name, "")) == "RUNNING"
                           for c, r in zip(batch, results)),
            "submitted": len(ids),
            "job_ids": sorted(set(ids.values()) - {""}),
        })
    return {
        "run_dir": str(store.run_dir),
        "name": config.name,
        "optimizer": config.optimizer.name,
        "mode": config.optimizer.mode,
        "backend": config.backend.name,
        "generation": max(state.members, default=0),
        "generations": config.optimizer.generations,
        "evaluations": {
            "done": len(evaluated) - failed,
            "failed": failed,
            "pending": len(pending),
            # Of the pending ones, those handed to the backend (the rest are asked, about to be submitted).
            "in_flight": sum(c.name in state.submissions for c in pending),
            "planned": config.evaluations_planned,
        },
        "best": None if best is None else {
            "name": best.candidate.name,
            "fitness": best.fitness if math.isfinite(best.fitness) else None,
            "hparams": dict(best.candidate.hparams),
            "seed": best.candidate.seed,
            "workdir": str(store.run_dir / EVALS / best.candidate.name),
        },
        "finished": state.finished,
        **_driver(store.run_dir, state.finished),
        "per_generation": generations,
        **({"pareto": [{"name": e.candidate.name, "objectives": objective_values(e, config.optimizer.objectives),
                        "hparams": dict(e.candidate.hparams)}
                       for e in pareto_front(evaluated, config.optimizer.objectives)]}
           if config.multi_objective else {}),
    }


def best_evaluation(run_dir: Path) -> dict[str, Any]:
    """What ``best`` prints: the best successful evaluation of a run (an island run: of all its islands) with what
    re-training it needs. ``hparams``: what the objective was given (active genes and ``fixed`` values), with
    ``seed`` (the evaluation's ``context.seed``); ``chromosome``: every gene, as journaled; ``workdir``: its
    work directory (the built-in MLP's checkpoint, a user's objective's files; ``evals/<name>``)."""
    store = RunStore.open(run_dir)
    stores = [RunStore(island_dir(run_dir, k)) for k in range(store.island_count())] or [store]
    found = [(s, s.replay()) for s in stores if (s.run_dir / JOURNAL).exists()]
    bests = [(s, b) for s, state in found if (b := state.best()) is not None]
    if not bests:
        raise RunDirError(f"run directory {run_dir}: no successful evaluation yet")
    owner, best = min(bests, key=lambda pair: pair[1].fitness)
    config = owner.config()
    candidate = best.candidate
    workdir = owner.run_dir / EVALS / candidate.name
    return {
        "run_dir": str(run_dir), "name": candidate.name, "island": candidate.island,
        "generation": candidate.generation, "fitness": best.fitness, "metrics": dict(best.result.metrics),
        "hparams": {**config.search_space().active(candidate.hparams), **config.fixed},
        "seed": candidate.seed, "chromosome": dict(candidate.hparams),
        "workdir": str(workdir), "workdir_exists": workdir.is_dir(), "job_id": best.result.job_id,
    }


def print_best(best: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=f"best of {best['run_dir']}: {best['name']}", show_header=False)
    table.add_row("fitness", f"{best['fitness']:.6g}")
    table.add_row("seed", str(best["seed"]))
    table.add_row("workdir", best["workdir"] + ("" if best["workdir_exists"] else " (absent)"))
    for key, value in best["hparams"].items():
        table.add_row(f"hparams.{key}", str(value))
    for key, value in best["metrics"].items():
        table.add_row(f"metrics.{key}", f"{value:.6g}")
    console.print(table)


def _driver(run_dir: Path, finished: bool, islands: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """``driver``: who holds the run, read from its lease (never taking the lock; for an island run, the first
    island's driver that holds one); ``resume``: the command that continues it when no driver holds it and it is
    not finished, else None."""
    driver = lease_holder(run_dir)
    driver.pop("slurm_job")
    driver = next((i["driver"] for i in islands if i.get("driver", {}).get("held")), driver)
    return {"driver": driver, "resume": None if driver["held"] or finished else resume_command(run_dir)}


def _queue_states(job_ids: set[str]) -> dict[str, str]:
    """Live states of unfinished Slurm tasks from squeue; empty when there are none or Slurm cannot be asked."""
    if not job_ids:
        return {}
    from workflow.cluster import query_queue, slurm_available

    if not slurm_available():
        return {}
    try:
        return query_queue({job_id.split("_")[0] for job_id in job_ids})
    except ClusterError:
        return {}


def islands_status(parent: Path, count: int) -> dict[str, Any]:
    islands: list[dict[str, Any]] = []
    for k in range(count):
        path = island_dir(parent, k)
        if not (path / JOURNAL).exists():
            islands.append({"run_dir": str(path), "finished": False, "island": k, "migrations_in": 0,
                            "migrations_out": 0})
            continue
        store = RunStore(path)
        state = store.replay()
        island = _status(store, state)
        island["island"] = k
        island["migrations_in"] = len(state.immigrations)
        island["migrations_out"] = len(state.emigrations)
        islands.append(island)
    bests = [dict(i["best"], island=i["island"]) for i in islands if i.get("best")]
    best = min(bests, key=lambda b: b["fitness"], default=None)
    totals = {key: sum(i.get("evaluations", {}).get(key, 0) for i in islands)
              for key in ("done", "failed", "pending", "in_flight", "planned")}
    config = RunStore.open(parent).config()
    return {
        "run_dir": str(parent), "name": config.name, "optimizer": config.optimizer.name,
        "backend": config.backend.name,
        "generation": min((i.get("generation", 0) for i in islands), default=0),
        "generations": config.optimizer.generations,
        "evaluations": totals, "best": best, "finished": all(i["finished"] for i in islands),
        **_driver(parent, all(i["finished"] for i in islands), islands),
        "islands": islands,
    }


def print_status(status: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    if "islands" in status:
        state = "finished" if status["finished"] else "in progress"
        console.print(f"[bold]{status['name']}[/]: {len(status['islands'])} islands, {state}")
        table = Table("island", "generation", "done", "failed", "pending", "in/out migrations", "best")
        for island in status["islands"]:
            ev = island.get("evaluations", {})
            best = island.get("best") or {}
            table.add_row(str(island["island"]), f"{island.get('generation', 0)}/{status['generations']}",
                          str(ev.get("done", 0)), str(ev.get("failed", 0)), str(ev.get("pending", 0)),
                          f"{island['migrations_in']}/{island['migrations_out']}",
                          f"{best.get('fitness', float('nan')):.5g} {best.get('name', '')}" if best else "-")
        console.print(table)
        if status["best"]:
            b = status["best"]
            console.print(f"global best: island {b['island']} {b['name']} fitness {b['fitness']:.5g} {b['hparams']}")
        _print_driver(status, console)
        return
    ev = status["evaluations"]
    state = "finished" if status["finished"] else "in progress"
    steady = status.get("mode") == "steady_state"
    block = "block of births" if steady else "generation"
    console.print(f"[bold]{status['name']}[/] ({status['optimizer']}, {status.get('mode', 'generational')}, "
                  f"{status['backend']}): {state}, {block} {status['generation']}/{status['generations']}")
    console.print(f"evaluations: done {ev['done']}, failed {ev['failed']}, in flight {ev.get('in_flight', 0)}, "
                  f"pending {ev['pending']}, planned {ev['planned']}")
    _print_driver(status, console)
    if status["best"]:
        best = status["best"]
        console.print(f"best: {best['name']} fitness {best['fitness']:.5g} {best['hparams']}")
    if "pareto" in status:
        front = Table(title=f"Pareto front ({len(status['pareto'])})")
        metrics = list(status["pareto"][0]["objectives"]) if status["pareto"] else []
        for column in ["name", *metrics]:
            front.add_column(column)
        for member in status["pareto"][:20]:
            front.add_row(member["name"], *(f"{member['objectives'][m]:.5g}" for m in metrics))
        console.print(front)
    table = Table("generation", "done", "failed", "pending", "running", "job ids")
    for gen in status["per_generation"][-10:]:
        table.add_row(str(gen["generation"]), str(gen["done"]), str(gen["failed"]), str(gen["pending"]),
                      str(gen["running"]), _id_ranges(gen["job_ids"]))
    console.print(table)


def _print_driver(status: dict[str, Any], console: Console) -> None:
    """One line: the driver holding the run, or that none does and the exact command that continues it."""
    driver = status.get("driver") or {}
    if driver.get("held"):
        console.print(f"driver: pid {driver['pid']} on {driver['host']}, last heartbeat "
                      f"{driver['heartbeat_age_s']:.0f} s ago", highlight=False)
        return
    if status.get("resume"):
        console.print(f"driver: none; continue with `{status['resume']}`", highlight=False, markup=False,
                      soft_wrap=True)
    elif "islands" not in status:
        console.print("driver: none", highlight=False)


def _id_ranges(job_ids: list[str]) -> str:
    """``123_[0-4]`` for the tasks of one array, so a large generation stays one short cell."""
    if not job_ids:
        return "-"
    arrays: dict[str, list[str]] = {}
    for job_id in job_ids:
        array, _, task = job_id.partition("_")
        arrays.setdefault(array, []).append(task)
    parts = []
    for array, tasks in arrays.items():
        numbers = sorted(int(t) for t in tasks if t.isdigit())
        if len(numbers) > 1 and numbers == list(range(numbers[0], numbers[-1] + 1)):
            parts.append(f"{array}_[{numbers[0]}-{numbers[-1]}]")
        else:
            parts.append(", ".join(f"{array}_{t}" if t else array for t in tasks))
    return ", ".join(parts)
