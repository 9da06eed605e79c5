"""The Slurm backend on the real dev cluster (make slurm-up): arrays, job states, the CLI end to end."""

import csv
import json
import math
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import RecordingSink, daemon_logs, genes
from workflow.backends import run_batch
from workflow.backends.slurm import SlurmBackend
from workflow.config import load_config
from workflow.records import Candidate
from workflow.store import RunStore
from workflow.store.events import ResultRecorded, Submitted, Submitting

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "configs" / "smoke.yaml"


def cli(*args, check=True, timeout=600):
    proc = subprocess.run([sys.executable, "-m", "workflow", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}\n{daemon_logs()[-8000:]}")
    return proc


def _sacct(*args: str) -> list[list[str]]:
    out = subprocess.run(["sacct", "-n", "-X", "-P", *args], capture_output=True, text=True, check=True).stdout
    return [line.split("|") for line in out.splitlines() if line]


def _await_sacct(array_id, condition, limit_s=30.0):
    deadline = time.monotonic() + limit_s
    while True:
        rows = _sacct("-j", array_id, "-o", "JobID,State")
        if condition(rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)


@pytest.mark.slow
def test_smoke_ga_through_slurm_one_array_per_generation(tmp_path):
    run_dir = tmp_path / "run"
    cli("run", SMOKE, "backend.name=slurm", "slurm.partition=gpu", "slurm.poll_s=0.5", "--run-dir", run_dir)
    rows = list(csv.DictReader((run_dir / "results.csv").open()))
    assert len(rows) == 8 and all(r["status"] == "ok" for r in rows)
    arrays = {}
    for row in rows:
        array_id, task = row["job_id"].split("_")
        arrays.setdefault(row["generation"], set()).add(array_id)
        assert task.isdigit()
    assert sorted(arrays) == ["1", "2"] and all(len(ids) == 1 for ids in arrays.values())
    array_ids = [ids.pop() for ids in arrays.values()]
    assert array_ids[0] != array_ids[1]
    for array_id in array_ids:
        # Slurm writes array task ends to the database a few seconds late: wait for them, bounded.
        states = _await_sacct(array_id, lambda rows: len(rows) == 4 and all(s != "RUNNING" for _, s in rows))
        assert all(state == "COMPLETED" for _, state in states), states
    status = json.loads(cli("status", run_dir, "--json").stdout)
    assert status["finished"] and status["evaluations"]["done"] == 8
    assert [g["job_ids"] for g in status["per_generation"]] == [[f"{a}_{i}" for i in range(4)] for a in array_ids]


def test_nonexistent_partition_fails_before_submission(tmp_path):
    run_dir = tmp_path / "run"
    # A name of its own: the run's jobs would be named "<name>.g<generation>.<uuid>". Only those are looked for,
    # never the whole queue or accounting (other tests and people submit jobs meanwhile).
    name = f"nopart-{uuid.uuid4().hex[:12]}"
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 5))
    proc = cli("run", SMOKE, f"name={name}", "backend.name=slurm", "slurm.partition=nope", "--run-dir", run_dir,
               check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: config error: slurm.partition='nope': no such partition on this "
                                   "cluster; available: gpu, gpu2, urgent")
    assert not run_dir.exists()
    queued = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%j"], capture_output=True, text=True,
                            check=True).stdout.split()
    accounted = [row[0] for row in _sacct("-S", since, "-o", "JobName")]
    assert [job for job in queued + accounted if job.startswith(name)] == []


