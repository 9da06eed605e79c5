"""Weights & Biases: one run per evaluation, written where the evaluation runs, collected after the jobs finish.

The only module that imports ``wandb``, and only inside functions: importing this module is cheap, and with
``tracking.mode=disabled`` nothing here runs at all (:meth:`TrackingSpec.from_config` returns None).

- Compute side: :class:`EvaluationTracker` opens the evaluation's run (fixed id, ``resume="allow"``), logs one
  row per epoch and the final summary. Any W&B trouble is logged once and training goes on without tracking.
- Driver side: :func:`after_batch` collects the batch's summaries (offline run files or the W&B API), compares
  them with the results the jobs returned, journals the check and updates the experiment-level run.
- Offline files: :func:`offline_records` reads each run's ``.wandb`` transaction log with wandb's own reader
  (``wandb leet inspect --summary --json``); :func:`sync` uploads them with ``wandb sync``.

The API key is never read here except to check that one exists (and to redact it from warning texts): wandb
takes it from ``WANDB_API_KEY`` or netrc itself. Run ids are ``<tag>-<evaluation name>``, where the tag
identifies the run directory (its creation record in the journal), so a requeued evaluation and a resumed
driver reuse the ids, while a new run directory at the same path does not append to old runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

from workflow.errors import WorkflowError
from workflow.records import Candidate, Result

if TYPE_CHECKING:
    from pydantic import BaseModel

    from workflow.config import Config
    from workflow.store import RunState, RunStore

log = logging.getLogger(__name__)

#: W&B's directory inside the run directory (wandb's own name for it: ``<root>/wandb``).
WANDB_DIRNAME = "wandb"
EXPERIMENT = "experiment"
#: Summary keys written by :meth:`EvaluationTracker.finish` (besides the result's metrics).
STATUS_KEY, FITNESS_KEY = "status", "fitness"
#: Seconds one ``leet inspect`` of a run file may take.
INSPECT_TIMEOUT_S = 60.0
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_MAX_ID = 64


class TrackingError(WorkflowError):
    """W&B data cannot be read or uploaded as asked."""


# ------------------------------------------------------------------------------------------- the spec


@dataclass(frozen=True)
class TrackingSpec:
    """Everything a process needs to log an evaluation to W&B (picklable, no secrets).

    ``dir`` is W&B's directory inside the run directory (``RUN_DIR/wandb``): offline runs live in
    ``dir/offline-run-<time>-<id>/``. ``tag`` identifies the run directory and prefixes every run id.
    """

    mode: Literal["offline", "online"]
    project: str
    entity: str | None
    group: str
    dir: str
    tag: str

    def __post_init__(self) -> None:
        if Path(self.dir).name != WANDB_DIRNAME:
            raise ValueError(f"TrackingSpec.dir must end in /{WANDB_DIRNAME} (wandb appends it to its root)")

    @classmethod
    def from_config(cls, config: Config, run_dir: Path | str, island: int = 0) -> TrackingSpec | None:
        """The spec for ``config.tracking`` in ``run_dir``; None when tracking is disabled."""
        tracking = config.tracking
        if tracking.mode == "disabled":
            return None
        root = Path(run_dir).resolve()
        created = _created_record(root)
        island = island or int(created.get("island", 0))  # an island's run directory records its index
        group = config.name if island <= 0 else f"{config.name}-island{island}"
        return cls(mode=tracking.mode, project=tracking.project, entity=tracking.entity, group=group,
                   dir=str(root / WANDB_DIRNAME), tag=run_dir_tag(root, created))

    @property
    def root(self) -> Path:
        return Path(self.dir).parent

    def run_id(self, name: str, island: int = 0) -> str:
        return make_run_id(self.tag, name, island)

    @property
    def experiment_id(self) -> str:
        return f"{self.tag}-{EXPERIMENT}"


def _created_record(root: Path) -> dict[str, Any]:
    """The journal's first record when it is the ``created`` one, else {}."""
    try:
        with open(root / "journal.jsonl", "rb") as handle:
            first = json.loads(handle.readline())
    except (OSError, ValueError):
        return {}
    return first if isinstance(first, dict) and first.get("event") == "created" else {}


