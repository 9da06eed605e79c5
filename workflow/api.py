"""The Python front door: :func:`search` starts (or continues) a search, :func:`load` reads a run as a
:class:`Study`; the CLI's ``run``, ``submit``, ``resume`` and ``compare`` go through the same functions.

Whatever the front end, a search is resolved the same way: the config (a YAML path or a mapping), then the
settings (``optimizer={...}``, ``seed=3``, ``**{"optimizer.generations": 3}``; the CLI's ``key=value``
overrides), then ``space``, ``metric``, ``direction`` and the objective; then validated, pre-flight checked,
and the run directory created or continued, in that order, so bad input is one :class:`WorkflowError` line and
nothing is created.

A callable objective is pickled with cloudpickle into ``RUN_DIR/objective.pkl`` (``objective.kind:
callable``), which every worker, Slurm task and later resume loads; the process that called :func:`search`
calls the function itself.
"""

from __future__ import annotations

import logging
import math
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workflow.backends.base import BackendBase, Sink
from workflow.config import Config, apply_override, from_mapping, read_mapping, with_space
from workflow.config.checks import FUNCTION_SPEC
from workflow.config.legacy import current_key
from workflow.config.loading import parent_section
from workflow.errors import ConfigError, RunDirError, WorkflowError
from workflow.front import pareto_front
from workflow.objectives import pickled
from workflow.preflight import preflight
from workflow.records import Candidate, Result
from workflow.scoring import as_metrics, scored
from workflow.store import RunState, RunStore
from workflow.store.atomic import atomic_write
from workflow.store.events import ConfigChanged, Extended, Submitted
from workflow.store.layout import EVALS, island_dir
from workflow.store.lock import DriverLock
from workflow.store.rundir import RUNTIME_SECTIONS, config_diff, prepare_run_dir

log = logging.getLogger(__name__)

ObjectiveArg = Callable[[dict[str, Any], Any], object] | str | Sequence[str] | None

#: Keys that may change when a run is continued besides :data:`RUNTIME_SECTIONS`: more generations (extend).
EXTENDABLE = "optimizer.generations"


# -------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Evaluation:
    """One evaluation of a run: what was asked (name, hparams, seed) and, once it is done, its result."""

    name: str
    hparams: dict[str, Any]
    #: What the objective reported (empty while pending or when it failed before reporting).
    metrics: dict[str, float]
    #: The training seed the optimizer drew for it (the objective's ``context.seed``).
    seed: int
    #: Its work directory (``RUN_DIR/evals/<name>``: checkpoints, files the objective wrote).
    workdir: Path
    #: The Slurm job id (``<array>_<task>``) of its task; "" elsewhere.
    job_id: str
    #: ``ok``, ``failed`` or ``pending``.
    status: str
    #: What the optimizer minimises (the metric, negated when maximised); inf when failed, nan when pending.
    fitness: float
    generation: int
    index: int
    optimizer: str
    island: int = 0
    seconds: float = 0.0
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **{f"hparams.{k}": v for k, v in self.hparams.items()},
                **{f"metrics.{k}": v for k, v in self.metrics.items()}, "seed": self.seed,
                "status": self.status, "fitness": self.fitness, "generation": self.generation, "index": self.index,
                "optimizer": self.optimizer, "island": self.island, "seconds": self.seconds, "job_id": self.job_id,
                "workdir": str(self.workdir), "reason": self.reason}


def _evaluation(run_dir: Path, state: RunState, candidate: Candidate) -> Evaluation:
    result = state.results.get(candidate.name)
    job_id = (result.job_id if result is not None else "") or state.job_id(candidate.name)
    return Evaluation(
        name=candidate.name, hparams=dict(candidate.hparams), metrics=dict(result.metrics) if result else {},
        seed=candidate.seed, workdir=Path(run_dir) / EVALS / candidate.name, job_id=job_id,
        status=result.status if result else "pending", fitness=result.fitness if result else math.nan,
        generation=candidate.generation, index=candidate.index, optimizer=candidate.optimizer,
        island=candidate.island, seconds=result.seconds if result else 0.0, reason=result.reason if result else "")


# -------------------------------------------------------------------------------------------- the study


