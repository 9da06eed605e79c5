"""W&B on the compute side: one run per evaluation, opened where the evaluation runs.

Every objective kind and trainer engine wraps its evaluation in :func:`tracked_evaluation`, the one place that
opens the evaluation's run (fixed id, ``resume="allow"``), closes it with the final summary, or as failed with
the exception's reason when the evaluation raises. Inside, an :class:`EvaluationTracker` logs one row per
epoch. Any W&B trouble is logged once and training goes on without tracking. ``wandb`` is imported inside
functions only: with ``tracking.mode=disabled`` nothing here runs at all.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from workflow.records import Candidate, Result
from workflow.tracking.spec import FITNESS_KEY, STATUS_KEY, TrackingSpec, log, redact, warn

if TYPE_CHECKING:
    from pydantic import BaseModel


def _settings(**extra: Any) -> Any:
    import wandb

    # No code, no git state, no console capture (workers print nothing useful, and captured output could
    # hold anything); wandb's other records (config, metrics, host, python, argv) hold no environment values.
    return wandb.Settings(console="off", save_code=False, disable_git=True, silent=True, use_dot_wandb=False,
                          **extra)


def init_run(spec: TrackingSpec, *, run_id: str, name: str, job_type: str, config: Mapping[str, Any],
              save_requirements: bool = False) -> Any:
    """``wandb.init`` for one run under ``spec.dir``; online falls back to offline when init fails."""
    # wandb silently falls back to /tmp when it cannot create its directory; the driver would never find
    # the run there, so an unusable directory is an error here.
    Path(spec.dir).mkdir(parents=True, exist_ok=True)
    if not os.access(spec.dir, os.W_OK):
        raise PermissionError(f"{spec.dir} is not writable")
    import wandb

    mode = spec.mode
    if mode == "online":
        # Compute nodes often have no internet; wandb.init would wait init_timeout (90 s) to find out.
        why = reachable(base_url(), timeout=5.0)
        if why is not None:
            log.warning("W&B: cannot reach %s (%s); logging %s offline under %s (upload later with "
                        "`python -m workflow sync`)", base_url(), why, run_id, spec.dir)
            mode = "offline"
    kwargs: dict[str, Any] = {
        "project": spec.project, "entity": spec.entity, "group": spec.group, "name": name, "id": run_id,
        "job_type": job_type, "config": dict(config), "resume": "allow", "dir": str(spec.root),
        "reinit": "finish_previous",
        "settings": _settings(x_save_requirements=save_requirements),
    }
    try:
        return wandb.init(mode=mode, **kwargs)
    except Exception as exc:
        if mode != "online":
            raise
        log.warning("W&B: online init of %s failed (%s: %s); logging it offline under %s instead "
                    "(upload later with `python -m workflow sync`)", run_id, type(exc).__name__,
                    redact(str(exc)).strip().splitlines()[0][:300] if str(exc).strip() else "", spec.dir)
        return wandb.init(mode="offline", **kwargs)


def evaluation_config(candidate: Candidate, task: BaseModel | None = None,
                      train: BaseModel | None = None) -> dict[str, Any]:
    """The W&B config of an evaluation: its hyperparameters (top level) and where it came from."""
    config: dict[str, Any] = {**candidate.hparams, "name": candidate.name,
                              "generation": candidate.generation, "index": candidate.index,
                              "search": candidate.optimizer, "island": candidate.island, "seed": candidate.seed}
    if task is not None:
        config["task"] = task.model_dump(mode="json")
    if train is not None:
        config["train"] = train.model_dump(mode="json")
    return config


def result_summary(result: Result) -> dict[str, Any]:
    """The final summary of an evaluation's run: status, fitness, the result's metrics, seconds."""
    summary: dict[str, Any] = {STATUS_KEY: result.status, "seconds": round(result.seconds, 3)}
    if result.ok and math.isfinite(result.fitness):
        summary[FITNESS_KEY] = result.fitness
        summary.update(result.metrics)
    else:
        summary["reason"] = redact(result.reason)[:500]
    return summary


def _process_rank() -> int:
    """This process's rank when several processes train one evaluation (DDP started by srun/torchrun)."""
    for name in ("RANK", "SLURM_PROCID"):
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 0


