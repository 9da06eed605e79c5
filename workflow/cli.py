"""``python -m workflow <command> ...``: argument parsing and a dispatch table, nothing else.

Every command checks what it is given (config, overrides, files, the cluster) before it creates or submits
anything; a refusal is one line on stderr and exit status 2 (3: stopped by a signal; 4: the search stopped
early, resumable; 5: a full disk, ENOSPC or EDQUOT, stopped it, resumable once space is freed; 6: finished
without a successful evaluation; 130: Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from workflow.cluster import sinfo_once
from workflow.config import Config, load_config
from workflow.errors import DISK_FULL, DiskFullError, WorkflowError
from workflow.preflight import preflight
from workflow.store.layout import JOURNAL, resume_command
from workflow.store.rundir import RUNTIME_SECTIONS, prepare_run_dir


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m workflow",
                                     description="Genetic-algorithm hyperparameter search on Slurm.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="start (or continue) a search from a config file")
    run.add_argument("config", type=Path)
    run.add_argument("overrides", nargs="*", help="dotted overrides, e.g. optimizer.generations=3")
    run.add_argument("--run-dir", type=Path, help="run directory (default runs/<name>)")
    run.add_argument("--no-report", action="store_true", help="do not write report/ at the end")
    run.add_argument("--force", action="store_true",
                     help="continue a run directory even though the search-defining config changed")
    run.add_argument("--requeue-on-signal", action="store_true",
                     help="inside a Slurm job: on SIGUSR1/SIGTERM stop cleanly and requeue this job")

    submit = sub.add_parser("submit", help="start a detached driver that runs the search on Slurm")
    submit.add_argument("config", type=Path)
    submit.add_argument("overrides", nargs="*", help="dotted overrides, e.g. slurm.partition=gpu2")
    submit.add_argument("--run-dir", type=Path, help="run directory (default runs/<name>)")

    islands = sub.add_parser("islands", help="run the island model: one GA population per MPI rank")
    islands.add_argument("config", type=Path)
    islands.add_argument("overrides", nargs="*", help="dotted overrides, e.g. islands.count=3")
    islands.add_argument("--run-dir", type=Path, help="parent run directory (default runs/<name>)")
    islands.add_argument("--force", action="store_true")

    resume = sub.add_parser("resume", help="continue a search from its run directory")
    resume.add_argument("run_dir", type=Path)
    resume.add_argument("overrides", nargs="*",
                        help=f"runtime overrides ({', '.join(RUNTIME_SECTIONS)} sections), e.g. backend.timeout_s=900; "
                             "optimizer.generations=N (more than the run's) extends a finished or stopped run")
    resume.add_argument("--no-report", action="store_true")
    resume.add_argument("--retry-failed", action="store_true",
                        help="evaluate every failed evaluation again first (same names, the next attempt)")
    resume.add_argument("--requeue-on-signal", action="store_true",
                        help="inside a Slurm job: on SIGUSR1/SIGTERM stop cleanly and requeue this job")

    status = sub.add_parser("status", help="show the state of a run directory")
    status.add_argument("run_dir", type=Path)
    status.add_argument("--json", action="store_true", help="print one JSON object")

    best = sub.add_parser("best", help="the best evaluation: hparams, metrics, seed and workdir (to re-train it)")
    best.add_argument("run_dir", type=Path)
    best.add_argument("--json", action="store_true", help="print one JSON object")

    report = sub.add_parser("report", help="write figures and tables to RUN_DIR/report/")
    report.add_argument("run_dir", type=Path)

    sync = sub.add_parser("sync", help="upload the offline W&B runs of a run directory (skips uploaded ones)")
    sync.add_argument("run_dir", type=Path)
    sync.add_argument("--dry-run", action="store_true", help="only list what would be uploaded")

    summary = sub.add_parser("summary", help="the W&B summaries of a run directory as a table "
                                             "(RUN_DIR/wandb_summary.csv and .md)")
    summary.add_argument("run_dir", type=Path)
    summary.add_argument("--json", action="store_true", help="print the rows as JSON")

    compare = sub.add_parser("compare", help="run several optimizers with the same budget and seeds; "
                                             "write DIR/compare/ (table, plot, merged top ten)")
    compare.add_argument("config", type=Path)
    compare.add_argument("overrides", nargs="*", help="dotted overrides, e.g. optimizer.generations=3")
    compare.add_argument("--optimizers", default="ga,bo,random", help="comma-separated (default ga,bo,random)")
    compare.add_argument("--seeds", type=int, default=3, help="N seeds: config seed, seed+1, ... (default 3)")
    compare.add_argument("--run-dir", type=Path, help="directory of the runs (default runs/<name>-compare)")
    return parser


def _run_dir(args: argparse.Namespace, config: Config, suffix: str = "") -> Path:
    return Path(args.run_dir or Path("runs") / f"{config.name}{suffix}")


def cmd_run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from workflow.api import start

    _, code = start(config=args.config, overrides=args.overrides, run_dir=args.run_dir, force=args.force,
                    write_report=not args.no_report, requeue_on_signal=args.requeue_on_signal,
                    on_run_dir=lambda path: setattr(args, "resume_dir", path))
    return code


def cmd_submit(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from workflow.api import start

    _, code = start(config=args.config, overrides=["backend.name=slurm", *args.overrides], run_dir=args.run_dir,
                    detach=True, on_run_dir=lambda path: setattr(args, "resume_dir", path))
    return code


def cmd_islands(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from workflow.session import drive_islands

    config = load_config(args.config, args.overrides)
    preflight(config)
    run_dir = args.resume_dir = _run_dir(args, config)
    return drive_islands(config, run_dir, argv, create=True,
                         prepare=lambda: prepare_run_dir(config, run_dir, force=args.force))


def cmd_resume(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from workflow.api import resume_run

    return resume_run(args.run_dir, overrides=args.overrides, write_report=not args.no_report,
                      requeue_on_signal=args.requeue_on_signal, retry_failed=args.retry_failed,
                      on_run_dir=lambda path: setattr(args, "resume_dir", path))


def cmd_status(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from workflow.status import print_status, run_status

    status = run_status(args.run_dir)
    if args.json:
        print(json.dumps(status))
    else:
        print_status(status)
    return 0


def cmd_best(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from workflow.status import best_evaluation, print_best

    best = best_evaluation(args.run_dir)
    if args.json:
        print(json.dumps(best))
    else:
        print_best(best)
    return 0


def cmd_report(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from workflow.report import write_report

    for path in write_report(args.run_dir):
        print(path)
    return 0


def cmd_sync(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from workflow.wandb_driver.sync import sync_run_dir

    return sync_run_dir(args.run_dir, dry_run=args.dry_run)


def cmd_summary(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from workflow.wandb_driver.summary import print_summary

    return print_summary(args.run_dir, as_json=args.json)


def cmd_compare(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from workflow.api import resolve
    from workflow.compare import run_comparison
    from workflow.logs import log_to_console

    config = resolve(config=args.config, overrides=args.overrides)
    preflight(config)
    log_to_console()
    outcome = run_comparison(config, args.optimizers.split(","), args.seeds, _run_dir(args, config, "-compare"))
    print(Path(outcome["files"]["summary_md"]).read_text())
    print("\n".join(outcome["files"].values()))
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace, Sequence[str]], int]] = {
    "run": cmd_run, "submit": cmd_submit, "islands": cmd_islands, "resume": cmd_resume, "status": cmd_status,
    "best": cmd_best, "report": cmd_report, "sync": cmd_sync, "summary": cmd_summary, "compare": cmd_compare,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args, extra = parser.parse_known_args(argv)
    # Overrides may also follow options (`run CONFIG --run-dir D key=value`); anything else is an error.
    if extra and (not hasattr(args, "overrides") or any(item.startswith("-") for item in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    try:
        with sinfo_once():  # the pre-flight check and the backend share one answer
            return COMMANDS[args.command](args, argv)
    except OSError as exc:
        if exc.errno not in DISK_FULL:
            raise
        run_dir = getattr(args, "resume_dir", None)
        error = disk_full_error(DiskFullError(exc.filename or run_dir or "?", exc.errno), run_dir)
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except WorkflowError as exc:
        if isinstance(exc, DiskFullError):
            exc = disk_full_error(exc, getattr(args, "resume_dir", None))
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(interrupted_message(getattr(args, "resume_dir", None)), file=sys.stderr)
        return 130


def disk_full_error(error: DiskFullError, run_dir: Path | None) -> DiskFullError:
    """``error`` naming the command that continues ``run_dir``, when there is a run to continue (any write
    of the driver may meet the full disk; only the store's own writes know their run directory)."""
    if run_dir is None or not (Path(run_dir) / JOURNAL).exists():
        return error
    return error.with_resume(resume_command(run_dir))


def interrupted_message(run_dir: Path | None) -> str:
    """The one line printed on Ctrl-C: the exact command that continues the run, when there is one to continue.

    ``run_dir`` is set by the commands that drive a run once they know their run directory; None before that
    (or for commands that drive nothing).
    """
    if run_dir is None:
        return "interrupted"
    if not (Path(run_dir) / JOURNAL).exists():
        return f"interrupted before the run directory {run_dir} was created; nothing to resume"
    return f"interrupted: the run directory is consistent; continue with `{resume_command(run_dir)}`"


if __name__ == "__main__":
    sys.exit(main())
