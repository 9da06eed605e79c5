"""One suite for both island transports: the in-process hub (threads) and MPI (mpiexec, real ranks)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest

from tests.contract.transport_checks import exercise, expected
from tests.support import ROOT
from workflow.islands.transport import LocalHub

SIZE = 3
# Each rank writes its own file: lines printed by several ranks to one pipe can interleave.
MPI_SCRIPT = """
import json, sys
from pathlib import Path
from tests.contract.transport_checks import exercise
from workflow.islands.transport import MPITransport
transport = MPITransport()
out = exercise(transport)
Path(sys.argv[1], f"rank-{out['rank']}.json").write_text(json.dumps(out))
"""


def _check(outcomes: list[dict]) -> None:
    assert sorted(o["rank"] for o in outcomes) == list(range(SIZE))
    for outcome in outcomes:
        want = expected(outcome["rank"], SIZE)
        got = {k: outcome[k] for k in want}
        assert json.loads(json.dumps(got)) == json.loads(json.dumps(want)), outcome
        assert outcome["size"] == SIZE
        assert outcome["waited_s"] >= 0.15  # wait() honours its timeout instead of returning at once


def test_in_process_hub():
    hub = LocalHub(SIZE)
    outcomes: list[dict] = []
    errors: list[BaseException] = []

    def rank(k: int) -> None:
        try:
            outcomes.append(exercise(hub.transport(k)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            hub.transport(k).abort(1)

    threads = [threading.Thread(target=rank, args=(k,)) for k in range(SIZE)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    _check(outcomes)


@pytest.mark.mpi
def test_mpi(mpi_runtime, tmp_path):
    proc = subprocess.run([mpi_runtime, "-n", str(SIZE), sys.executable, "-c", MPI_SCRIPT, str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _check([json.loads(path.read_text()) for path in sorted(tmp_path.glob("rank-*.json"))])
