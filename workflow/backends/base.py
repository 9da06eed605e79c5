"""The evaluation-backend interface: run a batch of candidates, report each result as it arrives."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from workflow.records import Candidate, Result

if TYPE_CHECKING:
    from workflow.config import Config


class BatchSink(Protocol):
    """What a backend reports to while a batch runs (the driver records it in the journal)."""

    def submitted(self, names: Sequence[str], info: dict[str, Any]) -> None:
        """The given evaluations were handed to the executor (e.g. Slurm job ids)."""

    def result(self, result: Result) -> None:
        """One evaluation finished (successfully or not). Called once per candidate."""

    def previous_submission(self, name: str) -> dict[str, Any] | None:
        """What an earlier driver recorded for this evaluation (to re-attach instead of resubmitting)."""


class Backend(Protocol):
    name: str

    def run(self, candidates: Sequence[Candidate], sink: BatchSink) -> None:
        """Evaluate all ``candidates``; return once ``sink.result`` was called for each of them."""

    def close(self) -> None:
        """Release workers and connections."""


def make_backend(config: Config, run_dir: Path) -> Backend:
    if config.backend.name == "local":
        from workflow.backends.local import LocalBackend

        return LocalBackend(config, run_dir)
    if config.backend.name == "slurm":
        from workflow.backends.slurm import SlurmBackend

        return SlurmBackend(config, run_dir)
    raise ValueError(f"unknown backend {config.backend.name!r}")
