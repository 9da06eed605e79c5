"""The contract every backend keeps with the driver, one suite run against inline, local and Slurm.

Slurm runs twice: against submitit's and our process boundary faked (:mod:`tests.fake_slurm`, always: the
re-attach, lost-task and resubmission logic needs no cluster) and against the real dev cluster when it is up
(required in CI). Evaluations are a cheap Python objective (:mod:`tests.objectives.landscape`) whose chosen
widths raise, return NaN, return no metric or sleep past any limit.
"""

from __future__ import annotations

import math
import time

import pytest

from tests.fake_slurm import FakeSlurm
from tests.objectives.landscape import NAN, NO_METRIC, RAISES, SLEEPS
from tests.support import ROOT, SMOKE, RecordingSink, genes
from workflow.backends import make_backend, run_batch
from workflow.config import load_config
from workflow.records import Candidate
from workflow.store.events import Submitted, Submitting

OBJECTIVE = ["objective.kind=python", "objective.function=tests.objectives.landscape:behave", "objective.metric=value",
             f"objective.path={ROOT}"]
SETTINGS = {
    "inline": ["backend.name=inline"],
    "local": ["backend.name=local", "backend.workers=2", "backend.timeout_s=3"],
    "slurm-fake": ["backend.name=slurm", "slurm.poll_s=0.01", "slurm.lost_grace_s=0.2"],
    "slurm": ["backend.name=slurm", "slurm.partition=gpu2", "slurm.poll_s=0.5", "slurm.time_min=1",
              "slurm.signal_delay_s=5", "slurm.max_requeues=0", "slurm.mem_gb=1", "slurm.lost_grace_s=30"],
}
KINDS = [pytest.param("inline"), pytest.param("local"), pytest.param("slurm-fake"),
         pytest.param("slurm", marks=[pytest.mark.slurm, pytest.mark.slow])]  # slow: a 1-minute time limit


def cand(name: str, width: int, index: int = 1) -> Candidate:
    return Candidate(name, genes(2, width, "tanh", 0.0), 1, index, "ga", seed=index)


def config(kind: str, *extra: str):
    return load_config(SMOKE, [*OBJECTIVE, *SETTINGS[kind], *extra])


def fake_timeouts(names, attempt):
    return "TIMEOUT" if any(n.startswith("sleeps") for n in names) else "COMPLETED"


@pytest.fixture
def cluster(request):
    """The fake cluster for ``slurm-fake``; for ``slurm`` the real one must answer (else skip, or fail in CI)."""
    kind = request.node.callspec.params["kind"]
    if kind == "slurm":
        request.getfixturevalue("slurm_cluster")
    if kind != "slurm-fake":
        yield None
        return
    with FakeSlurm(fake_timeouts) as fake:
        yield fake


@pytest.mark.parametrize("kind", KINDS)
def test_every_candidate_gets_exactly_one_result_and_failures_are_results(kind, cluster, tmp_path):
    backend = make_backend(config(kind), tmp_path)
    batch = [cand("good", 90, 1), cand("raises", RAISES, 2), cand("nan", NAN, 3), cand("no-metric", NO_METRIC, 4)]
    if kind != "inline":  # the inline backend runs on the driver's thread: no per-evaluation limit
        batch.append(cand("sleeps", SLEEPS, 5))
    sink = RecordingSink()
    try:
        run_batch(backend, batch, sink)
        assert backend.in_flight() == 0
    finally:
        backend.close()
    results = sink.results
    assert sorted(results) == sorted(c.name for c in batch)
    assert results["good"].ok and results["good"].fitness == pytest.approx(0.0)
    assert not results["raises"].ok and "ValueError: boom at width 17" in results["raises"].reason
    assert not results["nan"].ok and "non-finite value=nan" in results["nan"].reason
    assert not results["no-metric"].ok and "no metric 'value'" in results["no-metric"].reason
    assert all(r.fitness == math.inf for name, r in results.items() if name != "good")
    if "sleeps" in results:  # Slurm: the time limit (or submitit's pre-timeout signal before it)
        expected = "timed out after 3 s (backend.timeout_s)" if kind == "local" else "TIMEOUT"
        assert expected in results["sleeps"].reason


@pytest.mark.parametrize("kind", KINDS)
def test_collect_reports_results_as_they_arrive_and_close_twice_is_harmless(kind, cluster, tmp_path):
    backend = make_backend(config(kind), tmp_path)
    sink = RecordingSink()
    backend.submit([cand("a", 90, 1), cand("b", 80, 2)], sink)
    assert backend.in_flight() == 2
    delivered = 0
    deadline = time.monotonic() + 300
    while backend.in_flight() and time.monotonic() < deadline:
        got = backend.collect(sink, timeout_s=60)
        assert got == len(sink.results) - delivered  # each call reports what it says it reported
        delivered = len(sink.results)
    assert sorted(sink.results) == ["a", "b"] and backend.in_flight() == 0
    assert backend.collect(sink, timeout_s=0.1) == 0  # nothing in flight: returns at once
    backend.close()
    backend.close()


@pytest.mark.parametrize("kind", [p for p in KINDS if p.values[0].startswith("slurm")])
def test_a_resumed_driver_reattaches_instead_of_submitting_again(kind, cluster, tmp_path):
    cfg = config(kind)
    batch = [cand("a", 90, 1), cand("b", 70, 2)]
    first = RecordingSink()
    backend = make_backend(cfg, tmp_path)
    backend.submit(batch, first)  # the driver dies here: the tasks are in the queue, nobody collects
    backend.close()
    submitted = [e for e in first.events if isinstance(e, Submitted) and e.job_ids]
    assert len(submitted) == 1
    sbatch_before = cluster.sbatch_calls if cluster else None
    again = RecordingSink(previous=first.previous)
    resumed = make_backend(cfg, tmp_path)
    run_batch(resumed, batch, again)
    resumed.close()
    assert sorted(again.results) == ["a", "b"] and all(r.ok for r in again.results.values())
    assert not [e for e in again.events if isinstance(e, Submitting)]  # nothing submitted twice
    assert {r.job_id for r in again.results.values()} == set(submitted[0].job_ids.values())
    if cluster is not None:
        assert cluster.sbatch_calls == sbatch_before
