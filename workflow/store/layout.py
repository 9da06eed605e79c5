"""Where things live in a run directory: the one place that knows the layout.

::

    RUN_DIR/                      created user-only (0700)
      config.yaml                 the resolved config the run was created with
      journal.jsonl               the append-only journal, the only source of truth
      results.csv                 one row per finished evaluation, rebuilt from the journal
      driver.lock, driver.log     the running driver's lock and log
      driver.lease                the running driver's lease: host, pid, Slurm job, heartbeat
      evals/<name>/               an evaluation's work directory (checkpoints; survives requeues)
      evals/pack-<a>--<b>/        the same for a pack trained together
      report/                     figures and tables
      islands/island-<k>/         island model: a complete run directory per island under the parent
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

from workflow.records import Candidate

JOURNAL = "journal.jsonl"
CONFIG = "config.yaml"
RESULTS = "results.csv"
LOCK = "driver.lock"
LEASE = "driver.lease"
DRIVER_LOG = "driver.log"
REPORT = "report"
EVALS = "evals"
ISLANDS = "islands"


def resume_command(run_dir: Path) -> str:
    """``python -m workflow resume RUN_DIR``, quoted so that it can be pasted into a shell as it is."""
    return shlex.join(["python", "-m", "workflow", "resume", str(run_dir)])


def island_dir(parent: Path, island: int) -> Path:
    """Island ``island``'s run directory under the island model's parent directory."""
    return Path(parent) / ISLANDS / f"island-{island}"


def report_dir(run_dir: Path) -> Path:
    return Path(run_dir) / REPORT


def pack_workdir(run_dir: Path, pack: Sequence[Candidate]) -> Path:
    """``evals/<name>`` for one evaluation; ``evals/pack-<first>--<last>`` for a pack trained together."""
    if len(pack) == 1:
        return Path(run_dir) / EVALS / pack[0].name
    return Path(run_dir) / EVALS / f"pack-{pack[0].name}--{pack[-1].name}"
