"""W&B's shared half: the tracking spec every process gets, run ids, and the key kept out of messages.

Run ids are ``<tag>-<evaluation name>``, where the tag identifies the run directory (its creation record in
the journal), so a requeued evaluation and a resumed driver reuse the ids, while a new run directory at the
same path does not append to old runs. The API key is never read here except to redact it from warning texts:
wandb takes it from ``WANDB_API_KEY`` or netrc itself.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from workflow.errors import WorkflowError
from workflow.store import RunStore
from workflow.store.events import Created

if TYPE_CHECKING:
    from workflow.config import Config

log = logging.getLogger("workflow.tracking")

#: W&B's directory inside the run directory (wandb's own name for it: ``<root>/wandb``).
WANDB_DIRNAME = "wandb"
EXPERIMENT = "experiment"
#: Summary keys written by :meth:`EvaluationTracker.finish` (besides the result's metrics).
STATUS_KEY, FITNESS_KEY = "status", "fitness"
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_MAX_ID = 64


class TrackingError(WorkflowError):
    """W&B data cannot be read or uploaded as asked."""


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
        created = RunStore(root).created()
        island = island or (created.island or 0 if created else 0)  # an island's run directory records its index
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


def run_dir_tag(run_dir: Path | str, created: Created | None = None) -> str:
    """Eight hex digits identifying a run directory, the same from every process and after a resume.

    Derived from the journal's ``created`` record (name, time, pid), which travels with the directory:
    moving it keeps the ids, and a directory deleted and created again at the same path gets new ones (it must
    not resume the old runs on the W&B server). Without a journal, the absolute path is used.
    """
    root = Path(run_dir).resolve()
    created = RunStore(root).created() if created is None else created
    if created:
        identity = f"created:{created.name}:{created.t}:{created.pid}"
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


def redact(text: str) -> str:
    """``text`` with the API key (if one is in the environment) replaced: warnings end up in run-dir logs."""
    key = os.environ.get("WANDB_API_KEY", "")
    return text.replace(key, "***") if len(key) >= 8 else text


def warn(what: str, exc: BaseException) -> None:
    log.warning("W&B: %s failed (%s: %s); continuing without it", what, type(exc).__name__,
                redact(str(exc)).strip().splitlines()[0][:300] if str(exc).strip() else "")
