"""Reading W&B runs back on the driver: offline run files (wandb's own reader) or the W&B API.

:func:`offline_records` reads each run's ``.wandb`` transaction log with ``wandb leet inspect --summary
--json``; :func:`collect` gets the records of a batch's evaluations, online or offline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workflow.records import Candidate
from workflow.tracking.evaluation import base_url, reachable
from workflow.tracking.spec import STATUS_KEY, TrackingError, TrackingSpec, log, redact

if TYPE_CHECKING:
    from workflow.store import RunState

#: Seconds one ``leet inspect`` of a run file may take.
INSPECT_TIMEOUT_S = 60.0


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

    why = reachable(base_url(), timeout=5.0)
    if why is not None:
        raise TrackingError(f"cannot reach the W&B API at {base_url()} ({why})")
    try:
        api = wandb.Api(timeout=30)
        entity = spec.entity or api.default_entity
    except Exception as exc:  # noqa: BLE001 - no key, no network: one line for the user
        raise TrackingError(f"cannot use the W&B API ({type(exc).__name__}: {redact(str(exc))[:200]})") from None
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
    :func:`workflow.tracking.evaluation.init_run`). Offline: the files.
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
