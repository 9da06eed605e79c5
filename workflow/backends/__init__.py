"""Where evaluations run: ``inline`` (the driver's process), ``local`` (worker processes), ``slurm`` (job arrays).

Every backend turns failures into failed :class:`~workflow.records.Result` values. :func:`make_backend` is
the registry: the one place that maps ``backend.name`` to a class (imported when asked for: the Slurm
backend needs submitit).
"""

from __future__ import annotations

from pathlib import Path

from workflow.backends.base import Backend, Sink, run_batch
from workflow.config import Config

__all__ = ["Backend", "Sink", "make_backend", "run_batch"]


def make_backend(config: Config, run_dir: Path) -> Backend:
    """The backend ``config.backend.name`` names, serving the run in ``run_dir``."""
    name = config.backend.name
    if name == "inline":
        from workflow.backends.inline import InlineBackend

        return InlineBackend(config, run_dir)
    if name == "local":
        from workflow.backends.local import LocalBackend

        return LocalBackend(config, run_dir)
    if name == "slurm":
        from workflow.backends.slurm import SlurmBackend

        return SlurmBackend(config, run_dir)
    raise ValueError(f"unknown backend {name!r}; allowed: inline, local, slurm")