def run_dir_tag(run_dir: Path | str, created: Mapping[str, Any] | None = None) -> str:
    """Eight hex digits identifying a run directory, the same from every process and after a resume.

    Derived from the journal's ``created`` record (name, time, pid), which travels with the directory:
    moving it keeps the ids, and a directory deleted and created again at the same path gets new ones (it must
    not resume the old runs on the W&B server). Without a journal, the absolute path is used.
    """
    root = Path(run_dir).resolve()
    created = _created_record(root) if created is None else created
    if created:
        identity = f"created:{created.get('name')}:{created.get('t')}:{created.get('pid')}"
    else:
        identity = f"path:{root}"
    return hashlib.sha256(identity.encode()).hexdigest()[:8]


def make_run_id(tag: str, name: str, island: int = 0) -> str:
    """``<tag>-<name>`` (``<tag>-i<k>-<name>`` for island k > 0), as a valid W&B id: [A-Za-z0-9_-], <= 64."""
    prefix = f"{tag}-" if island <= 0 else f"{tag}-i{island}-"
    safe = _ID_UNSAFE.sub("_", name)
    if safe != name or len(prefix) + len(safe) > _MAX_ID:
        # Keep ids distinct for names that differ only in replaced characters or beyond the length limit.
        digest = hashlib.sha256(name.encode()).hexdigest()[:6]
        safe = f"{safe[: _MAX_ID - len(prefix) - 7]}_{digest}"
    return prefix + safe


def _redact(text: str) -> str:
    """``text`` with the API key (if one is in the environment) replaced: warnings end up in run-dir logs."""
    key = os.environ.get("WANDB_API_KEY", "")
    return text.replace(key, "***") if len(key) >= 8 else text


def _warn(what: str, exc: BaseException) -> None:
    log.warning("W&B: %s failed (%s: %s); continuing without it", what, type(exc).__name__,
                _redact(str(exc)).strip().splitlines()[0][:300] if str(exc).strip() else "")


# --------------------------------------------------------------------------------------- opening a run


def _settings(**extra: Any) -> Any:
    import wandb

    # No code, no git state, no console capture (workers print nothing useful, and captured output could
    # hold anything); wandb's other records (config, metrics, host, python, argv) hold no environment values.
    return wandb.Settings(console="off", save_code=False, disable_git=True, silent=True, use_dot_wandb=False,
                          **extra)


def _init_run(spec: TrackingSpec, *, run_id: str, name: str, job_type: str, config: Mapping[str, Any],
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
        why = _reachable(_base_url(), timeout=5.0)
        if why is not None:
            log.warning("W&B: cannot reach %s (%s); logging %s offline under %s (upload later with "
                        "`python -m workflow sync`)", _base_url(), why, run_id, spec.dir)
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
                    _redact(str(exc)).strip().splitlines()[0][:300] if str(exc).strip() else "", spec.dir)
        return wandb.init(mode="offline", **kwargs)


def evaluation_config(candidate: Candidate, task: BaseModel | None = None,
                      train: BaseModel | None = None) -> dict[str, Any]:
    """The W&B config of an evaluation: its hyperparameters (top level) and where it came from."""
    config: dict[str, Any] = {**candidate.hparams.to_dict(), "name": candidate.name,
                              "generation": candidate.generation, "index": candidate.index,
                              "optimizer": candidate.optimizer, "island": candidate.island, "seed": candidate.seed}
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
        summary["reason"] = _redact(result.reason)[:500]
    return summary


def _process_rank() -> int:
    """This process's rank when several processes train one evaluation (DDP started by srun/torchrun)."""
    for name in ("RANK", "SLURM_PROCID"):
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 0


