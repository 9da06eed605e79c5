"""The journal's vocabulary: one frozen dataclass per event kind, and the only code that builds or parses the
journal's dicts (model: Optuna's ``JournalStorage`` operations: one vocabulary, one writer, one replayer).

Every line of ``journal.jsonl`` is one event: ``{"t": <unix time>, "event": <kind>, ...fields}``. Words mean one
thing each: ``ask`` is the optimizer's ask counter (how many asks returned candidates), ``generation`` is a
block of ``population_size`` births (in generational mode the two agree). :func:`encode` writes an event,
:func:`decode` reads one; readers see only the typed events (:class:`~workflow.store.state.RunState` applies
them and offers typed views).

Journals before format 4 said ``batch`` for both words; :func:`decode` translates them (see ``_LEGACY``), so
run directories of 0.1 and of format 3 resume exactly. New journals never write ``batch``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar

from workflow.records import Candidate, Evaluated, Result


@dataclass(frozen=True, kw_only=True)
class Event:
    """One journal line. ``t``: when it was appended (set by the writer)."""

    KIND: ClassVar[str] = ""
    t: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this event (without ``t`` and ``event``; :func:`encode` adds them)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "t":
                continue
            value = getattr(self, f.name)
            if value is None:  # absent, not null: optional fields cost nothing in the journal
                continue
            out[f.name] = _plain(value)
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Event:
        names = {f.name for f in fields(cls)}
        return cls(**{k: _frozen(v) for k, v in raw.items() if k in names})


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _frozen(value: Any) -> Any:
    return tuple(_frozen(v) for v in value) if isinstance(value, list) else value


# -- the run --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Created(Event):
    """The journal's first event. ``format``: :data:`workflow.store.journal.JOURNAL_FORMAT` at creation (1 for
    0.1); ``island``: set in an island's own run directory."""

    KIND: ClassVar[str] = "created"
    name: str = ""
    pid: int = 0
    format: int = 1
    island: int | None = None


@dataclass(frozen=True)
class ConfigChanged(Event):
    """The run's config was changed on continuing it (``forced``: a search-defining key changed)."""

    KIND: ClassVar[str] = "config_changed"
    diff: tuple[str, ...] = ()
    forced: bool = False


@dataclass(frozen=True)
class Extended(Event):
    """More budget for the run: ``optimizer.generations`` went from ``previous`` to ``generations`` (a finished run
    is unfinished again until its new generations are told)."""

    KIND: ClassVar[str] = "extended"
    generations: int = 0
    previous: int = 0


@dataclass(frozen=True)
class Stopped(Event):
    """The search stopped early: too many evaluations of ``generation`` failed (fail fast)."""

    KIND: ClassVar[str] = "stopped"
    generation: int = 0
    failed: int = 0
    reason: str = ""


@dataclass(frozen=True)
class Finished(Event):
    """The optimizer's budget is spent and every evaluation is told."""

    KIND: ClassVar[str] = "finished"


# -- ask, evaluate, tell --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Asked(Event):
    """The optimizer's ``ask``-th ask (recorded before anything is submitted)."""

    KIND: ClassVar[str] = "asked"
    ask: int = 0
    candidates: tuple[Candidate, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"ask": self.ask, "candidates": [c.to_dict() for c in self.candidates]}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Asked:
        return cls(ask=int(raw["ask"]), candidates=tuple(Candidate.from_dict(c) for c in raw["candidates"]))


@dataclass(frozen=True)
class Submission(Event):
    """What a backend did with some evaluations of one ``generation``: the kinds below."""

    names: tuple[str, ...] = ()
    generation: int = 0
    tag: str | None = None
    folder: str | None = None
    #: Set when these evaluations were submitted again (preemption, node failure): the count, and the state.
    resubmit: int | None = None
    after: str | None = None

    def job_id(self, name: str) -> str:
        """The Slurm job id recorded for ``name`` ("" when none is)."""
        return ""


@dataclass(frozen=True)
class Submitting(Submission):
    """An intent, durable before it leaves the machine: a Slurm array about to be sbatch'ed under ``tag``,
    its tasks' ``packs`` of evaluation names."""

    KIND: ClassVar[str] = "submitting"
    packs: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class Submitted(Submission):
    """Evaluations handed to the backend (Slurm: their job ids; inline/local: the backend and pack size)."""

    KIND: ClassVar[str] = "submitted"
    job_ids: Mapping[str, str] = field(default_factory=dict)
    array_id: str | None = None
    backend: str | None = None
    pack_size: int | None = None

    def job_id(self, name: str) -> str:
        return str(self.job_ids.get(name, ""))


@dataclass(frozen=True)
class Recovered(Submitted):
    """Slurm tasks an earlier driver submitted and died before recording, found again by their ``tag``."""

    KIND: ClassVar[str] = "recovered"