class Study:
    """A run directory read as a search: every property reads the journal afresh, without the driver's lock, so
    reading a running search neither waits for nor disturbs its driver."""

    def __init__(self, run_dir: Path | str) -> None:
        self.run_dir = Path(run_dir)
        RunStore.open(self.run_dir)  # a run directory, or one line saying it is not

    def __repr__(self) -> str:
        return f"Study({str(self.run_dir)!r})"

    # -- reading ----------------------------------------------------------------------------------------

    @property
    def config(self) -> Config:
        return RunStore.open(self.run_dir).config()

    def _states(self) -> list[tuple[Path, RunState]]:
        """(run directory, state) of the run, or of each island of an island run."""
        store = RunStore.open(self.run_dir)
        if count := store.island_count():
            dirs = [island_dir(self.run_dir, k) for k in range(count)]
            return [(d, RunStore(d).replay()) for d in dirs if (d / "journal.jsonl").exists()]
        return [(self.run_dir, store.replay())]

    def _evaluations(self, done: bool) -> list[Evaluation]:
        return [_evaluation(d, state, c) for d, state in self._states() for c in state.candidates
                if (c.name in state.results) == done]

    @property
    def results(self) -> list[Evaluation]:
        """Every finished evaluation (failed ones included), in the order they were asked."""
        return self._evaluations(done=True)

    @property
    def pending(self) -> list[Evaluation]:
        """Evaluations asked and not finished (running, queued, or handed out by :meth:`ask`)."""
        return self._evaluations(done=False)

    @property
    def best(self) -> Evaluation | None:
        """The best successful evaluation (lowest fitness; the first of equals), as ``status --json`` says."""
        bests = [(d, state, state.best()) for d, state in self._states()]
        found = [(d, state, b) for d, state, b in bests if b is not None]
        if not found:
            return None
        d, state, best = min(found, key=lambda item: item[2].fitness)
        return _evaluation(d, state, best.candidate)

    @property
    def pareto(self) -> list[Evaluation]:
        """The non-dominated evaluations of a multi-objective search (``optimizer.objectives``), by the first
        objective; a single-objective search's front is its best."""
        objectives = self.config.optimizer.objectives
        if len(objectives) < 2:
            return [self.best] if self.best else []
        out: list[Evaluation] = []
        for d, state in self._states():
            front = pareto_front(state.evaluated(), objectives)
            out.extend(_evaluation(d, state, e.candidate) for e in front)
        return out

    def dataframe(self) -> Any:
        """:attr:`results` as a pandas DataFrame (pandas is not a dependency: install it to use this)."""
        try:
            import pandas
        except ImportError:
            raise WorkflowError("Study.dataframe needs pandas (pip install pandas); Study.results has the same "
                                "rows as records") from None
        return pandas.DataFrame([e.to_dict() for e in self.results])

    @property
    def status(self) -> dict[str, Any]:
        """What ``status --json`` prints: progress, best, whether a driver holds the run (``driver.held``)."""
        from workflow.status import run_status

        return run_status(self.run_dir)

    @property
    def finished(self) -> bool:
        return all(state.finished for _, state in self._states())

    def report(self) -> list[Path]:
        """Write the figures and tables to ``RUN_DIR/report/``; returns their paths."""
        from workflow.report import write_report

        return list(write_report(self.run_dir))

    # -- continuing ---------------------------------------------------------------------------------------

    def resume(self, objective: ObjectiveArg = None, *, report: bool = False, detach: bool = False,
               **settings: Any) -> Study:
        """Continue the search (blocking unless ``detach``) with runtime settings changed (``backend``,
        ``slurm``, ``tracking`` sections; ``optimizer.generations`` to extend); ``objective``: a callable run's
        function again (when its pickle could not be written, inline)."""
        resume_run(self.run_dir, settings=settings, objective=objective, write_report=report, detach=detach)
        return self

    def extend(self, generations: int, *, objective: ObjectiveArg = None, report: bool = False,
               detach: bool = False, **settings: Any) -> Study:
        """More budget: ``optimizer.generations`` becomes ``generations`` (the new total, more than the run's),
        and the search goes on (blocking unless ``detach``; an ask/tell study just gets the budget). Nothing
        evaluated is evaluated again: the journal replays what was done."""
        current = self.config.optimizer.generations
        if not isinstance(generations, int) or generations <= current:
            raise ConfigError("generations", generations, f"the new total, more than the run's {current}")
        return self.resume(objective, report=report, detach=detach, **{EXTENDABLE: generations}, **settings)

    # -- ask and tell -------------------------------------------------------------------------------------

    def ask(self) -> Evaluation:
        """The next evaluation to run wherever you like (its name, hparams, seed, workdir); journaled as
        handed out, so a later :meth:`ask` gives the next one. Tell its metrics with :meth:`tell`."""
        backend = _run_ask_tell(self.run_dir, hand_out=True)
        if backend.handed is None:
            state = RunStore.open(self.run_dir).replay()
            if state.finished:
                raise WorkflowError(f"{self.run_dir}: the search is finished; Study.extend(generations=N) adds "
                                    "budget")
            names = ", ".join(c.name for c in state.pending())
            raise WorkflowError(f"{self.run_dir}: every evaluation asked is handed out ({names}); tell their "
                                "results before asking more (the optimizer needs them)")
        state = RunStore.open(self.run_dir).replay()
        return _evaluation(self.run_dir, state, backend.handed)

    def tell(self, name: str, metrics: float | Mapping[str, float] | None = None, *,
             reason: str | None = None, seconds: float = 0.0) -> Evaluation:
        """Record the result of evaluation ``name``: ``metrics`` (a number, or a mapping of metric names to
        numbers, as an objective returns), or ``reason`` for a failed one. Journaled like a driver's result;
        the optimizer learns from it as soon as its generation (steady state: it) is complete."""
        store = RunStore.open(self.run_dir)
        state = store.replay()
        try:
            candidate = state.candidate(name)
        except KeyError:
            raise WorkflowError(f"tell: no evaluation named {name!r} was asked in {self.run_dir}") from None
        if name in state.results:
            raise WorkflowError(f"tell: {name} already has its result ({state.results[name].status})")
        scoring = store.config().scoring()
        if reason is not None:
            result = Result.failure(name, reason, seconds=seconds)
        else:
            try:
                result = scored(name, as_metrics(metrics, scoring), scoring, seconds)
            except TypeError as exc:
                raise WorkflowError(f"tell {name}: {exc}") from None
        _run_ask_tell(self.run_dir, deliver=result)
        return _evaluation(self.run_dir, RunStore.open(self.run_dir).replay(), candidate)