class EvaluationTracker:
    """One evaluation's W&B run. Never raises: after the first W&B error it logs a warning and goes quiet.

    ``EvaluationTracker.start(None, ...)`` (tracking disabled) imports nothing and does nothing; neither does
    it on ranks other than 0 when several processes train one evaluation (only rank 0 logs).
    """

    def __init__(self, run: Any | None = None) -> None:
        self._run = run

    @property
    def active(self) -> bool:
        return self._run is not None

    @classmethod
    def start(cls, spec: TrackingSpec | None, candidate: Candidate, task: BaseModel | None = None,
              train: BaseModel | None = None) -> EvaluationTracker:
        if spec is None or _process_rank() != 0:
            return cls(None)
        try:
            run = _init_run(spec, run_id=spec.run_id(candidate.name, candidate.island), name=candidate.name,
                            job_type="evaluation", config=evaluation_config(candidate, task, train))
            # Epochs, not W&B steps, on the x axis: a requeued evaluation's rows continue its epochs.
            run.define_metric("epoch")
            run.define_metric("*", step_metric="epoch")
        except Exception as exc:  # noqa: BLE001 - W&B must never fail a training
            _warn(f"starting the run of {candidate.name}", exc)
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
        """Write the final summary and close the run (exit code 1 for a failed result)."""
        if self._run is None:
            return
        try:
            self._run.summary.update(result_summary(result))
            self._run.finish(exit_code=0 if result.ok else 1)
        except Exception as exc:  # noqa: BLE001
            self._abandon("finishing the run", exc)
        self._run = None

    def fail(self, reason: str) -> None:
        """Close the run after training raised (the worker turns the exception into a failed result)."""
        self.finish(Result.failure("", reason))

    def _abandon(self, what: str, exc: BaseException) -> None:
        _warn(what, exc)
        run, self._run = self._run, None
        try:
            if run is not None:
                run.finish(exit_code=1)
        except Exception:  # noqa: BLE001, S110 - already warned; the run is given up
            pass


# ------------------------------------------------------------------------------------- reading runs back


@dataclass(frozen=True)
class RunRecord:
    """What W&B holds for one run: its final state, config and summary."""

    run_id: str
    name: str
    state: str
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    start_time: str = ""
    source: str = ""

    @property
    def complete(self) -> bool:
        """The run reached its final summary (a killed task leaves a run without one)."""
        return STATUS_KEY in self.summary


def offline_files(wandb_dir: Path | str) -> dict[str, list[Path]]:
    """{run id: its offline ``.wandb`` files}, one per attempt (a requeue or a resume adds a folder)."""
    found: dict[str, list[Path]] = {}
    for path in sorted(Path(wandb_dir).glob("offline-run-*/run-*.wandb")):
        found.setdefault(path.stem[len("run-"):], []).append(path)
    return found


def _inspect_command(wandb_file: Path) -> list[str]:
    """``wandb leet inspect --summary --json FILE``, run as wandb's CLI runs it (its wandb-core binary).

    Calling the binary directly, with the arguments ``wandb.cli.leet`` builds, takes about 0.1 s a file
    instead of 1.5 s through the Python CLI; the CLI is the fallback when the binary cannot be located.
    """
    try:
        from wandb.util import get_core_path

        core = get_core_path()
    except Exception:  # noqa: BLE001 - fall back to the documented command
        return [sys.executable, "-m", "wandb", "leet", "inspect", "--summary", "--json", str(wandb_file)]
    return [core, "leet", "inspect", "--no-observability", "--summary", "--json", "--run-file", str(wandb_file),
            str(wandb_file.parent.parent)]