def _cancel_once_running(sink: RecordingSink, name: str,
                         ready: Callable[[], bool] = lambda: True) -> threading.Thread:
    """A started thread that scancels the task holding ``name`` once squeue shows it RUNNING and ``ready()``."""

    def cancel() -> None:
        deadline = time.monotonic() + 300  # the task may wait for room on its node beside other tests' jobs
        while time.monotonic() < deadline:
            ids = next((e.job_ids for e in sink.events if isinstance(e, Submitted) and e.job_ids), None)
            if ids and ready():
                queue = subprocess.run(["squeue", "-h", "-r", "-o", "%i|%T", "-j", ids[name]], capture_output=True,
                                       text=True).stdout
                if f"{ids[name]}|RUNNING" in queue.split():
                    subprocess.run(["scancel", ids[name]], check=True)
                    return
            time.sleep(0.5)

    thread = threading.Thread(target=cancel, daemon=True)
    thread.start()
    return thread


@pytest.mark.slow  # waits out a 1-minute time limit
def test_failures_in_one_array_are_recorded_with_their_state(tmp_path):
    """In one generation: a task that raises, one scancel'ed, one past its time limit, one killed for memory."""
    config = load_config(SMOKE, ["backend.name=slurm", "slurm.partition=gpu2", "slurm.time_min=1",
                                 "slurm.signal_delay_s=5", "slurm.mem_gb=1.5", "slurm.poll_s=0.5",
                                 "slurm.lost_grace_s=30", "slurm.max_requeues=0",
                                 # 5 epochs of 8,000 samples: a second or two for a 1x16 MLP, minutes for
                                 # 8x2048 (~1.4e12 flop an epoch). The 1x16 must end long before the earliest
                                 # pre-timeout signal (slurmctld checks limits every ~30 s, so the signal due
                                 # at 55 s may come after 25 s), even while the two big ones load the cores.
                                 "train.epochs=5", "task.n_samples=10000"])
    ok = Candidate("ok", genes(1, 16, "relu", 0.0), 1, 1, "ga", seed=1)
    raises = Candidate("raises", genes(1, 16, "not_an_activation", 0.0), 1, 2, "ga", seed=2)
    # 40 layers of 8192 units: ~2.7e9 parameters, far beyond 1.5 GB -> the cgroup kills it.
    memory = Candidate("memory", genes(40, 8192, "relu", 0.0), 1, 3, "ga", seed=3)
    # These run until the 1-minute limit ends them, or scancel does.
    timeout = Candidate("timeout", genes(8, 2048, "relu", 0.0), 1, 4, "ga", seed=4)
    cancelled = Candidate("cancelled", genes(8, 2048, "relu", 0.0), 1, 5, "ga", seed=5)
    backend = SlurmBackend(config, tmp_path)
    sink = RecordingSink()
    canceller = _cancel_once_running(sink, "cancelled")
    run_batch(backend, [ok, raises, memory, timeout, cancelled], sink)
    canceller.join(timeout=5)
    results = sink.results
    assert set(results) == {"ok", "raises", "memory", "timeout", "cancelled"}
    assert results["ok"].ok, results["ok"]
    assert math.isfinite(results["ok"].fitness)
    assert results["raises"].status == "failed" and "not_an_activation" in results["raises"].reason
    assert results["cancelled"].status == "failed" and "Slurm state CANCELLED" in results["cancelled"].reason
    # Either Slurm's TIMEOUT, or submitit's pre-timeout signal ending a task that cannot be requeued.
    assert results["timeout"].status == "failed" and "TIMEOUT" in results["timeout"].reason
    assert results["memory"].status == "failed" and "Slurm state OUT_OF_MEMORY" in results["memory"].reason
    job_ids = {name: r.job_id for name, r in results.items()}
    array_ids = {j.split("_")[0] for j in job_ids.values()}
    assert len(array_ids) == 1, job_ids


