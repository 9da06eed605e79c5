"""``python -m workflow run|resume|status|report ...``: argument parsing and wiring only."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from workflow.checks import preflight
from workflow.config import Config, load_config
from workflow.errors import RunDirError, WorkflowError
from workflow.lock import DriverLock

log = logging.getLogger("workflow")


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
    resume.add_argument("--no-report", action="store_true")
    resume.add_argument("--requeue-on-signal", action="store_true",
                        help="inside a Slurm job: on SIGUSR1/SIGTERM stop cleanly and requeue this job")

    status = sub.add_parser("status", help="show the state of a run directory")
    status.add_argument("run_dir", type=Path)
    status.add_argument("--json", action="store_true", help="print one JSON object")

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


def config_diff(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted ``key: old -> new`` lines for every leaf that differs."""
    lines = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        dotted = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict) and not dotted.endswith("activation_tree"):
            lines.extend(config_diff(a, b, dotted + "."))
        elif a != b:
            lines.append(f"{dotted}: {a!r} -> {b!r}")
    return lines


#: Sections that say where and how evaluations run, not what is searched: changing them on a re-run is safe
#: (e.g. another partition after an allocation ended) and is recorded in the journal.
RUNTIME_SECTIONS = ("backend", "slurm", "tracking")


def _prepare_run_dir(config: Config, run_dir: Path, force: bool = False) -> None:
    from workflow.store import CONFIG, RunStore, atomic_write_text

    if not run_dir.exists():
        RunStore.create(run_dir, config)
        return
    store = RunStore.open(run_dir)
    with DriverLock(run_dir):  # refuse early, before touching anything, if another driver owns the directory
        pass
    old = store.config().to_plain()
    new = config.to_plain()
    diff = config_diff(old, new)
    if not diff:
        log.info("continuing the existing run in %s", run_dir)
        return
    search_diff = [line for line in diff if line.split(".")[0].split(":")[0] not in RUNTIME_SECTIONS]
    if search_diff and not force:
        raise RunDirError(f"run directory {run_dir} exists with a different config ({'; '.join(search_diff)}); "
                          "use another --run-dir, `resume` it with its own config, or --force")
    import yaml

    atomic_write_text(run_dir / CONFIG, yaml.safe_dump(new, sort_keys=False))
    store.append({"event": "config_changed", "diff": diff, "forced": bool(search_diff)})
    log.warning("run directory %s: config changed (%s)", run_dir, "; ".join(diff))


def _setup_logging(run_dir: Path | None) -> None:
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    if not any(isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
               for h in root.handlers):
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(fmt)
        console.setLevel(logging.WARNING if sys.stderr.isatty() else logging.INFO)
        root.addHandler(console)
    if run_dir is not None:
        handler = logging.FileHandler(run_dir / "driver.log")
        handler.setFormatter(fmt)
        root.addHandler(handler)