def read_offline_run(wandb_file: Path | str) -> RunRecord:
    """One ``.wandb`` file's state, config and summary, read by wandb's own tool (raises TrackingError)."""
    wandb_file = Path(wandb_file)
    env = {k: v for k, v in os.environ.items() if k != "WANDB_API_KEY"}  # reading needs no key
    try:
        proc = subprocess.run(_inspect_command(wandb_file), capture_output=True, text=True, env=env,
                              timeout=INSPECT_TIMEOUT_S, stdin=subprocess.DEVNULL)
        data = json.loads(proc.stdout) if proc.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        raise TrackingError(f"cannot read W&B run file {wandb_file}: {exc}") from None
    if not isinstance(data, dict):
        raise TrackingError(f"cannot read W&B run file {wandb_file}: wandb leet inspect exited "
                            f"{proc.returncode}: {proc.stderr.strip()[-300:]}")
    return RunRecord(run_id=str(data.get("run_id", "")), name=str(data.get("name", "")),
                     state=str(data.get("state", "")), config=dict(data.get("config") or {}),
                     summary=dict(data.get("summary") or {}), start_time=str(data.get("start_time", "")),
                     source=str(wandb_file))


def _latest(records: Iterable[RunRecord]) -> RunRecord:
    """The attempt that counts: the last one with a final summary, else the last one."""
    ordered = sorted(records, key=lambda r: (r.complete, r.start_time))
    return ordered[-1]


def offline_records(wandb_dir: Path | str, run_ids: Iterable[str] | None = None) -> dict[str, RunRecord]:
    """{run id: record} for the offline runs in ``wandb_dir`` (all, or those in ``run_ids``)."""
    files = offline_files(wandb_dir)
    if run_ids is not None:
        wanted = set(run_ids)
        files = {rid: paths for rid, paths in files.items() if rid in wanted}
    jobs = [(rid, path) for rid, paths in files.items() for path in paths]
    by_id: dict[str, list[RunRecord]] = {}
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = pool.map(_try_read, [path for _, path in jobs])
        for (rid, _), outcome in zip(jobs, outcomes):
            if isinstance(outcome, RunRecord):
                by_id.setdefault(rid, []).append(outcome)
            else:
                log.warning("W&B: %s", outcome)
    return {rid: _latest(records) for rid, records in by_id.items()}


def _try_read(path: Path) -> RunRecord | str:
    try:
        return read_offline_run(path)
    except TrackingError as exc:
        return str(exc)


def online_records(spec: TrackingSpec, run_ids: Iterable[str]) -> dict[str, RunRecord]:
    """{run id: record} from the W&B API (online mode; needs the network and a key)."""
    import wandb

    why = _reachable(_base_url(), timeout=5.0)
    if why is not None:
        raise TrackingError(f"cannot reach the W&B API at {_base_url()} ({why})")
    try:
        api = wandb.Api(timeout=30)
        entity = spec.entity or api.default_entity
    except Exception as exc:  # noqa: BLE001 - no key, no network: one line for the user
        raise TrackingError(f"cannot use the W&B API ({type(exc).__name__}: {_redact(str(exc))[:200]})") from None
    records: dict[str, RunRecord] = {}
    for rid in run_ids:
        try:
            run = api.run(f"{entity}/{spec.project}/{rid}")
        except (wandb.errors.CommError, ValueError):
            continue  # no such run (yet)
        records[rid] = RunRecord(run_id=rid, name=str(run.name), state=str(run.state),
                                 config={k: v for k, v in dict(run.config).items() if not k.startswith("_")},
                                 summary=dict(run.summary), source=f"{entity}/{spec.project}/{rid}")
    return records


def collect(spec: TrackingSpec, candidates: Sequence[Candidate]) -> dict[str, RunRecord]:
    """{evaluation name: its W&B record} for ``candidates`` (missing runs are left out).

    Online: the W&B API, then the offline files for runs whose online init failed (kept offline, see
    :func:`_init_run`). Offline: the files.
    """
    ids = {spec.run_id(c.name, c.island): c.name for c in candidates}
    records = online_records(spec, ids) if spec.mode == "online" else {}
    missing = [rid for rid in ids if rid not in records]
    if missing:
        records.update(offline_records(spec.dir, missing))
    return {ids[rid]: record for rid, record in records.items()}


