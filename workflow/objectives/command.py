"""A command objective: the user's program, run once per evaluation with its genes in the argument list.

The argument list is filled by :mod:`~workflow.objectives.placeholders` and run by
:mod:`~workflow.objectives.process` (no shell, ever). Besides the genes, placeholders may name ``name``,
``seed``, ``workdir``, ``attempt`` and ``python`` (the interpreter running the evaluation, ``sys.executable``:
the driver's own, which also starts every Slurm task); the program also finds them in ``GASLURM_EVAL_NAME``,
``GASLURM_WORKDIR``, ``GASLURM_SEED`` and ``GASLURM_ATTEMPT``. A program that keeps a checkpoint in its
workdir continues from it after a requeue. The metrics are the last JSON object on its stdout, or the
``metrics.json`` it wrote into its workdir (which wins).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Collection
from pathlib import Path

from workflow.config import ObjectiveConfig
from workflow.objectives.context import start_attempt
from workflow.objectives.placeholders import check_argv, placeholders, render_argv
from workflow.objectives.process import command_environment, install_termination_handler, run_command
from workflow.records import Candidate, Result
from workflow.scoring import scored
from workflow.tracking.evaluation import tracked_evaluation
from workflow.tracking.spec import TrackingSpec

#: Placeholders every command may use besides the genes.
CONTEXT_NAMES = ("name", "seed", "workdir", "attempt", "python")

#: Suffixes that mark an argument as the script a program runs (``python train.py``, ``bash run.sh``).
SCRIPT_SUFFIXES = frozenset({".py", ".sh", ".bash", ".zsh", ".r", ".jl", ".pl", ".rb"})


def check_command(objective: ObjectiveConfig, genes: Collection[str]) -> None:
    """Every placeholder of ``objective.argv`` names a gene or a context value (raises ``ValueError``)."""
    check_argv(objective.argv, [*genes, *CONTEXT_NAMES])


def command_cwd(objective: ObjectiveConfig) -> Path | None:
    """The directory the command runs in: ``objective.cwd`` (``~`` expanded), or None for the worker's own."""
    return Path(objective.cwd).expanduser() if objective.cwd else None


def check_command_files(objective: ObjectiveConfig) -> None:
    """The program and its script exist, as seen from the driver (raises ``ValueError``, one line).

    The program (``argv[0]``, with ``{python}`` filled in) must be on PATH, or, when it names a path (has a
    ``/``), an executable file relative to the command's cwd. The script is the first argument after the program
    that is not an option (does not start with ``-``); it is checked only when it ends in a script suffix
    (:data:`SCRIPT_SUFFIXES`) and holds no placeholder, so ``python -m pkg``, gene values and output paths are
    never refused. Arguments with other placeholders cannot be known before an evaluation and are not checked.
    """
    cwd = command_cwd(objective)
    where = (cwd or Path.cwd()).absolute()
    if cwd is not None and not where.is_dir():
        raise ValueError(f"the command's cwd {where} is not a directory")
    known = {"python": sys.executable}
    argv = list(objective.argv)
    if set(placeholders(argv[:1])) <= known.keys():
        program = render_argv(argv[:1], known)[0]
        if _resolve_program(program, where) is None:
            how = "not an executable file" if "/" in program else "not on PATH"
            raise ValueError(f"program {program!r} not found: {how} (cwd {where})")
    script = next((arg for arg in argv[1:] if not arg.startswith("-")), None)
    if script is None or placeholders([script]):
        return
    script = render_argv([script], {})[0]
    if Path(script).suffix.lower() in SCRIPT_SUFFIXES and not (where / Path(script).expanduser()).is_file():
        raise ValueError(f"script {script!r} not found in cwd {where}")


def _resolve_program(program: str, cwd: Path) -> str | None:
    """Where ``program`` is found the way the evaluation will look: a path relative to ``cwd``, else PATH."""
    if "/" in program:
        path = cwd / Path(program).expanduser()
        return str(path) if path.is_file() and os.access(path, os.X_OK) else None
    return shutil.which(program)


def evaluate(candidate: Candidate, objective: ObjectiveConfig, workdir: Path,
             tracking: TrackingSpec | None = None) -> Result:
    """Run the command for ``candidate``; a non-zero exit or missing metrics is a failed result."""
    install_termination_handler()  # a worker stopped with SIGTERM takes its child down with it
    with tracked_evaluation(tracking, candidate) as tracker:
        start = time.monotonic()
        attempt = start_attempt(workdir)
        values = {**candidate.hparams, "name": candidate.name, "seed": candidate.seed,
                  "workdir": str(workdir.resolve()), "attempt": attempt, "python": sys.executable}
        env = command_environment(os.environ, name=candidate.name, workdir=workdir, seed=candidate.seed,
                                  attempt=attempt)
        cwd = command_cwd(objective)
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
