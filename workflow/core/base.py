"""The optimizer interface shared by GA, BO and random search, and the ask/tell bookkeeping they share.

Two modes (``optimizer.mode``):

- ``generational`` (the seed's): ``population_size`` candidates are asked at once, and told at once when all of
  them have results; the next generation is asked only then.
- ``steady_state``: no generation barrier. Up to ``optimizer.max_in_flight`` candidates are out at a time; any
  of them is told as soon as its result arrives, and each freed slot is asked for a new candidate at once.

Either way a run is ``population_size * generations`` candidates, named by the optimizer from their birth
order: the k-th block of ``population_size`` births is "generation" k.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from workflow.records import Candidate, Evaluated, Result

if TYPE_CHECKING:
    from workflow.config import OptimizerConfig
    from workflow.space import SearchSpace


class Optimizer(Protocol):
    """Ask for candidates, evaluate them elsewhere, tell the results back; repeat until ``finished``.

    Implementations hold all their state in memory and rebuild it by replay: a fresh optimizer with the same
    config and seed, asked and told the same candidates in the same order, is in the same state (the driver
    relies on this to resume).
    """

    name: str
    #: Set by the driver while it replays the journal.
    replaying: bool
    #: Steady state (``optimizer.mode: steady_state``): no generation barrier, each result is told as it arrives
    #: (the driver journals which names a tell took); False: a generation is asked and told whole.
    steady: bool
    #: Whether :meth:`immigrate` takes migrants (the island model needs an optimizer that does: the GA).
    takes_immigrants: bool
    #: The members emigrants are chosen from (the GA's population; empty for an optimizer without one).
    population: list[Evaluated]

    @property
    def finished(self) -> bool: ...

    @property
    def batches_asked(self) -> int:
        """How many times :meth:`ask` returned candidates (the journal's ``asked`` events)."""
        ...

    @property
    def pending(self) -> list[Candidate]:
        """Asked, not yet told, in the order they were asked."""
        ...

    def capacity(self) -> int:
        """How many candidates :meth:`ask` would give now (0: wait for results first, or the budget is spent)."""
        ...

    def ask(self, n: int | None = None) -> list[Candidate]:
        """Up to ``n`` new candidates (generational: a whole generation, whatever ``n`` says)."""
        ...

    def restore(self, recorded: Sequence[Candidate], verify: bool = True) -> None:
        """Replay an ask whose candidates the journal recorded: checked against what this optimizer proposes
        (``verify``; an optimizer whose asks are costly may trust the journal when not asked to verify)."""
        ...

    def replayed_state(self, state: dict[str, Any] | None) -> None:
        """After replaying a tell: what the journal recorded with it (checked, or taken over, by the optimizer)."""
        ...

    def tellable(self, results: Mapping[str, Result]) -> list[Candidate]:
        """The pending candidates that can be told now, given the results that have arrived."""
        ...

    def tell(self, evaluated: Sequence[Evaluated]) -> None: ...

    def enqueue(self, hparams: Mapping[str, Any]) -> None:
        """Evaluate ``hparams`` (a whole chromosome, checked by the caller) before anything proposed: the next asks
        take enqueued configurations first, in order (the journal's ``enqueued`` events, replayed in place)."""
        ...

    def best(self) -> Evaluated | None: ...

    def journal_state(self) -> dict[str, Any]:
        """State to record with each tell (checked on replay): e.g. the GA's adapted tree bases."""
        ...

    def immigrate(self, migrants: Sequence[Evaluated]) -> list[Evaluated]:
        """Take ``migrants`` into :attr:`population` (island model); returns the members they replaced. Only an
        optimizer whose :attr:`takes_immigrants` is true supports it."""
        ...


class ProtocolError(RuntimeError):
    """ask/tell called out of order, told results that were not asked, or a replay that proposes otherwise."""


def check_told(pending: Sequence[Candidate], evaluated: Sequence[Evaluated]) -> list[Evaluated]:
    """Order ``evaluated`` like ``pending`` and check both name the same evaluations."""
    by_name = {e.candidate.name: e for e in evaluated}
    expected = [c.name for c in pending]
    if sorted(by_name) != sorted(expected) or len(evaluated) != len(pending):
        raise ProtocolError(f"told {sorted(by_name)} but asked {expected}")
    return [by_name[name] for name in expected]


class BatchOptimizer:
    """The ask/tell bookkeeping GA, BO and random search share; subclasses say what to propose and learn.

    :meth:`ask` draws each candidate's training seed from the injected generator right after its
    hyperparameters are taken from :meth:`_propose` (a lazy iterable interleaves the two draws), and
    :meth:`tell` checks the results against what is pending before :meth:`_learn` sees them.
    """

    name = "base"
    #: See :attr:`Optimizer.takes_immigrants` (a subclass that implements :meth:`immigrate` says True).
    takes_immigrants = False

    def __init__(self, config: OptimizerConfig, space: SearchSpace, rng: np.random.Generator,
                 island: int = 0) -> None:
        self.config, self.space, self.rng, self.island = config, space, rng, island
        self.steady = config.mode == "steady_state"
        #: See :attr:`Optimizer.population` (empty unless the subclass keeps one).
        self.population: list[Evaluated] = []
        self.history: list[Evaluated] = []
        self._pending: list[Candidate] = []
        self.births = 0  # candidates asked so far; names and generation numbers are 1-based
        self.asks = 0  # asks that returned candidates
        #: True while the driver replays the journal (an optimizer may skip work whose outcome is recorded).
        self.replaying = False
        #: Enqueued configurations not yet asked (:meth:`enqueue`).
        self._queue: list[dict[str, Any]] = []

    # -- the protocol ---------------------------------------------------------------------------------

    @property
    def budget(self) -> int:
        return self.config.population_size * self.config.generations

    @property
    def finished(self) -> bool:
        return self.births >= self.budget and not self._pending

    @property
    def batches_asked(self) -> int:
        return self.asks

    @property
    def pending(self) -> list[Candidate]:
        return list(self._pending)

    def capacity(self) -> int:
        left = self.budget - self.births
        if not self.steady:
            return self.config.population_size if left > 0 and not self._pending else 0
        in_flight = self.config.max_in_flight or self.config.population_size
        return max(0, min(in_flight - len(self._pending), left))

    def ask(self, n: int | None = None) -> list[Candidate]:
        if not self.steady:
            if self._pending:
                raise ProtocolError(f"batch {self.asks} was asked but not told")
            n = self.config.population_size
        n = min(self.capacity() if n is None else n, self.capacity())
        if n <= 0:
            return []
        queued, self._queue = self._queue[:n], self._queue[n:]
        fresh: Iterable[dict[str, Any]] = self._propose(n - len(queued)) if n > len(queued) else []
        if queued:
            self._took_queued(len(queued), proposed=n > len(queued))
        proposals = itertools.chain(queued, fresh)
        pop = self.config.population_size
        asked = []
        for i, hp in enumerate(proposals):
            birth = self.births + i  # 0-based
            generation, index = birth // pop + 1, birth % pop + 1
            asked.append(Candidate(name=self._candidate_name(generation, index, birth + 1), hparams=hp,
                                   generation=generation, index=index, optimizer=self.name, island=self.island,
                                   seed=int(self.rng.integers(2**31 - 1))))
        self.births += len(asked)
        self.asks += 1
        self._pending.extend(asked)
        return asked

    def _take_recorded(self, recorded: Sequence[Candidate]) -> None:
        """Replay an ask by taking the journal's candidates as they are (the counters move as ask moves them)."""
        del self._queue[:len(recorded)]  # an ask takes enqueued configurations first
        self.births += len(recorded)
        self.asks += 1
        self._pending.extend(recorded)

    def restore(self, recorded: Sequence[Candidate], verify: bool = True) -> None:
        proposed = self.ask(len(recorded))
        if [c.to_dict() for c in proposed] != [c.to_dict() for c in recorded]:
            raise ProtocolError("differs from what the optimizer proposes on replay (was the code or the config "
                                "changed?)")

    def replayed_state(self, state: dict[str, Any] | None) -> None:
        # What was recorded is what is checked (an older journal may record fewer keys than this version).
        mine = self.journal_state()
        if state and {key: mine.get(key) for key in state} != state:
            raise ProtocolError(f"the optimizer's state after replay ({mine}) differs from the recorded {state}")

    def tellable(self, results: Mapping[str, Result]) -> list[Candidate]:
        ready = [c for c in self._pending if c.name in results]
        if self.steady:
            return ready
        return ready if ready and len(ready) == len(self._pending) else []

    def tell(self, evaluated: Sequence[Evaluated]) -> None:
        if self.steady:
            names = {e.candidate.name for e in evaluated}
            if len(names) != len(evaluated) or not names <= {c.name for c in self._pending}:
                raise ProtocolError(f"told {sorted(names)} but pending are {[c.name for c in self._pending]}")
            order = {c.name: i for i, c in enumerate(self._pending)}
            told = sorted(evaluated, key=lambda e: order[e.candidate.name])
            self._pending = [c for c in self._pending if c.name not in names]
        else:
            told = check_told(self._pending, evaluated)
            self._pending = []
        self.history.extend(told)
        self._learn(told)

    def enqueue(self, hparams: Mapping[str, Any]) -> None:
        self._queue.append(dict(hparams))

    def best(self) -> Evaluated | None:
        return best_of(self.history)

    def journal_state(self) -> dict[str, Any]:
        return {}

    def immigrate(self, migrants: Sequence[Evaluated]) -> list[Evaluated]:
        raise ProtocolError(f"optimizer {self.name} does not take immigrants (islands need the GA)")

    # -- what subclasses say --------------------------------------------------------------------------

    def _propose(self, size: int) -> Iterable[dict[str, Any]]:
        """The next ``size`` genotypes (consumed once, in order)."""
        raise NotImplementedError

    def _took_queued(self, count: int, proposed: bool) -> None:
        """An ask took ``count`` enqueued configurations before what :meth:`_propose` gave (``proposed``: it was
        called for the rest)."""

    def _candidate_name(self, generation: int, index: int, number: int) -> str:
        """A candidate's name from its generation, its 1-based index in it and its 1-based overall number."""
        raise NotImplementedError

    def _learn(self, told: list[Evaluated]) -> None:
        """Update the optimizer's model from told evaluations (already in ``history``; steady-state: in the
        order they were asked, any subset of what was pending)."""


def best_of(evaluated: Sequence[Evaluated]) -> Evaluated | None:
    """Lowest fitness; ties broken by first occurrence."""
    return min(evaluated, key=lambda e: e.fitness, default=None)
