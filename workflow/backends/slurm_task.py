"""What one Slurm array task runs: the shared entry point (one evaluation, or a pack), made requeueable.

submitit calls ``checkpoint`` when Slurm's pre-timeout signal (USR2, ``slurm.signal_delay_s`` before the limit)
arrives and requeues the task with the same arguments, up to ``slurm.max_requeues`` times. Nothing needs saving
at that moment: the Lightning engine checkpoints every epoch into the evaluation's ``workdir`` and resumes from
there, so the evaluation keeps its name, workdir and result row across requeues. An ``scontrol requeue`` or a
preemption restarts the task the same way.
"""

from __future__ import annotations

from typing import Any

import submitit

from workflow.evaluate import TIMEOUT_PREFIX, run_pack
from workflow.records import Result


class SlurmEvaluation(submitit.helpers.Checkpointable):
    def __init__(self) -> None:
        self.requeued = False

    def __call__(self, *args: Any, **kwargs: Any) -> list[Result]:
        results = run_pack(*args, **kwargs)
        failed = [r for r in results if not r.ok and not r.reason.startswith(TIMEOUT_PREFIX)]
        if self.requeued and failed:
            # The signal handler requeued this task and raised SystemExit, but the exit landed somewhere that
            # swallowed it (e.g. inside a library's import-time ``except``) and the evaluation failed as a
            # side effect. The task is already requeued: leave no result behind, the next attempt counts.
            raise SystemExit(f"requeued; this attempt's failure is not a result: {failed[0].reason[:200]}")
        return results

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        self.requeued = True
        # The next attempt gets a fresh instance (this one is pickled with requeued=True otherwise).
        return submitit.helpers.DelayedSubmission(SlurmEvaluation(), *args, **kwargs)
