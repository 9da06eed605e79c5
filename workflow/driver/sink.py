"""What the backends report, recorded in the journal as it is reported (one typed event per report)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from workflow.driver.observers import Observer, SearchRun
from workflow.errors import DiskFullError
from workflow.evaluate import disk_full
from workflow.faults import crash_point
from workflow.records import Result
from workflow.stopping import raise_if_stopped
from workflow.store.events import Abandoned, Recovered, ResultRecorded, Submission, Submitted, Submitting
from workflow.store.layout import pack_workdir, resume_command

log = logging.getLogger(__name__)


class JournalSink:
    """The driver's :class:`~workflow.backends.Sink`: every submission and result goes into the journal first."""

    def __init__(self, run: SearchRun, observer: Observer) -> None:
        self.run, self.observer = run, observer

    def submitting(self, names: Sequence[str], *, tag: str, folder: str, packs: Sequence[Sequence[str]],
                   resubmit: int | None = None, after: str | None = None) -> None:
        # An intent must be durable before the submission leaves the machine: a driver that dies after sbatch
        # finds its array by the intent's tag.
        self.run.record(Submitting(names=tuple(names), generation=self._generation(names), tag=tag, folder=folder,
                                   packs=tuple(tuple(pack) for pack in packs), resubmit=resubmit, after=after))

    def submitted(self, names: Sequence[str], *, backend: str | None = None, pack_size: int | None = None,
                  tag: str | None = None, folder: str | None = None, job_ids: Mapping[str, str] | None = None,
                  array_id: str | None = None, resubmit: int | None = None, after: str | None = None) -> None:
        self.run.record(Submitted(names=tuple(names), generation=self._generation(names), backend=backend,
                                  pack_size=pack_size, tag=tag, folder=folder, job_ids=dict(job_ids or {}),
                                  array_id=array_id, resubmit=resubmit, after=after), durable=False)

    def recovered(self, names: Sequence[str], *, tag: str, folder: str, job_ids: Mapping[str, str]) -> None:
        self.run.record(Recovered(names=tuple(names), generation=self._generation(names), tag=tag, folder=folder,
                                  job_ids=dict(job_ids)), durable=False)

    def abandoned(self, names: Sequence[str], *, tag: str) -> None:
        self.run.record(Abandoned(names=tuple(names), generation=self._generation(names), tag=tag), durable=False)

    def result(self, result: Result) -> None:
        if result.name in self.run.state.results:
            log.warning("ignoring a second result for %s (already recorded)", result.name)
            return
        full = disk_full(result)
        if full is not None and self.run.config.backend.name != "slurm":
            # The disk's fault, not the candidate's: not recorded, so a resume evaluates it again. (A Slurm
            # task's result would be read back as it is on resume, so there it is recorded as a failure.)
            run_dir = self.run.store.run_dir
            path = full[1] if full[1] != "?" else pack_workdir(run_dir, [self.run.state.candidate(result.name)])
            raise DiskFullError(path, full[0], resume_command(run_dir))
        self.run.record(ResultRecorded(result=result, generation=self._generation([result.name]),
                                       attempt=self.run.state.attempt(result.name)), durable=False)
        crash_point("after-result")
        candidate = self.run.state.candidate(result.name)
        self.run.store.results().append(candidate, self.run.state.results[result.name], self.run.state.evaluated)
        self.observer.result(self.run, result)

    def previous_submission(self, name: str) -> Submission | None:
        return self.run.state.submissions.get(name)

    def waiting(self) -> None:
        raise_if_stopped()
        self.run.store.flush()

    def _generation(self, names: Sequence[str]) -> int:
        return self.run.state.generation_of.get(names[0], 0) if names else 0
