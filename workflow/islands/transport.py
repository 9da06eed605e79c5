"""How islands talk: a thin MPI layer (mpi4py) and an in-process fake with the same interface for tests.

Messages are small Python objects (a few migrants); sends are non-blocking and a receiver polls, so no island
ever waits on a slow one unless the synchronous mode asks it to (with a timeout).
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, Protocol

MIGRATION_TAG = 17


class Transport(Protocol):
    rank: int
    size: int

    def send(self, dest: int, message: Any) -> None:
        """Queue ``message`` for island ``dest`` without waiting for it to be received."""

    def poll(self) -> list[tuple[int, Any]]:
        """Every message that has arrived so far, as (source, message)."""

    def wait(self, timeout_s: float) -> list[tuple[int, Any]]:
        """At least one message if one arrives within ``timeout_s`` (then everything that has arrived)."""

    def barrier(self) -> None:
        """Wait until every island gets here."""

    def finish(self) -> None:
        """Complete outstanding sends and wait for every island to finish (end of the run)."""

    def abort(self, code: int) -> None:
        """Bring every island down (an exception on one rank must not leave the others hanging)."""


class MPITransport:
    """mpi4py point-to-point messages on COMM_WORLD."""

    def __init__(self) -> None:
        from mpi4py import MPI

        self._mpi = MPI
        self.comm = MPI.COMM_WORLD
        self.rank: int = self.comm.Get_rank()
        self.size: int = self.comm.Get_size()
        self._requests: list[Any] = []

    def send(self, dest: int, message: Any) -> None:
        self._requests.append(self.comm.isend(message, dest=dest, tag=MIGRATION_TAG))
        # Drop completed requests so the list stays short on long runs.
        self._requests = [r for r in self._requests if not r.Test()]

    def poll(self) -> list[tuple[int, Any]]:
        received = []
        status = self._mpi.Status()
        while self.comm.iprobe(source=self._mpi.ANY_SOURCE, tag=MIGRATION_TAG, status=status):
            source = status.Get_source()
            received.append((source, self.comm.recv(source=source, tag=MIGRATION_TAG)))
        return received

    def wait(self, timeout_s: float) -> list[tuple[int, Any]]:
        deadline = time.monotonic() + timeout_s
        while True:
            received = self.poll()
            if received or time.monotonic() >= deadline:
                return received
            time.sleep(0.05)

    def barrier(self) -> None:
        self.comm.Barrier()

    def finish(self) -> None:
        for request in self._requests:
            request.Wait()
        self._requests = []
        self.comm.Barrier()

    def abort(self, code: int) -> None:
        self.comm.Abort(code)


class LocalHub:
    """In-process stand-in for COMM_WORLD: one queue per island, for unit tests with threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.queues: list[queue.Queue[tuple[int, Any]]] = [queue.Queue() for _ in range(size)]
        self.barrier = threading.Barrier(size)
        self.aborted: int | None = None

    def transport(self, rank: int) -> LocalTransport:
        return LocalTransport(self, rank)


class LocalTransport:
    def __init__(self, hub: LocalHub, rank: int) -> None:
        self.hub, self.rank, self.size = hub, rank, hub.size

    def send(self, dest: int, message: Any) -> None:
        self.hub.queues[dest].put((self.rank, message))

    def poll(self) -> list[tuple[int, Any]]:
        received = []
        while True:
            try:
                received.append(self.hub.queues[self.rank].get_nowait())
            except queue.Empty:
                return received

    def wait(self, timeout_s: float) -> list[tuple[int, Any]]:
        try:
            first = self.hub.queues[self.rank].get(timeout=timeout_s)
        except queue.Empty:
            return []
        return [first, *self.poll()]

    def barrier(self) -> None:
        self.hub.barrier.wait(timeout=600)

    def finish(self) -> None:
        self.hub.barrier.wait(timeout=600)

    def abort(self, code: int) -> None:
        self.hub.aborted = code
        self.hub.barrier.abort()