def test_submit_detaches_and_status_follows_it_to_the_end(tmp_path):
    run_dir = tmp_path / "run"
    # A cheap objective: the detached driver and status are tested here, MLP training through Slurm above.
    proc = cli("submit", SMOKE, "slurm.poll_s=0.5", "objective.kind=python", f"objective.path={ROOT}",
               "objective.function=tests.objectives.landscape:seed_landscape", "--run-dir", run_dir)
    assert f"follow it with:  python -m workflow status {run_dir}" in proc.stdout
    deadline = time.monotonic() + 240
    seen_generations = set()
    while True:
        status = json.loads(cli("status", run_dir, "--json").stdout)
        seen_generations.add(status["generation"])
        if status["finished"] or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert status["finished"], (run_dir / "driver.log").read_text()[-3000:]
    assert status["backend"] == "slurm"
    assert status["evaluations"] == {"done": 8, "failed": 0, "pending": 0, "in_flight": 0, "planned": 8}
    assert all(g["job_ids"] for g in status["per_generation"])
    assert "generation 2/2" in (run_dir / "driver.log").read_text()


def test_one_individual_trained_with_ddp_over_two_processes_in_one_task(tmp_path):
    """Individual-level parallelism: train.devices=2 -> Lightning DDP over 2 CPU processes; the task asks
    Slurm for 2 CPUs (derived from the same setting)."""
    config = load_config(SMOKE, ["backend.name=slurm", "slurm.partition=gpu2", "slurm.poll_s=0.5",
                                 "train.accelerator=cpu", "train.devices=2", "train.epochs=2", "slurm.mem_gb=2"])
    cand = Candidate("ddp", genes(2, 32, "relu", 0.0), 1, 1, "ga", seed=3)
    sink = RecordingSink()
    run_batch(SlurmBackend(config, tmp_path), [cand], sink)
    result = sink.results["ddp"]
    assert result.ok, result.reason
    assert result.metrics["epochs"] == 2
    job_id = sink.events[-1].job_id("ddp")
    alloc = _sacct("-j", job_id.split("_")[0], "-o", "JobID,AllocCPUS")
    assert alloc and all(cpus == "2" for _, cpus in alloc), alloc


def test_packed_engine_places_several_individuals_in_one_array_task(tmp_path):
    run_dir = tmp_path / "run"
    cli("run", SMOKE, "backend.name=slurm", "slurm.poll_s=0.5", "train.engine=packed", "train.pack_size=3",
        "--run-dir", run_dir, "--no-report")
    rows = list(csv.DictReader((run_dir / "results.csv").open()))
    assert len(rows) == 8 and all(r["status"] == "ok" for r in rows)
    for generation in ("1", "2"):
        tasks = [r["job_id"] for r in rows if r["generation"] == generation]
        # 4 evaluations in packs of 3: two tasks of one array, holding 3 and 1 evaluations.
        assert sorted(tasks.count(t) for t in set(tasks)) == [1, 3]
        assert len({t.split("_")[0] for t in tasks}) == 1
    assert (run_dir / "evals" / "pack-fitness-1-1--fitness-1-3" / "packed.ckpt").exists()


@pytest.fixture
def accounting_down():
    """slurmdbd stopped for one test (sacct fails; slurmctld, squeue and jobs go on); up.sh restarts it."""
    dev = ROOT / "slurm" / "dev"
    stop = subprocess.run(["bash", str(dev / "down.sh"), "slurmdbd"], capture_output=True, text=True)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    try:
        deadline = time.monotonic() + 30
        while subprocess.run(["sacct", "-n", "-X", "-S", "now-1minutes"], capture_output=True).returncode == 0:
            assert time.monotonic() < deadline, "sacct still answers 30 s after slurmdbd was stopped"
            time.sleep(0.5)
        yield
    finally:
        up = subprocess.run(["bash", str(dev / "up.sh")], capture_output=True, text=True)
        assert up.returncode == 0, up.stdout + up.stderr + daemon_logs()
        deadline = time.monotonic() + 60
        while subprocess.run(["sacct", "-n", "-X", "-S", "now-1minutes"], capture_output=True).returncode != 0:
            assert time.monotonic() < deadline, "sacct does not answer 60 s after slurmdbd was restarted"
            time.sleep(0.5)


