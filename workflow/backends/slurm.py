"""Slurm backend: each batch (a GA generation) becomes one submitit job array.

Submission, pickling and result files are submitit's. What we add:
- the sbatch request derived from the config (``slurm`` plus ``train.devices``) and checked with the cluster
  before anything is submitted;
- an intent (``submitting`` with a unique job name) in the journal before sbatch runs, and the job ids after,
  so a driver that dies in between can find its jobs instead of submitting them twice;
- results recorded as each task finishes, with sacct's state deciding when a task died without a result
  (squeue and a grace time when accounting is unavailable);
- re-attaching to tasks submitted by an earlier driver (submitit jobs rebuilt from folder and job id);
- preemption and node failures are not the evaluation's fault: a task that ends PREEMPTED (and is not coming
  back by itself), NODE_FAIL or BOOT_FAIL is submitted again under the same name and work directory (its
  checkpoint continues), journaled, at most ``slurm.max_resubmits`` times; then it is a failed result;
- the site's limits: arrays no larger than ``MaxArraySize``, and no more tasks queued than the association's
  ``MaxSubmitJobs`` (or the QOS's ``MaxSubmitJobsPerUser``) allows, counting the user's other jobs: what does
  not fit is held and submitted as tasks finish (sbatch would refuse it).

Whatever is asked between two polls is submitted as one array: in steady state, when many results arrive in one
poll, their replacements are one sbatch, not one each.
"""

from __future__ import annotations

import getpass
import logging
import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import submitit

from workflow.backends.base import BackendBase, Sink
from workflow.backends.slurm_task import SlurmEvaluation
from workflow.cluster import (
    FINAL_STATES,
    cancel,
    check_request,
    gpus_per_task,
    query_jobs_by_name,
    query_max_array_size,
    query_max_submit_jobs,
    query_partitions,
    query_queue,
    query_states,
    query_user_jobs,
    validate_slurm_strings,
)
from workflow.config import Config
from workflow.errors import ClusterError
from workflow.evaluate import reason_from_trace
from workflow.faults import crash_point
from workflow.packing import make_packs, pack_size
from workflow.records import Candidate, Result
from workflow.store.events import Submitting
from workflow.store.layout import pack_workdir

log = logging.getLogger(__name__)

STDERR_TAIL_CHARS = 1500
#: Final states that say nothing about the evaluation itself: the task is submitted again.
RESUBMIT_STATES = {"PREEMPTED", "NODE_FAIL", "BOOT_FAIL"}
#: What slurmstepd writes to a task's stderr when the cgroup's OOM killer ended one of its steps.
OOM_KILL_MARK = "oom-kill event"
#: What :meth:`SlurmBackend._outcome` returns for a task to submit again.
RESUBMIT = "resubmit"
#: sbatch's words when the controller is away for a while (restarting, failing over, overloaded): the
#: submission is tried again, never the evaluation's fault.
CONTROLLER_AWAY = ("Unable to contact slurm controller", "Socket timed out", "temporarily unable",
                   "Zero Bytes were transmitted", "Connection refused", "connection failure")
#: How long a submission is retried while the controller is away before the driver gives up (resumable).
SUBMIT_RETRY_S = 600.0


def executor_parameters(config: Config, job_name: str) -> dict[str, Any]:
    """The submitit ``SlurmExecutor.update_parameters`` arguments for one evaluation task."""
    slurm, train = config.slurm, config.train
    cpus = slurm.cpus_per_task
    if train.accelerator != "gpu" and train.devices > 1:
        cpus = max(cpus, train.devices)  # DDP over CPU processes inside the one task
    params: dict[str, Any] = {
        "job_name": job_name,
        "partition": slurm.partition,
        "time": slurm.time_min,
        "cpus_per_task": cpus,
        "mem": f"{int(slurm.mem_gb * 1024)}M",
        "ntasks_per_node": 1,
        "array_parallelism": slurm.array_parallelism,
        "signal_delay_s": slurm.signal_delay_s,
        "setup": list(slurm.setup),
    }
    gpus = gpus_per_task(config)
    if gpus:
        params["gpus_per_node"] = gpus
    if slurm.account:
        params["account"] = slurm.account
    if slurm.qos:
        params["qos"] = slurm.qos
    if slurm.additional_parameters:
        params["additional_parameters"] = {k: str(v) for k, v in slurm.additional_parameters.items()}
    return params


