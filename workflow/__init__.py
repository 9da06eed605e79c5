"""gaslurm: genetic-algorithm hyperparameter search for neural networks on Slurm.

From Python: ``workflow.search(objective, space, ...)`` runs a search, ``workflow.load(run_dir)`` reads one
(:mod:`workflow.api`). They are imported on first use, so that ``import workflow`` (and every evaluation
process, which imports the package) stays light.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

#: Names of :mod:`workflow.api` offered here.
API = ("search", "load", "create_study", "Study", "Evaluation")


def __getattr__(name: str) -> Any:
    if name in API:
        from workflow import api  # the entry point (L7), loaded lazily: see tests/unit/test_layers.py

        return getattr(api, name)
    raise AttributeError(f"module 'workflow' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *API])