def evaluation_records(spec: TrackingSpec, state: RunState | None = None) -> dict[str, RunRecord]:
    """Every evaluation run of this run directory: the journal's evaluations when online, else every offline
    run file of this run directory (the experiment run left out)."""
    if spec.mode == "online":
        return collect(spec, state.candidates if state is not None else [])
    prefix = f"{spec.tag}-"
    records = offline_records(spec.dir, [rid for rid in offline_files(spec.dir)
                                         if rid.startswith(prefix) and rid != spec.experiment_id])
    return {record.name: record for record in records.values()}


# ------------------------------------------------------------------------------------- checking results


def _close(a: Any, b: float) -> bool:
    try:
        return math.isclose(float(a), b, rel_tol=1e-9, abs_tol=1e-12)
    except (TypeError, ValueError):
        return False


def compare(candidates: Sequence[Candidate], results: Mapping[str, Result],
            records: Mapping[str, RunRecord]) -> list[dict[str, Any]]:
    """Disagreements between the results the jobs returned and the W&B summaries (JSON-safe dicts)."""
    problems: list[dict[str, Any]] = []
    for cand in candidates:
        result = results.get(cand.name)
        if result is None:
            continue
        record = records.get(cand.name)
        if record is None or not record.complete:
            if result.ok:  # a failed (killed, timed-out) evaluation may well have no final summary
                state = "no W&B run" if record is None else f"W&B run without a final summary ({record.state})"
                problems.append({"name": cand.name, "problem": state})
            continue
        summary = record.summary
        if summary.get(STATUS_KEY) != result.status:
            problems.append({"name": cand.name, "problem": "status", "wandb": summary.get(STATUS_KEY),
                             "result": result.status})
            continue
        if not result.ok:
            continue
        expected = {FITNESS_KEY: result.fitness, **result.metrics}
        for key, value in expected.items():
            if not _close(summary.get(key), value):
                problems.append({"name": cand.name, "problem": key, "wandb": summary.get(key), "result": value})
    return problems


# ------------------------------------------------------------------------------------------ driver side


def after_batch(spec: TrackingSpec, config: Config, store: RunStore, state: RunState, batch: int,
                candidates: Sequence[Candidate]) -> list[dict[str, Any]]:
    """After a batch is told: check its W&B summaries, journal the check, update the experiment run.

    Never raises (W&B trouble is logged); returns the disagreements.
    """
    problems: list[dict[str, Any]] = []
    try:
        records = collect(spec, candidates)
        problems = compare(candidates, state.results, records)
        for problem in problems:
            log.warning("W&B disagrees with the result of %s: %s", problem["name"],
                        ", ".join(f"{k}={v}" for k, v in problem.items() if k != "name"))
        store.append({"event": "wandb_checked", "batch": batch, "runs": len(records),
                      "disagreements": problems})
    except Exception as exc:  # noqa: BLE001 - tracking never stops the search
        _warn(f"checking batch {batch}", exc)
    try:
        update_experiment_run(spec, config, store.run_dir, state, batch, candidates)
    except Exception as exc:  # noqa: BLE001
        _warn("updating the experiment run", exc)
    return problems


def update_experiment_run(spec: TrackingSpec, config: Config, run_dir: Path, state: RunState, batch: int,
                          candidates: Sequence[Candidate] = ()) -> None:
    """Log the results table and the report figures to the experiment-level run (one step per batch)."""
    from workflow.report import write_report
    from workflow.store import BASE_COLUMNS, results_row

    paths = write_report(run_dir)
    evaluated = state.evaluated()
    rows = [results_row(e.candidate, e.result) for e in evaluated]
    metric_names = sorted({m for e in evaluated for m in e.result.metrics})
    columns = [*BASE_COLUMNS, *metric_names]
    run = _init_run(spec, run_id=spec.experiment_id, name=f"{config.name}-{EXPERIMENT}", job_type=EXPERIMENT,
                    config=config.to_plain(), save_requirements=True)
    try:
        import wandb

        # Each update is a new session of the same run (its own offline folder): batches, not W&B steps,
        # on the x axis.
        run.define_metric("batch")
        run.define_metric("*", step_metric="batch")
        ok = [e for e in evaluated if e.result.ok]
        names = {c.name for c in candidates}
        batch_ok = [e.fitness for e in ok if e.candidate.name in names] or [math.inf]
        best = min(ok, key=lambda e: e.fitness, default=None)
        row: dict[str, Any] = {
            "batch": batch, "evaluations": len(evaluated), "failed": len(evaluated) - len(ok),
            "results": wandb.Table(columns=list[str | int](columns),
                                   data=[[_cell(r.get(c)) for c in columns] for r in rows]),
        }
        if math.isfinite(min(batch_ok)):
            row["batch_best_fitness"] = min(batch_ok)
        if best is not None:
            row["best_fitness"] = best.fitness
            run.summary.update({"best_name": best.candidate.name, "best_fitness": best.fitness,
                                **{f"best_{k}": v for k, v in best.candidate.hparams.to_dict().items()}})
        for path in paths:
            if path.suffix == ".png":
                row[path.stem] = wandb.Image(str(path))
        run.log(row)
    finally:
        run.finish()


