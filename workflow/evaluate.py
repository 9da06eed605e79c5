"""The compute side's entry point: what every backend runs for one task, in whatever process it uses.

A task is one evaluation, or a pack trained together by the packed engine. :func:`run_pack` never raises:
exceptions and non-finite losses come back as failed results carrying the reason, so one bad evaluation
cannot take the driver (or a Slurm array) down with it. Which objective computes the evaluation is
``objective.kind`` (:mod:`workflow.objectives`).
"""

from __future__ import annotations

import errno
import re
import sys
import sysconfig
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from workflow.config import Config, ObjectiveConfig, TaskConfig, TrainConfig
from workflow.errors import DISK_FULL
from workflow.objectives.pickled import OBJECTIVE_PICKLE
from workflow.records import Candidate, Result
from workflow.space import SearchSpace
from workflow.tracking.spec import TrackingSpec

#: Reason prefix of an evaluation ended by its time limit without a requeue left.
TIMEOUT_PREFIX = "TIMEOUT:"
#: Reason prefix of an evaluation ended by a full disk (ENOSPC, EDQUOT): the disk's fault, not the
#: candidate's, so the driver stops instead of recording it (see :func:`disk_full`).
DISK_FULL_PREFIX = "DISK_FULL:"
_DISK_FULL_REASON = re.compile(rf"^{DISK_FULL_PREFIX} (\w+) while writing (.*)$", re.DOTALL)


@dataclass(frozen=True)
class EvaluationSpec:
    """What every evaluation of a run needs, wherever it runs (picklable, no secrets)."""

    task: TaskConfig
    train: TrainConfig
    objective: ObjectiveConfig = ObjectiveConfig()
    tracking: TrackingSpec | None = None
    #: Whether the built-in MLP checkpoints every epoch in its work directory (Slurm: a requeued task goes on
    #: from there; elsewhere a restarted evaluation starts over, and checkpoints only cost time).
    checkpoint: bool = False
    #: The space, when it has conditional genes (``when``): the objective is given only the active ones.
    space: SearchSpace | None = None
    #: The config's ``fixed`` values, added to every evaluation's hparams.
    fixed: tuple[tuple[str, Any], ...] = ()
    #: ``objective.kind: callable``: the absolute path of the run's pickled function.
    callable_file: str | None = None

    @classmethod
    def from_config(cls, config: Config, run_dir: Path | str, island: int = 0) -> EvaluationSpec:
        space = config.search_space()
        callable_file = str(Path(run_dir).resolve() / OBJECTIVE_PICKLE) if config.objective.kind == "callable" \
            else None
        return cls(task=config.task, train=config.train, objective=config.scoring(),
                   tracking=TrackingSpec.from_config(config, run_dir, island),
                   checkpoint=config.backend.name == "slurm", space=space if space.conditions else None,
                   fixed=tuple(config.fixed.items()), callable_file=callable_file)

    def objective_view(self, candidate: Candidate) -> Candidate:
        """``candidate`` as the objective sees it: inactive conditional genes left out, fixed values added
        (the journal keeps the whole chromosome)."""
        if self.space is None and not self.fixed:
            return candidate
        hparams = self.space.active(candidate.hparams) if self.space is not None else dict(candidate.hparams)
        return replace(candidate, hparams={**hparams, **dict(self.fixed)})


def failure_reason(exc: BaseException) -> str:
    """One evaluation's exception as a failed result's reason: the exception's type and message, then where it
    was raised in the user's own files (their last :data:`USER_FRAMES` frames; ours, the standard library's and
    installed packages' are left out, never cut in the middle). A full disk: :data:`DISK_FULL_PREFIX`, the error's
    name and the file, which the driver reads back."""
    if isinstance(exc, OSError) and exc.errno in DISK_FULL:
        return f"{DISK_FULL_PREFIX} {errno.errorcode[exc.errno]} while writing {exc.filename or '?'}"
    if type(exc).__name__ == "UncompletedJobError":
        # submitit's handler for Slurm's pre-timeout signal: the time limit is reached and the task could not
        # be requeued (not checkpointable, or out of requeues).
        return f"{TIMEOUT_PREFIX} time limit reached and not requeued ({exc})"
    message = f"{type(exc).__name__}: {exc}".strip()
    frames = [frame for frame in traceback.extract_tb(exc.__traceback__) if _users(frame.filename)]
    where = "; ".join(f"{Path(frame.filename).name}:{frame.lineno} in {frame.name}"
                      + (f": {frame.line.strip()}" if frame.line else "") for frame in frames[-USER_FRAMES:])
    return f"{message} (at {where})" if where else message