class SlurmBackend(BackendBase):
    name = "slurm"

    def __init__(self, config: Config, run_dir: Path) -> None:
        super().__init__(config, run_dir)
        self._max_array: int | None = None
        self._max_submit: int | None = None
        #: Asked, not yet submitted: no room under the site's MaxSubmitJobs (submitted as tasks finish).
        self._held: list[Candidate] = []
        self._sacct_warned = False
        #: Tasks in flight: {job id: (its submitit job, the evaluations it holds)}.
        self._groups: dict[str, tuple[submitit.Job[Any], list[Candidate]]] = {}
        self._unseen_since: dict[str, float] = {}
        #: How many times each evaluation was submitted again after a preemption or node failure.
        self._resubmits: dict[str, int] = {}

    def bind(self, config: Config, run_dir: Path) -> None:
        super().bind(config, run_dir)
        self.folder = self.run_dir / config.slurm.folder
        self._checked = False  # another run may ask for another partition

    # -- checks -------------------------------------------------------------------------------------

    def preflight(self) -> None:
        """Validate strings and ask the cluster whether it can run the request (once per driver)."""
        if self._checked:
            return
        validate_slurm_strings(self.config)
        check_request(self.config, query_partitions())
        self._max_array = query_max_array_size()
        self._max_submit = query_max_submit_jobs(getpass.getuser(), self.config.slurm.account,
                                                 self.config.slurm.qos)
        self._checked = True

    # -- running ------------------------------------------------------------------------------------

    def submit(self, candidates: Sequence[Candidate], sink: Sink) -> None:
        if not candidates:
            return
        self.preflight()
        jobs = self._reattach(candidates, sink)
        fresh = self._within_limit([c for c in candidates if c.name not in jobs])
        if fresh:
            jobs.update(self._submit(fresh, sink))
        self._track(candidates, jobs)

    def _within_limit(self, candidates: list[Candidate]) -> list[Candidate]:
        """The leading ``candidates`` that fit under MaxSubmitJobs now; the others are held."""
        if self._max_submit is None or not candidates:
            return candidates
        # Our own tasks count until their results are recorded, even when squeue no longer lists them: a
        # task that just ended frees its place only once the driver has taken its result.
        queued = max(query_user_jobs(getpass.getuser()), len(self._groups))
        room = max(self._max_submit - queued, 0)
        size = pack_size(self.config.train, len(candidates), gpu=gpus_per_task(self.config) > 0)
        allowed = room * size
        if allowed < len(candidates):
            log.info("holding %d evaluations: the site allows %d queued jobs (MaxSubmitJobs) and %d are queued",
                     len(candidates) - allowed, self._max_submit, queued)
        self._held.extend(candidates[allowed:])
        return candidates[:allowed]

    def _release_held(self, sink: Sink) -> None:
        """Submit what was held, as far as the limit now allows."""
        held, self._held = self._held, []
        released = self._within_limit(held)
        if released:
            self._track(released, self._submit(released, sink))

    def _track(self, candidates: Sequence[Candidate], jobs: dict[str, submitit.Job[Any]]) -> None:
        for cand in candidates:
            if cand.name in jobs:  # not held back
                job = jobs[cand.name]
                self._groups.setdefault(job.job_id, (job, []))[1].append(cand)

    def in_flight(self) -> int:
        return sum(len(cands) for _, cands in self._groups.values()) + len(self._held)

    def _reattach(self, candidates: Sequence[Candidate], sink: Sink) -> dict[str, submitit.Job[Any]]:
        """Jobs an earlier driver submitted for these candidates (by recorded id, or found by job name)."""
        jobs: dict[str, submitit.Job[Any]] = {}
        intents: dict[str, Submitting] = {}
        for cand in candidates:
            previous = sink.previous_submission(cand.name)
            if previous is None:
                continue
            self._resubmits[cand.name] = previous.resubmit or 0
            folder = previous.folder or str(self.folder / "%j")
            job_id = previous.job_id(cand.name)
            if job_id:
                jobs[cand.name] = submitit.SlurmJob(folder=folder, job_id=job_id)
            elif isinstance(previous, Submitting) and previous.tag:
                intents[previous.tag] = previous
        for tag, intent in intents.items():
            found = self._find_by_tag(tag, intent)
            folder = intent.folder or str(self.folder / "%j")
            recovered: dict[str, submitit.Job[Any]] = {
                name: submitit.SlurmJob(folder=folder, job_id=job_id) for name, job_id in found.items()}
            if recovered and not all(job.paths.submitted_pickle.exists() for job in recovered.values()):
                # The driver died inside submitit, after sbatch but before the task pickles were moved into
                # place: those tasks can never run the evaluation. Cancel them and submit afresh.
                cancel(recovered[name].job_id for name in recovered)
                log.warning("cancelled array %s (submitted as %s without its task files); resubmitting",
                            sorted({j.job_id.split("_")[0] for j in recovered.values()}), tag)
                sink.abandoned(list(recovered), tag=tag)
                continue
            if recovered:
                sink.recovered(list(recovered), tag=tag, folder=folder,
                               job_ids={n: j.job_id for n, j in recovered.items()})
            jobs.update(recovered)
        if jobs:
            log.info("re-attached to %d Slurm tasks submitted by an earlier driver", len(jobs))
        return jobs

    def _find_by_tag(self, tag: str, intent: Submitting) -> dict[str, str]:
        """{evaluation name: job id} for the array submitted under ``tag`` by a driver that then died."""
        states = query_jobs_by_name(tag)
        if not states:
            return {}
        array_ids = {job_id.split("_")[0] for job_id in states}
        if len(array_ids) != 1:
            raise ClusterError(f"job name {tag} matches several jobs ({sorted(array_ids)}); resolve by hand")
        array_id = array_ids.pop()
        packs = intent.packs or tuple((name,) for name in intent.names)
        log.warning("found Slurm array %s submitted as %s by an earlier driver", array_id, tag)
        if len(packs) == 1 and array_id in states:  # a lone task is a plain job, not an array
            return {name: array_id for name in packs[0]}
        return {name: f"{array_id}_{i}" for i, pack in enumerate(packs) for name in pack}

    def _submit(self, cands: Sequence[Candidate], sink: Sink, again: tuple[int, str] | None = None
                ) -> dict[str, submitit.Job[Any]]:
        """sbatch ``cands`` as job arrays (``again``: how often they were submitted before, and the Slurm state
        that ended the last attempt)."""
        resubmit, after = again if again else (None, None)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        max_array = max((self._max_array or 1001) - 1, 1)
        size = pack_size(self.config.train, len(cands), gpu=gpus_per_task(self.config) > 0)
        all_packs = make_packs(cands, size)
        jobs: dict[str, submitit.Job[Any]] = {}
        for start in range(0, len(all_packs), max_array):
            packs = all_packs[start:start + max_array]
            generation = packs[0][0].generation
            names = [c.name for pack in packs for c in pack]
            tag, submitted = self._sbatch(packs, names, sink, resubmit, after)
            n = len(packs)
            crash_point("after-sbatch")
            job_ids = {c.name: job.job_id for pack, job in zip(packs, submitted) for c in pack}
            array_id = submitted[0].job_id.split("_")[0]
            sink.submitted(names, tag=tag, folder=str(self.folder / "%j"), job_ids=job_ids, array_id=array_id,
                           resubmit=resubmit, after=after)
            log.info("generation %d: submitted %d evaluations in %d tasks as Slurm array %s", generation,
                     len(names), n, array_id)
            jobs.update({c.name: job for pack, job in zip(packs, submitted) for c in pack})
        return jobs

    def _sbatch(self, packs: list[list[Candidate]], names: list[str], sink: Sink, resubmit: int | None,
                after: str | None) -> tuple[str, list[submitit.Job[Any]]]:
        """One job array for ``packs`` (its tag and jobs), tried again while the controller is away.

        Each try has its own tag, journaled before sbatch runs. A failed try whose job the controller made
        anyway (its answer was lost) is cancelled and abandoned before the next: an evaluation is never queued
        twice, and a driver that dies in between finds at most the last try by its tag.
        """
        generation = packs[0][0].generation
        give_up = time.monotonic() + SUBMIT_RETRY_S
        wait = self.config.slurm.poll_s
        while True:
            tag = f"{self.config.name[:40]}.g{generation}.{uuid.uuid4().hex[:10]}"
            # The intent is durable before sbatch runs: a driver dying right after sbatch is found by tag.
            sink.submitting(names, tag=tag, folder=str(self.folder / "%j"),
                            packs=[[c.name for c in pack] for pack in packs], resubmit=resubmit, after=after)
            executor = submitit.SlurmExecutor(folder=self.folder / "%j",
                                              max_num_timeout=self.config.slurm.max_requeues)
            executor.update_parameters(**executor_parameters(self.config, tag))
            try:
                return tag, executor.map_array(SlurmEvaluation(), packs, [self.spec] * len(packs),
                                               [str(pack_workdir(self.run_dir, pack)) for pack in packs])
            except submitit.core.utils.FailedJobError as exc:
                message = " ".join(str(exc).split())
                if not any(words.lower() in message.lower() for words in CONTROLLER_AWAY):
                    raise ClusterError(f"sbatch refused generation {generation}'s array: {message[:300]}") from None
                if time.monotonic() + wait > give_up:
                    raise ClusterError(f"sbatch: the Slurm controller did not take generation {generation}'s array "
                                       f"for {SUBMIT_RETRY_S:g} s ({message[:200]}); resume once it is back") from None
                log.warning("sbatch could not reach the Slurm controller (%s): trying again in %g s", message[:200],
                            wait)
            give_up_tag = self._settle(tag, names, sink, give_up)
            if give_up_tag:
                raise ClusterError(f"the Slurm controller did not answer for {SUBMIT_RETRY_S:g} s; resume once it "
                                   "is back")
            time.sleep(wait)
            wait = min(wait * 2, 30.0)

    def _settle(self, tag: str, names: list[str], sink: Sink, give_up: float) -> bool:
        """After a failed sbatch: once the controller answers, cancel whatever it made under ``tag`` and journal
        the try as abandoned. True when the controller stayed away until ``give_up``."""
        wait = self.config.slurm.poll_s
        while True:
            try:
                found = query_jobs_by_name(tag)
                break
            except ClusterError:
                if time.monotonic() + wait > give_up:
                    return True
                time.sleep(wait)
                wait = min(wait * 2, 30.0)
        if found:
            cancel(found)
            log.warning("cancelled %s, made by a failed sbatch (its answer was lost)", sorted(found))
        sink.abandoned(names, tag=tag)
        return False

    # -- collecting ---------------------------------------------------------------------------------

    def collect(self, sink: Sink, timeout_s: float | None = None) -> int:
        """Poll the tasks' states every ``slurm.poll_s``; report every task that is over (one result per
        evaluation it holds) as soon as a poll finds one, or after ``timeout_s`` with nothing."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self._groups or self._held:
            if self._held:
                self._release_held(sink)
            states = self._states({job_id: job for job_id, (job, _) in self._groups.items()})
            now = time.monotonic()
            count = 0
            again: dict[str, list[Candidate]] = {}
            for job_id, (job, cands) in list(self._groups.items()):
                outcome = self._outcome(cands, job, states.get(job_id), now)
                if outcome is None:
                    continue
                del self._groups[job_id]
                self._unseen_since.pop(job_id, None)
                if isinstance(outcome, str):  # RESUBMIT
                    again.setdefault(str(states.get(job_id)), []).extend(cands)
                    continue
                for result in outcome:
                    sink.result(result)
                count += len(outcome)
            for state, cands in again.items():
                self._resubmit(cands, state, sink)
            if count:
                return count
            if deadline is not None and now >= deadline:
                return 0
            crash_point("while-running")
            sink.waiting()
            time.sleep(self.config.slurm.poll_s)
        return 0

    def _states(self, jobs: dict[str, submitit.Job[Any]]) -> dict[str, str]:
        """{job id: state} for the given jobs (keyed by job id)."""
        array_ids = {job.job_id.split("_")[0] for job in jobs.values()}
        try:
            return query_states(array_ids)
        except ClusterError as exc:
            if not self._sacct_warned:
                log.warning("sacct unavailable (%s): falling back to squeue; a task missing from the queue "
                            "without a result is declared lost after %g s", exc, self.config.slurm.lost_grace_s)
                self._sacct_warned = True
            try:
                queued = query_queue(array_ids)
            except ClusterError:
                return {}
            return {job.job_id: queued.get(job.job_id, "GONE") for job in jobs.values()}

    def _resubmit(self, cands: list[Candidate], state: str, sink: Sink) -> None:
        """Submit again what a preemption or a node failure took (same names, work directories, checkpoints)."""
        count = max(self._resubmits.get(c.name, 0) for c in cands) + 1
        for cand in cands:
            self._resubmits[cand.name] = count
        log.warning("%d evaluations ended %s (not their fault): submitting them again (%d of at most %d)",
                    len(cands), state, count, self.config.slurm.max_resubmits)
        self._track(cands, self._submit(cands, sink, (count, state)))

    def _outcome(self, cands: list[Candidate], job: submitit.Job[Any], state: str | None,
                 now: float) -> list[Result] | str | None:
        """The task's results once it is over (failed results when it died), :data:`RESUBMIT` when it must
        run again, else None (still on its way)."""
        names = [c.name for c in cands]
        if job.paths.result_pickle.exists():
            return self._results_from_pickle(names, job)
        grace = self.config.slurm.lost_grace_s
        if state in RESUBMIT_STATES:
            if state == "PREEMPTED" and self._queued(job):
                return None  # PreemptMode=REQUEUE: Slurm brings it back itself
            done = max(self._resubmits.get(name, 0) for name in names)
            if done < self.config.slurm.max_resubmits:
                return RESUBMIT
            reason = (f"Slurm state {state} after {done} resubmissions (slurm.max_resubmits="
                      f"{self.config.slurm.max_resubmits}): {self._stderr_tail(job)}")
            return [Result.failure(name, reason, job_id=job.job_id) for name in names]
        if state in FINAL_STATES:
            if state == "COMPLETED":
                # The result file can trail the state on shared file systems: wait for it, bounded.
                first = self._unseen_since.setdefault(job.job_id, now)
                if now - first < grace:
                    return None
            tail = self._stderr_tail(job)
            if state == "FAILED" and OOM_KILL_MARK in tail:
                # slurmdbd can record the allocation FAILED before its srun step's OUT_OF_MEMORY (seen on a loaded
                # machine); slurmstepd's line in the task's stderr already says what happened.
                state = "OUT_OF_MEMORY"
            reason = f"Slurm state {state}: {tail}"
            return [Result.failure(name, reason, job_id=job.job_id) for name in names]
        if state in (None, "GONE", "UNKNOWN"):
            first = self._unseen_since.setdefault(job.job_id, now)
            if now - first >= grace:
                reason = f"lost: no result and not known to Slurm for {grace:g} s"
                return [Result.failure(name, reason, job_id=job.job_id) for name in names]
            return None
        self._unseen_since.pop(job.job_id, None)
        return None

    @staticmethod
    def _queued(job: submitit.Job[Any]) -> bool:
        """Whether squeue still holds the task (a preempted task that Slurm requeues is pending again)."""
        try:
            return job.job_id in query_queue([job.job_id.split("_")[0]])
        except ClusterError:
            return False

    def _results_from_pickle(self, names: list[str], job: submitit.Job[Any]) -> list[Result]:
        try:
            outcome = job.result()
        except Exception as exc:  # noqa: BLE001 - a task that raised is a failed evaluation
            reason = f"task raised ({type(exc).__name__}): {reason_from_trace(str(exc))}"
            return [Result.failure(name, reason, job_id=job.job_id) for name in names]
        returned = {r.name: r for r in (outcome if isinstance(outcome, list) else [outcome])
                    if isinstance(r, Result)}
        results = []
        for name in names:
            got = returned.get(name)
            if got is None:
                results.append(Result.failure(name, f"task returned no result for {name}", job_id=job.job_id))
            else:
                results.append(Result(name=got.name, status=got.status, fitness=got.fitness, metrics=got.metrics,
                                      seconds=got.seconds, reason=got.reason, job_id=job.job_id))
        return results

    @staticmethod
    def _stderr_tail(job: submitit.Job[Any]) -> str:
        path = job.paths.stderr
        try:
            with open(path, "rb") as handle:
                handle.seek(max(os.path.getsize(path) - STDERR_TAIL_CHARS, 0))
                tail = handle.read().decode(errors="replace").strip()
        except OSError:
            return "(no stderr file)"
        return tail.replace("\n", " | ") or "(stderr empty)"

    def close(self) -> None:
        """Forget the tasks in flight (they keep running on the cluster; a resumed driver re-attaches)."""
        self._groups.clear()
        self._held.clear()