def load(run_dir: Path | str) -> Study:
    """The run in ``run_dir`` (running, stopped or finished) as a :class:`Study`."""
    return Study(run_dir)


# -------------------------------------------------------------------------------------------- resolving


def resolve(objective: ObjectiveArg = None, space: Mapping[str, Any] | None = None, *,
            config: str | Path | Mapping[str, Any] | None = None, metric: str | None = None,
            direction: str | None = None, settings: Mapping[str, Any] | None = None,
            overrides: Sequence[str] = (), external: bool = False) -> Config:
    """The validated config of a search: ``config``, then ``settings`` and ``overrides``, then ``space``,
    ``metric``, ``direction`` and ``objective`` (None: the config's own; ``external``: ask/tell)."""
    if config is None:
        data: dict[str, Any] = {}
    elif isinstance(config, (str, Path)):
        data = read_mapping(config)
    elif isinstance(config, Mapping):
        data = _plain(config)
    else:
        raise ConfigError("config", type(config).__name__, "a YAML file's path or a mapping of sections")
    data = with_space(data) if (settings or overrides) and space is None else data
    for key, value in (settings or {}).items():
        _apply_setting(data, key, value)
    for item in overrides:
        apply_override(data, item)
    if space is not None:
        data["space"] = _space(space)
    section = data.setdefault("objective", {})
    if not isinstance(section, dict):
        raise ConfigError("objective", section, "a section (a mapping)")
    if metric is not None:
        section["metric"] = metric
    if direction is not None:
        section["direction"] = direction
    if external:
        _set_objective(section, {"kind": "external"})
    elif objective is not None:
        _set_objective(section, _objective_section(objective))
    return from_mapping(data)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _apply_setting(data: dict[str, Any], key: str, value: Any) -> None:
    """``section=value`` (a mapping is merged into the section) or ``dotted.key=value`` (a Python value)."""
    parts = current_key(str(key).split("."))
    if parts[0] not in Config.model_fields:
        raise ConfigError(str(key), _plain(value), f"unknown setting; allowed: {', '.join(Config.model_fields)} "
                          "(as keyword arguments) or dotted keys such as optimizer.generations")
    node = parent_section(data, parts)
    last = parts[-1]
    if isinstance(value, Mapping) and isinstance(node.get(last), dict) and last != "space":
        node[last] = _merged(node[last], _plain(value))
    else:
        node[last] = _plain(value)


