"""The Slurm backend's own logic against a cluster faked at the process boundary (no cluster needed):
lost tasks, resubmission after preemption or node failure, re-attach by job name after a crash in sbatch."""

from __future__ import annotations

import dataclasses

import pytest

from tests.contract.test_backends import cand, config
from tests.fake_slurm import FakeSlurm
from tests.support import RecordingSink
from workflow.backends import make_backend, run_batch
from workflow.errors import ClusterError
from workflow.store.events import Abandoned, Recovered, Submitted, Submitting


def _run(fate, tmp_path, *extra, batch=None, sink=None):
    batch = batch or [cand("a", 90, 1), cand("b", 80, 2)]
    sink = sink or RecordingSink()
    with FakeSlurm(fate) as fake:
        backend = make_backend(config("slurm-fake", *extra), tmp_path)
        run_batch(backend, batch, sink)
        backend.close()
    return sink, fake


def test_a_task_unknown_to_slurm_is_failed_as_lost_after_the_grace_time(tmp_path):
    sink, _ = _run(lambda names, attempt: "LOST" if "b" in names else "COMPLETED", tmp_path)
    assert sink.results["a"].ok
    assert sink.results["b"].reason == "lost: no result and not known to Slurm for 0.2 s"


@pytest.mark.parametrize("state", ["PREEMPTED", "NODE_FAIL", "BOOT_FAIL"])
def test_preemption_and_node_failures_are_submitted_again_and_counted_once(tmp_path, state):
    sink, fake = _run(lambda names, attempt: state if "b" in names and attempt < 2 else "COMPLETED", tmp_path)
    assert sink.results["a"].ok and sink.results["b"].ok
    assert fake.sbatch_calls == 3  # the batch, then "b" twice more
    again = [e for e in sink.events if e.resubmit]
    assert [(type(e), e.names, e.resubmit, e.after) for e in again] == [
        (Submitting, ("b",), 1, state), (Submitted, ("b",), 1, state),
        (Submitting, ("b",), 2, state), (Submitted, ("b",), 2, state)]
    assert sink.results["b"].job_id == again[-1].job_id("b")


def test_a_memory_kill_that_accounting_records_as_failed_is_out_of_memory(tmp_path):
    """slurmdbd may record the allocation FAILED before its srun step's OUT_OF_MEMORY; the oom-kill line that
    slurmstepd wrote to the task's stderr decides."""
    from submitit.core import utils

    fakes: list[FakeSlurm] = []

    def fate(names, attempt):
        if "b" not in names:
            return "COMPLETED"
        fake = fakes[0]
        task = next(t for t in fake.tasks.values() if t.state == "PENDING" and fake.names(t) == names)
        stderr = utils.JobPaths(task.folder, job_id=task.job_id).stderr
        stderr.parent.mkdir(parents=True, exist_ok=True)
        stderr.write_text(f"slurmstepd-node2: error: Detected 1 oom-kill event(s) in StepId={task.job_id}.0. Some of "
                          "your processes may have been killed by the cgroup out-of-memory handler.\n")
        return "FAILED"

    sink = RecordingSink()
    with FakeSlurm(fate) as fake:
        fakes.append(fake)
        backend = make_backend(config("slurm-fake"), tmp_path)
        run_batch(backend, [cand("a", 90, 1), cand("b", 80, 2)], sink)
        backend.close()
    assert sink.results["a"].ok
    assert sink.results["b"].reason.startswith("Slurm state OUT_OF_MEMORY: slurmstepd-node2: error: Detected 1 oom")


def test_resubmissions_stop_at_max_resubmits_with_a_failure_naming_the_state(tmp_path):
    sink, fake = _run(lambda names, attempt: "PREEMPTED" if "b" in names else "COMPLETED", tmp_path,
                      "slurm.max_resubmits=1")
    assert fake.sbatch_calls == 2
    assert sink.results["b"].reason.startswith("Slurm state PREEMPTED after 1 resubmissions (slurm.max_resubmits=1)")


def test_the_resubmission_count_survives_a_driver_restart(tmp_path):
    # A driver resumed after one resubmission knows it: the journal's latest submission carries the count.
    first = RecordingSink()
    with FakeSlurm(lambda names, attempt: "PENDING") as fake:
        backend = make_backend(config("slurm-fake", "slurm.max_resubmits=1"), tmp_path)
        backend.submit([cand("b", 80, 2)], first)
        backend.close()
    previous = {"b": dataclasses.replace(first.previous["b"], resubmit=1)}
    sink = RecordingSink(previous=previous)
    with FakeSlurm(lambda names, attempt: "PREEMPTED") as fake:
        fake.tasks.update({k: v for k, v in first_tasks(first, tmp_path).items()})
        backend = make_backend(config("slurm-fake", "slurm.max_resubmits=1"), tmp_path)
        run_batch(backend, [cand("b", 80, 2)], sink)
    assert fake.sbatch_calls == 0
    assert "after 1 resubmissions" in sink.results["b"].reason


def first_tasks(sink, tmp_path):
    from tests.fake_slurm import Task

    event = next(e for e in sink.events if isinstance(e, Submitted) and e.job_ids)
    return {job: Task(job, event.tag, event.folder) for job in event.job_ids.values()}


