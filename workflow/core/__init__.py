"""Pure ask/tell optimizers: no I/O, no clock, no torch/submitit/mpi4py/wandb; randomness injected."""

from workflow.core.base import Optimizer, make_optimizer

__all__ = ["Optimizer", "make_optimizer"]
