"""What we ask the Slurm cluster directly (sinfo, scontrol, sacct, squeue) and the checks built on it.

Submission itself goes through submitit; this module only reads. Every command is an argument list (never a
shell string), and every parser is a pure function of the command's text so it is unit-tested on captured
output.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from workflow.config import Config
from workflow.errors import ClusterError, ConfigError

log = logging.getLogger(__name__)

#: Partition, account, qos, job names: what real sites use, nothing a shell would interpret.
SAFE_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$")
#: sbatch option names (``--key``) and values.
SAFE_OPTION = re.compile(r"^[a-z][a-z0-9-]{0,63}$")
SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.:,=/@%+-]{0,256}$")
#: Setup lines: commands with plain words and paths (``module load cuda/12.4``, ``source /x/venv/bin/activate``);
#: no quoting, expansion, redirection, pipes, separators or substitutions.
SAFE_SETUP_LINE = re.compile(r"^[A-Za-z0-9_./=:@%+, -]{1,512}$")

#: States after which a task will never produce more output.
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL",
                "DEADLINE", "PREEMPTED_FINAL", "REVOKED", "SPECIAL_EXIT"}


# ----------------------------------------------------------------------------------------- validation


def validate_slurm_strings(config: Config) -> None:
    """Reject anything that would reach sbatch unless it is in a conservative safe set."""
    slurm = config.slurm
    for key in ("partition", "account", "qos"):
        value = getattr(slurm, key)
        if value is not None and not SAFE_WORD.match(value):
            raise ConfigError(f"slurm.{key}", value, "use letters, digits, '_', '.', '+', '-' only")
    for key, value in slurm.additional_parameters.items():
        if not SAFE_OPTION.match(key):
            raise ConfigError(f"slurm.additional_parameters.{key}", value,
                              "option names are lower-case sbatch long options such as 'constraint'")
        if not SAFE_VALUE.match(str(value)):
            raise ConfigError(f"slurm.additional_parameters.{key}", value,
                              "values may contain letters, digits and _ . : , = / @ % + - only")
    for i, line in enumerate(slurm.setup):
        if not SAFE_SETUP_LINE.match(line):
            raise ConfigError(f"slurm.setup[{i}]", line,
                              "setup lines may contain letters, digits, spaces and _ . / = : @ % + , - only "
                              "(no quotes, $, ;, |, &, <, >, backticks)")


# ------------------------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Partition:
    name: str
    time_limit_min: int | None  # None: infinite
    gpus_per_node: int
    available: bool


def parse_slurm_time(text: str) -> int | None:
    """Minutes in a Slurm time string (``infinite``, ``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH[:MM[:SS]]``)."""
    text = text.strip()
    if text in {"infinite", "UNLIMITED", "NOT_SET", ""}:
        return None
    days = 0
    if "-" in text:
        day_text, text = text.split("-", 1)
        days = int(day_text)
        parts = [int(p) for p in text.split(":")] + [0, 0]
        hours, minutes, seconds = parts[0], parts[1], parts[2]
    else:
        parts = [int(p) for p in text.split(":")]
        if len(parts) == 1:
            hours, minutes, seconds = 0, parts[0], 0
        elif len(parts) == 2:
            hours, minutes, seconds = 0, parts[0], parts[1]
        else:
            hours, minutes, seconds = parts[0], parts[1], parts[2]
    return days * 1440 + hours * 60 + minutes + (1 if seconds else 0)


def parse_gpus(gres: str) -> int:
    """GPUs per node in a GRES string such as ``gpu:2``, ``gpu:a100:4(S:0-1)``, ``(null)``."""
    total = 0
    for item in gres.split(","):
        fields = item.split("(")[0].split(":")
        if fields and fields[0] == "gpu" and len(fields) >= 2 and fields[-1].isdigit():
            total = max(total, int(fields[-1]))
    return total


def parse_sinfo(text: str) -> dict[str, Partition]:
    """Output of ``sinfo -h -o '%R|%l|%G|%a'`` (one line per partition and node group)."""
    partitions: dict[str, Partition] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, limit, gres, avail = (line.split("|") + ["", "", ""])[:4]
        previous = partitions.get(name)
        gpus = max(parse_gpus(gres), previous.gpus_per_node if previous else 0)
        partitions[name] = Partition(name, parse_slurm_time(limit), gpus, avail.strip() == "up")
    return partitions


def parse_max_array_size(text: str) -> int:
    """``MaxArraySize`` from ``scontrol show config`` (Slurm's default is 1001)."""
    match = re.search(r"^MaxArraySize\s*=\s*(\d+)", text, re.MULTILINE)
    return int(match.group(1)) if match else 1001


def parse_limits(text: str) -> int | None:
    """The smallest number in a column of ``sacctmgr -nP`` output (one value per line; empty: no limit)."""
    values = [int(line.strip()) for line in text.splitlines() if line.strip().isdigit()]
    return min(values, default=None)


def parse_sacct(text: str) -> dict[str, str]:
    """``sacct -n -P -o JobID,State`` lines -> {``<array>_<task>`` or ``<job>``: state}.

    Pending arrays appear as ``123_[0-4%2]``: expanded to every task. States such as ``CANCELLED by 0`` keep
    their first word. Steps (``123_4.0``, ``.batch``) only matter for memory kills: submitit runs the task in an
    srun step, so the step is OUT_OF_MEMORY while the allocation just says FAILED; the step's cause wins.
    """
    states: dict[str, str] = {}
    step_oom: set[str] = set()
    for line in text.splitlines():
        if "|" not in line:
            continue
        job_id, state = line.split("|")[:2]
        state = state.split()[0] if state.strip() else "UNKNOWN"
        match = re.match(r"^(\d+)_\[(.+)\]$", job_id)
        if match:
            for task in _expand_ranges(match.group(2).split("%")[0]):
                states.setdefault(f"{match.group(1)}_{task}", state)
        elif "." in job_id:
            if state == "OUT_OF_MEMORY":
                step_oom.add(job_id.split(".")[0])
        else:
            states[job_id] = state
    for job_id in step_oom:
        if states.get(job_id) in ("FAILED", "CANCELLED", None):
            states[job_id] = "OUT_OF_MEMORY"
    return states


def _expand_ranges(text: str) -> Iterable[int]:
    for part in text.split(","):
        if "-" in part:
            low, high = part.split("-")
            yield from range(int(low), int(high) + 1)
        elif part.isdigit():
            yield int(part)


# ------------------------------------------------------------------------------------------- querying


def _run(command: Sequence[str], timeout: float = 30.0) -> str:
    try:
        proc = subprocess.run(list(command), capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise ClusterError(f"{command[0]}: command not found (is this a Slurm login node?)") from None
    except subprocess.TimeoutExpired:
        raise ClusterError(f"{' '.join(command)}: no answer within {timeout:g} s") from None
    if proc.returncode != 0:
        raise ClusterError(f"{' '.join(command)} failed (exit {proc.returncode}): {proc.stderr.strip()[:300]}")
    return proc.stdout


def slurm_available() -> bool:
    return shutil.which("sbatch") is not None and shutil.which("sinfo") is not None


@dataclass
class _Answers:
    """What the cluster said inside a :func:`sinfo_once` block."""

    partitions: dict[str, Partition] | None = None


#: The open :func:`sinfo_once` block's answers; None outside one.
_answers: _Answers | None = None


@contextlib.contextmanager
def sinfo_once() -> Iterator[None]:
    """Within this block sinfo is asked at most once: :func:`query_partitions` keeps its first answer.

    One command is one block (:func:`workflow.cli.main`), so a run's pre-flight check and its Slurm backend's
    check (or the backends of every run ``compare`` makes) share one answer; partitions do not change while a
    run starts. Outside a block every call asks. An inner block shares the outer one's answer.
    """
    global _answers
    if _answers is not None:
        yield
        return
    _answers = _Answers()
    try:
        yield
    finally:
        _answers = None


def query_partitions() -> dict[str, Partition]:
    """The cluster's partitions, from sinfo (inside :func:`sinfo_once`, asked the first time only)."""
    if _answers is None:
        return parse_sinfo(_run(["sinfo", "-h", "-o", "%R|%l|%G|%a"]))
    if _answers.partitions is None:
        _answers.partitions = parse_sinfo(_run(["sinfo", "-h", "-o", "%R|%l|%G|%a"]))
    return dict(_answers.partitions)


def query_max_array_size() -> int:
    return parse_max_array_size(_run(["scontrol", "show", "config"]))


def query_max_submit_jobs(user: str, account: str | None = None, qos: str | None = None) -> int | None:
    """The most jobs (each array task counts as one) ``user`` may have pending or running at once: the smaller
    of the association's ``MaxSubmitJobs`` and the QOS's ``MaxSubmitJobsPerUser``; None when neither is set
    or accounting cannot be asked (then sbatch is the judge)."""
    limits = []
    try:
        # A job without --account runs under the user's default account: only that association binds it.
        account = account or _run(["sacctmgr", "-nP", "show", "user", user, "format=DefaultAccount"]).strip()
        where = [f"user={user}"] + ([f"account={account}"] if account else [])
        limits.append(parse_limits(_run(["sacctmgr", "-nP", "show", "assoc", "where", *where,
                                         "format=MaxSubmit"])))
        limits.append(parse_limits(_run(["sacctmgr", "-nP", "show", "qos", "where", f"name={qos or 'normal'}",
                                         "format=MaxSubmitPU"])))
    except ClusterError as exc:
        log.info("could not read the submission limits (%s); relying on sbatch", exc)
    found = [limit for limit in limits if limit is not None]
    return min(found) if found else None


def query_user_jobs(user: str) -> int:
    """How many jobs ``user`` has pending or running now, counting every array task (as the limits do)."""
    return len(_run(["squeue", "-h", "-r", "-u", user, "-t", "PENDING,RUNNING,CONFIGURING,COMPLETING,"
                     "REQUEUED,RESIZING,SUSPENDED", "-o", "%i"]).split())


def query_states(array_ids: Iterable[str]) -> dict[str, str]:
    """Task states from sacct (raises ClusterError when accounting does not answer)."""
    ids = sorted(set(array_ids))
    if not ids:
        return {}
    return parse_sacct(_run(["sacct", "-n", "-P", "-o", "JobID,State", "-j", ",".join(ids)]))


def query_queue(array_ids: Iterable[str]) -> dict[str, str]:
    """Task states from squeue: the fallback when sacct is unavailable (finished tasks are simply absent)."""
    ids = sorted(set(array_ids))
    if not ids:
        return {}
    text = _run(["squeue", "-h", "-r", "-o", "%i|%T", "-j", ",".join(ids)])
    return parse_sacct(text)


def query_jobs_by_name(name: str) -> dict[str, str]:
    """Task states of every job named ``name`` (used to find jobs submitted by a driver that then died).

    Both the controller (squeue, which knows a job the moment sbatch returns, and finished ones for MinJobAge)
    and accounting (sacct, which keeps finished jobs but records array tasks a few seconds late) are asked.
    """
    found = parse_sacct(_run(["squeue", "-h", "-r", "-t", "all", "--name", name, "-o", "%i|%T"]))
    try:
        accounted = parse_sacct(_run(["sacct", "-n", "-X", "-P", "-o", "JobID,State", "--name", name,
                                      "-S", "now-30days"]))
    except ClusterError as exc:
        log.warning("sacct unavailable while looking for jobs named %s: %s", name, exc)
        accounted = {}
    return {**accounted, **found}


# ------------------------------------------------------------------------------------------- checking


def cancel(job_ids: Iterable[str]) -> None:
    ids = sorted(set(job_ids))
    if ids:
        _run(["scancel", *ids])


def check_request(config: Config, partitions: Mapping[str, Partition]) -> None:
    """Refuse, with one line, a request the cluster cannot satisfy."""
    slurm = config.slurm
    part = partitions.get(slurm.partition)
    if part is None:
        raise ConfigError("slurm.partition", slurm.partition,
                          f"no such partition on this cluster; available: {', '.join(sorted(partitions))}")
    if part.time_limit_min is not None and slurm.time_min > part.time_limit_min:
        raise ConfigError("slurm.time_min", slurm.time_min,
                          f"above partition {part.name}'s time limit ({part.time_limit_min} min)")
    gpus = gpus_per_task(config)
    if gpus > part.gpus_per_node:
        raise ConfigError("slurm.gpus_per_task", gpus,
                          f"partition {part.name} has {part.gpus_per_node} GPUs per node")


def gpus_per_task(config: Config) -> int:
    """GPUs one evaluation's task holds: derived from ``train`` so Slurm and Lightning agree."""
    if config.slurm.gpus_per_task:
        return config.slurm.gpus_per_task
    return config.train.devices if config.train.accelerator == "gpu" else 0
