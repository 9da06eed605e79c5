"""What a real cluster throws at a run, on the dev cluster: a node that goes DOWN under running tasks, and a
slurmctld restart while the driver wants to submit. The run finishes with every evaluation recorded once."""

import csv
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import daemon_logs
from workflow.store import RunStore
from workflow.store.events import Abandoned, ResultRecorded, Submitted, Submitting

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "configs" / "smoke.yaml"
DEV = ROOT / "slurm" / "dev"
#: node2 alone serves partition gpu2: taking it down touches no other test's jobs (these tests are serial too).
NODE, PARTITION = "node2", "gpu2"


def _driver(run_dir: Path, *overrides: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "workflow", "run", str(SMOKE), "--run-dir", str(run_dir),
                             "--no-report", "backend.name=slurm", f"slurm.partition={PARTITION}", "slurm.poll_s=0.5",
                             *overrides], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _await(condition: Callable[[], object], what: str, driver: subprocess.Popen, limit_s: float = 300) -> None:
    """Poll ``condition`` (bounded); a driver that ended first, or the deadline, fails with what it printed."""
    deadline = time.monotonic() + limit_s
    while not condition():
        if driver.poll() is not None:
            raise AssertionError(f"the driver ended (exit {driver.returncode}) before {what}:\n"
                                 f"{driver.stdout.read() if driver.stdout else ''}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {limit_s:g} s\n{daemon_logs()[-6000:]}")
        time.sleep(0.5)


def _events(run_dir: Path) -> list:
    return list(RunStore(run_dir).events()) if (run_dir / "journal.jsonl").exists() else []


def _array_ids(run_dir: Path) -> list[str]:
    return [e.array_id for e in _events(run_dir) if isinstance(e, Submitted)]


def _running_on_node(array_ids: list[str]) -> list[str]:
    if not array_ids:
        return []
    out = subprocess.run(["squeue", "-h", "-r", "-t", "RUNNING", "-o", "%i|%N", "-j", ",".join(array_ids)],
                         capture_output=True, text=True).stdout
    return [line.split("|")[0] for line in out.splitlines() if line.endswith(f"|{NODE}")]


def _all_running(run_dir: Path) -> bool:
    submitted = [e for e in _events(run_dir) if isinstance(e, Submitted)]
    if not submitted:
        return False
    tasks = set(submitted[0].job_ids.values())
    out = subprocess.run(["squeue", "-h", "-r", "-t", "RUNNING", "-o", "%i", "-j", submitted[0].array_id],
                         capture_output=True, text=True).stdout.split()
    return tasks <= set(out)


def _node_state() -> str:
    return subprocess.run(["sinfo", "-h", "-n", NODE, "-o", "%T"], capture_output=True, text=True).stdout.strip()


def _controller_answers() -> bool:
    return subprocess.run(["scontrol", "ping"], capture_output=True, text=True).stdout.count("is UP") > 0


def _finished_once(run_dir: Path, out: str, returncode: int) -> None:
    """The run ended well, and every evaluation has exactly one result, in the journal and in results.csv."""
    assert returncode == 0, out[-4000:] + daemon_logs()[-6000:]
    results = [e.result for e in _events(run_dir) if isinstance(e, ResultRecorded)]
    names = [r.name for r in results]
    assert len(names) == len(set(names)) == 8, names
    with (run_dir / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["name"] for r in rows) == sorted(names)
    assert all(r["status"] == "ok" for r in rows), [(r["name"], r["reason"]) for r in rows]


@pytest.mark.serial  # takes node2 down
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_node_going_down_under_running_tasks_loses_no_evaluation(tmp_path):
    run_dir = tmp_path / "run"
    # Longer trainings than the smoke run's, so the tasks are still running when the node goes down.
    driver = _driver(run_dir, "train.epochs=120", "task.n_samples=4000")
    hit: list[str] = []
    try:
        _await(lambda: hit.extend(_running_on_node(_array_ids(run_dir))) or hit, "task running on node2", driver)
        down = subprocess.run(["scontrol", "update", f"nodename={NODE}", "state=down", "reason=gaslurm-test"],
                              capture_output=True, text=True)
        assert down.returncode == 0, down.stderr
        deadline = time.monotonic() + 120
        while _running_on_node(_array_ids(run_dir)) and driver.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        subprocess.run(["scontrol", "update", f"nodename={NODE}", "state=resume"], capture_output=True, text=True)
    deadline = time.monotonic() + 120
    while "down" in _node_state() and time.monotonic() < deadline:  # back in service before anything waits on it
        time.sleep(0.5)
    out, _ = driver.communicate(timeout=600)
    _finished_once(run_dir, out, driver.returncode)
    # Slurm ended the hit tasks (NODE_FAIL, or requeued them itself): their evaluations still counted once.
    history = subprocess.run(["sacct", "-n", "-X", "-P", "-D", "-o", "JobID,State", "-j", ",".join(hit)],
                             capture_output=True, text=True).stdout
    assert "NODE_FAIL" in history or "REQUEUED" in history or "resubmit" in out.lower(), history


@pytest.mark.serial  # stops and restarts slurmctld
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_slurmctld_restart_while_the_driver_submits_loses_and_repeats_nothing(tmp_path):
    run_dir = tmp_path / "run"
    driver = _driver(run_dir)
    try:
        # Every task of generation 1 running: they end (and leave their results) while the controller is away.
        _await(lambda: _all_running(run_dir), "generation 1's tasks all running", driver)
        stop = subprocess.run(["bash", str(DEV / "down.sh"), "slurmctld"], capture_output=True, text=True)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        _await(lambda: not _controller_answers(), "controller stopped", driver, 60)
        # Generation 1's results come from the tasks' files; generation 2's sbatch meets the missing controller.
        log = run_dir / "driver.log"
        _await(lambda: log.exists() and "could not reach the Slurm controller" in log.read_text(),
               "sbatch retry while the controller is away", driver)
    finally:
        up = subprocess.run(["bash", str(DEV / "up.sh")], capture_output=True, text=True)
        assert up.returncode == 0, up.stdout + up.stderr + daemon_logs()
    out, _ = driver.communicate(timeout=600)
    _finished_once(run_dir, out, driver.returncode)
    events = _events(run_dir)
    # Each try of the refused submission was journaled and then abandoned; exactly one array per generation ran.
    tags = [e.tag for e in events if isinstance(e, Submitting)]
    abandoned = {e.tag for e in events if isinstance(e, Abandoned)}
    assert abandoned and abandoned < set(tags)
    assert len([e for e in events if isinstance(e, Submitted)]) == 2
    for tag in abandoned:
        ran = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "JobID,State", "--name", tag, "-S", "now-1days"],
                             capture_output=True, text=True).stdout.split()
        assert all(line.split("|")[1].startswith("CANCELLED") for line in ran), f"{tag} was abandoned: {ran}"
