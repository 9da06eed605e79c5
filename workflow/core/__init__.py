"""Pure ask/tell optimizers: no I/O, no clock, no torch/submitit/mpi4py/wandb; randomness injected.

The registry (:func:`make_optimizer`) is the one place that maps ``optimizer.name`` to a class. Implementations
are imported when asked for, so importing :mod:`workflow.core` stays cheap (scikit-optimize is slow to import).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from workflow.core.base import Optimizer, ProtocolError

if TYPE_CHECKING:
    from workflow.config import Config

__all__ = ["Optimizer", "ProtocolError", "make_optimizer"]


def make_optimizer(config: Config, island: int = 0, journal_format: int = 3) -> Optimizer:
    """The optimizer ``config.optimizer.name`` names, with a generator seeded from the run seed and island.

    ``journal_format``: the format of the run directory it serves (:data:`workflow.store.journal.JOURNAL_FORMAT`):
    BO in a run directory of version 0.1 (format 1) keeps that version's way of drawing, so the run resumes; the
    GA replays the asks of a format-3 journal without breeding them again.
    """
    rng = np.random.default_rng([config.seed, island])
    name = config.optimizer.name
    if name == "ga":
        from workflow.core.ga import GeneticAlgorithm

        return GeneticAlgorithm(config.optimizer, config.search_space(), rng, island=island,
                                trust_journal=journal_format >= 3)
    if name == "bo":
        from workflow.core.bo import BayesianOptimization

        return BayesianOptimization(config.optimizer, config.search_space(), rng, island=island,
                                    legacy=journal_format < 2)
    if name == "random":
        from workflow.core.random_search import RandomSearch

        return RandomSearch(config.optimizer, config.search_space(), rng, island=island)
    raise ValueError(f"unknown optimizer {name!r}; allowed: ga, bo, random")