@dataclass(frozen=True)
class Abandoned(Submission):
    """A submission given up (an array sbatch'ed without its task files, or an sbatch that failed while the
    controller was away; whatever it made is cancelled, and it is submitted afresh)."""

    KIND: ClassVar[str] = "abandoned"


@dataclass(frozen=True)
class ResultRecorded(Event):
    """One evaluation's result (the first one recorded for a name wins, until a :class:`Retrying` of that name
    opens its next ``attempt``: 1 unless set, and written only when above 1)."""

    KIND: ClassVar[str] = "result"
    result: Result = field(default_factory=lambda: Result.failure("", ""))
    generation: int = 0
    attempt: int = 1

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"generation": self.generation, "result": self.result.to_dict()}
        if self.attempt != 1:
            out["attempt"] = self.attempt
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ResultRecorded:
        return cls(result=Result.from_dict(raw["result"]), generation=int(raw.get("generation", 0)),
                   attempt=int(raw.get("attempt", 1)))


@dataclass(frozen=True)
class Retrying(Event):
    """Failed evaluations of ``generation`` evaluated again under the same ``names`` (recorded before they are
    submitted): their results so far stay in the journal as earlier attempts; each name's next result is its
    next attempt (one more than the ``retrying`` events naming it so far). Names the optimizer was already told
    (a finished run's failures under ``resume --retry-failed``) update the run's table and best, not the
    optimizer: replay tells it what the journal held at each ``told``."""

    KIND: ClassVar[str] = "retrying"
    names: tuple[str, ...] = ()
    generation: int = 0


@dataclass(frozen=True)
class Told(Event):
    """Results given back to the optimizer: ``names`` (None: everything pending, a whole generation), the
    ``generations`` this tell completed, the optimizer's ``ask`` counter, and the ``state`` it records with a
    tell (checked on replay: the GA's generator state and tree bases, BO's fitted model's inputs)."""

    KIND: ClassVar[str] = "told"
    ask: int = 0
    names: tuple[str, ...] | None = None
    generations: tuple[int, ...] = ()
    state: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ask": self.ask, "generations": list(self.generations)}
        if self.names is not None:
            out["names"] = list(self.names)
        if self.state:
            out["state"] = self.state
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Told:
        names = raw.get("names")
        return cls(ask=int(raw.get("ask", 0)), names=None if names is None else tuple(str(n) for n in names),
                   generations=tuple(int(g) for g in raw.get("generations", ())), state=raw.get("state") or None)


@dataclass(frozen=True)
class Enqueued(Event):
    """A known configuration (the whole chromosome) to evaluate before anything the optimizer proposes; asks
    take enqueued configurations first, in this order. ``source``: ``enqueue`` (the Python API),
    ``config`` (``optimizer.enqueue``) or ``warm_start <run dir> <name>``."""

    KIND: ClassVar[str] = "enqueued"
    hparams: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"hparams": _plain(dict(self.hparams)), "source": self.source}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Enqueued:
        return cls(hparams=dict(raw["hparams"]), source=str(raw.get("source", "")))


# -- islands ----------------------------------------------------------------------------------------------


def encode_migrants(migrants: Sequence[Evaluated]) -> list[dict[str, Any]]:
    """Migrants as journaled and sent between islands (``{"candidate": ..., "result": ...}`` each)."""
    return [{"candidate": e.candidate.to_dict(), "result": e.result.to_dict()} for e in migrants]


def decode_migrants(raw: Sequence[Mapping[str, Any]]) -> tuple[Evaluated, ...]:
    """The inverse of :func:`encode_migrants`."""
    return tuple(Evaluated(Candidate.from_dict(m["candidate"]), Result.from_dict(m["result"])) for m in raw)


