"""A Slurm cluster faked at the process boundary, for tests that must run where no cluster is up.

Everything the workflow and submitit ask Slurm goes through two doors: submitit's ``CommandFunction`` /
``subprocess.check_output`` (sbatch, sacct) and :func:`workflow.cluster._run` (sinfo, scontrol, sacct, squeue,
scancel). :class:`FakeSlurm` answers both from one table of tasks. A task runs (in this process, through
submitit's own ``process_job``, as a compute node would) the first time its state is asked for after it was
submitted; ``fate(names, attempt)`` may instead give it another end: ``TIMEOUT``, ``PREEMPTED``, ``NODE_FAIL``,
``OUT_OF_MEMORY`` (no result), ``LOST`` (it vanishes from sacct and squeue), ``PENDING`` (not yet).
``sbatch_failures`` are sbatch's next answers, one per call, before it works again: (stderr, whether the
controller made the job anyway: its answer was lost). ``max_submit`` is the association's MaxSubmitJobs as
sacctmgr reports it (None: no limit); ``most_queued`` is the most tasks that were ever pending or running at
once; ``asked`` counts the workflow's commands by program.
"""

from __future__ import annotations

import contextlib
import pickle
import re
import signal
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from submitit.core import submission, utils
from submitit.core.test_core import MockedSubprocess
from submitit.slurm import slurm as submitit_slurm

import workflow.cluster

Fate = Callable[[list[str], int], str]


@dataclass
class Task:
    job_id: str
    name: str  # the Slurm job name (our tag)
    folder: str
    state: str = "PENDING"
    ran: bool = False


class FakeSlurm(MockedSubprocess):
    """Use as a context manager; ``tasks`` holds every task ever submitted, ``sbatch_calls`` counts sbatch."""

    PARTITIONS = "gpu|infinite|gpu:2|up\ngpu2|infinite|gpu:2|up\n"

    def __init__(self, fate: Fate | None = None, max_submit: int | None = None) -> None:
        super().__init__(known_cmds=["srun", "sbatch", "sinfo"])
        self.fate = fate or (lambda names, attempt: "COMPLETED")
        self.max_submit = max_submit
        self.most_queued = 0
        self.tasks: dict[str, Task] = {}
        self.attempts: dict[str, int] = {}  # evaluation name -> times a task of it was decided
        self.sbatch_calls = 0
        self.sbatch_failures: list[tuple[str, bool]] = []
        #: The workflow's own commands (sinfo, scontrol, sacct, ...) by program, as :meth:`run` answered them.
        self.asked: Counter[str] = Counter()
        self.next_id = 500

    # -- submitit's door -------------------------------------------------------------------------------

    def sbatch(self, args: Sequence[str]) -> str:
        text = Path(args[0]).read_text()
        name = re.search(r"^#SBATCH --job-name=(\S+)$", text, re.MULTILINE)
        array = re.search(r"^#SBATCH --array=0-(\d+)", text, re.MULTILINE)
        folder = re.search(r"submitit\.core\._submit (\S+)\s*$", text, re.MULTILINE)
        assert name and folder, text
        job_id = str(self.next_id)
        self.next_id += 1
        self.sbatch_calls += 1
        ids = [f"{job_id}_{i}" for i in range(int(array.group(1)) + 1)] if array else [job_id]
        for task_id in ids:
            self.tasks[task_id] = Task(task_id, name.group(1), folder.group(1))
        self.most_queued = max(self.most_queued, len(self._queued()))
        if self.sbatch_failures:
            stderr, made = self.sbatch_failures.pop(0)
            if not made:
                for task_id in ids:
                    del self.tasks[task_id]
            raise utils.FailedJobError(stderr)
        return f"Submitted batch job {job_id}\n"

    def _queued(self) -> list[Task]:
        return [t for t in self.tasks.values() if t.state in ("PENDING", "RUNNING")]

    def sacct(self, args: Sequence[str]) -> str:  # submitit's watcher
        return "JobID|State\n" + "\n".join(f"{t.job_id}|{t.state}" for t in self.tasks.values() if t.state != "LOST")

    # -- the workflow's door ---------------------------------------------------------------------------

    def run(self, command: Sequence[str], timeout: float = 30.0) -> str:
        program, args = command[0], list(command[1:])
        self.asked[program] += 1
        if program == "sinfo":
            return self.PARTITIONS
        if program == "scontrol":
            return "MaxArraySize            = 1001\n"
        if program == "sacctmgr" and "user" in args:  # show user NAME format=DefaultAccount
            return "research\n"
        if program == "sacctmgr":
            limit = self.max_submit if "assoc" in args else None
            return "" if limit is None else f"{limit}\n"
        if program == "squeue" and "-u" in args:  # the user's queued jobs, for the submission limit
            return "".join(f"{t.job_id}\n" for t in self._queued())
        if program == "scancel":
            for job_id in args:
                for task in self._matching([job_id]):
                    task.state = "CANCELLED"
            return ""
        if program in ("sacct", "squeue"):
            if "--name" in args:
                tasks = [t for t in self.tasks.values() if t.name == args[args.index("--name") + 1]]
            else:
                tasks = self._matching(args[args.index("-j") + 1].split(","))
            lines = []
            for task in tasks:
                self._advance(task)
                if task.state == "LOST" or (program == "squeue" and task.state not in ("PENDING", "RUNNING")):
                    continue
                lines.append(f"{task.job_id}|{task.state}")
            return "\n".join(lines) + "\n"
        raise AssertionError(f"unexpected Slurm command {command}")

    def _matching(self, ids: Sequence[str]) -> list[Task]:
        return [t for t in self.tasks.values() if t.job_id in ids or t.job_id.split("_")[0] in ids]

    # -- the compute node ------------------------------------------------------------------------------

    def names(self, task: Task) -> list[str]:
        """The evaluations a task holds, read from its submitted pickle."""
        paths = utils.JobPaths(task.folder, job_id=task.job_id)
        with open(paths.submitted_pickle, "rb") as handle:
            delayed = pickle.load(handle)
        return [c.name for c in delayed.args[0]]

    def _advance(self, task: Task) -> None:
        if task.ran or task.state not in ("PENDING", "RUNNING"):
            return
        if not utils.JobPaths(task.folder, job_id=task.job_id).submitted_pickle.exists():
            return  # made by an sbatch whose answer was lost: submitit never wrote its files (it stays queued)
        names = self.names(task)
        attempt = max((self.attempts.get(n, 0) for n in names), default=0)
        fate = self.fate(names, attempt)
        if fate == "PENDING":
            return
        for name in names:
            self.attempts[name] = attempt + 1
        task.ran = True
        if fate != "COMPLETED":
            task.state = fate
            return
        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGUSR2, signal.SIGTERM, signal.SIGCONT)}
        try:  # submitit installs a compute node's signal handlers: keep this process's own
            with self.job_context(task.job_id):
                submission.process_job(Path(task.folder.replace("%j", task.job_id)))
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        task.state = "COMPLETED"

    @contextlib.contextmanager
    def context(self) -> Iterator[None]:
        with super().context(), mock.patch.object(workflow.cluster, "_run", self.run), \
                mock.patch.object(workflow.cluster, "slurm_available", lambda: True):
            try:
                yield None
            finally:
                submitit_slurm.SlurmJob.watcher.clear()

    def __enter__(self) -> FakeSlurm:
        self._context = self.context()
        self._context.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._context.__exit__(*exc)