#: How many of the user's frames a failure reason shows (innermost last).
USER_FRAMES = 3
_OURS = Path(__file__).resolve().parent
_LIBRARIES = ("stdlib", "platstdlib", "purelib", "platlib")
_NOT_USERS = tuple(str(Path(root).resolve()) for root in {
    str(_OURS), *(sysconfig.get_paths()[key] for key in _LIBRARIES)})


_FRAME = re.compile(r'\s*File "(?P<file>.+)", line (?P<line>\d+), in (?P<name>.+)')


def reason_from_trace(text: str) -> str:
    """A failure reason from a traceback printed elsewhere (a Slurm task's, in submitit's error): the exception's
    line and the user's last frames, as :func:`failure_reason` gives them; else the text's last line."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")]
    if not starts:
        return next((line.strip() for line in reversed(lines) if line.strip()), "")
    frames: list[str] = []
    message = ""
    for i in range(starts[-1] + 1, len(lines)):
        line = lines[i]
        if not line[:1].isspace():  # the first line back at the margin is the exception's
            message = line.strip()
            break
        match = _FRAME.match(line)
        if match and _users(match["file"]):
            code = lines[i + 1].strip() if i + 1 < len(lines) and not _FRAME.match(lines[i + 1]) else ""
            frames.append(f"{Path(match['file']).name}:{match['line']} in {match['name']}"
                          + (f": {code}" if code else ""))
    where = "; ".join(frames[-USER_FRAMES:])
    return f"{message} (at {where})" if where else message


def _users(filename: str) -> bool:
    """Whether a frame is in the user's own code (not ours, the standard library's or an installed package's)."""
    if filename.startswith("<"):  # <string>, <frozen ...>: nothing the user can open
        return False
    if "/site-packages/" in filename or "/dist-packages/" in filename:  # installed, here or where a task ran
        return False
    path = str(Path(filename).resolve())
    if any(path == root or path.startswith(root + "/") for root in _NOT_USERS):
        return False
    parts = Path(filename).parts  # ours, in the checkout of another machine (a Slurm task's traceback)
    return not any(part == "workflow" and _OURS.joinpath(*parts[i + 1:]).is_file() for i, part in enumerate(parts))


def disk_full(result: Result) -> tuple[int, str] | None:
    """(errno, file) when ``result`` failed because a disk was full (its reason from :func:`failure_reason`)."""
    match = _DISK_FULL_REASON.match(result.reason) if not result.ok else None
    code = getattr(errno, match.group(1), None) if match else None
    return (code, match.group(2)) if match and code in DISK_FULL else None


def run_pack(candidates: Sequence[Candidate], spec: EvaluationSpec, workdir: str) -> list[Result]:
    """One task's work in ``workdir`` (``evals/<name>``, or ``evals/pack-...`` for a pack): one result per
    candidate, in order. Never raises: if the task fails as a whole, every candidate gets the failure.

    The built-in MLP trains a single candidate alone with the Lightning engine, a pack together with the packed
    engine; a user's objective evaluates each candidate in its own ``evals/<name>``.
    """
    start = time.monotonic()
    candidates = [spec.objective_view(c) for c in candidates]
    try:
        if spec.objective.kind == "mlp":
            from workflow.objectives.mlp import evaluate_pack

            mlp_workdir = Path(workdir) if spec.checkpoint or len(candidates) > 1 else None
            return evaluate_pack(candidates, spec.task, spec.train, spec.objective, mlp_workdir, spec.tracking)
        return [_evaluate_one(c, spec, Path(workdir) if len(candidates) == 1 else Path(workdir).parent / c.name)
                for c in candidates]
    except Exception as exc:  # noqa: BLE001 - any failure of an evaluation is data, not a crash
        reason = failure_reason(exc)
        return [Result.failure(c.name, reason, seconds=time.monotonic() - start) for c in candidates]


def _evaluate_one(candidate: Candidate, spec: EvaluationSpec, workdir: Path) -> Result:
    """A user's objective for one candidate; its exception is its own failed result."""
    start = time.monotonic()
    try:
        if spec.objective.kind == "python":
            from workflow.objectives import python

            return python.evaluate(candidate, spec.objective, workdir, spec.tracking)
        if spec.objective.kind == "callable":
            from workflow.objectives import pickled, python

            if spec.objective.path and spec.objective.path not in sys.path:
                sys.path.insert(0, spec.objective.path)
            function = pickled.load(spec.callable_file or pickled.OBJECTIVE_PICKLE)
            return python.evaluate(candidate, spec.objective, workdir, spec.tracking, function=function)
        if spec.objective.kind != "command":
            raise ValueError(f"objective.kind={spec.objective.kind}: evaluated outside the search (study.tell)")
        from workflow.objectives import command

        return command.evaluate(candidate, spec.objective, workdir, spec.tracking)
    except Exception as exc:  # noqa: BLE001 - one evaluation's failure is data
        return Result.failure(candidate.name, failure_reason(exc), seconds=time.monotonic() - start)