def _merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _space(space: Any) -> dict[str, Any]:
    if not isinstance(space, Mapping) or not space:
        raise ConfigError("space", type(space).__name__ if not isinstance(space, Mapping) else "{}",
                          "a mapping of gene names to gene specs, e.g. {'lr': {'type': 'float', 'low': 1e-4, "
                          "'high': 0.1, 'log': True}}")
    for name, gene in space.items():
        if not isinstance(gene, Mapping):
            raise ConfigError(f"space.{name}", gene, "a gene spec is a mapping with a type, e.g. "
                              "{'type': 'int', 'low': 1, 'high': 5}")
    return {str(name): _plain(gene) for name, gene in space.items()}


def _objective_section(objective: Any) -> dict[str, Any]:
    if isinstance(objective, str):
        if FUNCTION_SPEC.match(objective):
            return {"kind": "python", "function": objective}
        return {"kind": "command", "argv": shlex.split(objective)}
    if isinstance(objective, Sequence) and objective and all(isinstance(a, str) for a in objective):
        return {"kind": "command", "argv": list(objective)}
    if callable(objective):
        try:
            pickled.check_signature(objective)
        except pickled.PickleError as exc:
            raise ConfigError("objective", pickled.describe(objective), str(exc)) from None
        return {"kind": "callable", "function": pickled.describe(objective)}
    raise ConfigError("objective", repr(objective)[:80], "a function(hparams, context), 'module:function', or a "
                      "command (a list of arguments or one string with {gene} placeholders)")


def _set_objective(section: dict[str, Any], what: dict[str, Any]) -> None:
    kept: dict[str, Any] = {k: section[k] for k in ("metric", "direction", "required", "grace_s") if k in section}
    if what.get("kind") == "command" and "cwd" in section and section.get("kind") == "command":
        kept["cwd"] = section["cwd"]
    section.clear()
    section.update(kept, **what)


def _pickle_for(config: Config, objective: ObjectiveArg, *, detach: bool) -> bytes | None:
    """The callable pickled for the chosen backend: required off the driver's process (local, Slurm, a detached
    driver); on the inline backend a function that cannot be pickled still runs (it is not saved)."""
    if config.objective.kind != "callable" or not callable(objective):
        return None
    try:
        return pickled.dumps(objective)
    except pickled.PickleError as exc:
        if config.backend.name == "inline" and not detach:
            log.warning("%s; it runs inline in this process but is not saved: resume it from Python", exc)
            return None
        where = "a detached driver" if detach else f"backend {config.backend.name}"
        raise ConfigError("objective", pickled.describe(objective), f"{exc} (needed by {where})") from None


def _install(run_dir: Path, objective: ObjectiveArg, blob: bytes | None) -> None:
    """Put the callable where this run's evaluations find it: registered here, pickled in the run directory."""
    if not callable(objective):
        return
    path = Path(run_dir) / pickled.OBJECTIVE_PICKLE
    if blob is not None:
        atomic_write(path, lambda handle: handle.write(blob))
    pickled.register(path, objective)


# -------------------------------------------------------------------------------------------- running


def search(objective: ObjectiveArg, space: Mapping[str, Any] | None = None, *,
           config: str | Path | Mapping[str, Any] | None = None, run_dir: str | Path | None = None,
           metric: str | None = None, direction: str | None = None, detach: bool = False, report: bool = False,
           force: bool = False, **settings: Any) -> Study:
    """Run a search and return its :class:`Study` (see the module's docstring and the README's "Tuning from
    Python"). ``objective``: a function ``(hparams, context) -> float | {metric: value}``, ``"module:function"``,
    or a command; None: the config's. ``detach``: start a driver in the background and return at once."""
    study, _ = start(objective, space, config=config, run_dir=run_dir, metric=metric, direction=direction,
                     settings=settings, detach=detach, write_report=report, force=force)
    return study


def create_study(space: Mapping[str, Any] | None = None, *, config: str | Path | Mapping[str, Any] | None = None,
                 run_dir: str | Path | None = None, metric: str | None = None, direction: str | None = None,
                 **settings: Any) -> Study:
    """A search you evaluate yourself (:meth:`Study.ask` / :meth:`Study.tell`): the run directory is created
    (or continued) and nothing runs."""
    resolved = resolve(None, space, config=config, metric=metric, direction=direction, settings=settings,
                       external=True)
    path = Path(run_dir) if run_dir is not None else Path("runs") / resolved.name
    prepare_run_dir(resolved, path)
    return Study(path)


