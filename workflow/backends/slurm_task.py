"""What one Slurm array task runs: the shared evaluation entry point, made requeueable.

submitit calls ``checkpoint`` when Slurm's pre-timeout signal (USR2, ``slurm.signal_delay_s`` before the limit)
arrives and requeues the task with the same arguments, up to ``slurm.max_requeues`` times. Nothing needs saving
at that moment: the Lightning engine checkpoints every epoch into the evaluation's ``workdir`` and resumes from
there, so the evaluation keeps its name, workdir and result row across requeues. An ``scontrol requeue`` or a
preemption restarts the task the same way.
"""

from __future__ import annotations

from typing import Any

import submitit

from workflow.backends.worker import run_evaluation
from workflow.records import Result


class SlurmEvaluation(submitit.helpers.Checkpointable):
    def __call__(self, *args: Any, **kwargs: Any) -> Result:
        return run_evaluation(*args, **kwargs)
