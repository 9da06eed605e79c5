"""gaslurm: genetic-algorithm hyperparameter search for neural networks on Slurm."""

__version__ = "0.1.0"