def start(objective: ObjectiveArg = None, space: Mapping[str, Any] | None = None, *,
          config: str | Path | Mapping[str, Any] | None = None, run_dir: str | Path | None = None,
          metric: str | None = None, direction: str | None = None, settings: Mapping[str, Any] | None = None,
          overrides: Sequence[str] = (), detach: bool = False, write_report: bool = False, force: bool = False,
          requeue_on_signal: bool = False, on_run_dir: Callable[[Path], None] | None = None) -> tuple[Study, int]:
    """:func:`search` with the CLI's options; returns the study and the command's exit status."""
    resolved = resolve(objective, space, config=config, metric=metric, direction=direction, settings=settings,
                       overrides=overrides)
    if resolved.islands.count > 1:
        raise ConfigError("islands.count", resolved.islands.count, "the island model runs with "
                          f"`python -m workflow islands {config if isinstance(config, (str, Path)) else 'CONFIG'}`")
    if resolved.objective.kind == "callable" and not callable(objective):
        raise ConfigError("objective.kind", "callable", "a callable objective is given to workflow.search in "
                          "Python, not in a config")
    blob = _pickle_for(resolved, objective, detach=detach)
    preflight(resolved)
    path = Path(run_dir) if run_dir is not None else Path("runs") / resolved.name
    if on_run_dir is not None:
        on_run_dir(path)
    prepare_run_dir(resolved, path, force=force)
    _install(path, objective, blob)
    return Study(path), _drive(resolved, path, write_report=write_report, detach=detach,
                               requeue_on_signal=requeue_on_signal)


def _drive(config: Config, run_dir: Path, *, write_report: bool, detach: bool, requeue_on_signal: bool,
           retry_failed: bool = False) -> int:
    from workflow.session import detach as start_detached
    from workflow.session import drive

    if detach:
        if retry_failed:
            raise RunDirError(f"resume {run_dir}: --retry-failed runs in the foreground (not detached)")
        return start_detached(run_dir)
    return drive(config, run_dir, write_report=write_report, requeue_on_signal=requeue_on_signal,
                 retry_failed=retry_failed)


def resumed_config(store: RunStore, overrides: Sequence[str] = (), settings: Mapping[str, Any] | None = None) -> Config:
    """The run's own config with runtime-only changes applied (``backend``, ``slurm``, ``tracking``; more
    ``optimizer.generations``); anything else is refused."""
    config = store.config()
    if not overrides and not settings:
        return config
    keys = [item.split("=", 1)[0].strip() for item in overrides] + list(settings or {})
    for key in keys:
        if key.split(".")[0] not in RUNTIME_SECTIONS and ".".join(current_key(key.split("."))) != EXTENDABLE:
            raise RunDirError(f"resume {store.run_dir}: {key} cannot change on resume (only the "
                              f"{', '.join(RUNTIME_SECTIONS)} sections, and {EXTENDABLE} to extend the run); "
                              "start another run directory")
    data = config.to_plain()
    for key, value in (settings or {}).items():
        _apply_setting(data, key, value)
    for item in overrides:
        apply_override(data, item)
    new = from_mapping(data)
    if new.optimizer.generations < config.optimizer.generations:
        raise RunDirError(f"resume {store.run_dir}: {EXTENDABLE}={new.optimizer.generations}: can only grow "
                          f"(the run has {config.optimizer.generations})")
    return new


def _record_changes(store: RunStore, old: Config, new: Config) -> None:
    """Write a continued run's changed config, journaled (an extension as such)."""
    diff = config_diff(old.to_plain(), new.to_plain())
    if not diff:
        return
    with DriverLock(store.run_dir):
        store.write_config(new)
        store.append(ConfigChanged(diff=tuple(diff)))
        if new.optimizer.generations > old.optimizer.generations:
            store.append(Extended(generations=new.optimizer.generations, previous=old.optimizer.generations))
    log.info("run directory %s: config changed (%s)", store.run_dir, "; ".join(diff))