@pytest.mark.serial  # stops and restarts slurmdbd
def test_without_accounting_squeue_follows_the_tasks_and_a_vanished_one_is_lost(tmp_path, accounting_down,
                                                                                  caplog):
    """sacct down (slurmdbd stopped): results still come from the tasks; a task that leaves the queue without
    one (here scancel'ed) is failed as lost once ``slurm.lost_grace_s`` has passed, not waited on forever."""
    config = load_config(SMOKE, ["backend.name=slurm", "slurm.partition=gpu2", "slurm.poll_s=0.5",
                                 "slurm.lost_grace_s=5", "train.epochs=20", "task.n_samples=10000"])
    ok = Candidate("ok", genes(1, 16, "relu", 0.0), 1, 1, "ga", seed=1)
    cancelled = Candidate("cancelled", genes(5, 2048, "relu", 0.0), 1, 2, "ga", seed=2)  # runs for minutes
    backend = SlurmBackend(config, tmp_path)
    sink = RecordingSink()
    canceller = _cancel_once_running(sink, "cancelled", ready=lambda: "ok" in sink.results)
    with caplog.at_level("WARNING", logger="workflow"):
        run_batch(backend, [ok, cancelled], sink)
    canceller.join(timeout=5)
    assert sink.results["ok"].ok, sink.results["ok"].reason
    lost = sink.results["cancelled"]
    assert lost.status == "failed" and lost.reason.startswith("lost: no result and not known to Slurm for 5 s")
    assert any("sacct unavailable" in record.getMessage() and "falling back to squeue" in record.getMessage()
               for record in caplog.records)


@pytest.mark.serial  # preempts through the urgent partition
def test_a_preempted_task_is_submitted_again_and_its_evaluation_finishes_once(tmp_path):
    """Partition "urgent" (node1, higher PriorityTier) preempts "gpu" with PreemptMode=CANCEL: the task ends
    PREEMPTED for good; the backend submits it again under the same name and workdir, and it continues.

    The task asks for all 8 of node1's CPUs, and so does the urgent job: while the task runs nothing else runs
    on node1, so the urgent job can only preempt this test's own task, never another job on the cluster."""
    config = load_config(SMOKE, ["backend.name=slurm", "slurm.partition=gpu", "slurm.poll_s=0.5", "slurm.mem_gb=0.5",
                                 "slurm.cpus_per_task=8",
                                 "objective.kind=python", f"objective.path={ROOT}", "objective.metric=value",
                                 "objective.function=tests.objectives.landscape:steps_with_checkpoint"])
    cand = Candidate("long", genes(2, 90, "tanh", 0.0), 1, 1, "ga", seed=1)
    sink = RecordingSink()
    backend = SlurmBackend(config, tmp_path)
    step = tmp_path / "evals" / "long" / "step"
    preempted: list[str] = []
    urgent: list[str] = []

    def preempt_once_running():
        deadline = time.monotonic() + 300  # the task waits until node1 is free of every other job
        while time.monotonic() < deadline and not preempted:
            if step.exists() and int(step.read_text() or 0) >= 5:  # running, with progress saved
                preempted.append(sink.job_ids["long"])
                out = subprocess.run(["sbatch", "--parsable", "-p", "urgent", "-c", "8", "--mem=1000M",
                                      "-J", f"urgent-{uuid.uuid4().hex[:10]}", "-o", "/dev/null", "--wrap", "sleep 4"],
                                     check=True, capture_output=True, text=True).stdout
                urgent.append(out.strip().split(";")[0])
            time.sleep(0.2)

    thread = threading.Thread(target=preempt_once_running, daemon=True)
    thread.start()
    try:
        run_batch(backend, [cand], sink)
    finally:
        thread.join(timeout=5)
        if urgent:  # never left behind to preempt a later test's jobs
            subprocess.run(["scancel", *urgent], check=False)
    assert preempted, "the task never ran long enough to be preempted"
    result = sink.results["long"]
    assert result.ok, result.reason
    assert result.metrics["attempt"] == 1 and result.metrics["resumed_from"] >= 5  # went on from its checkpoint
    again = [e for e in sink.events if e.resubmit]
    assert [(type(e), e.resubmit, e.after) for e in again] == [(Submitting, 1, "PREEMPTED"),
                                                               (Submitted, 1, "PREEMPTED")]
    assert result.job_id == again[-1].job_id("long") != preempted[0]
    states = _await_sacct(preempted[0], lambda rows: rows and rows[0][1] == "PREEMPTED")
    assert states[0][1] == "PREEMPTED", states
    # The urgent job ran (on the resources the task held) and ended by itself.
    states = _await_sacct(urgent[0], lambda rows: rows and rows[0][1] == "COMPLETED")
    assert states and states[0][1] == "COMPLETED", states
    assert len(sink.results) == 1


