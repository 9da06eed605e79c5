"""The driver as a process: logging, signals, requeueing its own Slurm job, detaching, the end-of-run line.

``run``, ``resume`` and ``submit`` end up here; the search itself is :func:`workflow.driver.run_search`.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from workflow.config import Config
from workflow.driver import Observer, RunSummary, run_search
from workflow.errors import WorkflowError
from workflow.logs import log_to_console, log_to_file
from workflow.progress import LogProgress, RichProgress
from workflow.stopping import DriverSignal, forget_stop, stop_on
from workflow.store.layout import DRIVER_LOG, resume_command
from workflow.wandb_driver.experiment import with_tracking

log = logging.getLogger("workflow")

#: Exit status of a driver stopped by a signal without requeueing itself.
STOPPED_BY_SIGNAL = 3
#: Exit status of a search that finished without one successful evaluation (4: stopped early, resumable).
NO_SUCCESS = 6


#: Signals that stop a driver cleanly.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


def drive(config: Config, run_dir: Path, *, write_report: bool, requeue_on_signal: bool = False,
          retry_failed: bool = False) -> int:
    """Run the search in ``run_dir`` in this process; the exit status of the command.

    The log file and the signal handlers are this run's only: a Python session that runs several searches
    (:func:`workflow.search`) gets its own handlers back after each.
    """
    log_to_console()
    handler = log_to_file(run_dir / DRIVER_LOG)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS} if main_thread else {}
    if main_thread:
        stop_on(STOP_SIGNALS)
    try:
        return _drive(config, run_dir, write_report=write_report, requeue_on_signal=requeue_on_signal,
                      retry_failed=retry_failed)
    finally:
        if handler is not None:  # (None where a test leaves the process-wide set-up out)
            logging.getLogger().removeHandler(handler)
            handler.close()
        for signum, old in previous.items():
            signal.signal(signum, old)


def _drive(config: Config, run_dir: Path, *, write_report: bool, requeue_on_signal: bool,
           retry_failed: bool) -> int:
    progress: Observer = RichProgress() if sys.stderr.isatty() else LogProgress()
    try:
        summary = run_search(config, run_dir, observers=with_tracking(config, run_dir, [progress]),
                             retry_failed=retry_failed)
    except DriverSignal as stop:
        forget_stop()
        # Every event is already durable in the journal: nothing to flush beyond what the lock release did.
        log.warning("driver stopped by %s; the run directory is consistent", stop)
        job_id = os.environ.get("SLURM_JOB_ID")
        if requeue_on_signal and job_id:
            subprocess.run(["scontrol", "requeue", job_id], check=False)
            log.warning("requeued Slurm job %s: the driver resumes when it starts again", job_id)
            return 0
        print(f"stopped by {stop}: continue with `{resume_command(run_dir)}`", file=sys.stderr)
        return STOPPED_BY_SIGNAL
    if write_report:
        from workflow.report import write_report as write

        write(run_dir)
    return finished_lines(summary)


def finished_lines(summary: RunSummary) -> int:
    """The end of a search: one line on stdout, and on stderr one more when evaluations failed; the exit status
    (:data:`NO_SUCCESS` when none succeeded, and then the one line says why, on stderr)."""
    run_dir, best = summary.run_dir, summary.best
    why = f"most common reason ({summary.reason_hits} of {summary.failed}): {summary.reason}"
    retry = f"`{resume_command(run_dir)} --retry-failed`"
    if best is None:
        print(f"error: finished without a successful evaluation ({summary.failed} of {summary.evaluations} "
              f"failed) in {run_dir}; {why}; fix the cause, then {retry}", file=sys.stderr)
        return NO_SUCCESS
    print(f"finished: {summary.evaluations} evaluations ({summary.failed} failed) in {run_dir}; best "
          f"{best.candidate.name} fitness {best.fitness:.5g} {best.candidate.hparams}")
    if summary.failed:
        print(f"warning: {summary.failed} of {summary.evaluations} evaluations failed; {why}; evaluate them "
              f"again with {retry}", file=sys.stderr)
    return 0


def drive_islands(config: Config, run_dir: Path, argv: Sequence[str], create: bool,
                  prepare: Callable[[], object] | None = None) -> int:
    """Run the island model: as one MPI rank when started under MPI, else relaunched under ``mpiexec``."""
    from workflow.islands.launch import mpi_world_size, relaunch_under_mpi, run_islands_here

    if config.islands.count < 2:
        raise WorkflowError(f"config error: islands.count={config.islands.count}: the island model needs >= 2; "
                            "use `run` for one population")
    if mpi_world_size() == 1:
        return relaunch_under_mpi(config, argv)
    return run_islands_here(config, run_dir, create, prepare)


def detach(run_dir: Path) -> int:
    """Start ``resume RUN_DIR`` in its own session, surviving the login shell; output to driver.out."""
    with open(run_dir / "driver.out", "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "workflow", "resume", str(run_dir)],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
    print(f"driver started (pid {proc.pid}), logging to {run_dir}/{DRIVER_LOG}")
    print(f"follow it with:  python -m workflow status {run_dir}")
    print(f"if it stops (logout, reboot), continue with:  python -m workflow resume {run_dir}")
    return 0
