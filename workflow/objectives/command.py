"""A command objective: the user's program, run once per evaluation with its genes in the argument list.

The argument list is filled by :mod:`~workflow.objectives.placeholders` and run by
:mod:`~workflow.objectives.process` (no shell, ever). Besides the genes, placeholders may name ``name``,
``seed``, ``workdir`` and ``attempt``; the program also finds them in ``GASLURM_EVAL_NAME``,
``GASLURM_WORKDIR``, ``GASLURM_SEED`` and ``GASLURM_ATTEMPT``. A program that keeps a checkpoint in its
workdir continues from it after a requeue. The metrics are the last JSON object on its stdout, or the
``metrics.json`` it wrote into its workdir (which wins).
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection
from pathlib import Path

from workflow.config import ObjectiveConfig
from workflow.objectives.context import start_attempt
from workflow.objectives.placeholders import check_argv, render_argv
from workflow.objectives.process import command_environment, install_termination_handler, run_command
from workflow.records import Candidate, Result
from workflow.scoring import scored
from workflow.tracking.evaluation import tracked_evaluation
from workflow.tracking.spec import TrackingSpec

#: Placeholders every command may use besides the genes.
CONTEXT_NAMES = ("name", "seed", "workdir", "attempt")


def check_command(objective: ObjectiveConfig, genes: Collection[str]) -> None:
    """Every placeholder of ``objective.argv`` names a gene or a context value (raises ``ValueError``)."""
    check_argv(objective.argv, [*genes, *CONTEXT_NAMES])


def evaluate(candidate: Candidate, objective: ObjectiveConfig, workdir: Path,
             tracking: TrackingSpec | None = None) -> Result:
    """Run the command for ``candidate``; a non-zero exit or missing metrics is a failed result."""
    install_termination_handler()  # a worker stopped with SIGTERM takes its child down with it
    with tracked_evaluation(tracking, candidate) as tracker:
        start = time.monotonic()
        attempt = start_attempt(workdir)
        values = {**candidate.hparams, "name": candidate.name, "seed": candidate.seed,
                  "workdir": str(workdir.resolve()), "attempt": attempt}
        env = command_environment(os.environ, name=candidate.name, workdir=workdir, seed=candidate.seed,
                                  attempt=attempt)
        cwd = Path(objective.cwd).expanduser() if objective.cwd else None
        outcome = run_command(render_argv(objective.argv, values), cwd=cwd, env=env, workdir=workdir,
                              grace_s=objective.grace_s)
        seconds = time.monotonic() - start
        stderr = " | ".join(outcome.stderr_tail.strip().splitlines()[-5:])[-600:] or "(stderr empty)"
        if outcome.returncode != 0:
            result = Result.failure(candidate.name, f"command exited {outcome.returncode}: {stderr}",
                                    seconds=seconds)
        elif outcome.metrics is None:
            note = f" ({outcome.metrics_source})" if outcome.metrics_source else ""
            result = Result.failure(candidate.name, "command printed no JSON object of metrics on stdout and wrote "
                                    f"no metrics.json{note}; stderr: {stderr}", seconds=seconds)
        else:
            result = scored(candidate.name, outcome.metrics, objective, seconds)
        tracker.set_result(result)
    return result
