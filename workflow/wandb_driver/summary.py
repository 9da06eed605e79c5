"""``summary RUN_DIR``: the W&B summaries of a run directory as the seed's table.

The table is the seed's (name, the genes in order, fitness, best first), built from
what W&B holds (each evaluation run's config and final summary), not from ``results.csv``: comparing the two
is how a run directory is checked against W&B. Written to ``RUN_DIR/wandb_summary.csv`` and ``.md``.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workflow.space import SearchSpace
from workflow.store import RunStore
from workflow.store.atomic import atomic_write_text
from workflow.tables import csv_text, markdown_table
from workflow.tracking.spec import FITNESS_KEY, STATUS_KEY, WANDB_DIRNAME, TrackingError, TrackingSpec, run_dir_tag
from workflow.wandb_driver.readback import RunRecord, evaluation_records, offline_files

CSV_NAME, MD_NAME = "wandb_summary.csv", "wandb_summary.md"


def columns(space: SearchSpace) -> list[str]:
    """The table's columns: name, the genes in order, fitness."""
    return ["name", *space.names, "fitness"]


def summary_rows(records: Mapping[str, RunRecord], space: SearchSpace) -> tuple[list[dict[str, Any]], list[str]]:
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
        genes = {gene: config.get(gene) for gene in space.names}
        rows.append({"name": record.name or name, **space.cells({k: v for k, v in genes.items() if v is not None}),
                     "fitness": float(summary[FITNESS_KEY]) if ok else math.inf})
    rows.sort(key=lambda r: (r["fitness"], r["name"]))
    return rows, sorted(incomplete)


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
    config = store.config()
    space = config.search_space()
    rows, incomplete = summary_rows(records, space)
    paths = [run_dir / CSV_NAME, run_dir / MD_NAME]
    atomic_write_text(paths[0], csv_text(columns(space), rows))
    atomic_write_text(paths[1], markdown_table(columns(space), rows, f"W&B summaries of {config.name} "
                                                              f"({len(rows)} runs)"))
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
