"""What every island transport must do, as one function each rank runs (threads with the in-process hub,
MPI ranks under mpiexec): the same checks, the same expected answers."""

from __future__ import annotations

import time
from typing import Any


def exercise(transport: Any) -> dict[str, Any]:
    """Run on every rank at once; returns what this rank saw (compared by the test)."""
    rank, size = transport.rank, transport.size
    out: dict[str, Any] = {"rank": rank, "size": size}
    started = time.monotonic()
    out["empty_wait"] = transport.wait(0.2)  # nothing sent yet: returns empty after the timeout
    out["waited_s"] = round(time.monotonic() - started, 3)
    out["empty_poll"] = transport.poll()
    transport.barrier()
    # Each rank sends two messages to the next one, without waiting for them to be received.
    for n in (1, 2):
        transport.send((rank + 1) % size, {"from": rank, "n": n, "payload": list(range(n * 3))})
    received: list[tuple[int, Any]] = []
    deadline = time.monotonic() + 30
    while len(received) < 2 and time.monotonic() < deadline:
        received.extend(transport.wait(deadline - time.monotonic()))
    out["received"] = sorted((m["from"], m["n"], m["payload"]) for _, m in received)
    out["sources"] = sorted({source for source, _ in received})
    transport.barrier()
    out["late_poll"] = transport.poll()  # everything was taken already
    transport.finish()
    return out


def expected(rank: int, size: int) -> dict[str, Any]:
    sender = (rank - 1) % size
    return {"received": [(sender, 1, [0, 1, 2]), (sender, 2, [0, 1, 2, 3, 4, 5])], "sources": [sender],
            "empty_poll": [], "empty_wait": [], "late_poll": []}
