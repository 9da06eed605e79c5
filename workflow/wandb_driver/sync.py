"""``sync RUN_DIR``: uploading a run directory's offline W&B runs (``wandb sync``), each once."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

from workflow.store import RunStore
from workflow.tracking.evaluation import base_url, reachable
from workflow.tracking.spec import WANDB_DIRNAME, TrackingError
from workflow.wandb_driver.readback import offline_files


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


def _has_credentials(host: str) -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    import netrc

    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


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
    url = base_url()
    host = urlparse(url).hostname or url
    if not _has_credentials(host):
        raise TrackingError(f"no W&B API key: set WANDB_API_KEY or run `wandb login` (netrc entry for {host})")
    why = reachable(url, connect_timeout_s)
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


def sync_run_dir(run_dir: Path, dry_run: bool = False) -> int:
    """Upload the run directory's offline W&B runs (``wandb sync``); already uploaded runs are skipped."""
    RunStore.open(run_dir)
    wandb_dir = Path(run_dir) / WANDB_DIRNAME
    todo, synced = unsynced_runs(wandb_dir)
    if dry_run:
        print(f"{len(todo)} offline runs to upload, {synced} already uploaded")
        if todo:
            print(" ".join(sync_command(todo)))
        return 0
    if not todo:
        print(f"nothing to upload: {synced} offline runs already uploaded" if synced
              else f"no offline W&B runs in {wandb_dir}")
        return 0
    uploaded, _ = sync(run_dir)
    print(f"uploaded {uploaded} offline runs ({synced} were already uploaded)")
    return 0