def test_a_driver_that_died_inside_sbatch_finds_its_array_by_job_name(tmp_path):
    first = RecordingSink()
    batch = [cand("a", 90, 1), cand("b", 80, 2)]
    with FakeSlurm(lambda names, attempt: "PENDING") as fake:
        backend = make_backend(config("slurm-fake"), tmp_path)
        backend.submit(batch, first)
        tasks = dict(fake.tasks)
    intent = next(e for e in first.events if isinstance(e, Submitting))
    sink = RecordingSink(previous={name: intent for name in intent.names})  # job ids never journaled
    with FakeSlurm() as fake:
        fake.tasks.update(tasks)
        backend = make_backend(config("slurm-fake"), tmp_path)
        run_batch(backend, batch, sink)
    assert fake.sbatch_calls == 0
    assert sorted(sink.results) == ["a", "b"] and all(r.ok for r in sink.results.values())
    recovered = [e for e in sink.events if isinstance(e, Recovered)]
    assert len(recovered) == 1 and set(recovered[0].job_ids.values()) == set(tasks)


def test_no_more_tasks_are_queued_than_the_sites_max_submit_jobs(tmp_path):
    # MaxSubmitJobs=2 read from sacctmgr: 5 evaluations go out two at a time, each as room frees.
    batch = [cand(f"e{i}", 80 + i, i) for i in range(1, 6)]
    sink = RecordingSink()
    with FakeSlurm(max_submit=2) as fake:
        backend = make_backend(config("slurm-fake"), tmp_path)
        backend.submit(batch, sink)
        assert backend.in_flight() == 5  # the held ones count: the driver waits for them too
        assert len(fake.tasks) == 2
        while backend.in_flight():
            backend.collect(sink)
        backend.close()
    assert sorted(sink.results) == [c.name for c in batch] and all(r.ok for r in sink.results.values())
    assert fake.most_queued == 2 and len(fake.tasks) == 5
    submitted = [n for e in sink.events if isinstance(e, Submitted) for n in e.job_ids]
    assert sorted(submitted) == sorted(sink.results)  # each submitted once


def test_without_a_limit_a_batch_is_one_array(tmp_path):
    batch = [cand(f"e{i}", 80 + i, i) for i in range(1, 6)]
    sink, fake = _run(lambda names, attempt: "COMPLETED", tmp_path, batch=batch)
    assert fake.sbatch_calls == 1 and fake.most_queued == 5 and len(sink.results) == 5


def test_one_slurm_run_asks_sinfo_once(tmp_path, monkeypatch, capsys):
    # `run` end to end in this process (pre-flight, run directory, driver, Slurm backend): the pre-flight check
    # and the backend's own check share sinfo's one answer. The driver's process-wide set-up (log handlers,
    # signal handlers) is left out so that nothing outlives the test.
    import workflow.session
    from tests.contract.test_backends import OBJECTIVE, SETTINGS
    from tests.support import SMOKE
    from workflow.cli import main

    for name in ("log_to_console", "log_to_file", "stop_on"):
        monkeypatch.setattr(workflow.session, name, lambda *args, **kwargs: None)
    with FakeSlurm() as fake:
        status = main(["run", str(SMOKE), *OBJECTIVE, *SETTINGS["slurm-fake"], "optimizer.generations=1",
                       "--run-dir", str(tmp_path / "run"), "--no-report"])
    assert status == 0, capsys.readouterr().err
    assert "finished: 4 evaluations (0 failed)" in capsys.readouterr().out
    assert fake.sbatch_calls == 1 and fake.asked["sinfo"] == 1


def test_sbatch_is_tried_again_while_the_controller_is_away_and_never_queues_twice(tmp_path):
    """sbatch fails twice as a restarting slurmctld makes it fail: once before the controller made the job,
    once after (its answer lost). Each try is journaled and abandoned; the lost answer's job is cancelled; one
    array runs the batch."""
    sink = RecordingSink()
    with FakeSlurm() as fake:
        fake.sbatch_failures = [
            ("sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)",
             False),
            ("sbatch: error: Batch job submission failed: Socket timed out on send/recv operation", True)]
        backend = make_backend(config("slurm-fake"), tmp_path)
        run_batch(backend, [cand("a", 90, 1), cand("b", 80, 2)], sink)
        backend.close()
    assert fake.sbatch_calls == 3 and sink.results["a"].ok and sink.results["b"].ok
    tries = [e.tag for e in sink.events if isinstance(e, Submitting)]
    assert len(tries) == 3 and len(set(tries)) == 3
    assert [e.tag for e in sink.events if isinstance(e, Abandoned)] == tries[:2]
    assert [e.tag for e in sink.events if isinstance(e, Submitted)] == tries[2:]
    made_anyway = [t for t in fake.tasks.values() if t.name == tries[1]]
    assert made_anyway and all(t.state == "CANCELLED" for t in made_anyway)
    ran = [t for t in fake.tasks.values() if t.state == "COMPLETED"]
    assert {t.name for t in ran} == {tries[2]}


def test_sbatch_refusing_the_request_is_one_clear_error_not_a_retry(tmp_path):
    with FakeSlurm() as fake:
        fake.sbatch_failures = [("sbatch: error: Batch job submission failed: Invalid account or account/partition "
                                 "combination specified", False)]
        backend = make_backend(config("slurm-fake"), tmp_path)
        with pytest.raises(ClusterError, match="sbatch refused generation 1's array: sbatch: error: Batch job "
                                               "submission failed: Invalid account"):
            run_batch(backend, [cand("a", 90, 1)], RecordingSink())
    assert fake.sbatch_calls == 1