@contextmanager
def tracked_evaluation(spec: TrackingSpec | None, candidate: Candidate, task: BaseModel | None = None,
                       train: BaseModel | None = None) -> Iterator[EvaluationTracker]:
    """``candidate``'s W&B run around the block that evaluates it: opened on entry, closed on the way out.

    The block logs epochs with ``tracker.log_epoch`` and gives its result to ``tracker.set_result``; leaving the
    block closes the run with that result as the final summary. When the block raises, the run is closed as
    failed with the exception's reason (``<type>: <message>``) and the exception goes on unchanged. Nothing
    here raises because of W&B: its first error is logged once and the rest of the run goes untracked. With
    ``spec`` None (tracking disabled) nothing is imported or written.
    """
    tracker = EvaluationTracker.start(spec, candidate, task, train)
    try:
        yield tracker
    except BaseException as exc:
        tracker.finish(Result.failure(candidate.name, f"{type(exc).__name__}: {exc}"))
        raise
    result = tracker.result
    tracker.finish(result if result is not None else
                   Result.failure(candidate.name, "the evaluation gave its W&B run no result"))


class EvaluationTracker:
    """One evaluation's W&B run, as :func:`tracked_evaluation` yields it. Never raises: after the first W&B
    error it logs a warning and goes quiet.

    ``EvaluationTracker.start(None, ...)`` (tracking disabled) imports nothing and does nothing; neither does
    it on ranks other than 0 when several processes train one evaluation (only rank 0 logs).
    """

    def __init__(self, run: Any | None = None) -> None:
        self._run = run
        #: What the evaluation returned (:meth:`set_result`): the run's final summary.
        self.result: Result | None = None

    @property
    def active(self) -> bool:
        return self._run is not None

    def set_result(self, result: Result) -> None:
        """The evaluation's result, written as the run's final summary when :func:`tracked_evaluation` ends."""
        self.result = result

    @classmethod
    def start(cls, spec: TrackingSpec | None, candidate: Candidate, task: BaseModel | None = None,
              train: BaseModel | None = None) -> EvaluationTracker:
        """Open the run (use :func:`tracked_evaluation`, which also closes it)."""
        if spec is None or _process_rank() != 0:
            return cls(None)
        try:
            run = init_run(spec, run_id=spec.run_id(candidate.name, candidate.island), name=candidate.name,
                            job_type="evaluation", config=evaluation_config(candidate, task, train))
            # Epochs, not W&B steps, on the x axis: a requeued evaluation's rows continue its epochs.
            run.define_metric("epoch")
            run.define_metric("*", step_metric="epoch")
        except Exception as exc:  # noqa: BLE001 - W&B must never fail a training
            warn(f"starting the run of {candidate.name}", exc)
            return cls(None)
        return cls(run)

    def log_epoch(self, metrics: Mapping[str, float], epoch: int) -> None:
        if self._run is None:
            return
        try:
            self._run.log({**{k: float(v) for k, v in metrics.items()}, "epoch": epoch})
        except Exception as exc:  # noqa: BLE001
            self._abandon("logging an epoch", exc)

    def finish(self, result: Result) -> None:
        """Write the final summary and close the run (exit code 1 for a failed result); called by
        :func:`tracked_evaluation` on its way out."""
        if self._run is None:
            return
        try:
            self._run.summary.update(result_summary(result))
            self._run.finish(exit_code=0 if result.ok else 1)
        except Exception as exc:  # noqa: BLE001
            self._abandon("finishing the run", exc)
        self._run = None

    def _abandon(self, what: str, exc: BaseException) -> None:
        warn(what, exc)
        run, self._run = self._run, None
        try:
            if run is not None:
                run.finish(exit_code=1)
        except Exception:  # noqa: BLE001, S110 - already warned; the run is given up
            pass


def base_url() -> str:
    try:
        from wandb.sdk import wandb_setup

        return str(wandb_setup.singleton().settings.base_url)
    except Exception:  # noqa: BLE001
        return os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")


def reachable(url: str, timeout: float) -> str | None:
    """None when a TCP connection to ``url``'s host opens, else why not."""
    import socket

    parsed = urlparse(url)
    host = parsed.hostname or ""
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror or exc}"
