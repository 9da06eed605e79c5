"""Checking what W&B holds against the results the jobs returned (the driver does it after each batch)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from workflow.records import Candidate, Result
from workflow.tracking.spec import FITNESS_KEY, STATUS_KEY
from workflow.wandb_driver.readback import RunRecord


def _close(a: Any, b: float) -> bool:
    try:
        return math.isclose(float(a), b, rel_tol=1e-9, abs_tol=1e-12)
    except (TypeError, ValueError):
        return False


def compare(candidates: Sequence[Candidate], results: Mapping[str, Result],
            records: Mapping[str, RunRecord]) -> list[dict[str, Any]]:
    """Disagreements between the results the jobs returned and the W&B summaries (JSON-safe dicts)."""
    problems: list[dict[str, Any]] = []
    for cand in candidates:
        result = results.get(cand.name)
        if result is None:
            continue
        record = records.get(cand.name)
        if record is None or not record.complete:
            if result.ok:  # a failed (killed, timed-out) evaluation may well have no final summary
                state = "no W&B run" if record is None else f"W&B run without a final summary ({record.state})"
                problems.append({"name": cand.name, "problem": state})
            continue
        summary = record.summary
        if summary.get(STATUS_KEY) != result.status:
            problems.append({"name": cand.name, "problem": "status", "wandb": summary.get(STATUS_KEY),
                             "result": result.status})
            continue
        if not result.ok:
            continue
        expected = {FITNESS_KEY: result.fitness, **result.metrics}
        for key, value in expected.items():
            if not _close(summary.get(key), value):
                problems.append({"name": cand.name, "problem": key, "wandb": summary.get(key), "result": value})
    return problems