def _cell(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return "" if value is None else value


# ----------------------------------------------------------------------------------------------- sync


def unsynced_runs(wandb_dir: Path | str) -> tuple[list[Path], int]:
    """(offline run folders not yet uploaded, how many are already uploaded).

    ``wandb sync`` marks an uploaded ``run-<id>.wandb`` with ``run-<id>.wandb.synced`` beside it and skips it
    next time; we choose the same way so a repeated ``sync`` uploads nothing twice.
    """
    todo: list[Path] = []
    synced = 0
    for paths in offline_files(wandb_dir).values():
        for path in paths:
            if path.with_suffix(".wandb.synced").exists():
                synced += 1
            else:
                todo.append(path.parent)
    return sorted(todo), synced


def sync_command(folders: Sequence[Path], dry_run: bool = False) -> list[str]:
    """The ``wandb sync`` command line for ``folders`` (an argument list, never a shell string)."""
    return [sys.executable, "-m", "wandb", "sync", *(["--dry-run"] if dry_run else []), *map(str, folders)]


def _base_url() -> str:
    try:
        from wandb.sdk import wandb_setup

        return str(wandb_setup.singleton().settings.base_url)
    except Exception:  # noqa: BLE001
        return os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")


def _has_credentials(host: str) -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    import netrc

    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def _reachable(url: str, timeout: float) -> str | None:
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


def sync(run_dir: Path | str, *, dry_run: bool = False, timeout_s: float = 3600.0,
         connect_timeout_s: float = 10.0) -> tuple[int, int]:
    """Upload the offline runs of ``run_dir`` under their own ids; returns (uploaded now, already uploaded).

    Raises TrackingError with one line when there is no key, no network, or ``wandb sync`` fails; nothing in
    the run directory changes then (``wandb sync`` only adds ``.synced`` markers after an upload).
    """
    wandb_dir = Path(run_dir) / WANDB_DIRNAME
    todo, synced = unsynced_runs(wandb_dir)
    if not todo or dry_run:
        return len(todo), synced
    url = _base_url()
    host = urlparse(url).hostname or url
    if not _has_credentials(host):
        raise TrackingError(f"no W&B API key: set WANDB_API_KEY or run `wandb login` (netrc entry for {host})")
    why = _reachable(url, connect_timeout_s)
    if why is not None:
        raise TrackingError(f"cannot reach W&B at {url} ({why}); {len(todo)} offline runs stay in {wandb_dir}, "
                            "run `sync` again where there is network")
    try:
        proc = subprocess.run(sync_command(todo), timeout=timeout_s, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise TrackingError(f"wandb sync did not finish within {timeout_s:g} s; run `sync` again "
                            "(uploaded runs are skipped)") from None
    left, now_synced = unsynced_runs(wandb_dir)
    if proc.returncode != 0 or left:
        raise TrackingError(f"wandb sync exited {proc.returncode}: {len(left)} of {len(todo)} runs not uploaded; "
                            "run `sync` again (uploaded runs are skipped)")
    return now_synced - synced, synced