@dataclass(frozen=True)
class Emigrated(Event):
    """Migrants this island sent after telling ``generation`` (recorded before sending), under ``id``."""

    KIND: ClassVar[str] = "emigrated"
    generation: int = 0
    id: str = ""
    to: tuple[int, ...] = ()
    migrants: tuple[Evaluated, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"generation": self.generation, "id": self.id, "to": list(self.to),
                "migrants": encode_migrants(self.migrants)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Emigrated:
        return cls(generation=int(raw["generation"]), id=str(raw["id"]), to=tuple(int(k) for k in raw.get("to", ())),
                   migrants=decode_migrants(raw.get("migrants", ())))


@dataclass(frozen=True)
class Replaced:
    """A member an immigrant replaced (its name and fitness; None: a failed member's worst fitness)."""

    name: str
    fitness: float | None


@dataclass(frozen=True)
class Immigrated(Event):
    """Migrants taken in at this island's ``generation`` (recorded before applying: replay applies them at this
    point of the journal) from island ``sender``, which sent them after its ``sender_generation``."""

    KIND: ClassVar[str] = "immigrated"
    generation: int = 0
    id: str = ""
    sender: int = 0
    sender_generation: int = 0
    migrants: tuple[Evaluated, ...] = ()
    #: Read from the sender's journal on resume (the message itself was lost with a driver).
    recovered: bool = False
    replaced: tuple[Replaced, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"generation": self.generation, "id": self.id, "sender": self.sender,
                "sender_generation": self.sender_generation, "migrants": encode_migrants(self.migrants),
                "recovered": self.recovered,
                "replaced": [{"name": r.name, "fitness": r.fitness} for r in self.replaced]}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Immigrated:
        return cls(generation=int(raw["generation"]), id=str(raw["id"]), sender=int(raw["sender"]),
                   sender_generation=int(raw["sender_generation"]), migrants=decode_migrants(raw["migrants"]),
                   recovered=bool(raw.get("recovered", False)),
                   replaced=tuple(Replaced(str(r["name"]), r.get("fitness")) for r in raw.get("replaced", ())))


# -- W&B --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WandbChecked(Event):
    """The driver compared ``generation``'s W&B summaries with the results (``disagreements``: one each)."""

    KIND: ClassVar[str] = "wandb_checked"
    generation: int = 0
    runs: int = 0
    disagreements: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class Unknown(Event):
    """An event of a kind this version does not know (a newer version wrote it): kept, otherwise ignored."""

    kind: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict)


KINDS: dict[str, type[Event]] = {cls.KIND: cls for cls in (
    Created, ConfigChanged, Extended, Stopped, Finished, Asked, Submitting, Submitted, Recovered, Abandoned,
    ResultRecorded, Retrying, Told, Enqueued, Emigrated, Immigrated, WandbChecked)}


# -- reading and writing ------------------------------------------------------------------------------------


def encode(event: Event) -> dict[str, Any]:
    """The journal's JSON object for ``event`` (``t`` first, then ``event``, then the fields)."""
    if isinstance(event, Unknown):
        return dict(event.raw)
    return {"t": event.t, "event": event.KIND, **event.to_dict()}


def decode(raw: Mapping[str, Any]) -> Event:
    """The typed event of one journal object (any format; raises ValueError on a malformed one)."""
    raw = _legacy_kind(raw)
    kind = raw.get("event")
    cls = KINDS.get(str(kind))
    if cls is None:
        return Unknown(t=raw.get("t"), kind=str(kind), raw=dict(raw))
    body = {k: v for k, v in raw.items() if k not in ("t", "event")}
    if "batch" in body or (cls is Told and "ask" not in body):
        body = _LEGACY.get(cls, _drop_batch)(body)
    try:
        event = cls.from_dict(body)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed {kind} event ({type(exc).__name__}: {exc})") from None
    t = raw.get("t")
    return stamped(event, None if t is None else float(t))


def stamped(event: Event, t: float | None) -> Event:
    """``event`` with its time ``t``."""
    return replace(event, t=t)


# -- journals before format 4: ``batch`` meant the ask counter in asked/told and the generation elsewhere ------


def _drop_batch(body: dict[str, Any]) -> dict[str, Any]:
    body = dict(body)
    body.setdefault("generation", body.pop("batch", 0))
    body.pop("batch", None)
    return body


def _legacy_asked(body: dict[str, Any]) -> dict[str, Any]:
    return {"ask": body["batch"], "candidates": body["candidates"]}


def _legacy_told(body: dict[str, Any]) -> dict[str, Any]:
    # Generational: {"batch": n} told the whole pending generation n; steady state: {"names", "generations"}.
    if "batch" in body:
        return {"ask": body["batch"], "generations": [body["batch"]], "state": body.get("state")}
    return {"ask": 0, "names": body.get("names", []), "generations": body.get("generations", []),
            "state": body.get("state")}


def _legacy_immigrated(body: dict[str, Any]) -> dict[str, Any]:
    # ``batch`` was the receiver's generation, ``generation`` the sender's, ``from`` the sender.
    return {**{k: v for k, v in body.items() if k not in ("batch", "generation", "from")},
            "generation": body["batch"], "sender": body["from"], "sender_generation": body["generation"]}


def _legacy_submitted(body: dict[str, Any]) -> dict[str, Any]:
    return _drop_batch({k: v for k, v in body.items() if k != "recovered"})


_LEGACY: dict[type[Event], Callable[[dict[str, Any]], dict[str, Any]]] = {
    Asked: _legacy_asked, Told: _legacy_told, Immigrated: _legacy_immigrated, Submitted: _legacy_submitted}


def _legacy_kind(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    """Format 3 wrote a recovered Slurm submission as ``submitted`` with ``recovered: true``."""
    if raw.get("event") == "submitted" and raw.get("recovered"):
        return {**raw, "event": Recovered.KIND}
    return raw