@pytest.fixture
def limited_account():
    """An account of this user's with MaxSubmitJobs=2 (the dev cluster does not enforce limits, so only the
    workflow's own throttling keeps the queue at two)."""
    import getpass

    user = getpass.getuser()
    subprocess.run(["sacctmgr", "-i", "add", "account", "gaslimit"], capture_output=True, text=True)
    subprocess.run(["sacctmgr", "-i", "add", "user", user, "account=gaslimit"], capture_output=True, text=True)
    set_limit = subprocess.run(["sacctmgr", "-i", "modify", "user", "where", f"name={user}", "account=gaslimit",
                                "set", "MaxSubmitJobs=2"], capture_output=True, text=True)
    assert set_limit.returncode == 0, set_limit.stdout + set_limit.stderr
    shown = subprocess.run(["sacctmgr", "-nP", "show", "assoc", "where", f"user={user}", "account=gaslimit",
                            "format=MaxSubmit"], capture_output=True, text=True, check=True).stdout
    assert shown.split() == ["2"], shown
    yield "gaslimit"
    # The user's other associations were never limited; this one is left without a limit for later tests.
    subprocess.run(["sacctmgr", "-i", "modify", "user", "where", f"name={user}", "account=gaslimit", "set",
                    "MaxSubmitJobs=-1"], capture_output=True, text=True, check=True)


@pytest.mark.serial  # changes an association's limit with sacctmgr; the backend counts all of the user's jobs
def test_steady_state_keeps_the_queue_within_max_submit_jobs(tmp_path, limited_account):
    run_dir = tmp_path / "run"
    cli("run", SMOKE, "--run-dir", run_dir, "--no-report", "backend.name=slurm", "slurm.poll_s=0.5",
        f"slurm.account={limited_account}", "optimizer.mode=steady_state", "optimizer.generations=2",
        "objective.kind=python", "objective.function=tests.objectives.landscape:seed_landscape",
        f"objective.path={ROOT}")
    journal = list(RunStore(run_dir).events())
    # A task is in the queue from its submission intent to its result, in the driver's own order of events.
    queued: set[str] = set()
    most = 0
    for event in journal:
        if isinstance(event, Submitting):
            queued |= set(event.names)
        elif isinstance(event, ResultRecorded):
            queued.discard(event.result.name)
        most = max(most, len(queued))
    results = [e.result for e in journal if isinstance(e, ResultRecorded)]
    assert len(results) == len({r.name for r in results}) == 8 and all(r.ok for r in results)
    assert most == 2, most
    # Every task of the run was charged to the limited account (slurmdbd may record the last ones a little late).
    tasks = sorted({job for e in journal if isinstance(e, Submitted) for job in e.job_ids.values()})
    assert len(tasks) == 8, tasks
    deadline = time.monotonic() + 30
    while True:
        accounts = {row[0]: row[1] for row in _sacct("-j", ",".join(tasks), "-o", "JobID,Account")}
        if set(tasks) <= set(accounts) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert {accounts.get(task) for task in tasks} == {"gaslimit"}, accounts
