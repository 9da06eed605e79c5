"""Tables and curves built from evaluations: the one place for the top-N table, best-so-far curves and CSV text.

Pure functions of their arguments (no files): ``report``, ``compare``, the island report and the W&B summary
all format their tables here, so the seed's "top ten best models" looks the same everywhere.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from workflow.records import Evaluated
from workflow.space import SearchSpace


def cell(value: Any) -> str:
    """A table cell: floats with 5 significant digits, everything else as text."""
    return f"{value:.5g}" if isinstance(value, float) else str(value)


def markdown_table(columns: Sequence[str], rows: Iterable[Mapping[str, Any]], title: str | None = None) -> str:
    """A Markdown table (with an optional ``# title``) of ``rows``' values under ``columns``."""
    lines = [f"# {title}", ""] if title else []
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def ranked(evaluated: Iterable[Evaluated]) -> list[Evaluated]:
    """The successful evaluations, best first (ties keep their order)."""
    return sorted((e for e in evaluated if e.result.ok and math.isfinite(e.fitness)), key=lambda e: e.fitness)


def evaluation_row(e: Evaluated, space: SearchSpace) -> dict[str, Any]:
    """An evaluation as a table row: its name, genes (as cells) and fitness."""
    return {"name": e.candidate.name, **space.cells(e.candidate.hparams), "fitness": e.fitness}


def top_table(evaluated: Iterable[Evaluated], space: SearchSpace, n: int = 10, title: str = "Top ten best models",
              extra: Mapping[str, Callable[[Evaluated], Any]] | None = None) -> str:
    """The seed's table of the ``n`` best models (name, the genes in order, fitness); ``extra`` adds columns
    after the name (e.g. the island)."""
    extra = extra or {}
    columns = ["name", *extra, *space.names, "fitness"]
    rows = [{**evaluation_row(e, space), **{k: f(e) for k, f in extra.items()}} for e in ranked(evaluated)[:n]]
    return markdown_table(columns, rows, title)


def running_best(values: Iterable[float]) -> list[float]:
    """Best (lowest) value so far after each value; non-finite values never improve it (inf before any)."""
    curve, best = [], math.inf
    for value in values:
        if math.isfinite(value):
            best = min(best, value)
        curve.append(best)
    return curve


def best_per_generation(evaluated: Iterable[Evaluated]) -> dict[int, float]:
    """{generation: its lowest successful fitness}, in generation order."""
    best: dict[int, float] = {}
    for e in ranked(evaluated):
        best.setdefault(e.candidate.generation, e.fitness)
    return dict(sorted(best.items()))
