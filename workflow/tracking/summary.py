"""``summary RUN_DIR`` and ``sync RUN_DIR``: the W&B side of a run directory, for the command line.

The table is the seed's (name, dropout, hidden_size, n_layers, activation, fitness, best first), built from
what W&B holds (each evaluation run's config and final summary), not from ``results.csv``: comparing the two
is how a run directory is checked against W&B. Written to ``RUN_DIR/wandb_summary.csv`` and ``.md``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workflow.store import RunStore, atomic_write_text
from workflow.tracking import (
    FITNESS_KEY,
    STATUS_KEY,
    WANDB_DIRNAME,
    RunRecord,
    TrackingError,
    TrackingSpec,
    evaluation_records,
    offline_files,
    run_dir_tag,
    sync,
    sync_command,
    unsynced_runs,
)

COLUMNS = ("name", "dropout", "hidden_size", "n_layers", "activation", "fitness")
CSV_NAME, MD_NAME = "wandb_summary.csv", "wandb_summary.md"


def summary_rows(records: Mapping[str, RunRecord]) -> tuple[list[dict[str, Any]], list[str]]:
    """(table rows sorted by fitness, names of runs without a final summary).

    A failed evaluation has fitness ``inf`` (last); a run without a final summary (its task was killed, or it
    is still running) is left out and named in the second list.
    """
    rows: list[dict[str, Any]] = []
    incomplete: list[str] = []
    for name, record in records.items():
        if not record.complete:
            incomplete.append(name)
            continue
        config, summary = record.config, record.summary
        ok = summary.get(STATUS_KEY) == "ok" and isinstance(summary.get(FITNESS_KEY), (int, float))
        rows.append({"name": record.name or name, "dropout": config.get("dropout"),
                     "hidden_size": config.get("hidden_size"), "n_layers": config.get("n_layers"),
                     "activation": config.get("activation"),
                     "fitness": float(summary[FITNESS_KEY]) if ok else math.inf})
    rows.sort(key=lambda r: (r["fitness"], r["name"]))
    return rows, sorted(incomplete)


def markdown(rows: list[dict[str, Any]], title: str) -> str:
    lines = [f"# {title}", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        lines.append(f"| {row['name']} | {_g(row['dropout'])} | {row['hidden_size']} | {row['n_layers']} | "
                     f"{row['activation']} | {_g(row['fitness'])} |")
    return "\n".join(lines) + "\n"


def _g(value: Any) -> str:
    return f"{value:.5g}" if isinstance(value, float) else str(value)


def _csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _spec(run_dir: Path) -> TrackingSpec:
    config = RunStore.open(run_dir).config()
    spec = TrackingSpec.from_config(config, run_dir)
    if spec is not None:
        return spec
    # Tracking is disabled now, but an earlier run of this directory may have logged offline.
    wandb_dir = Path(run_dir).resolve() / WANDB_DIRNAME
    if not offline_files(wandb_dir):
        raise TrackingError(f"run directory {run_dir}: tracking.mode is disabled and {wandb_dir} holds no W&B runs")
    return TrackingSpec(mode="offline", project=config.tracking.project, entity=config.tracking.entity,
                        group=config.name, dir=str(wandb_dir), tag=run_dir_tag(run_dir))


def write_summary(run_dir: Path) -> tuple[list[dict[str, Any]], list[str], list[Path]]:
    """Collect the evaluation summaries from W&B; write the CSV and Markdown tables into ``run_dir``."""
    run_dir = Path(run_dir)
    store = RunStore.open(run_dir)
    records = evaluation_records(_spec(run_dir), store.replay())
    if not records:
        raise TrackingError(f"run directory {run_dir}: no W&B evaluation runs found")
    rows, incomplete = summary_rows(records)
    paths = [run_dir / CSV_NAME, run_dir / MD_NAME]
    atomic_write_text(paths[0], _csv(rows))
    atomic_write_text(paths[1], markdown(rows, f"W&B summaries of {store.config().name} ({len(rows)} runs)"))
    return rows, incomplete, paths


def print_summary(run_dir: Path, as_json: bool = False) -> int:
    rows, incomplete, paths = write_summary(run_dir)
    if as_json:
        print(json.dumps([{**r, "fitness": r["fitness"] if math.isfinite(r["fitness"]) else None} for r in rows]))
    else:
        print(paths[1].read_text(), end="")
        print(f"written: {paths[0]} {paths[1]}")
    if incomplete:
        print(f"{len(incomplete)} W&B runs have no final summary (killed or still running): "
              f"{', '.join(incomplete)}", file=sys.stderr)
    return 0


def sync_run_dir(run_dir: Path, dry_run: bool = False) -> int:
    """Upload the run directory's offline W&B runs (``wandb sync``); already uploaded runs are skipped."""
    RunStore.open(run_dir)
    wandb_dir = Path(run_dir) / WANDB_DIRNAME
    todo, synced = unsynced_runs(wandb_dir)
    if dry_run:
        print(f"{len(todo)} offline runs to upload, {synced} already uploaded")
        if todo:
            print(" ".join(sync_command(todo)))
        return 0
    if not todo:
        print(f"nothing to upload: {synced} offline runs already uploaded" if synced
              else f"no offline W&B runs in {wandb_dir}")
        return 0
    uploaded, _ = sync(run_dir)
    print(f"uploaded {uploaded} offline runs ({synced} were already uploaded)")
    return 0