def resume_run(run_dir: Path | str, *, overrides: Sequence[str] = (), settings: Mapping[str, Any] | None = None,
               objective: ObjectiveArg = None, write_report: bool = False, detach: bool = False,
               requeue_on_signal: bool = False, on_run_dir: Callable[[Path], None] | None = None,
               islands_argv: Sequence[str] | None = None, retry_failed: bool = False) -> int:
    """Continue the run in ``run_dir`` (one island's directory: the island job as a whole); the exit status.

    ``retry_failed``: evaluate every failed evaluation again first (same names, the next attempt)."""
    store = RunStore.open(Path(run_dir))
    parent = store.parent()
    if parent is not None:
        store = RunStore.open(parent)
    if on_run_dir is not None:
        on_run_dir(store.run_dir)
    old = store.config()
    config = resumed_config(store, overrides, settings)
    if config.islands.count > 1:
        if retry_failed:
            raise RunDirError("resume --retry-failed: not available for the island model (resume it without)")
        return _resume_islands(store, config, bool(overrides or settings), islands_argv)
    if config.objective.kind == "external":  # ask/tell: more budget is all there is to do
        if config == old:
            preflight(config)  # refuses: nothing for a driver to run
        _record_changes(store, old, config)
        return 0
    blob = None
    if config.objective.kind == "callable":
        path = store.run_dir / pickled.OBJECTIVE_PICKLE
        if callable(objective):
            blob = _pickle_for(config, objective, detach=detach)
        elif not path.exists() and pickled.registered(path) is None:
            raise ConfigError("objective", config.objective.function, f"{path} is missing (the function could not "
                              "be pickled): resume from Python with workflow.load(run_dir).resume(objective=...)")
    elif objective is not None:
        raise ConfigError("objective", pickled.describe(objective) if callable(objective) else objective,
                          f"this run's objective is objective.kind={config.objective.kind}, set in its config")
    preflight(config)
    _record_changes(store, old, config)
    _install(store.run_dir, objective, blob)
    return _drive(config, store.run_dir, write_report=write_report, detach=detach,
                  requeue_on_signal=requeue_on_signal, retry_failed=retry_failed)


def _resume_islands(store: RunStore, config: Config, changed: bool, argv: Sequence[str] | None) -> int:
    from workflow.session import drive_islands

    preflight(config)
    if config.optimizer.generations != store.config().optimizer.generations:
        raise RunDirError(f"resume {store.run_dir}: {EXTENDABLE} cannot change for an island run")
    if changed:
        from workflow.islands.launch import mpi_world_size

        if mpi_world_size() > 1:
            raise RunDirError("resume: give runtime overrides to a resume started without mpiexec "
                              "(it relaunches the islands itself)")
        prepare_run_dir(config, store.run_dir)  # the relaunched ranks read the updated config
    return drive_islands(config, store.run_dir, list(argv or ["resume", str(store.run_dir)]), create=False)


# -------------------------------------------------------------------------------------------- ask / tell


class _Pause(Exception):
    """Raised by the ask/tell backend where a driver would wait for results: the call is done."""


class _AskTellBackend(BackendBase):
    """The driver's loop with the user as the backend: ``submit`` hands out one evaluation (journaled as
    submitted by ``ask``), ``collect`` delivers the one result :meth:`Study.tell` got, then pauses the loop."""

    name = "ask"

    def __init__(self, config: Config, run_dir: Path, *, hand_out: bool, deliver: Result | None) -> None:
        super().__init__(config, run_dir)
        self.hand_out, self.deliver = hand_out, deliver
        self.handed: Candidate | None = None
        self.waiting: dict[str, Candidate] = {}

    def submit(self, candidates: Sequence[Candidate], sink: Sink) -> None:
        self.waiting.update((c.name, c) for c in candidates)
        if not self.hand_out or self.handed is not None:
            return
        for candidate in candidates:
            previous = sink.previous_submission(candidate.name)
            if not (isinstance(previous, Submitted) and previous.backend == self.name):
                self.handed = candidate
                sink.submitted([candidate.name], backend=self.name)
                return

    def collect(self, sink: Sink, timeout_s: float | None = None) -> int:
        if self.deliver is None:
            raise _Pause
        result, self.deliver = self.deliver, None
        sink.result(result)
        self.waiting.pop(result.name, None)
        return 1

    def in_flight(self) -> int:
        return len(self.waiting)

    def close(self) -> None:
        self.waiting.clear()


def _run_ask_tell(run_dir: Path, *, hand_out: bool = False, deliver: Result | None = None) -> _AskTellBackend:
    """One turn of the driver's loop under the run directory's lock (refused while a driver holds it)."""
    from workflow.driver import run_search

    store = RunStore.open(run_dir)
    config = store.config()
    if config.islands.count > 1 or store.island() is not None:
        raise WorkflowError(f"{run_dir}: ask/tell serves single-population runs, not islands")
    backend = _AskTellBackend(config, run_dir, hand_out=hand_out, deliver=deliver)
    try:
        run_search(config, run_dir, backend=backend)
    except _Pause:
        pass
    return backend


__all__ = ["Evaluation", "Study", "create_study", "load", "search"]
