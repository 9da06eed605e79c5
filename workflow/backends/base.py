"""The evaluation-backend interface: submit candidates, collect each result as it arrives.

A backend never loses a candidate: every submitted candidate gets exactly one result through
:meth:`Sink.result`, a failed one when the evaluation raised, returned a non-finite loss, timed out or died
with its Slurm task. :func:`run_batch` is the generational use (submit a batch, wait for all of it); a
steady-state driver submits as slots free and collects whatever has arrived.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from workflow.config import Config
from workflow.evaluate import EvaluationSpec
from workflow.records import Candidate, Result
from workflow.store.events import Submission


class Sink(Protocol):
    """What a backend reports to, one method per kind of report (the driver records each in the journal as a
    typed event of :mod:`workflow.store.events`)."""

    def submitting(self, names: Sequence[str], *, tag: str, folder: str, packs: Sequence[Sequence[str]],
                   resubmit: int | None = None, after: str | None = None) -> None:
        """An intent: these evaluations are about to leave the machine under ``tag`` (durable when this returns,
        so a driver that dies right after sbatch finds the array by its tag)."""

    def submitted(self, names: Sequence[str], *, backend: str | None = None, pack_size: int | None = None,
                  tag: str | None = None, folder: str | None = None, job_ids: Mapping[str, str] | None = None,
                  array_id: str | None = None, resubmit: int | None = None, after: str | None = None) -> None:
        """The given evaluations were handed to the executor (e.g. their Slurm job ids)."""

    def recovered(self, names: Sequence[str], *, tag: str, folder: str, job_ids: Mapping[str, str]) -> None:
        """Tasks an earlier driver submitted under ``tag`` and died before recording were found again."""

    def abandoned(self, names: Sequence[str], *, tag: str) -> None:
        """A submission under ``tag`` was given up (cancelled; the evaluations are submitted afresh)."""

    def result(self, result: Result) -> None:
        """One evaluation finished (successfully or not). Called once per candidate."""

    def previous_submission(self, name: str) -> Submission | None:
        """What an earlier driver recorded for this evaluation (to re-attach instead of resubmitting)."""

    def waiting(self) -> None:
        """The backend is about to wait for results: make what was reported so far durable."""


class Backend(Protocol):
    name: str

    def bind(self, config: Config, run_dir: Path) -> None:
        """Serve the run in ``run_dir`` from now on (nothing may be in flight)."""

    def submit(self, candidates: Sequence[Candidate], sink: Sink) -> None:
        """Start evaluating ``candidates`` (re-attaching to an earlier driver's submission of them); return soon."""

    def collect(self, sink: Sink, timeout_s: float | None = None) -> int:
        """Report the results that have arrived; when none has, wait for one, at most ``timeout_s`` (None: no
        limit while anything is in flight). Returns how many results were reported."""

    def in_flight(self) -> int:
        """Submitted candidates whose result has not been reported yet."""

    def close(self) -> None:
        """Release workers and connections (harmless when called again)."""


class BackendBase:
    """What every backend holds: the config, the run directory and the evaluation spec its tasks get."""

    name = "base"

    def __init__(self, config: Config, run_dir: Path) -> None:
        self.bind(config, run_dir)

    def bind(self, config: Config, run_dir: Path) -> None:
        """Serve the run in ``run_dir`` (``compare`` runs several searches in turn with one backend, keeping
        e.g. a warm worker pool)."""
        self.config = config
        self.run_dir = Path(run_dir)
        self.spec = EvaluationSpec.from_config(config, self.run_dir)


def run_batch(backend: Backend, candidates: Sequence[Candidate], sink: Sink) -> None:
    """Evaluate ``candidates`` and return once every one of them has its result."""
    backend.submit(candidates, sink)
    while backend.in_flight():
        backend.collect(sink)
