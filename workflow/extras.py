"""The optional parts of the install: ``pip install gaslurm`` is the core (GA, BO, random search, the run
directory, the driver, the inline, local and Slurm backends, a Python-function or command objective); the
built-in MLP, W&B tracking and the island model need the extras named here (``pip install 'gaslurm[mlp]'``;
``make install`` installs them all). Pre-flight asks :func:`missing` before anything is created."""

from __future__ import annotations

import importlib.util

#: extra -> (what it brings, the modules it provides), as pyproject.toml's optional dependencies.
EXTRAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "mlp": ("the built-in MLP (PyTorch, Lightning, torchvision)", ("torch", "pytorch_lightning", "torchvision")),
    "wandb": ("W&B tracking", ("wandb",)),
    "islands": ("the island model (mpi4py)", ("mpi4py",)),
}


def installed(module: str) -> bool:
    """Whether ``module`` can be imported here, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a finder that refuses it, or a half-installed package
        return False


def missing(extra: str, feature: str, modules: tuple[str, ...] | None = None) -> str | None:
    """None when ``extra``'s modules (or just ``modules`` of them) are installed; otherwise one line for the
    user: what ``feature`` needs and the command that installs it."""
    _, provides = EXTRAS[extra]
    absent = [m for m in (provides if modules is None else modules) if not installed(m)]
    if not absent:
        return None
    names = " and ".join([", ".join(absent[:-1]), absent[-1]] if len(absent) > 1 else absent)
    return f"{feature} needs {names}, which {'is' if len(absent) == 1 else 'are'} not installed: " \
           f"pip install 'gaslurm[{extra}]'"