class DriverSignal(BaseException):
    """Raised in the main thread when the driver is told to stop (Slurm's pre-timeout signal, scancel)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_signal(signum: int, frame: object) -> None:
    raise DriverSignal(signum)


def _search(config: Config, run_dir: Path, write_report: bool, requeue_on_signal: bool = False) -> int:
    from workflow.driver import run_search
    from workflow.progress import LogProgress, Progress, RichProgress

    _setup_logging(run_dir)
    for signum in (signal.SIGTERM, signal.SIGUSR1):
        signal.signal(signum, _raise_signal)
    progress: Progress = RichProgress() if sys.stderr.isatty() else LogProgress()
    try:
        summary = run_search(config, run_dir, progress=progress)
    except DriverSignal as stop:
        # Every event is already durable in the journal: nothing to flush beyond what the lock release did.
        log.warning("driver stopped by %s; the run directory is consistent", stop)
        job_id = os.environ.get("SLURM_JOB_ID")
        if requeue_on_signal and job_id:
            import subprocess

            subprocess.run(["scontrol", "requeue", job_id], check=False)
            log.warning("requeued Slurm job %s: the driver resumes when it starts again", job_id)
            return 0
        print(f"stopped by {stop}: continue with `python -m workflow resume {run_dir}`", file=sys.stderr)
        return 3
    if write_report:
        from workflow.report import write_report as write

        write(run_dir)
    best = summary.best
    best_text = f"{best.candidate.name} fitness {best.fitness:.5g} {best.candidate.hparams.to_dict()}" if best \
        else "none (every evaluation failed)"
    print(f"finished: {summary.evaluations} evaluations ({summary.failed} failed) in {run_dir}; best {best_text}")
    return 0


def _islands(config: Config, run_dir: Path, argv: Sequence[str], create: bool,
             prepare: object | None = None) -> int:
    from workflow.islands.launch import mpi_world_size, relaunch_under_mpi, run_islands_here

    if config.islands.count < 2:
        raise WorkflowError(f"config error: islands.count={config.islands.count}: the island model needs >= 2; "
                            "use `run` for one population")
    if mpi_world_size() == 1:
        return relaunch_under_mpi(config, argv)
    return run_islands_here(config, run_dir, create, prepare)


def _detach(run_dir: Path) -> int:
    """Start ``resume RUN_DIR`` in its own session, surviving the login shell; output to driver.out."""
    import subprocess

    with open(run_dir / "driver.out", "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "workflow", "resume", str(run_dir)],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
    print(f"driver started (pid {proc.pid}), logging to {run_dir}/driver.log")
    print(f"follow it with:  python -m workflow status {run_dir}")
    print(f"if it stops (logout, reboot), continue with:  python -m workflow resume {run_dir}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    # Overrides may also follow options (`run CONFIG --run-dir D key=value`); anything else is an error.
    if extra and (not hasattr(args, "overrides") or any(item.startswith("-") for item in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    try:
        if args.command == "run":
            config = load_config(args.config, args.overrides)
            if config.islands.count > 1:
                raise WorkflowError(f"config error: islands.count={config.islands.count}: the island model runs "
                                    f"with `python -m workflow islands {args.config}`")
            preflight(config)
            run_dir = args.run_dir or Path("runs") / config.name
            _prepare_run_dir(config, run_dir, force=args.force)
            return _search(config, run_dir, not args.no_report, args.requeue_on_signal)
        if args.command == "submit":
            config = load_config(args.config, ["backend.name=slurm", *args.overrides])
            preflight(config)
            run_dir = args.run_dir or Path("runs") / config.name
            _prepare_run_dir(config, run_dir)
            return _detach(run_dir)
        if args.command == "islands":
            config = load_config(args.config, args.overrides)
            preflight(config)
            run_dir = args.run_dir or Path("runs") / config.name
            return _islands(config, run_dir, argv if argv is not None else sys.argv[1:], create=True,
                            prepare=lambda: _prepare_run_dir(config, run_dir, force=args.force))
        if args.command == "resume":
            from workflow.islands.runner import parent_of
            from workflow.store import RunStore

            parent = parent_of(RunStore.open(args.run_dir).run_dir)
            if parent is not None:  # one island's directory: the island job resumes as a whole
                args.run_dir = parent
                argv = ["resume", str(parent)]
            config = RunStore.open(args.run_dir).config()
            preflight(config)
            if config.islands.count > 1:
                return _islands(config, args.run_dir, argv if argv is not None else sys.argv[1:], create=False)
            return _search(config, args.run_dir, not args.no_report, args.requeue_on_signal)
        if args.command == "status":
            from workflow.status import print_status, run_status

            status = run_status(args.run_dir)
            if args.json:
                print(json.dumps(status))
            else:
                print_status(status)
            return 0
        if args.command == "report":
            from workflow.report import write_report

            for path in write_report(args.run_dir):
                print(path)
            return 0
        if args.command == "sync":
            from workflow.summary import sync_run_dir

            return sync_run_dir(args.run_dir, dry_run=args.dry_run)
        if args.command == "summary":
            from workflow.summary import print_summary

            return print_summary(args.run_dir, as_json=args.json)
        if args.command == "compare":
            from workflow.compare import run_comparison

            config = load_config(args.config, args.overrides)
            preflight(config)
            _setup_logging(None)
            out_dir = args.run_dir or Path("runs") / f"{config.name}-compare"
            outcome = run_comparison(config, args.optimizers.split(","), args.seeds, out_dir)
            print(Path(outcome["files"]["summary_md"]).read_text())
            print("\n".join(outcome["files"].values()))
            return 0
    except WorkflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the run directory is consistent; continue with `resume`", file=sys.stderr)
        return 130
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
