"""What a user's objective gets besides the genes: who it is, where it may write, and how to report progress.

``workdir`` (``RUN_DIR/evals/<name>``) is the evaluation's own directory on the shared file system: it
survives requeues, resubmissions and driver restarts, so an objective that saves a checkpoint there and loads
it when it exists continues where it stopped. ``attempt`` counts the starts of this evaluation (0 first; a
Slurm requeue, a resubmission after a node failure, or a driver restart after a crash each add one).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from workflow.records import Candidate
from workflow.store.atomic import atomic_write_text

ATTEMPTS_FILE = ".attempts"
HISTORY_FILE = "history.jsonl"

Reporter = Callable[[int, Mapping[str, float]], None]


@dataclass(frozen=True)
class EvaluationContext:
    """Given to ``function(hparams, context)`` (a Python objective)."""

    #: The evaluation's identity (``fitness-3-2``), the same across requeues and resumes.
    name: str
    #: A seed for the evaluation's own random generators (drawn by the optimizer, replayed on resume).
    seed: int
    #: The evaluation's own directory (exists; user-only): the place for its checkpoints.
    workdir: Path
    #: 0 on the first start of this evaluation, then one more on each requeue or restart.
    attempt: int
    #: ``"cuda"`` when GPUs are visible to this process (``CUDA_VISIBLE_DEVICES``), else ``"cpu"``.
    device: str
    #: The visible GPUs' ids as Slurm and CUDA number them (``CUDA_VISIBLE_DEVICES``), empty without GPUs.
    gpus: tuple[str, ...]
    generation: int = 0
    index: int = 0
    island: int = 0
    _reporter: Reporter | None = field(default=None, repr=False, compare=False)

    def report(self, step: int, **metrics: float) -> None:
        """Record intermediate metrics at ``step`` (an epoch, say): appended to ``workdir/history.jsonl`` and,
        with tracking on, to the evaluation's W&B history."""
        values = {k: float(v) for k, v in metrics.items()}
        line = json.dumps({"step": int(step), "t": round(time.time(), 3), **values}, allow_nan=True)
        with open(self.workdir / HISTORY_FILE, "a") as handle:
            handle.write(line + "\n")
        if self._reporter is not None:
            self._reporter(int(step), values)


def start_attempt(workdir: Path) -> int:
    """Count one more start of the evaluation in ``workdir`` (created user-only); returns this start's number."""
    workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = workdir / ATTEMPTS_FILE
    try:
        attempt = int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        attempt = 0
    # Atomic, not fsync'ed: after a machine crash the count may be one short, which costs nothing, while an
    # fsync per evaluation would be most of an instant objective's cost.
    atomic_write_text(path, f"{attempt + 1}\n", durable=False)
    return attempt


def visible_gpus() -> tuple[str, ...]:
    """The GPUs this process may use, from ``CUDA_VISIBLE_DEVICES`` (Slurm sets it for a task's GPUs)."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    if not value or value in ("-1", "NoDevFiles"):
        return ()
    return tuple(part.strip() for part in value.split(",") if part.strip())


def make_context(candidate: Candidate, workdir: Path, reporter: Reporter | None = None) -> EvaluationContext:
    """The context of ``candidate``'s evaluation in ``workdir``, counting this start as an attempt."""
    gpus = visible_gpus()
    return EvaluationContext(name=candidate.name, seed=candidate.seed, workdir=workdir,
                             attempt=start_attempt(workdir), device="cuda" if gpus else "cpu", gpus=gpus,
                             generation=candidate.generation, index=candidate.index, island=candidate.island,
                             _reporter=reporter)
