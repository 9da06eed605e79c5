"""Starting the island drivers: under mpiexec/srun each rank runs one island; started alone, we re-launch
ourselves under the venv's ``mpiexec -n K`` so ``python -m workflow islands CONFIG`` just works."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from workflow.config import Config
from workflow.errors import WorkflowError
from workflow.logs import log_to_console

log = logging.getLogger(__name__)
LAUNCHED = "GASLURM_ISLANDS_LAUNCHED"


def mpiexec_path() -> str:
    beside = Path(sys.executable).parent / "mpiexec"
    if beside.exists():
        return str(beside)
    found = shutil.which("mpiexec")
    if found is None:
        raise WorkflowError("no mpiexec found (make install puts PyPI's mpich in the venv)")
    return found


def mpi_world_size() -> int:
    from mpi4py import MPI

    return int(MPI.COMM_WORLD.Get_size())


def relaunch_under_mpi(config: Config, argv: Sequence[str]) -> int:
    """Run ``python -m workflow <argv>`` with one rank per island; returns mpiexec's exit code."""
    if os.environ.get(LAUNCHED):
        raise WorkflowError(f"islands.count={config.islands.count} but only one MPI rank was started "
                            f"(launch with mpiexec -n {config.islands.count})")
    command = [mpiexec_path(), "-n", str(config.islands.count), sys.executable, "-m", "workflow", *argv]
    log.info("starting %d island drivers: %s", config.islands.count, " ".join(command))
    return subprocess.run(command, env={**os.environ, LAUNCHED: "1"}, check=False).returncode


def run_islands_here(config: Config, parent: Path, create: bool, prepare: object | None = None) -> int:
    """This process is one MPI rank: run its island; any exception takes the whole job down with a clear line."""
    from workflow.islands.runner import run_island
    from workflow.islands.transport import MPITransport
    from workflow.progress import LogProgress

    transport = MPITransport()
    log_to_console(transport.rank, logging.WARNING)
    try:
        if create and transport.rank == 0 and callable(prepare):
            prepare()
        summary = run_island(config, parent, transport, observers=[LogProgress()], create=create)
    except BaseException as exc:  # noqa: BLE001 - any failure on one rank must end every rank
        print(f"error: island {transport.rank} failed: {type(exc).__name__}: {exc}; the island job is aborted, "
              f"continue with `python -m workflow resume {parent}`", file=sys.stderr, flush=True)
        transport.abort(1)
        raise
    if transport.rank == 0:
        print(f"finished: {config.islands.count} islands in {parent}")
    log.info("island %d finished: %d evaluations", transport.rank, summary.evaluations)
    return 0
