"""Shared fixtures and how the suite runs in parallel.

Tests that need Slurm or MPI skip with the reason on a laptop and FAIL in CI (``GASLURM_REQUIRE_SLURM=1`` /
``GASLURM_REQUIRE_MPI=1``, set by ``.ci/run``).

Parallel runs and the serial group
----------------------------------
``make test`` runs the suite in two pytest invocations, one after the other:

1. ``pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder -m "not serial"``: pytest-xdist workers
   (default 4: twice the cores, as most tests wait on Slurm or on subprocesses; measured on the 2-core machine,
   4, 6 and 8 workers took the same time: the suite is bound by CPU, mostly the Slurm tasks' imports);
2. ``pytest -m serial``: the tests marked ``serial``, one at a time, once every other test has ended.

A test is ``serial`` when it changes cluster-wide state that other Slurm tests would see: it stops or starts a
daemon (slurmdbd), changes accounts, QOS or limits with ``sacctmgr``, preempts jobs through the ``urgent``
partition, drains a node, or depends on the count of all of this user's queued jobs. Under xdist (``-n``),
serial tests are deselected here, whatever ``-m`` says, so they can never overlap another Slurm test; the
report header says so. A plain ``pytest`` (no ``-n``) runs everything in one process, serial tests included.

Within the parallel invocation:

* tests that share a module-scoped fixture (one expensive run that several tests only read) are put in one
  ``xdist_group`` per module automatically (``--dist loadgroup`` sends a group to one worker), so the fixture runs
  once; tests sharing a session-scoped run say so with an explicit ``xdist_group`` marker;
* tests marked ``slow`` are handed out first (``--no-loadscope-reorder`` keeps this order), so the long Slurm
  waits overlap each other instead of trailing at the end.

Every Slurm test must be independent of other jobs on the cluster (other tests' and other people's): it
looks at its own job ids, job names or run directory, never at the whole ``squeue``/``sacct`` list. When a
Slurm test fails, the dev cluster's daemon logs (``bash slurm/dev/logs.sh``) are attached to its report.

A hang fails with a stack trace: pytest-timeout's default (``timeout`` in pyproject.toml) applies to every test,
larger ``@pytest.mark.timeout(...)`` marks to the few that legitimately take longer.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.support import daemon_logs

#: Fixture scopes whose value several tests share: their tests are kept on one xdist worker.
_SHARED_SCOPES = {"module", "package", "class"}


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


# ------------------------------------------------------------------------------------------- parallel runs
#
# xdist's own ``--dist loadgroup`` finds a test's group in a suffix it appends to the node id, which has no effect
# with pytest >= 9.2 (structured node ids: pytest-dev/pytest-xdist#1386), so groups would be silently ignored.
# Here the workers write {node id: group} to a file the controller named (GROUPS_ENV) and the controller's
# scheduler (a LoadScopeScheduling whose scope is that group, else the test itself) reads it.

GROUPS_ENV = "GASLURM_XDIST_GROUPS"


def _under_xdist(config: pytest.Config) -> bool:
    """True in an xdist worker and in the controller of a ``-n`` run."""
    return hasattr(config, "workerinput") or bool(getattr(config.option, "numprocesses", None))


def _shares_a_fixture(item: pytest.Item) -> bool:
    """Whether ``item`` uses a fixture of its own module (or class, package) that outlives one test."""
    info = getattr(item, "_fixtureinfo", None)
    for defs in (getattr(info, "name2fixturedefs", None) or {}).values():
        for fixturedef in defs:
            if fixturedef.scope in _SHARED_SCOPES and fixturedef.baseid and fixturedef.baseid != "tests":
                return True
    return False


def _group(item: pytest.Item) -> str | None:
    mark = item.get_closest_marker("xdist_group")
    if mark is not None:
        return str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
    if _shares_a_fixture(item):
        return item.nodeid.split("::")[0]
    return None


def pytest_configure(config: pytest.Config) -> None:
    if _under_xdist(config) and not hasattr(config, "workerinput"):
        # Before the workers start: they inherit the environment.
        handle, path = tempfile.mkstemp(prefix="gaslurm-xdist-groups-", suffix=".json")
        os.close(handle)
        os.environ[GROUPS_ENV] = path
        config.stash[_GROUPS_FILE] = Path(path)


def pytest_unconfigure(config: pytest.Config) -> None:
    path = config.stash.get(_GROUPS_FILE, None)
    if path is not None:
        for written in (path, *path.parent.glob(path.name + ".*")):
            written.unlink(missing_ok=True)


_GROUPS_FILE = pytest.StashKey[Path]()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _under_xdist(config):
        return
    serial = [item for item in items if item.get_closest_marker("serial")]
    if serial:
        config.hook.pytest_deselected(items=serial)
        items[:] = [item for item in items if not item.get_closest_marker("serial")]
    # The long tests first (stable: the collection order otherwise), so that they overlap.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
    path = os.environ.get(GROUPS_ENV)
    if path and hasattr(config, "workerinput"):
        groups = {item.nodeid: group for item in items if (group := _group(item))}
        target = Path(f"{path}.{config.workerinput['workerid']}")
        partial = target.with_name(target.name + ".partial")
        partial.write_text(json.dumps(groups))
        partial.replace(target)  # whole or nothing for the controller


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    path = config.stash.get(_GROUPS_FILE, None)

    class GroupScheduling(LoadScopeScheduling):
        """Tests of one group go to one worker as one unit of work; every other test is a unit by itself."""

        groups: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self.groups is None:  # first called once every worker has collected (and written its file)
                self.groups = {}
                for written in sorted(path.parent.glob(path.name + ".gw*")) if path else []:
                    self.groups.update(json.loads(written.read_text()))
            return self.groups.get(nodeid, nodeid)

    return GroupScheduling(config, log)


def pytest_report_header(config: pytest.Config) -> str | None:
    if _under_xdist(config) and not hasattr(config, "workerinput"):
        return ("tests marked serial are deselected under -n (xdist); they run alone in a second invocation: "
                "pytest -m serial (make test does both)")
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.failed and item.get_closest_marker("slurm") and call.when in ("setup", "call"):
        report.sections.append(("dev Slurm cluster: bash slurm/dev/logs.sh", daemon_logs()))
    return report

