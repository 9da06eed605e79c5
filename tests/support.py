"""Helpers shared by the tests: a recording sink for backends, and the CLI as a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from workflow.records import Result
from workflow.store.events import Abandoned, Recovered, Submission, Submitted, Submitting

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "configs" / "smoke.yaml"


class RecordingSink:
    """A backend sink that keeps what it is told (as the journal's typed events), asserts a result never comes
    twice, and can hand back earlier submissions (as the driver's journal does on resume)."""

    def __init__(self, previous: dict[str, Submission] | None = None) -> None:
        self.results: dict[str, Result] = {}
        #: Every submission as the journal would hold it.
        self.events: list[Submission] = []
        self.previous = dict(previous or {})

    def _record(self, event: Submission) -> None:
        self.events.append(event)
        for name in event.names:
            self.previous[name] = event

    def submitting(self, names, *, tag, folder, packs, resubmit=None, after=None):
        self._record(Submitting(names=tuple(names), tag=tag, folder=folder, packs=tuple(map(tuple, packs)),
                                resubmit=resubmit, after=after))

    def submitted(self, names, **info):
        self._record(Submitted(names=tuple(names), **{**info, "job_ids": dict(info.get("job_ids") or {})}))

    def recovered(self, names, *, tag, folder, job_ids):
        self._record(Recovered(names=tuple(names), tag=tag, folder=folder, job_ids=dict(job_ids)))

    def abandoned(self, names, *, tag):
        self._record(Abandoned(names=tuple(names), tag=tag))

    @property
    def job_ids(self) -> dict[str, str]:
        """{evaluation: Slurm job id} of everything submitted so far."""
        return {name: job for event in self.events if isinstance(event, Submitted)
                for name, job in event.job_ids.items()}

    def result(self, result):
        assert result.name not in self.results, f"a second result for {result.name}"
        self.results[result.name] = result

    def previous_submission(self, name):
        return self.previous.get(name)

    def waiting(self):
        self.waits = getattr(self, "waits", 0) + 1


def daemon_logs(lines: int = 60) -> str:
    """The dev cluster's status and daemon log tails (``bash slurm/dev/logs.sh``), for a failure message."""
    try:
        proc = subprocess.run(["bash", str(ROOT / "slurm" / "dev" / "logs.sh"), str(lines)], capture_output=True,
                              text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"slurm/dev/logs.sh failed: {exc}"
    return proc.stdout + proc.stderr


def cli(*args, check=True, timeout=600, env=None):
    """``python -m workflow ARGS`` in the repository root; raises with its output when it fails and ``check``."""
    proc = subprocess.run([sys.executable, "-m", "workflow", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def genes(n_layers: int, hidden_size: int, activation: str, dropout: float) -> dict[str, Any]:
    """A genotype of the seed's four genes."""
    return {"n_layers": n_layers, "hidden_size": hidden_size, "activation": activation, "dropout": dropout}


def reproducible(metrics: dict[str, float]) -> dict[str, float]:
    """``metrics`` without the measured ones (latency, training time), which differ from run to run."""
    from workflow.tasks import MLP_MEASURED_METRICS

    return {k: v for k, v in metrics.items() if k not in MLP_MEASURED_METRICS}
