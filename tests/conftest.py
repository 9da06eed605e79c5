"""Shared fixtures. Tests that need Slurm or MPI skip with the reason on a laptop and FAIL in CI
(``GASLURM_REQUIRE_SLURM=1`` / ``GASLURM_REQUIRE_MPI=1``, set by ``.ci/run``)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def _require(kind: str, reason: str) -> None:
    if os.environ.get(f"GASLURM_REQUIRE_{kind}") == "1":
        pytest.fail(f"{reason} (GASLURM_REQUIRE_{kind}=1: this must not be skipped here)")
    pytest.skip(reason)


def slurm_reachable() -> str | None:
    """None when a cluster answers, else why not."""
    for tool in ("sbatch", "sinfo", "sacct", "scancel"):
        if shutil.which(tool) is None:
            return f"no {tool} on PATH (start the dev cluster with `make slurm-up`)"
    try:
        proc = subprocess.run(["sinfo", "-h", "-o", "%R"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 20 s"
    if proc.returncode != 0:
        return f"sinfo failed: {proc.stderr.strip()[:200]} (start the dev cluster with `make slurm-up`)"
    partitions = set(proc.stdout.split())
    if not {"gpu", "gpu2"} <= partitions:
        return f"the dev cluster's partitions gpu and gpu2 are missing (found {sorted(partitions)})"
    return None


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    reason = slurm_reachable()
    if reason:
        _require("SLURM", f"no Slurm cluster reachable: {reason}")


@pytest.fixture(scope="session")
def mpi_runtime() -> str:
    beside = Path(sys.executable).parent / "mpiexec"  # PyPI's mpich, installed into the venv by make install
    mpiexec = str(beside) if beside.exists() else shutil.which("mpiexec")
    if mpiexec is None:
        _require("MPI", "no mpiexec on PATH (make install provides PyPI's mpich in the venv)")
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        _require("MPI", "mpi4py is not installed")
    return str(mpiexec)
