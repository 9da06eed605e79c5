"""The run-directory policy: create a run directory for a config, or check that an existing one holds it.

Used by every command that starts a search (``run``, ``submit``, ``islands``, ``resume`` with overrides,
``compare``), so they all decide the same way: a new directory is created atomically; an existing one may
continue when its search is the same. Sections that say where and how evaluations run, not what is searched
(:data:`RUNTIME_SECTIONS`), may change (another partition after an allocation ended): the change is written to
``config.yaml`` and journaled. Any other change is refused with the diff, unless forced.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from workflow.config import Config
from workflow.errors import RunDirError
from workflow.store.events import ConfigChanged
from workflow.store.journal import RunStore
from workflow.store.lock import DriverLock

log = logging.getLogger(__name__)

#: Sections that say where and how evaluations run, not what is searched.
RUNTIME_SECTIONS = ("backend", "slurm", "tracking")
#: Keys whose values are compared whole (a tree is one value, not a diff of its branches).
OPAQUE_KEYS = ("activation_tree", "tree")


def config_diff(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted ``key: old -> new`` lines for every leaf that differs."""
    lines = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        dotted = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict) and key not in OPAQUE_KEYS:
            lines.extend(config_diff(a, b, dotted + "."))
        elif a != b:
            lines.append(f"{dotted}: {a!r} -> {b!r}")
    return lines


def search_changes(diff: list[str]) -> list[str]:
    """The lines of ``diff`` outside :data:`RUNTIME_SECTIONS`."""
    return [line for line in diff if line.split(".")[0].split(":")[0] not in RUNTIME_SECTIONS]


def prepare_run_dir(config: Config, run_dir: Path, *, force: bool = False, hint: str | None = None) -> RunStore:
    """Create ``run_dir`` for ``config`` or continue it; returns its store.

    Raises :class:`RunDirError` when another driver holds the directory, or when the search-defining config
    differs and ``force`` is false (``hint`` replaces the default advice in that message).
    """
    run_dir = Path(run_dir)
    if not run_dir.exists():
        return RunStore.create(run_dir, config)
    store = RunStore.open(run_dir)
    with DriverLock(run_dir):  # refuse early, before touching anything, if another driver owns the directory
        pass
    diff = config_diff(store.config().to_plain(), config.to_plain())
    if not diff:
        log.info("continuing the existing run in %s", run_dir)
        return store
    changed = search_changes(diff)
    if changed and not force:
        advice = hint or "use another --run-dir, `resume` it with its own config, or --force"
        raise RunDirError(f"run directory {run_dir} exists with a different config ({'; '.join(changed)}); {advice}")
    store.write_config(config)
    store.append(ConfigChanged(diff=tuple(diff), forced=bool(changed)))
    log.warning("run directory %s: config changed (%s)", run_dir, "; ".join(diff))
    return store
